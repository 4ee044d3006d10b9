"""Where a synth run writes: never into what defocuskit did not write, one writer at a time.

The rules (tested in ``tests/test_output_safety.py``):

- An output that does not exist, or an empty folder, is *absent*: a new dataset is made.
  Only "does not exist" counts as absent; any other failure to look (permissions, a path
  under ``/proc``) is an error naming the path.
- A folder holding a defocuskit dataset (root ``zarr.json`` whose attributes carry
  ``producer = "defocuskit"`` and a ``schema_version``) may be resumed or, with
  ``--overwrite``, replaced.
- Anything else (a file, a non-empty folder without ``zarr.json``, a Zarr group another
  program wrote) is refused, with or without ``--resume`` or ``--overwrite``.
- A root ``zarr.json`` that cannot be parsed is reported as damaged, never taken as empty.

On a local path a new dataset's skeleton is built in a hidden sibling folder
(``.NAME.defocuskit-partial``) and renamed into place once every array exists, so a kill
during creation leaves nothing half-made at ``NAME``. ``--overwrite`` builds the whole new
dataset there and swaps it in only after it is complete: if writing fails (a full disk),
the old dataset is untouched and only the partial new one, which this run made, is removed.
A lock file beside the output (``.NAME.defocuskit-lock``, ``flock``) lets one writer in at
a time. Remote stores (``s3://`` and other fsspec URLs) cannot rename or lock: there the
dataset is created in place and the rule "one writer per output" is the user's to keep.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
from pathlib import Path

from defocuskit.errors import ConfigError, SchemaError

__all__ = ["PRODUCER", "is_remote", "local_path", "probe_output", "writer_lock",
           "staging_path", "prepare_staging", "swap_into_place", "discard_staging",
           "remove_dataset"]

PRODUCER = "defocuskit"
_STAGING_SUFFIX = ".defocuskit-partial"
_OLD_SUFFIX = ".defocuskit-old"
_LOCK_SUFFIX = ".defocuskit-lock"


def is_remote(path) -> bool:
    """True for an fsspec URL other than ``file://``."""
    s = os.fspath(path)
    return "://" in s and not s.startswith("file://")


def local_path(path) -> Path:
    s = os.fspath(path)
    return Path(s[len("file://"):] if s.startswith("file://") else s)


def _sibling(path: Path, suffix: str) -> Path:
    return path.parent / f".{path.name}{suffix}"


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
    import fsspec

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


@contextlib.contextmanager
def writer_lock(path):
    """Hold the output's lock for the duration (local paths; remote: no lock).

    Raises ConfigError at once if another process holds it.
    """
    if is_remote(path):
        yield None
        return
    p = local_path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output {p}: cannot create its parent folder "
                          f"({exc.strerror})") from None
    lock = _sibling(p, _LOCK_SUFFIX)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"output {p}: cannot create the lock file {lock} "
                              f"({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ConfigError(f"output {p}: another `defocuskit synth` (pid {holder}) is "
                              f"writing it (lock {lock}); wait for it to finish") from None
        # the file may have been unlinked by the previous holder between open and flock
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield lock
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def staging_path(path) -> Path:
    """The hidden sibling folder where a local dataset is built before it is moved in."""
    return _sibling(local_path(path), _STAGING_SUFFIX)


def _remove_if_ours(folder: Path, what: str) -> None:
    """Remove a leftover of an earlier run: an empty folder or one of our datasets."""
    if not folder.exists():
        return
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        return
    meta = folder / "zarr.json"
    try:
        ours = folder.is_dir() and is_defocuskit_attrs(_root_attrs(meta.read_text(),
                                                                   str(meta)))
    except (OSError, SchemaError):
        ours = False
    if not ours:
        raise ConfigError(f"{folder}: a leftover {what} that defocuskit cannot recognise "
                          "as its own; move or delete it yourself, then run again")
    shutil.rmtree(folder)


def prepare_staging(path) -> Path:
    """Return an empty staging folder for ``path``, clearing our own stale leftovers.

    A leftover ``.NAME.defocuskit-old`` is a previous dataset whose swap was cut short:
    if ``NAME`` is missing it is put back, otherwise it is removed.
    """
    final = local_path(path)
    old = _sibling(final, _OLD_SUFFIX)
    if old.exists():
        if not final.exists():
            os.rename(old, final)
        else:
            _remove_if_ours(old, "previous dataset")
    stage = staging_path(final)
    _remove_if_ours(stage, "partial dataset")
    stage.mkdir()
    return stage


def discard_staging(stage: Path) -> None:
    """Remove a staging folder this run created (after a failure)."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(stage)


def swap_into_place(stage: Path, path, *, replace: bool) -> None:
    """Move the staged dataset to ``path``; with ``replace``, the old dataset goes after.

    The old dataset is renamed aside first and only deleted once the new one is in place;
    if the second rename fails it is put back.
    """
    final = local_path(path)
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
    os.rename(final, old)
    try:
        os.rename(stage, final)
    except OSError:
        os.rename(old, final)
        raise
    shutil.rmtree(old)


def remove_dataset(path, storage_options: dict | None = None) -> None:
    """Delete a remote dataset that :func:`probe_output` recognised as defocuskit's."""
    import fsspec

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
