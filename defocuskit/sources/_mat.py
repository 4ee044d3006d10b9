"""MATLAB .mat files for the dataset readers: the format version, v5 variables, and v7.3
(HDF5) files opened lazily. Every failure is one :class:`~defocuskit.errors.SourceError`
naming the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from defocuskit.errors import SourceError
from defocuskit.sources._io import _require_file

__all__ = ["mat_version", "load_mat_v5", "LazyH5"]


def mat_version(path: str | os.PathLike) -> str:
    """``"v4"``, ``"v5"`` or ``"v7.3"`` for a MATLAB file; SourceError if it is none of them."""
    from scipy.io.matlab import matfile_version  # SciPy (heavy): only for .mat files

    path = Path(path)
    _require_file(path)
    try:
        major, _minor = matfile_version(str(path))
    except Exception as exc:  # scipy raises several types for non-.mat bytes
        raise SourceError(f"{str(path)!r} is not a MATLAB .mat file (or it is corrupt): "
                          f"{exc}") from exc
    return {0: "v4", 1: "v5", 2: "v7.3"}.get(major, f"unknown ({major})")


def load_mat_v5(path: str | os.PathLike, names: tuple[str, ...]) -> dict[str, Any]:
    """Load the variables ``names`` from a MATLAB v5 .mat file (scipy.io.loadmat).

    Raises SourceError naming the file if it is missing, corrupt, a v7.3 (HDF5) file, or
    lacks one of the variables (the message lists the variables that are there).
    """
    from scipy.io import loadmat, whosmat  # SciPy (heavy): only for .mat files

    path = Path(path)
    version = mat_version(path)
    if version != "v5":
        raise SourceError(f"{str(path)!r} is a MATLAB {version} file; expected MATLAB v5 "
                          "(scipy.io.loadmat readable)")
    try:
        present = [w[0] for w in whosmat(str(path))]
        missing = [n for n in names if n not in present]
        if missing:
            raise SourceError(f"{str(path)!r} lacks the variable(s) {missing}; it holds "
                              f"{present or 'no variables'}")
        return loadmat(str(path), variable_names=list(names))
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(f"{str(path)!r} could not be read as a MATLAB v5 file: {exc}") from exc


class LazyH5:
    """An HDF5 file path that opens read-only on first use, once per process.

    The handle is never pickled: a copy sent to a worker process reopens the file there,
    and a fork that inherits a handle notices the new pid and opens its own.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._handle = None
        self._pid: int | None = None

    def get(self):
        """The open ``h5py.File`` of this process."""
        import h5py  # optional (HDF5 .mat files only)

        if self._handle is None or self._pid != os.getpid():
            try:
                self._handle = h5py.File(self.path, "r")
            except OSError as exc:
                raise SourceError(f"{str(self.path)!r} could not be opened as HDF5 "
                                  f"(MATLAB v7.3): {exc}") from exc
            self._pid = os.getpid()
        return self._handle

    def close(self) -> None:
        """Close this process's handle, if any."""
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle, self._pid = None, None

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.path, self._handle, self._pid = state["path"], None, None
