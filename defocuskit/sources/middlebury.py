"""Reader for the Middlebury 2014 "Motorcycle" pair that scikit-image ships (no download).

The left view is a sharp (all-in-focus) photograph; its disparity map, with the published
calibration, gives metric depth ``Z = f * B / (d + doffs)``.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np

from defocuskit.errors import SourceError
from defocuskit.sources.base import Sample, Source

__all__ = ["MiddleburySource", "MOTORCYCLE_CALIB", "disparity_to_depth"]

# Middlebury 2014 Motorcycle (calib.txt): focal length and principal-point offset between
# the two cameras in pixels, baseline in millimetres.
MOTORCYCLE_CALIB = {"focal_px": 994.978, "doffs_px": 31.086, "baseline_mm": 193.001}


def disparity_to_depth(disparity: np.ndarray, *, focal_px: float, baseline_m: float,
                       doffs_px: float) -> np.ndarray:
    """Convert a disparity map to metric depth.

    Parameters
    ----------
    disparity : (H, W) float ndarray, pixels
        Non-finite values (the ``inf`` Middlebury uses) mark unknown pixels.
    focal_px : float, pixels
    baseline_m : float, metres
    doffs_px : float, pixels
        x-difference of the two principal points.

    Returns
    -------
    depth : (H, W) float32 ndarray, metres; NaN where the disparity is not finite.
    """
    disp = np.asarray(disparity, dtype=np.float64)
    valid = np.isfinite(disp)
    depth = np.full(disp.shape, np.nan, dtype=np.float64)
    depth[valid] = focal_px * baseline_m / (disp[valid] + doffs_px)
    return depth.astype(np.float32)


def _load_motorcycle():
    try:
        import skimage  # scikit-image: optional, and slow to import
        from skimage import data
    except ImportError as exc:
        raise SourceError("middlebury: the Motorcycle pair comes with scikit-image, which is "
                          "not installed; run `pip install scikit-image`") from exc
    left, _right, disparity = data.stereo_motorcycle()
    return left, disparity, skimage.__version__


class MiddleburySource(Source):
    """The Middlebury 2014 Motorcycle scene: one real AiF image with metric depth.

    Parameters
    ----------
    path : None, "", "-", "middlebury" or "skimage"
        Where the data come from; only scikit-image's bundled copy is supported, so the
        input may be left out.

    Notes
    -----
    One split, ``test``, with one sample, ``motorcycle``: ``aif`` (500, 741, 3) uint8 RGB
    (the left view) and ``depth`` (500, 741) float32 metres (about 2.1-5.0 m), NaN where the
    disparity is ``inf`` (no ground truth).
    """

    name = "middlebury"
    description = ("Middlebury 2014 Motorcycle (bundled with scikit-image; real AiF + depth; "
                   "no --input)")

    def __init__(self, path: str | os.PathLike | None = None):
        if path is not None and str(path) not in ("skimage", "", "-", "middlebury"):
            raise SourceError(f"middlebury: input must be 'skimage' (the copy bundled with "
                              f"scikit-image) or left out, got {str(path)!r}")
        self.path = "skimage"  # not a filesystem path: the base-class existence check is moot

    def splits(self) -> list[str]:
        return ["test"]

    def sample_ids(self, split: str) -> list[str]:
        self._check_split(split)
        return ["motorcycle"]

    def read(self, split: str, index: int) -> Sample:
        ids = self.sample_ids(split)
        if not 0 <= index < len(ids):
            raise SourceError(f"middlebury: index {index} out of range for split {split!r} "
                              f"({len(ids)} sample)")
        left, disparity, version = _load_motorcycle()
        c = MOTORCYCLE_CALIB
        depth = disparity_to_depth(disparity, focal_px=c["focal_px"],
                                   baseline_m=c["baseline_mm"] / 1000.0, doffs_px=c["doffs_px"])
        meta: dict[str, Any] = {
            "source": self.name, "scene": "Middlebury 2014 Motorcycle (left view)",
            "units": {"depth": "metres", "invalid": "NaN (disparity inf)"},
            "calibration": dict(c), "depth_formula": "Z = focal_px * baseline / (disp + doffs_px)",
            "original_size": list(left.shape[:2]), "scikit_image": version,
            "invalid_pixels": int(np.isnan(depth).sum()),
        }
        return Sample(sample_id=ids[index], aif=np.ascontiguousarray(left, dtype=np.uint8),
                      depth=depth, meta=meta)

    def identity(self, *, exclude=(), full: bool = False) -> dict[str, Any]:
        """Provenance: scikit-image version and SHA-256 of the image and disparity arrays
        (every byte: ``full`` adds nothing; there is no folder to ``exclude`` from)."""
        left, disparity, version = _load_motorcycle()
        h = hashlib.sha256()
        for arr in (left, disparity):
            arr = np.ascontiguousarray(arr)
            h.update(f"{arr.dtype.str}{arr.shape}".encode())
            h.update(arr.tobytes())
        return {"path": "skimage.data.stereo_motorcycle()", "scikit_image": version,
                "size": int(left.nbytes + disparity.nbytes), "sha256": h.hexdigest(),
                "hashed": "left image + disparity arrays (dtype, shape, bytes)"}
