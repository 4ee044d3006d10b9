"""The run directory of ``trainer fit``: what it writes there, and when it may.

A run writes only the files in :data:`RUN_FILES` (and the ``tb/`` TensorBoard folder);
the rules below never touch anything else in the folder.

- A fresh run refuses a folder that holds any of them (an earlier run) unless told to
  ``overwrite``, which removes exactly those files and nothing else.
- ``resume`` needs ``last.pt``; every check of the checkpoint happens before anything is
  written, so a refused resume changes nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from defocuskit.errors import ConfigError

__all__ = ["RUN_FILES", "RUN_FOLDERS", "earlier_run_files", "check_run_dir",
           "clear_earlier_run"]

RUN_FILES = ("config.json", "last.pt", "best.pt", "log.csv", "loss_curves.png",
             "val_panel.png", "last.pt.tmp", "best.pt.tmp")
RUN_FOLDERS = ("tb",)


def earlier_run_files(run_dir: Path) -> list[str]:
    """The names of this trainer's files already in ``run_dir``."""
    return [n for n in (*RUN_FILES, *RUN_FOLDERS) if (run_dir / n).exists()]


def check_run_dir(run_dir, *, resume: bool, overwrite: bool) -> list[str]:
    """Check ``run_dir`` before a run; return the earlier run's files to clear.

    Nothing is changed here: :func:`clear_earlier_run` removes them (``overwrite``) once
    every other check of the run has passed.

    Raises
    ------
    ConfigError
        ``run_dir`` is a file or cannot be created, holds an earlier run and neither
        ``resume`` nor ``overwrite`` is set, both are set, or ``resume`` finds no
        ``last.pt``.
    """
    run_dir = Path(run_dir)
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run dir {run_dir}: is a file, not a folder")
    found = earlier_run_files(run_dir) if run_dir.is_dir() else []
    if resume:
        if not (run_dir / "last.pt").is_file():
            raise ConfigError(f"--resume: no checkpoint {run_dir / 'last.pt'} to resume from")
        return []
    if found and not overwrite:
        raise ConfigError(f"run dir {run_dir}: holds an earlier run ({', '.join(found)}); "
                          "pass --resume to continue it, --overwrite to replace it, or "
                          "choose another --run-dir")
    return found


def clear_earlier_run(run_dir, found: list[str]) -> None:
    """Remove the earlier run's files (ours only; anything else in the folder stays)."""
    run_dir = Path(run_dir)
    for name in found:
        path = run_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"run dir {run_dir}: cannot be created ({exc.strerror})") from None
