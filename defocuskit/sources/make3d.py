"""Reader of the Make3D laser-depth dataset (Train400 / Test134).

Expected layout under the input folder (the folders the official archives unpack to)::

    <root>/Train400Img/img-<name>.jpg             train images
    <root>/Train400Depth/depth_sph_corr-<name>.mat train depth (MATLAB v5)
    <root>/Test134/img-<name>.jpg                 test images   (also accepted: Test134Img/)
    <root>/Gridlaserdata/depth_sph_corr-<name>.mat test depth   (also accepted: Test134Depth/)

Either split may be absent, not both. Images and depth files pair by ``<name>``; files
without a partner are skipped and counted in :meth:`Make3DSource.identity`.

Each depth file holds ``Position3DGrid``, a (55, 305, 4) grid whose channel 3 is the
laser depth in metres (channel 2 is a projective depth: not used). Grid rows map to image
rows and grid columns to image columns, so the grid is stretched with a separate factor
per axis. Laser returns above ``max_depth`` (81.9 m) are invalid.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from defocuskit.errors import ConfigError, SourceError
from defocuskit.pipeline.prepare import check_depth_units, resize_depth_nearest, resize_image
from defocuskit.sources._io import (
    files_by_stem,
    find_child_dir,
    invalid_to_nan,
    natural_key,
    read_rgb,
)
from defocuskit.sources._mat import load_mat_v5
from defocuskit.sources.base import Sample, Source, file_identity

__all__ = ["Make3DSource", "MAKE3D_LAYOUT"]

# split -> (candidate image folders, candidate depth folders)
MAKE3D_LAYOUT = {
    "train": (("Train400Img",), ("Train400Depth",)),
    "test": (("Test134", "Test134Img"), ("Gridlaserdata", "Test134Depth")),
}
_IMG_PREFIX, _DEPTH_PREFIX = "img-", "depth_sph_corr-"
_WHERE_TO_GET = "download Train400/Test134 from http://make3d.cs.cornell.edu/data.html"


def _first_dir(root: Path, names: tuple[str, ...]) -> Path | None:
    for n in names:
        d = find_child_dir(root, n)
        if d is not None:
            return d
    return None


class Make3DSource(Source):
    """Make3D images with laser depth, resized to one fixed size.

    Parameters
    ----------
    path : path-like
        The folder holding the split folders (see the module docstring).
    size : (int, int) or None
        Output (H, W) in pixels; default (460, 345), the 2272 x 1704 frame scaled by ~0.2.
        The image is area-resized to it and the depth grid is stretched straight onto it.
        None keeps each image's own grid.
    max_depth : float
        Depth above this (metres) is invalid (NaN). Default 81.9.

    Samples: ``aif`` (H, W, 3) uint8, ``depth`` (H, W) float32 metres (NaN invalid); ids
    are the ``<name>`` part of the file names.
    """

    name = "make3d"
    description = "Make3D Train400/Test134 laser depth (Position3DGrid ch. 3, metres)"

    def __init__(self, path: str | os.PathLike, *, size=(460, 345), max_depth: float = 81.9):
        if not Path(path).exists():
            raise SourceError(f"make3d: input {str(path)!r} does not exist; {_WHERE_TO_GET}")
        super().__init__(path)
        if size is not None:
            try:
                size = tuple(int(v) for v in size)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"make3d: size must be (H, W) or None, got {size!r}") from exc
            if len(size) != 2 or min(size) < 1:
                raise ConfigError(f"make3d: size must be (H, W) with positive sizes, got {size!r}")
        if not 0 < float(max_depth) < math.inf:
            raise ConfigError(f"make3d: max_depth must be a finite number > 0 metres, got "
                              f"{max_depth!r}")
        self.size = size
        self.max_depth = float(max_depth)
        self._pairs: dict[str, list[tuple[str, Path, Path]]] = {}
        self._unpaired: dict[str, int] = {}
        for split, (img_names, depth_names) in MAKE3D_LAYOUT.items():
            img_dir = _first_dir(self.path, img_names)
            depth_dir = _first_dir(self.path, depth_names)
            if img_dir is None and depth_dir is None:
                continue
            if img_dir is None or depth_dir is None:
                need = img_names if img_dir is None else depth_names
                raise SourceError(f"make3d: {split} split is incomplete: {str(self.path)!r} has "
                                  f"no folder {' or '.join(need)}; {_WHERE_TO_GET}")
            imgs = files_by_stem(img_dir, (".jpg", ".jpeg", ".png"), prefix=_IMG_PREFIX)
            deps = files_by_stem(depth_dir, (".mat",), prefix=_DEPTH_PREFIX)
            common = sorted(set(imgs) & set(deps), key=natural_key)
            if not common:
                raise SourceError(f"make3d: no {_IMG_PREFIX}<name> image in {str(img_dir)!r} "
                                  f"has a {_DEPTH_PREFIX}<name>.mat partner in {str(depth_dir)!r}")
            self._pairs[split] = [(s, imgs[s], deps[s]) for s in common]
            self._unpaired[split] = len(imgs) + len(deps) - 2 * len(common)
        if not self._pairs:
            raise SourceError(f"make3d: {str(self.path)!r} holds neither Train400Img/Train400Depth "
                              f"nor Test134/Gridlaserdata; {_WHERE_TO_GET}")

    def splits(self) -> list[str]:
        return list(self._pairs)

    def sample_ids(self, split: str) -> list[str]:
        self._check_split(split)
        return [s for s, _, _ in self._pairs[split]]

    def read_depth_grid(self, path: Path) -> np.ndarray:
        """The (55, 305) laser depth grid of one file, float32 metres, NaN invalid."""
        grid = np.asarray(load_mat_v5(path, ("Position3DGrid",))["Position3DGrid"])
        if grid.ndim != 3 or grid.shape[2] < 4:
            raise SourceError(f"make3d: {str(path)!r}: Position3DGrid must be (rows, cols, 4), "
                              f"got shape {grid.shape}")
        depth = invalid_to_nan(grid[:, :, 3])
        # Check the units before the max_depth cut, which would blank a millimetre grid.
        check_depth_units(depth, f"make3d: {str(path)!r}")
        depth[depth > self.max_depth] = np.nan
        return depth

    def read(self, split: str, index: int) -> Sample:
        """Read pair ``index`` of ``split``: AiF (H, W, 3) uint8, depth (H, W) float32 metres."""
        self._check_split(split)
        pairs = self._pairs[split]
        self._check_index(split, index, len(pairs))
        sid, img_path, depth_path = pairs[index]
        aif = read_rgb(img_path)
        grid = self.read_depth_grid(depth_path)
        original = list(aif.shape[:2])
        out_size = self.size or aif.shape[:2]
        aif = resize_image(aif, out_size)
        depth = resize_depth_nearest(grid, out_size)
        meta = {"units": "m", "image": img_path.name, "depth_file": depth_path.name,
                "original_size": original, "depth_grid": list(grid.shape),
                "max_depth_m": self.max_depth}
        return Sample(sid, aif, depth, meta=meta)

    def options(self) -> dict[str, Any]:
        return {"size": list(self.size) if self.size else None, "max_depth": self.max_depth,
                "depth_channel": 3, "depth_resample": "nearest (pixel centres, rows to rows)"}

    def identity(self, *, exclude=(), full: bool = False) -> dict[str, Any]:
        ident = file_identity(self.path, exclude=exclude, full=full)
        ident["pairs"] = {s: len(p) for s, p in self._pairs.items()}
        ident["unpaired_files"] = dict(self._unpaired)
        return ident
