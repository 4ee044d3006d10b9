"""Reader of a generic folder of RGB images and depth maps.

Layout, either flat (one split called ``all``)::

    <root>/rgb/<stem>.{png,jpg,jpeg,bmp,tif,tiff}
    <root>/depth/<stem>.png      16-bit PNG, millimetres (0 = invalid)
    <root>/depth/<stem>.npy      float array (H, W), metres (0, negative, inf, NaN = invalid)

or with one sub-folder per split, each holding its own ``rgb/`` and ``depth/``::

    <root>/train/rgb/...  <root>/train/depth/...
    <root>/test/rgb/...   <root>/test/depth/...

Images and depth maps pair by file stem; every image needs a depth map and vice versa,
and both must have the same height and width.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from defocuskit.errors import SourceError
from defocuskit.prepare import check_depth_units
from defocuskit.sources._io import (
    IMAGE_EXTS,
    files_by_stem,
    invalid_to_nan,
    natural_key,
    read_depth_npy,
    read_depth_png_mm,
    read_rgb,
)
from defocuskit.sources.base import Sample, Source

__all__ = ["FolderSource"]

_DEPTH_EXTS = (".png", ".npy")


def _has_pair_dirs(folder: Path) -> bool:
    return (folder / "rgb").is_dir() and (folder / "depth").is_dir()


class FolderSource(Source):
    """RGB images with metric depth from a plain folder (layout in the module docstring).

    Parameters
    ----------
    path : path-like
        The root folder.

    Samples: ``aif`` (H, W, 3) uint8, ``depth`` (H, W) float32 metres (NaN invalid); ids
    are the file stems.
    """

    name = "folder"
    description = "generic rgb/ + depth/ folders (16-bit PNG mm or .npy m), optional split dirs"

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        if not self.path.is_dir():
            raise SourceError(f"folder: input {str(self.path)!r} is not a folder")
        if _has_pair_dirs(self.path):
            split_dirs = {"all": self.path}
        else:
            found = [d for d in self.path.iterdir() if d.is_dir() and _has_pair_dirs(d)]
            order = {"train": 0, "val": 1, "test": 2}   # the usual order first, then by name
            found.sort(key=lambda d: (order.get(d.name, 3), natural_key(d.name)))
            split_dirs = {d.name: d for d in found}
        if not split_dirs:
            raise SourceError(f"folder: {str(self.path)!r} has neither rgb/ and depth/ folders "
                              "nor split folders (e.g. train/, test/) that hold them")
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

    def options(self) -> dict[str, Any]:
        return {"layout": "flat" if list(self._pairs) == ["all"] else "split folders",
                "depth_png_unit": "mm", "depth_npy_unit": "m"}
