"""Reader of a generic folder of RGB images and depth maps.

Layout, either flat (one split called ``all``, or ``train`` and ``test`` with
``test_fraction`` or ``split_file``)::

    <root>/rgb/<stem>.{png,jpg,jpeg,bmp,tif,tiff}
    <root>/depth/<stem>.png      16-bit PNG, millimetres (0 = invalid)
    <root>/depth/<stem>.npy      float array (H, W), metres (0, negative, inf, NaN = invalid)

or with one sub-folder per split, each holding its own ``rgb/`` and ``depth/``::

    <root>/train/rgb/...  <root>/train/depth/...
    <root>/test/rgb/...   <root>/test/depth/...

Images and depth maps pair by file stem; every image needs a depth map and vice versa,
and both must have the same height and width.

A flat folder is split into ``train`` and ``test`` by the stems alone: with
``test_fraction`` a stem goes to ``test`` when the first 32 bits of the SHA-256 of its
UTF-8 bytes, read as a fraction of 2**32, fall below ``test_fraction`` (:func:`stem_split`),
so the split is the same on every machine and adding or removing files never moves the
others; with ``split_file`` the stems it lists are ``test`` and all others ``train``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from defocuskit.errors import ConfigError, SourceError
from defocuskit.pipeline.prepare import check_depth_units
from defocuskit.sources._io import (
    IMAGE_EXTS,
    files_by_stem,
    invalid_to_nan,
    natural_key,
    read_depth_npy,
    read_depth_png_mm,
    read_rgb,
)
from defocuskit.sources.base import Sample, Source, file_identity
from defocuskit.sources.headers import depth_file_size, frame_size

__all__ = ["FolderSource", "stem_split"]

_DEPTH_EXTS = (".png", ".npy")
SPLIT_RULE = "sha256(stem)[:32 bits] / 2**32 < test_fraction -> test, else train"


def _has_pair_dirs(folder: Path) -> bool:
    return (folder / "rgb").is_dir() and (folder / "depth").is_dir()


def _refuse_half_splits(root: Path) -> None:
    """A split folder with ``rgb/`` but no ``depth/`` (or the reverse) is an error, not a
    split silently left out."""
    for d in sorted(root.iterdir(), key=lambda p: natural_key(p.name)):
        if not d.is_dir():
            continue
        has = {name: (d / name).is_dir() for name in ("rgb", "depth")}
        if has["rgb"] != has["depth"]:
            there, missing = ("rgb", "depth") if has["rgb"] else ("depth", "rgb")
            raise SourceError(f"folder: split folder {str(d)!r} has {there}/ but no "
                              f"{missing}/; add {missing}/ (every image needs its depth map) "
                              "or move the folder out of the input")


def stem_split(stem: str, test_fraction: float) -> str:
    """``"test"`` if the hash of ``stem`` falls below ``test_fraction``, else ``"train"``.

    The hash is the first 32 bits of SHA-256 of the stem's UTF-8 bytes read as a fraction
    in [0, 1): a function of the stem alone, so a stem keeps its split when files are
    added or removed, on every machine.
    """
    u = int(hashlib.sha256(stem.encode("utf-8")).hexdigest()[:8], 16) / 2**32
    return "test" if u < test_fraction else "train"


def _read_split_file(path: Path) -> list[str]:
    """The test stems listed in ``path``: a JSON list (``.json``), else one per line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"folder: split_file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"folder: split_file {str(path)!r} cannot be read ({exc})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"folder: split_file {str(path)!r} is not valid JSON "
                              f"({exc})") from None
        if isinstance(data, dict) and list(data) == ["test"]:
            data = data["test"]
        if not isinstance(data, list) or not all(isinstance(s, str) for s in data):
            raise ConfigError(f"folder: split_file {str(path)!r}: expected a JSON list of "
                              'test stems (or {"test": [...]})')
        return [s.strip() for s in data if s.strip()]
    lines = (ln.strip() for ln in text.splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]


class FolderSource(Source):
    """RGB images with metric depth from a plain folder (layout in the module docstring).

    Parameters
    ----------
    path : path-like
        The root folder.
    test_fraction : float, optional
        Flat folders only: split the pairs into ``train`` and ``test`` by a hash of each
        stem (:func:`stem_split`); the expected share of ``test``, in [0, 1]. ``None``
        (default): one split ``all``.
    split_file : path-like, optional
        Flat folders only: a text file with one test stem per line (blank lines and
        ``#`` comments ignored; a file name such as ``a.png`` stands for its stem), or a
        ``.json`` list of stems; those are ``test``, every other pair ``train``.

    Samples: ``aif`` (H, W, 3) uint8, ``depth`` (H, W) float32 metres (NaN invalid); ids
    are the file stems.
    """

    name = "folder"
    # the files are the user's own: a bad one met mid-run is fixed and the run redone
    # (``defocuskit synth`` then says to rerun with --overwrite; a resume would refuse)
    fixable_input = True
    description = ("generic rgb/ + depth/ folders (16-bit PNG mm or .npy m), optional split "
                   "dirs or a train/test split by stem hash (test_fraction) or list (split_file)")

    def __init__(self, path: str | os.PathLike, *, test_fraction: float | None = None,
                 split_file: str | None = None):
        super().__init__(path)
        if not self.path.is_dir():
            raise SourceError(f"folder: input {str(self.path)!r} is not a folder")
        if test_fraction is not None and split_file is not None:
            raise ConfigError("folder: give test_fraction or split_file, not both")
        if test_fraction is not None and not 0.0 <= float(test_fraction) <= 1.0:
            raise ConfigError(f"folder: test_fraction must be in [0, 1], got {test_fraction!r}")
        self.test_fraction = None if test_fraction is None else float(test_fraction)
        self.split_file = None if split_file is None else Path(split_file)
        flat = _has_pair_dirs(self.path)
        if flat:
            split_dirs = {"all": self.path}
        else:
            found = [d for d in self.path.iterdir() if d.is_dir() and _has_pair_dirs(d)]
            _refuse_half_splits(self.path)
            order = {"train": 0, "val": 1, "test": 2}   # the usual order first, then by name
            found.sort(key=lambda d: (order.get(d.name, 3), natural_key(d.name)))
            split_dirs = {d.name: d for d in found}
        if not split_dirs:
            raise SourceError(f"folder: {str(self.path)!r} has neither rgb/ and depth/ folders "
                              "nor split folders (e.g. train/, test/) that hold them")
        if not flat and (test_fraction is not None or split_file is not None):
            option = "test_fraction" if test_fraction is not None else "split_file"
            raise ConfigError(f"folder: {option} splits a flat rgb/ + depth/ folder, but "
                              f"{str(self.path)!r} already has split folders "
                              f"{list(split_dirs)}; leave {option} out")
        self._pairs: dict[str, list[tuple[str, Path, Path]]] = {}
        for split, d in split_dirs.items():
            rgb = files_by_stem(d / "rgb", IMAGE_EXTS)
            depth = files_by_stem(d / "depth", _DEPTH_EXTS)
            no_depth = sorted(set(rgb) - set(depth), key=natural_key)
            no_rgb = sorted(set(depth) - set(rgb), key=natural_key)
            if no_depth or no_rgb:
                raise SourceError(f"folder: {str(d)!r}: images without a depth map "
                                  f"{no_depth[:5]}, depth maps without an image {no_rgb[:5]}; "
                                  "each rgb/<stem> needs depth/<stem>.png or .npy")
            if not rgb:
                raise SourceError(f"folder: {str(d / 'rgb')!r} holds no images")
            self._pairs[split] = [(s, rgb[s], depth[s]) for s in sorted(rgb, key=natural_key)]
        self._test_listed: list[str] = []
        if flat and (test_fraction is not None or split_file is not None):
            self._pairs = self._split_flat(self._pairs["all"])

    def _split_flat(self, pairs: list[tuple[str, Path, Path]]) -> dict[str, list]:
        """``train`` / ``test`` of a flat folder by stem hash or by the split file."""
        if self.split_file is not None:
            stems = {s for s, _, _ in pairs}
            listed = []
            for entry in _read_split_file(self.split_file):
                stem = entry
                if stem not in stems and Path(entry).suffix.lower() in (*IMAGE_EXTS, ".npy"):
                    stem = Path(entry).stem  # a file name stands for its stem
                listed.append(stem)
            unknown = sorted({s for s in listed if s not in stems}, key=natural_key)
            if unknown:
                raise SourceError(f"folder: split_file {str(self.split_file)!r} lists "
                                  f"{len(unknown)} stem(s) without an image in "
                                  f"{str(self.path / 'rgb')!r}: {unknown[:5]}")
            self._test_listed = sorted(set(listed), key=natural_key)
            test = set(listed)
            which = {s: "test" if s in test else "train" for s, _, _ in pairs}
        else:
            which = {s: stem_split(s, self.test_fraction) for s, _, _ in pairs}
        out = {"train": [p for p in pairs if which[p[0]] == "train"],
               "test": [p for p in pairs if which[p[0]] == "test"]}
        empty = [k for k, v in out.items() if not v]
        how = (f"split_file {str(self.split_file)!r}" if self.split_file is not None
               else f"test_fraction {self.test_fraction:g}")
        if empty and self.split_file is None and 0 < self.test_fraction < 1:
            raise SourceError(f"folder: {how} put none of the {len(pairs)} pairs in "
                              f"{empty[0]!r} (the split is by a hash of each stem); change "
                              "test_fraction or list the test stems in split_file")
        if empty and self.split_file is not None:
            raise SourceError(f"folder: {how} leaves split {empty[0]!r} empty (it lists "
                              f"{len(out['test'])} of the {len(pairs)} stems)")
        return {k: v for k, v in out.items() if v}  # test_fraction 0 or 1: one split

    def splits(self) -> list[str]:
        return list(self._pairs)

    def sample_ids(self, split: str) -> list[str]:
        self._check_split(split)
        return [s for s, _, _ in self._pairs[split]]

    @staticmethod
    def read_depth(path: Path) -> np.ndarray:
        """Depth file as (H, W) float32 metres, NaN invalid (16-bit PNG mm or .npy m)."""
        if path.suffix.lower() == ".npy":
            depth = invalid_to_nan(read_depth_npy(path))
            check_depth_units(depth, f"folder: {str(path)!r} (.npy must be metres)")
            return depth
        depth = read_depth_png_mm(path, what="folder: depth")
        check_depth_units(depth, f"folder: depth {str(path)!r} (16-bit PNG, millimetres)",
                          stored_as="millimetres")
        return depth

    def read(self, split: str, index: int) -> Sample:
        """Read pair ``index`` of ``split``: AiF (H, W, 3) uint8, depth (H, W) float32 metres."""
        self._check_split(split)
        pairs = self._pairs[split]
        self._check_index(split, index, len(pairs))
        sid, rgb_path, depth_path = pairs[index]
        aif = read_rgb(rgb_path)
        depth = self.read_depth(depth_path)
        if depth.shape != aif.shape[:2]:
            raise SourceError(f"folder: sample {sid!r}: image {rgb_path.name} is "
                              f"{aif.shape[0]}x{aif.shape[1]} but depth {depth_path.name} is "
                              f"{depth.shape[0]}x{depth.shape[1]}")
        unit = "mm (16-bit PNG)" if depth_path.suffix.lower() == ".png" else "m (.npy)"
        meta = {"units": "m", "image": rgb_path.name, "depth_file": depth_path.name,
                "stored_depth_unit": unit}
        return Sample(sid, aif, depth, meta=meta)

    def check_frame_sizes(self, split: str, limit: int | None = None, *,
                          same_size: bool = True, strict: bool = True) -> None:
        """Check the frame sizes of the first ``limit`` pairs of ``split`` from the file
        headers, before anything is read in full or written (``defocuskit synth`` calls it).

        ``same_size``: every image of the split must have the first one's size (a split is
        stored at one size; ``--resize`` lifts this). ``strict``: each depth map must also
        be one the reader accepts as far as its header tells (:func:`depth_file_size`: a
        16-bit PNG, a numeric 2-D ``.npy``) and have its image's size, and an unreadable
        file is an error; otherwise such pairs are passed over here (``synth --on-error
        skip`` skips them when it reads them).

        Raises
        ------
        SourceError
            One line naming the first two files that differ and their sizes, or the depth
            file that the reader would refuse and why.
        """
        self._check_split(split)
        first = None
        for sid, rgb_path, depth_path in self._pairs[split][:limit]:
            try:
                size = frame_size(rgb_path)
                dsize = depth_file_size(depth_path, self._rel(depth_path)) if strict else size
            except SourceError:
                if strict:
                    raise
                continue
            if dsize != size:
                raise SourceError(f"folder: sample {sid!r}: image {self._rel(rgb_path)} "
                                  f"is {size[0]}x{size[1]} but depth "
                                  f"{self._rel(depth_path)} is {dsize[0]}x{dsize[1]}")
            if first is None:
                first = (rgb_path, size)
            elif same_size and size != first[1]:
                (h0, w0), (h1, w1) = first[1], size
                raise SourceError(f"folder: images of split {split!r} differ in size: "
                                  f"{self._rel(first[0])} is {h0}x{w0} but "
                                  f"{self._rel(rgb_path)} is {h1}x{w1}; a split is stored at "
                                  "one frame size: use --resize HxW")

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.path).as_posix()
        except ValueError:
            return str(path)

    def options(self) -> dict[str, Any]:
        if "all" in self._pairs and len(self._pairs) == 1:
            layout = "flat"
        elif self.test_fraction is not None:
            layout = "flat, split by stem hash"
        elif self.split_file is not None:
            layout = "flat, split by split_file"
        else:
            layout = "split folders"
        out: dict[str, Any] = {"layout": layout, "depth_png_unit": "mm",
                               "depth_npy_unit": "m", "test_fraction": self.test_fraction,
                               "split_file": None}
        if self.test_fraction is not None:
            out["split_rule"] = SPLIT_RULE
        if self.split_file is not None:
            out["split_file"] = str(self.split_file.resolve())
            out["split_file_sha256"] = hashlib.sha256(self.split_file.read_bytes()).hexdigest()
            out["split_rule"] = "stems listed in split_file -> test, every other -> train"
            out["test_stems"] = list(self._test_listed)
        out["split_sizes"] = {k: len(v) for k, v in self._pairs.items()}
        return out

    def identity(self, *, exclude=(), full: bool = False) -> dict[str, Any]:
        """The folder's listing hash; with a ``split_file`` outside the folder, its content
        is folded into the hash too (a resume then refuses a changed list)."""
        ident = file_identity(self.path, exclude=exclude, full=full)
        if self.split_file is not None:
            sf = file_identity(self.split_file)
            ident["split_file"] = sf
            ident["sha256"] = hashlib.sha256((ident["sha256"] + sf["sha256"]).encode()
                                             ).hexdigest()
            ident["hashed"] += " + split_file content"
        return ident
