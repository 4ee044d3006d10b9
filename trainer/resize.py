"""Whole-frame resizing for the official 2HDED:NET protocol (frames resized to 256 x 256).

Images are resampled bilinearly, with a triangle filter widened by the scale factor when
shrinking (``antialias=True``: an area-like average instead of aliasing). Depth must not
mix invalid (NaN) pixels into valid ones, and a placeholder such as 0 must not leak in
either: :func:`resize_depth` resamples ``depth * mask`` and ``mask`` with the same filter
and divides, so each output pixel is a weighted mean of *valid* input depths only, and it
is invalid where less than :data:`MIN_VALID_WEIGHT` of its filter weight fell on valid
pixels. All filter weights are non-negative, so a resized depth never leaves the range of
the depths it averages, and a constant depth stays exactly constant.

Resizing a defocused image after blurring scales the blur with it: a sigma of s pixels
becomes ``s * new_width / old_width`` horizontally and ``s * new_height / old_height``
vertically (see docs/trainer.md).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["resize_image", "resize_depth", "MIN_VALID_WEIGHT"]

# an output depth pixel is valid when at least this share of its filter weight is valid
MIN_VALID_WEIGHT = 0.5


def _check_size(size) -> tuple[int, int]:
    h, w = (int(v) for v in size)
    if h <= 0 or w <= 0:
        raise ValueError(f"resize: expected a positive (height, width), got {tuple(size)}")
    return h, w


def _resample(planes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, h, w) float -> (C, H, W), bilinear with antialiasing when shrinking."""
    out = F.interpolate(planes[None], size=size, mode="bilinear", align_corners=False,
                        antialias=True)
    return out[0]


def resize_image(image: np.ndarray, size) -> np.ndarray:
    """Resize an RGB image bilinearly (area-like averaging when shrinking).

    Parameters
    ----------
    image : (h, w, 3) uint8 ndarray
    size : (H, W) ints
        Output height and width, pixels.

    Returns
    -------
    (H, W, 3) uint8 ndarray
        Rounded to the nearest integer.
    """
    h, w = _check_size(size)
    if image.shape[:2] == (h, w):
        return image
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
    out = _resample(t, (h, w)).round_().clamp_(0, 255).to(torch.uint8)
    return out.permute(1, 2, 0).contiguous().numpy()


def resize_depth(depth: np.ndarray, size, *, min_valid_weight: float = MIN_VALID_WEIGHT
                 ) -> np.ndarray:
    """Resize a depth map without mixing invalid pixels into valid ones.

    Parameters
    ----------
    depth : (h, w) float ndarray, metres
        Non-finite values (NaN) mark invalid pixels.
    size : (H, W) ints
        Output height and width, pixels.
    min_valid_weight : float
        An output pixel is valid when at least this share of its filter weight falls on
        valid input pixels (default :data:`MIN_VALID_WEIGHT`).

    Returns
    -------
    (H, W) float32 ndarray, metres
        The filter-weighted mean of the valid depths under each output pixel (computed in
        float64), NaN where too little of it was valid.
    """
    h, w = _check_size(size)
    if depth.shape == (h, w):
        return depth.astype(np.float32, copy=False)
    valid = np.isfinite(depth)
    planes = np.stack([np.where(valid, depth, 0.0), valid]).astype(np.float64)
    num, den = _resample(torch.from_numpy(planes), (h, w)).numpy()
    ok = den >= min_valid_weight
    out = np.full((h, w), np.nan, np.float32)
    out[ok] = (num[ok] / den[ok]).astype(np.float32)
    return out
