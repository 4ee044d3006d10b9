"""Gather mode: every output pixel is the Gaussian average of its neighbours, with its own sigma.

This is the exact per-pixel model: ``out(p) = sum_q G_{sigma(p)}(q - p) img(q)`` over the
square window ``|q - p| <= ceil(3 sigma(p))``, weights normalised to 1, reflect-101 borders.
It wraps the JIT kernel in :mod:`defocuskit.render._gather_kernels`.
"""

from __future__ import annotations

import numpy as np

from defocuskit.render._common import kernel_radius, pad_planar
from defocuskit.render._gather_kernels import GATHER_SIGNATURE, LANES, gather_kernel
from defocuskit.render._jit import compile_kernel, numba_threads

__all__ = ["blur_gather"]


def blur_gather(img: np.ndarray, sigma: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """Exact spatially varying Gaussian blur (gather); wraps the JIT kernel.

    Parameters
    ----------
    img : (H, W, 3) float32 ndarray
        Image, any range.
    sigma : (H, W) float32 ndarray, pixels
        Clean sigma map (finite, >= 0, clamped; see ``_common.check_sigma``).
    threads : int, optional
        Numba threads; None keeps Numba's default.

    Returns
    -------
    (H, W, 3) float32 ndarray
    """
    H, W = sigma.shape
    compile_kernel(gather_kernel, GATHER_SIGNATURE, slp=True)
    pad = kernel_radius(float(sigma.max()))
    wg = -(-W // LANES) * LANES
    src = pad_planar(img.astype(np.float32, copy=False), pad, extra_right=wg - W)
    sig = np.zeros((H, wg), np.float32)
    sig[:, :W] = sigma
    out = np.empty((3, H, wg), np.float32)
    with numba_threads(threads) as n:
        gather_kernel(src, sig, np.int64(pad), np.int64(n), out)
    return np.ascontiguousarray(out[:, :, :W].transpose(1, 2, 0))
