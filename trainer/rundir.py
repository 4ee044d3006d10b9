"""The run directory of ``trainer fit``: what it writes there, and when it may.

A run writes only the files in :data:`RUN_FILES` (and the ``tb/`` TensorBoard folder);
the rules below never touch anything else in the folder.

- A run directory equal to or inside a defocuskit dataset is refused (``synth
  --overwrite`` of that dataset would delete the run).
- A fresh run refuses a folder that holds any of those names (an earlier run) unless
  told to ``overwrite``, which removes exactly those files and only when each one is
  proven to be this trainer's (:func:`unproven_files`); one that is not (a user's own
  ``config.json`` or ``log.csv``) makes the whole overwrite fail, deleting nothing.
- ``resume`` needs ``last.pt``; every check of the checkpoint happens before anything is
  written, so a refused resume changes nothing.

The proof: the run record :data:`RUN_RECORD` (JSON, ``producer = "trainer"``) holds the
SHA-256 of each ``config.json``, ``log.csv`` and plot as the trainer last wrote it
(:func:`record_run_files`, after every write of those files: a hash of a few KB). A
checkpoint proves itself by its content (a dict with the trainer's format keys, read with
``torch.load(weights_only=True, mmap=True)``, no tensor data read). A ``*.pt.tmp`` (a save
cut short) and ``tb/`` (only ``events.out.tfevents.*`` files) count as the trainer's when
the run record is there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from defocuskit.dataset.output import is_defocuskit_attrs
from defocuskit.errors import ConfigError

__all__ = ["RUN_FILES", "RUN_FOLDERS", "RUN_RECORD", "earlier_run_files", "check_run_dir",
           "clear_earlier_run", "record_run_files", "unproven_files"]

RUN_RECORD = ".trainer-run.json"
RUN_FILES = ("config.json", "last.pt", "best.pt", "log.csv", "loss_curves.png",
             "val_panel.png", "last.pt.tmp", "best.pt.tmp", RUN_RECORD)
RUN_FOLDERS = ("tb",)
_HASHED = ("config.json", "log.csv", "loss_curves.png", "val_panel.png")
_CHECKPOINT_KEYS = ("format_version", "model", "model_config", "epoch", "step")


def earlier_run_files(run_dir: Path) -> list[str]:
    """The names of this trainer's files already in ``run_dir``."""
    return [n for n in (*RUN_FILES, *RUN_FOLDERS) if os.path.lexists(run_dir / n)]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_record(run_dir: Path) -> dict | None:
    path = run_dir / RUN_RECORD
    try:
        if path.is_symlink() or not path.is_file():
            return None
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(record, dict) and record.get("producer") == "trainer"
    return record if ok and isinstance(record.get("files"), dict) else None


def record_run_files(run_dir, *names: str) -> None:
    """Record the SHA-256 of the named files, just written by the trainer, in the run
    record (created if needed): what later proves them the trainer's."""
    run_dir = Path(run_dir)
    record = _read_record(run_dir) or {"producer": "trainer", "files": {}}
    for name in names:
        record["files"][name] = _sha256(run_dir / name)
    tmp = run_dir / f"{RUN_RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, run_dir / RUN_RECORD)


def _is_checkpoint(path: Path) -> bool:
    import torch  # torch: run folders are checked without it

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 (anything unreadable is simply not proven ours)
        return False
    return isinstance(ckpt, dict) and all(k in ckpt for k in _CHECKPOINT_KEYS)


def _is_ours(run_dir: Path, name: str, record: dict | None) -> bool:
    path = run_dir / name
    if path.is_symlink():
        return False
    if name == RUN_RECORD:
        return record is not None
    if name in _HASHED:
        return (record is not None and path.is_file()
                and record["files"].get(name) == _sha256(path))
    if name.endswith(".pt"):
        return path.is_file() and _is_checkpoint(path)
    if name.endswith(".pt.tmp"):
        return record is not None and path.is_file()
    if name in RUN_FOLDERS:
        return record is not None and path.is_dir() and all(
            f.startswith("events.out.tfevents.") and not os.path.islink(os.path.join(d, f))
            for d, dirs, files in os.walk(path) for f in (*files, *dirs))
    return False


def unproven_files(run_dir, found: list[str]) -> list[str]:
    """Those of ``found`` that the trainer cannot prove it wrote (see the module doc)."""
    run_dir = Path(run_dir)
    record = _read_record(run_dir)
    return [n for n in found if not _is_ours(run_dir, n, record)]


def _dataset_around(run_dir: Path) -> Path | None:
    """The defocuskit dataset that ``run_dir`` is, or lies inside, if any."""
    here = Path(os.path.realpath(run_dir))
    for folder in (here, *here.parents):
        meta = folder / "zarr.json"
        try:
            attrs = json.loads(meta.read_text()).get("attributes", {})
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(attrs, dict) and is_defocuskit_attrs(attrs):
            return folder
    return None


def check_run_dir(run_dir, *, resume: bool, overwrite: bool) -> list[str]:
    """Check ``run_dir`` before a run; return the earlier run's files to clear.

    Nothing is changed here: :func:`clear_earlier_run` removes them (``overwrite``) once
    every other check of the run has passed.

    Raises
    ------
    ConfigError
        ``run_dir`` is a file, cannot be created, is or lies inside a defocuskit dataset,
        holds an earlier run and neither ``resume`` nor ``overwrite`` is set, both are
        set, ``overwrite`` meets a file the trainer cannot prove its own, or ``resume``
        finds no ``last.pt``.
    """
    run_dir = Path(run_dir)
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run dir {run_dir}: is a file, not a folder")
    dataset = _dataset_around(run_dir)
    if dataset is not None:
        raise ConfigError(f"run dir {run_dir}: is inside the defocuskit dataset {dataset} "
                          "(a `synth --overwrite` of it would delete the run); choose a "
                          "--run-dir outside the dataset")
    found = earlier_run_files(run_dir) if run_dir.is_dir() else []
    if resume:
        if not (run_dir / "last.pt").is_file():
            raise ConfigError(f"--resume: no checkpoint {run_dir / 'last.pt'} to resume from")
        return []
    if found and not overwrite:
        raise ConfigError(f"run dir {run_dir}: holds an earlier run ({', '.join(found)}); "
                          "pass --resume to continue it, --overwrite to replace it, or "
                          "choose another --run-dir")
    foreign = unproven_files(run_dir, found)
    if foreign:
        raise ConfigError(f"run dir {run_dir}: --overwrite replaces only files this trainer "
                          f"wrote, and {', '.join(foreign)} cannot be proven to be (no "
                          f"matching record in {RUN_RECORD}, or not a trainer checkpoint); "
                          "nothing was changed. Move them away yourself, or choose another "
                          "--run-dir")
    return found


def clear_earlier_run(run_dir, found: list[str]) -> None:
    """Remove the earlier run's files (ours only; anything else in the folder stays)."""
    run_dir = Path(run_dir)
    for name in found:
        path = run_dir / name
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"run dir {run_dir}: cannot be created ({exc.strerror})") from None
