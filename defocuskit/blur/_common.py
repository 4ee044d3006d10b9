"""Shared helpers of the render modes: input validation, sigma clean-up, padding, sRGB.

Policies (documented once, used by every mode):

* sigma is in pixels. NaN sigma means "no blur" (the pixel is copied through, as for an
  invalid depth); sigma above :data:`SIGMA_MAX_PX` is clamped to it; a negative or
  ``-inf`` sigma is an error.
* Images are H x W x 3, uint8 (0..255) or float32 (any range; [0, 1] for linear light).
* Borders are reflect-101 (``cv2.BORDER_REFLECT_101``, ``numpy.pad(mode="reflect")``).
"""

from __future__ import annotations

import math

import numpy as np

from defocuskit.errors import ConfigError

__all__ = [
    "SIGMA_MAX_PX", "RenderInputError", "aligned_zeros", "check_image", "check_sigma",
    "kernel_radius", "round_up",
    "pad_planar", "srgb_to_linear", "linear_to_srgb",
]

SIGMA_MAX_PX = 32.0  # kernel radius ceil(3 sigma) <= 96 px


class RenderInputError(ConfigError, ValueError):
    """Bad image, sigma or depth given to :func:`defocuskit.render`."""


def kernel_radius(sigma_px: float) -> int:
    """Half-width ``ceil(3 sigma)`` of the truncated Gaussian, pixels."""
    return int(math.ceil(3.0 * float(sigma_px)))


def check_image(aif) -> np.ndarray:
    """Validate an H x W x 3 uint8/float32 image; returns it as an ndarray."""
    if not isinstance(aif, np.ndarray):
        raise RenderInputError(f"render: aif must be a numpy array, got {type(aif).__name__}")
    if aif.ndim != 3 or aif.shape[2] != 3:
        raise RenderInputError(f"render: aif must have shape (H, W, 3), got {aif.shape}")
    if aif.dtype not in (np.uint8, np.float32):
        raise RenderInputError(f"render: aif dtype must be uint8 or float32, got {aif.dtype}")
    if aif.shape[0] == 0 or aif.shape[1] == 0:
        raise RenderInputError(f"render: aif is empty, shape {aif.shape}")
    return aif


def check_sigma(sigma_px, shape: tuple[int, int]) -> np.ndarray:
    """Validate sigma (pixels) against image ``shape``; returns a clean float32 copy.

    NaN becomes 0, values above SIGMA_MAX_PX (including +inf) are clamped.
    """
    s = np.asarray(sigma_px)
    if s.shape != tuple(shape):
        raise RenderInputError(
            f"render: sigma_px must have shape {tuple(shape)} (H, W of aif), got {s.shape}"
        )
    if not np.issubdtype(s.dtype, np.floating):
        raise RenderInputError(f"render: sigma_px must be a float array (pixels), got {s.dtype}")
    s = s.astype(np.float32, copy=True)
    if np.any(s < 0):
        raise RenderInputError(
            f"render: sigma_px must be >= 0 pixels, got a minimum of {np.nanmin(s):g}"
        )
    np.nan_to_num(s, copy=False, nan=0.0, posinf=SIGMA_MAX_PX)
    np.minimum(s, np.float32(SIGMA_MAX_PX), out=s)
    return s


def round_up(n: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is >= ``n``."""
    return -(-n // multiple) * multiple


def aligned_zeros(shape: tuple[int, ...], dtype=np.float32, align: int = 64) -> np.ndarray:
    """A zeroed C-contiguous array whose first item sits at a multiple of ``align`` bytes
    (a view into a slightly larger buffer: NumPy itself only promises 16 bytes)."""
    dtype = np.dtype(dtype)
    n = math.prod(shape)
    buf = np.zeros(n * dtype.itemsize + align, np.uint8)
    off = -buf.ctypes.data % align
    return buf[off:off + n * dtype.itemsize].view(dtype).reshape(shape)


def pad_planar(img_hw3: np.ndarray, pad: int, extra_right: int = 0) -> np.ndarray:
    """(H, W, 3) float32 -> planar (3, H + 2 pad, W + 2 pad + extra_right), reflect-101."""
    planar = np.ascontiguousarray(img_hw3.transpose(2, 0, 1))
    return np.pad(planar, ((0, 0), (pad, pad), (pad, pad + extra_right)), mode="reflect")


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] -> linear light (IEC 61966-2-1), float32."""
    x = np.clip(x, 0.0, 1.0, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] -> sRGB-encoded values, float32."""
    x = np.clip(x, 0.0, 1.0, dtype=np.float32)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)
