"""The common record every reader returns, and the reader base class.

A reader ("source") knows its splits and sample ids up front, reads one sample at a time
and can be pickled to worker processes: it holds paths, never open file handles, and
opens files lazily in whichever process reads.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from defocuskit.errors import SourceError

__all__ = ["Sample", "Source", "validate_sample", "file_identity"]


@dataclass
class Sample:
    """One all-in-focus image with its metric depth.

    Attributes
    ----------
    sample_id : str
        Stable identifier inside the source (file stem, frame index, ...).
    aif : (H, W, 3) uint8 ndarray
        The all-in-focus (sharp) RGB image.
    depth : (H, W) float32 ndarray, metres
        Metric depth; NaN marks invalid pixels.
    defocused : (H, W, 3) uint8 ndarray or None
        A *real* defocused capture of the same scene (iDFD); None for synthetic sources.
    meta : dict
        Plain-JSON metadata (units, original size, scale detected, ...).
    """

    sample_id: str
    aif: np.ndarray
    depth: np.ndarray
    defocused: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        validate_sample(self)


def validate_sample(sample: Sample) -> None:
    """Check shapes, dtypes and units of a :class:`Sample`; raise SourceError if wrong."""
    where = f"sample {sample.sample_id!r}"
    aif = sample.aif
    if not isinstance(aif, np.ndarray) or aif.ndim != 3 or aif.shape[2] != 3:
        raise SourceError(f"{where}: aif must be an (H, W, 3) array, got shape "
                          f"{getattr(aif, 'shape', None)}")
    if aif.dtype != np.uint8:
        raise SourceError(f"{where}: aif must be uint8, got {aif.dtype}")
    depth = sample.depth
    if not isinstance(depth, np.ndarray) or depth.shape != aif.shape[:2]:
        raise SourceError(f"{where}: depth shape {getattr(depth, 'shape', None)} does not "
                          f"match the image size {aif.shape[:2]}")
    if depth.dtype != np.float32:
        raise SourceError(f"{where}: depth must be float32 metres, got {depth.dtype}")
    if sample.defocused is not None and (
        sample.defocused.shape != aif.shape or sample.defocused.dtype != np.uint8
    ):
        raise SourceError(f"{where}: defocused image must match the AiF image "
                          f"({aif.shape} uint8), got {sample.defocused.shape} "
                          f"{sample.defocused.dtype}")


SAMPLE_BYTES = 1024  # the head and the tail of each file in ``sample_sha256``


def _listing(p: Path, exclude) -> list[Path]:
    """Every file below folder ``p`` (sorted), leaving out what ``exclude`` names: pairs
    ``(real path, hidden-sibling prefix)`` of an output that lies inside the input."""
    skip = {Path(os.path.realpath(real)) for real, _ in exclude}
    prefixes = [(Path(os.path.realpath(real)).parent, prefix) for real, prefix in exclude]
    files = []
    for folder, dirs, names in os.walk(p):
        here = Path(folder)
        real_here = Path(os.path.realpath(here))

        def kept(name: str, real_here=real_here) -> bool:
            return (real_here / name not in skip
                    and not any(real_here == parent and name.startswith(prefix)
                                for parent, prefix in prefixes))

        dirs[:] = sorted(d for d in dirs if kept(d))
        files += [here / n for n in names if kept(n) and (here / n).is_file()]
    return sorted(files)


def _hash_file(h, f: Path, size: int, full: bool) -> None:
    """Feed the head and tail (``SAMPLE_BYTES`` each) of ``f``, or all of it, into ``h``."""
    with open(f, "rb") as fh:
        if full:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
            return
        h.update(fh.read(SAMPLE_BYTES))
        if size > SAMPLE_BYTES:
            fh.seek(max(SAMPLE_BYTES, size - SAMPLE_BYTES))
            h.update(fh.read(SAMPLE_BYTES))


def file_identity(path: str | os.PathLike, *, hash_bytes: int = 1 << 24, exclude=(),
                  full: bool = False) -> dict[str, Any]:
    """Identity of an input file or folder for provenance and resume.

    ``sha256``: for a file, SHA-256 of its first ``hash_bytes`` bytes plus its size (a full
    hash of a 2.8 GB .mat would dominate a run); for a folder, the hash of the sorted
    relative paths, sizes and modification times (nanoseconds, as the file system keeps
    them) of every file below it. ``sample_sha256``: the hash of each file's relative path,
    size, first and last KiB (two small reads per file), which also notices a file
    rewritten with the same size and time stamp when its head or tail changed. With
    ``full``, ``full_sha256`` too: every byte of every file (``--strict-resume``).

    ``exclude``: ``(real path, name prefix)`` pairs of an output inside the input folder
    (see :func:`defocuskit.dataset.output.sibling_names`); it and its hidden siblings are left out.
    """
    p = Path(path)
    h, sample = hashlib.sha256(), hashlib.sha256()
    whole = hashlib.sha256() if full else None
    if p.is_file():
        size = p.stat().st_size
        with open(p, "rb") as fh:
            h.update(fh.read(hash_bytes))
        h.update(str(size).encode())
        kind = "file" if size <= hash_bytes else f"file (first {hash_bytes} bytes + size)"
        ident = {"path": str(p.resolve()), "size": size, "sha256": h.hexdigest(),
                 "hashed": kind}
        files = [(p, p.name, size)]
    elif p.is_dir():
        files = []
        for f in _listing(p, exclude):
            st = f.stat()
            rel = f.relative_to(p).as_posix()
            files.append((f, rel, st.st_size))
            h.update(f"{rel}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        ident = {"path": str(p.resolve()), "size": sum(s for _, _, s in files),
                 "sha256": h.hexdigest(),
                 "hashed": "folder listing (relative paths + sizes + mtimes in ns)"}
    else:
        raise SourceError(f"input {str(p)!r} does not exist")
    for f, rel, size in files:
        sample.update(f"{rel}:{size}\n".encode())
        _hash_file(sample, f, size, full=False)
        if whole is not None:
            whole.update(f"{rel}:{size}\n".encode())
            _hash_file(whole, f, size, full=True)
    ident["sample_sha256"] = sample.hexdigest()
    ident["sample_hashed"] = f"each file's path, size, first and last {SAMPLE_BYTES} bytes"
    if whole is not None:
        ident["full_sha256"] = whole.hexdigest()
    return ident


class Source:
    """Base class of dataset readers.

    Subclasses set ``name`` and ``description``, implement :meth:`sample_ids` and
    :meth:`read`, and may override :meth:`identity`. Constructors take the input path
    and keyword options, must check the layout and raise :class:`SourceError` with a
    message naming the missing or bad file, and must not keep open file handles
    (sources are pickled to worker processes).
    """

    name: str = ""
    description: str = ""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise SourceError(f"{self.name}: input {str(self.path)!r} does not exist")

    def splits(self) -> list[str]:
        """Names of the splits this source provides, e.g. ``["train", "test"]``."""
        raise NotImplementedError

    def sample_ids(self, split: str) -> list[str]:
        """Ordered sample ids of ``split``; index ``i`` of this list is read by ``read``."""
        raise NotImplementedError

    def read(self, split: str, index: int) -> Sample:
        """Read sample ``index`` of ``split`` as a :class:`Sample`."""
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """The reader's resolved options (plain JSON), stored with the dataset."""
        return {}

    def identity(self, *, exclude=(), full: bool = False) -> dict[str, Any]:
        """Provenance of the input: path, size, content hashes (see :func:`file_identity`;
        ``exclude`` and ``full`` are passed on to it)."""
        return file_identity(self.path, exclude=exclude, full=full)

    def _check_split(self, split: str) -> None:
        if split not in self.splits():
            raise SourceError(f"{self.name}: unknown split {split!r}; "
                              f"this source has {self.splits()}")

    def _check_index(self, split: str, index: int, n: int) -> None:
        """Raise SourceError unless ``0 <= index < n`` (after :meth:`_check_split`)."""
        if not 0 <= index < n:
            raise SourceError(f"{self.name}: index {index} out of range for split {split!r} "
                              f"({n} samples)")
