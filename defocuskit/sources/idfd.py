"""Reader of iDFD, the indoor dataset with *real* defocused captures (Nikon f/2.8 vs f/10).

Layout (folder names matched case-insensitively)::

    <root>/Data/{Raw,Processed}/{inpainting,without_inpainting}/
        All_In_Focus/<Scene>_<k>.{JPG,jpg,png}
        Out_Of_Focus/<Scene>_<k>.{JPG,jpg,png}
        Depth/<Scene>_<k>.{png,PNG}

``<root>`` may also be the ``Data`` folder or one variant folder itself. Extensions mix
case and the indices ``k`` have gaps, so triplets are the intersection of the stems of the
three folders. The defocused image is stored as captured: nothing is synthesised.

The depth PNG scale is not documented. It is detected from the first depth map and
applied to all: 16-bit codes above 255 are millimetres (the Kinect's native unit); 8-bit
codes (or 16-bit ones never above 255) are taken as 0..255 spanning 0..``depth_range_m``
(10 m, the range the dataset paper gives). The rule used is recorded in ``options()`` and
in each ``Sample.meta``; pass ``depth_scale`` (metres per code) to override it.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from defocuskit.errors import ConfigError, SourceError
from defocuskit.pipeline.prepare import check_depth_units
from defocuskit.sources._io import (
    IMAGE_EXTS,
    files_by_stem,
    find_child_dir,
    invalid_to_nan,
    natural_key,
    read_depth_png,
    read_rgb,
)
from defocuskit.sources.base import Sample, Source, file_identity

__all__ = ["IDFDSource", "scene_of", "scene_split"]

_ROLES = ("All_In_Focus", "Out_Of_Focus", "Depth")
_VARIANTS = [f"{p}/{i}" for p in ("processed", "raw") for i in ("inpainting", "without_inpainting")]
_WHERE_TO_GET = ("iDFD is distributed by its authors (Nazir et al., \"iDFD: A Dataset Annotated "
                 "for Depth and Defocus\", SCIA 2023), linked from the 2HDED:NET README")


def scene_of(stem: str) -> str:
    """Scene name of a shot stem: ``"Bedroom_12"`` -> ``"Bedroom"`` (no index: the stem)."""
    head, sep, tail = stem.rpartition("_")
    return head if sep and tail.isdigit() and head else stem


def scene_split(scene: str, test_fraction: float) -> str:
    """``"test"`` if the scene's hash falls below ``test_fraction``, else ``"train"``.

    The hash is the first 32 bits of SHA-256 of the scene name, read as a fraction in
    [0, 1): every shot of a scene lands in the same split, on every machine, and adding
    scenes never moves the existing ones.
    """
    u = int(hashlib.sha256(scene.encode("utf-8")).hexdigest()[:8], 16) / 2**32
    return "test" if u < test_fraction else "train"


class IDFDSource(Source):
    """iDFD triplets (AiF, real defocused image, Kinect depth).

    Parameters
    ----------
    path : path-like
        Dataset root, its ``Data`` folder, or one variant folder.
    variant : str
        One of ``processed/inpainting`` (default), ``processed/without_inpainting``,
        ``raw/inpainting``, ``raw/without_inpainting``.
    test_fraction : float
        Expected fraction of scenes in ``test`` (split by scene hash, see :func:`scene_split`).
    depth_scale : float, optional
        Metres per depth code; None detects it (module docstring).
    depth_range_m : float
        Depth in metres that code 255 stands for in 8-bit maps. Default 10.

    Samples: ``aif`` and ``defocused`` (H, W, 3) uint8, ``depth`` (H, W) float32 metres,
    NaN where the code is 0 (no Kinect return); ids are the file stems.
    """

    name = "idfd"
    description = "iDFD real defocused/AiF/Kinect-depth triplets (no synthesis)"

    def __init__(self, path: str | os.PathLike, *, variant: str = "processed/inpainting",
                 test_fraction: float = 0.2, depth_scale: float | None = None,
                 depth_range_m: float = 10.0):
        if not Path(path).exists():
            raise SourceError(f"idfd: input {str(path)!r} does not exist; {_WHERE_TO_GET}")
        super().__init__(path)
        variant = str(variant).lower().replace("\\", "/")
        if variant not in _VARIANTS:
            raise ConfigError(f"idfd: variant must be one of {_VARIANTS}, got {variant!r}")
        if not 0.0 <= float(test_fraction) <= 1.0:
            raise ConfigError(f"idfd: test_fraction must be in [0, 1], got {test_fraction!r}")
        if depth_scale is not None and not 0 < float(depth_scale) < math.inf:
            raise ConfigError(f"idfd: depth_scale must be a finite number > 0 metres per code, "
                              f"got {depth_scale!r}")
        self.variant, self.test_fraction = variant, float(test_fraction)
        if not 0 < float(depth_range_m) < math.inf:
            raise ConfigError(f"idfd: depth_range_m must be a finite number > 0 metres, got "
                              f"{depth_range_m!r}")
        self.depth_range_m = float(depth_range_m)
        self.root = self._variant_dir()
        dirs = {r: find_child_dir(self.root, r) for r in _ROLES}
        missing = [r for r, d in dirs.items() if d is None]
        if missing:
            raise SourceError(f"idfd: {str(self.root)!r} has no folder(s) {missing}; "
                              f"expected {list(_ROLES)}")
        files = {r: files_by_stem(d, IMAGE_EXTS) for r, d in dirs.items()}
        common = set(files["All_In_Focus"]) & set(files["Out_Of_Focus"]) & set(files["Depth"])
        if not common:
            raise SourceError(f"idfd: no stem appears in all of {list(_ROLES)} under "
                              f"{str(self.root)!r}")
        self._triplets = {s: tuple(files[r][s] for r in _ROLES) for s in common}
        self._ids = {"train": [], "test": []}
        for stem in sorted(common, key=natural_key):
            self._ids[scene_split(scene_of(stem), self.test_fraction)].append(stem)
        self.unpaired = sum(len(f) for f in files.values()) - 3 * len(common)
        self._scale = self._detect_scale(depth_scale)

    def _variant_dir(self) -> Path:
        if find_child_dir(self.path, "All_In_Focus") is not None:
            return self.path
        data = find_child_dir(self.path, "Data") or self.path
        processing, inpainting = self.variant.split("/")
        level1 = find_child_dir(data, processing)
        level2 = None if level1 is None else find_child_dir(level1, inpainting)
        if level2 is None:
            raise SourceError(f"idfd: {str(data)!r} has no {processing}/{inpainting} folder "
                              f"(variant {self.variant!r}); {_WHERE_TO_GET}")
        return level2

    def _detect_scale(self, depth_scale: float | None) -> dict[str, Any]:
        first = self._triplets[self.sample_ids_all()[0]][2]
        raw = read_depth_png(first)
        info = {"png_dtype": str(raw.dtype), "detected_from": first.name}
        if depth_scale is not None:
            return info | {"m_per_code": float(depth_scale), "rule": "given by the user"}
        if raw.dtype == np.uint16 and int(raw.max()) > 255:
            return info | {"m_per_code": 1e-3, "rule": "16-bit codes above 255: millimetres"}
        return info | {"m_per_code": self.depth_range_m / 255.0,
                       "rule": f"8-bit range: code 255 = {self.depth_range_m:g} m (assumed)"}

    def sample_ids_all(self) -> list[str]:
        """Every triplet stem, naturally sorted, whatever its split."""
        return sorted(self._triplets, key=natural_key)

    def splits(self) -> list[str]:
        return ["train", "test"]

    def sample_ids(self, split: str) -> list[str]:
        self._check_split(split)
        return list(self._ids[split])

    def read(self, split: str, index: int) -> Sample:
        """Read triplet ``index`` of ``split`` (AiF, real defocused image, depth in metres)."""
        self._check_split(split)
        ids = self._ids[split]
        self._check_index(split, index, len(ids))
        sid = ids[index]
        aif_path, dfc_path, depth_path = self._triplets[sid]
        aif, defocused = read_rgb(aif_path), read_rgb(dfc_path)
        raw = read_depth_png(depth_path)
        if str(raw.dtype) != self._scale["png_dtype"]:
            raise SourceError(f"idfd: {str(depth_path)!r} is {raw.dtype} but the depth scale was "
                              f"detected on {self._scale['png_dtype']} maps; pass depth_scale")
        sizes = {"All_In_Focus": aif.shape[:2], "Out_Of_Focus": defocused.shape[:2],
                 "Depth": raw.shape}
        if len(set(sizes.values())) != 1:
            raise SourceError(f"idfd: sample {sid!r} has mismatched sizes (H, W): {sizes}")
        depth = invalid_to_nan(raw.astype(np.float32) * np.float32(self._scale["m_per_code"]))
        check_depth_units(depth, f"idfd: {str(depth_path)!r}")
        meta = {"units": "m", "scene": scene_of(sid), "variant": self.variant,
                "depth_scale": dict(self._scale), "real_defocus": True}
        return Sample(sid, aif, depth, defocused=defocused, meta=meta)

    def options(self) -> dict[str, Any]:
        return {"variant": self.variant, "test_fraction": self.test_fraction,
                "split_rule": "sha256(scene)[:32 bits] / 2**32 < test_fraction -> test",
                "depth_scale": dict(self._scale), "depth_range_m": self.depth_range_m}

    def identity(self, *, exclude=(), full: bool = False) -> dict[str, Any]:
        ident = file_identity(self.root, exclude=exclude, full=full)
        ident["triplets"] = len(self._triplets)
        ident["unpaired_files"] = self.unpaired
        return ident
