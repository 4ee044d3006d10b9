"""Gather and scatter with the disc PSF (uniform disc of radius 2 sigma, anti-aliased).

The same two models as :mod:`defocuskit.blur.gather` and :mod:`defocuskit.blur.scatter`,
with the PSF of :mod:`defocuskit.blur.psf` instead of the Gaussian: gather averages each
output pixel's neighbourhood under the pixel's own disc; scatter spreads every source
pixel's own normalised disc and divides by the weight received. Reflect-101 borders.
Wraps the JIT kernels in :mod:`defocuskit.blur._disc_kernels`.
"""

from __future__ import annotations

import numpy as np

from defocuskit.blur._disc_kernels import (
    DISC_FINISH_SIGNATURE,
    DISC_GATHER_SIGNATURE,
    DISC_NORM_SIGNATURE,
    DISC_SCATTER_SIGNATURE,
    disc_finish_rows,
    disc_gather_rows,
    disc_norm_rows,
    disc_scatter_rows,
)
from defocuskit.blur._jit import compile_kernel, run_threads, thread_count
from defocuskit.blur.gather import pad_planar_fast
from defocuskit.blur.psf import disc_radius

__all__ = ["blur_gather_disc", "blur_scatter_disc"]


def blur_gather_disc(img: np.ndarray, sigma: np.ndarray, *,
                     threads: int | None = None) -> np.ndarray:
    """Spatially varying disc blur, gather model; wraps the JIT kernel. Arguments and
    result as :func:`~defocuskit.blur.gather.blur_gather`'s; the disc radius is ``2 sigma``.
    """
    compile_kernel(disc_gather_rows, DISC_GATHER_SIGNATURE)
    pad = disc_radius(float(sigma.max()))
    n = thread_count(threads)
    src = pad_planar_fast(img.astype(np.float32, copy=False), pad, threads=n)
    csum = np.zeros(src.shape[:2] + (src.shape[2] + 1,), np.float64)
    np.cumsum(src, axis=2, dtype=np.float64, out=csum[:, :, 1:])
    out = np.empty(img.shape, np.float32)
    run_threads(disc_gather_rows, n, src, csum, np.ascontiguousarray(sigma, dtype=np.float32),
                np.int64(pad), out)
    return out


def blur_scatter_disc(img: np.ndarray, sigma: np.ndarray, *,
                      threads: int | None = None) -> np.ndarray:
    """Normalised disc scatter; wraps the JIT kernels. Arguments and result as
    :func:`~defocuskit.blur.gather.blur_gather`'s; the disc radius is ``2 sigma``."""
    H, W = sigma.shape
    for kernel, signature in ((disc_norm_rows, DISC_NORM_SIGNATURE),
                              (disc_scatter_rows, DISC_SCATTER_SIGNATURE),
                              (disc_finish_rows, DISC_FINISH_SIGNATURE)):
        compile_kernel(kernel, signature)
    pad = disc_radius(float(sigma.max()))
    n = thread_count(threads)
    src = pad_planar_fast(img.astype(np.float32, copy=False), pad, threads=n)
    sig = np.ascontiguousarray(np.pad(sigma, pad, mode="reflect") if pad else sigma,
                               dtype=np.float32)
    inv = np.empty(sig.shape, np.float64)
    acc = np.zeros((H, W, 4), np.float64)
    diff = np.zeros((H, W + 1, 4), np.float64)
    out = np.empty((H, W, 3), np.float32)
    run_threads(disc_norm_rows, n, sig, inv)
    run_threads(disc_scatter_rows, n, src, sig, inv, np.int64(pad), acc, diff)
    run_threads(disc_finish_rows, n, acc, diff, out)
    return out
