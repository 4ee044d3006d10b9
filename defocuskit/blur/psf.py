"""Point-spread-function shapes: the Gaussian and the geometric-optics disc.

Both are described by the same per-pixel ``sigma_px``:

``gaussian``
    ``exp(-d^2 / (2 sigma^2))`` truncated at ``|dx|, |dy| <= ceil(3 sigma)`` (a square
    window), normalised to sum 1.
``disc``
    the image of a point through a thin lens: a uniform disc of radius ``r = 2 sigma``
    pixels. A uniform disc of radius r has a per-axis standard deviation of r / 2, so sigma
    = CoC / 4 describes both shapes with the same second moment. Anti-aliased by pixel
    coverage: ``w(d) = clip(r + 0.5 - d, 0, 1)`` with ``d`` the distance of the tap from the
    centre (pixels), normalised to sum 1; its support is ``|dx|, |dy| <= ceil(r - 0.5)``.
    A disc smaller than a pixel (``r < 0.5``) is no blur at all: that pixel is copied (the
    formula itself leaves only the centre tap below that radius, so this is continuous).

This module is the one place for these constants and supports; the kernels import them.
"""

from __future__ import annotations

import math

import numpy as np

from defocuskit.blur._common import kernel_radius

__all__ = ["DISC_MIN_RADIUS_PX", "DISC_RADIUS_PER_SIGMA", "PSFS", "disc_kernel",
           "disc_radius", "support_radius"]

PSFS = ("gaussian", "disc")
DISC_RADIUS_PER_SIGMA = 2.0  # r = 2 sigma: same second moment as the Gaussian
DISC_MIN_RADIUS_PX = 0.5  # a disc smaller than this is no blur


def disc_radius(sigma_px: float) -> int:
    """Half-width of the disc's support, pixels: ``ceil(r - 0.5)``, 0 below the threshold."""
    r = DISC_RADIUS_PER_SIGMA * float(sigma_px)
    return int(math.ceil(r - 0.5)) if r >= DISC_MIN_RADIUS_PX else 0


def support_radius(sigma_px: float, psf: str) -> int:
    """Half-width (pixels) of the square window that holds the PSF of ``sigma_px``."""
    return disc_radius(sigma_px) if psf == "disc" else kernel_radius(sigma_px)


def disc_kernel(sigma_px: float) -> np.ndarray:
    """The normalised disc PSF of ``sigma_px`` as a (2 R + 1, 2 R + 1) float32 array."""
    r = DISC_RADIUS_PER_SIGMA * float(sigma_px)
    R = disc_radius(sigma_px)
    if r < DISC_MIN_RADIUS_PX:
        return np.ones((1, 1), np.float32)
    d = np.hypot(*np.mgrid[-R:R + 1, -R:R + 1].astype(np.float64))
    w = np.clip(r + 0.5 - d, 0.0, 1.0)
    return (w / w.sum()).astype(np.float32)
