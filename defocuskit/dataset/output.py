"""Where a synth run writes: never into what defocuskit did not write, one writer at a time.

The rules (tested in ``tests/test_output_safety.py``), all checked before anything is
written:

- A local output is taken by its real path: ``--output .`` is the current folder by its
  name, and a symbolic link to a dataset resumes or replaces the dataset it points to
  (the link stays as it is and names the new dataset).
- An output that does not exist, or an empty folder, is *absent*: a new dataset is made.
  Only "does not exist" counts as absent; any other failure to look (permissions, a path
  under ``/proc``) is an error naming the path.
- A folder holding a defocuskit dataset (root ``zarr.json`` whose attributes carry
  ``producer = "defocuskit"`` and a ``schema_version``) may be resumed or, with
  ``--overwrite``, replaced; ``--overwrite`` first lists the folder's split, array and
  chunk folders (not the chunk files' contents: a walk of names, milliseconds for
  thousands of shards) and refuses a dataset that holds anything it did not write
  (:func:`foreign_entries`: a run directory, notes), naming it.
- Anything else (a file, a non-empty folder without ``zarr.json``, a Zarr group another
  program wrote) is refused, with or without ``--resume`` or ``--overwrite``.
- A root ``zarr.json`` that cannot be parsed is reported as damaged, never taken as empty.

On a local path a new dataset's skeleton is built in a hidden sibling folder
(``.NAME.defocuskit-partial``) and renamed into place once every array exists, so a kill
during creation leaves nothing half-made at ``NAME``. ``--overwrite`` builds the whole new
dataset there and swaps it in only after it is complete: the old dataset is renamed to
``.NAME.defocuskit-old`` and deleted once the new one is in place; if writing fails (a full
disk), the old dataset is untouched and only the partial new one, which this run made, is
removed. Both hidden folders carry a marker file written by the run that made them
(:data:`LEFTOVER_MARKER`, naming its role and NAME); a later run clears (or, for an old
dataset whose swap was cut short, puts back) only folders with that marker, and refuses a
folder of the same name without it, leaving it untouched.

A lock file beside the output (``.NAME.defocuskit-lock``, see :mod:`defocuskit.dataset.lock`)
lets one writer in at a time and keeps writers out while readers (``trainer fit``,
``trainer eval``) hold it; the lock never follows a symbolic link and never truncates or
deletes a file it did not create. Remote stores (``s3://`` and other fsspec URLs) cannot
rename or lock: there the dataset is created in place and the rule "one writer per
output, no writer while reading" is the user's to keep.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
from pathlib import Path

from defocuskit.dataset.lock import real_path, writer_lock
from defocuskit.errors import ConfigError, SchemaError

__all__ = ["PRODUCER", "LEFTOVER_MARKER", "is_remote", "local_path", "real_path",
           "probe_output", "writer_lock", "staging_path", "prepare_staging",
           "swap_into_place", "discard_staging", "foreign_entries", "refuse_foreign_entries",
           "mark_staging", "restore_interrupted_swap", "remove_dataset", "sibling_names"]

PRODUCER = "defocuskit"
_STAGING_SUFFIX = ".defocuskit-partial"
_OLD_SUFFIX = ".defocuskit-old"
LEFTOVER_MARKER = ".defocuskit-leftover"   # written into the staging and old folders
# files a dataset's root may hold besides its split folders (the last: a dataset manifest)
DATASET_ROOT_FILES = ("zarr.json", LEFTOVER_MARKER, "defocuskit-manifest.json")


def is_remote(path) -> bool:
    """True for an fsspec URL other than ``file://``."""
    s = os.fspath(path)
    return "://" in s and not s.startswith("file://")


def local_path(path) -> Path:
    s = os.fspath(path)
    return Path(s[len("file://"):] if s.startswith("file://") else s)


def _sibling(path: Path, suffix: str) -> Path:
    path = Path(os.path.abspath(path))  # "." and ".." by their names
    return path.parent / f".{path.name}{suffix}"


def sibling_names(path) -> tuple[Path, str]:
    """The real path of a local output and the name prefix of its hidden siblings (its
    staging, old and lock files): what an input listing must leave out when the output
    lies inside the input."""
    p = real_path(path)
    return p, f".{p.name}.defocuskit-"


def is_defocuskit_attrs(attrs: dict) -> bool:
    """A root group written by defocuskit: its producer and a schema version."""
    return attrs.get("producer") == PRODUCER and "schema_version" in attrs


def _root_attrs(text: str, where: str) -> dict:
    try:
        meta = json.loads(text)
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise SchemaError(f"{where}: damaged Zarr metadata ({exc}); nothing was changed. "
                          "Restore the file, or delete the folder yourself if you no "
                          "longer need it") from None
    attrs = meta.get("attributes", {})
    return attrs if isinstance(attrs, dict) else {}


def _foreign(where, why: str) -> ConfigError:
    return ConfigError(f"output {where}: {why}; defocuskit only writes into a new or empty "
                       "folder or one of its own datasets. Choose another --output")


def probe_output(path, storage_options: dict | None = None) -> str:
    """``"absent"`` or ``"dataset"``; raise on anything defocuskit must not write into.

    Raises
    ------
    ConfigError
        The output is a file, a non-empty folder that is not a defocuskit dataset, another
        program's Zarr group, or cannot be looked at.
    SchemaError
        The output's root ``zarr.json`` is damaged.
    """
    if is_remote(path):
        return _probe_remote(os.fspath(path), storage_options or {})
    p = local_path(path)
    try:
        p.stat()
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        raise ConfigError(f"output {p}: cannot be checked ({exc.strerror})") from None
    if not p.is_dir():
        raise _foreign(p, "is a file, not a folder")
    try:
        entries = sorted(os.listdir(p))
    except OSError as exc:
        raise ConfigError(f"output {p}: cannot list the folder ({exc.strerror})") from None
    if not entries:
        return "absent"
    meta = p / "zarr.json"
    if "zarr.json" not in entries:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise _foreign(p, f"the folder is not empty ({len(entries)} entries: {shown}) and "
                          "is not a defocuskit dataset")
    try:
        text = meta.read_text()
    except OSError as exc:
        raise ConfigError(f"output {meta}: cannot be read ({exc.strerror})") from None
    if is_defocuskit_attrs(_root_attrs(text, str(meta))):
        return "dataset"
    raise _foreign(p, "holds a Zarr group that defocuskit did not write (no "
                      "producer/schema_version attributes)")


def _probe_remote(url: str, storage_options: dict) -> str:
    import fsspec  # fsspec: only for a URL output

    fs, root = fsspec.core.url_to_fs(url, **storage_options)
    try:
        entries = fs.ls(root, detail=False)
    except FileNotFoundError:
        return "absent"
    if not entries:
        return "absent"
    meta = f"{root.rstrip('/')}/zarr.json"
    if not fs.exists(meta):
        raise _foreign(url, f"the location is not empty ({len(entries)} entries) and is not "
                            "a defocuskit dataset")
    if is_defocuskit_attrs(_root_attrs(fs.cat(meta).decode(errors="replace"), meta)):
        return "dataset"
    raise _foreign(url, "holds a Zarr group that defocuskit did not write")


def staging_path(path) -> Path:
    """The hidden sibling folder where a local dataset is built before it is moved in."""
    return _sibling(local_path(path), _STAGING_SUFFIX)


def _mark(folder: Path, role: str, name: str) -> None:
    """Write the leftover marker into ``folder`` (a folder this run made or owns)."""
    text = json.dumps({"producer": PRODUCER, "role": role, "of": name}) + "\n"
    fd = os.open(folder / LEFTOVER_MARKER,
                 os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _unmark(folder: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(folder / LEFTOVER_MARKER)


def _is_leftover(folder: Path, role: str, name: str) -> bool:
    """True only for a real folder holding the marker this program wrote for ``role``."""
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return False
        fd = os.open(folder / LEFTOVER_MARKER, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd) as fh:
            mark = json.loads(fh.read(4096))
    except (OSError, ValueError):
        return False
    return mark == {"producer": PRODUCER, "role": role, "of": name}


def _check_leftover(folder: Path, role: str, name: str) -> None:
    if not _is_leftover(folder, role, name):
        what = "previous dataset" if role == "old" else "partial dataset"
        raise ConfigError(f"{folder}: named like a leftover {what} of defocuskit, but "
                          f"without the marker ({LEFTOVER_MARKER}) defocuskit writes into "
                          "its own; it was left as it is. Move or delete it yourself, then "
                          "run again")


def restore_interrupted_swap(path) -> None:
    """Finish what an ``--overwrite`` killed mid-swap left: a ``.NAME.defocuskit-old``
    (the previous dataset) is put back if ``NAME`` is missing, and removed otherwise.

    Call before looking at the output. Leftovers are recognised only by the marker file
    written into them (:data:`LEFTOVER_MARKER`); anything else under that name is refused
    and left as it is.
    """
    final = local_path(path)
    old = _sibling(final, _OLD_SUFFIX)
    if not os.path.lexists(old):
        return
    _check_leftover(old, "old", Path(os.path.abspath(final)).name)
    if not os.path.lexists(final):
        os.rename(old, final)
        _unmark(final)
    else:
        shutil.rmtree(old)


def prepare_staging(path) -> Path:
    """Return a new, empty staging folder for ``path``, clearing our own stale one (a
    folder of that name without our marker is refused and left as it is)."""
    final = local_path(path)
    stage = staging_path(final)
    if os.path.lexists(stage):
        _check_leftover(stage, "partial", Path(os.path.abspath(final)).name)
        shutil.rmtree(stage)
    stage.mkdir()
    return stage


def mark_staging(stage: Path, path) -> None:
    """Mark the staging folder as this program's, once the dataset's skeleton is in it
    (Zarr creates a group only in an empty folder). A run killed before this leaves an
    unmarked folder, which the next run refuses to touch."""
    _mark(stage, "partial", Path(os.path.abspath(local_path(path))).name)


def discard_staging(stage: Path) -> None:
    """Remove a staging folder this run created (after a failure)."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(stage)


def swap_into_place(stage: Path, path, *, replace: bool) -> None:
    """Move the staged dataset to ``path``; with ``replace``, the old dataset goes after.

    The old dataset is marked and renamed aside first and only deleted once the new one
    is in place; if the second rename fails it is put back.
    """
    final = local_path(path)
    _unmark(stage)
    if not replace:
        if not final.exists():
            os.rename(stage, final)
            return
        # the user's empty folder stays (its owner and permissions too): move the
        # dataset's entries into it, the root zarr.json last so it is never half-recognised
        entries = sorted(os.listdir(stage), key=lambda e: e == "zarr.json")
        for entry in entries:
            os.rename(stage / entry, final / entry)
        stage.rmdir()
        return
    old = _sibling(final, _OLD_SUFFIX)
    _mark(final, "old", Path(os.path.abspath(final)).name)
    os.rename(final, old)
    try:
        os.rename(stage, final)
    except OSError:
        os.rename(old, final)
        _unmark(final)
        raise
    shutil.rmtree(old)


def foreign_entries(path) -> list[str]:
    """Files and folders inside a local dataset that the dataset did not write.

    A dataset holds its root ``zarr.json`` (and :data:`DATASET_ROOT_FILES`), one folder
    per split named in its ``splits`` attribute, inside it one folder per array, and
    inside those ``zarr.json`` and the chunk tree ``c/`` whose entries are numbers;
    anything else (a run directory, notes, another Zarr group) is foreign. Returns the
    foreign paths, relative to ``path`` (at most 10).
    """
    root = local_path(path)
    try:
        splits = _root_attrs((root / "zarr.json").read_text(), str(root)).get("splits", [])
    except (OSError, SchemaError):
        splits = []
    found: list[str] = []

    def walk(folder: Path, rel: str, depth: int) -> None:
        for entry in sorted(os.listdir(folder)):
            if len(found) >= 10:
                return
            full, name = folder / entry, f"{rel}{entry}"
            is_dir = stat.S_ISDIR(os.lstat(full).st_mode)
            if depth == 0 and entry in DATASET_ROOT_FILES and not is_dir:
                continue
            if depth < 2 and entry == "zarr.json" and not is_dir:
                continue
            if (depth < 2 and is_dir and (full / "zarr.json").is_file()
                    and (depth == 1 or entry in splits)):
                walk(full, f"{name}/", depth + 1)
            elif depth == 2 and entry == "zarr.json" and not is_dir:
                continue
            elif depth == 2 and entry == "c" and is_dir:
                walk(full, f"{name}/", 3)
            elif depth >= 3 and entry.isdigit():
                if is_dir:
                    walk(full, f"{name}/", depth + 1)
            else:
                found.append(name + ("/" if is_dir else ""))

    walk(root, "", 0)
    return found


def refuse_foreign_entries(path, shown=None) -> None:
    """Raise ConfigError naming what :func:`foreign_entries` finds in the local dataset at
    ``path`` (``--overwrite`` would delete the whole folder); ``shown``: the path as the
    user wrote it."""
    foreign = foreign_entries(path)
    if foreign:
        listed = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ConfigError(f"output {shown or path}: --overwrite would delete files the "
                          f"dataset did not write ({listed}); move them out of the dataset "
                          "folder yourself, then run again")


def remove_dataset(path, storage_options: dict | None = None) -> None:
    """Delete a remote dataset that :func:`probe_output` recognised as defocuskit's."""
    import fsspec  # fsspec: only for a URL output

    fs, root = fsspec.core.url_to_fs(os.fspath(path), **(storage_options or {}))
    fs.rm(root, recursive=True)


def describe_os_error(exc: OSError, path) -> str:
    """One line for a filesystem failure while writing ``path``."""
    reason = exc.strerror or exc.__class__.__name__
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the device"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason = f"not writable ({exc.strerror})"
    where = exc.filename or path
    return f"cannot write {where}: {reason}"
