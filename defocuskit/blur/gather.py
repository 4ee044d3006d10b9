"""Gather mode: every output pixel is the Gaussian average of its neighbours, with its own sigma.

``out(p) = sum_q G_{sigma(p)}(q - p) img(q)`` over the square window
``|q - p| <= ceil(3 sigma(p))``, weights normalised to 1, reflect-101 borders, computed
exactly (no approximation of this sum). For a constant sigma it is the convolution with the
PSF; at a depth edge it is no model of occlusion: a sharp pixel never receives light from a
blurred neighbour (a blurred foreground keeps a hard outline), and a blurred pixel averages
in its sharp neighbours (a sharp foreground leaks into the blurred background behind it).
It wraps the JIT kernels in :mod:`defocuskit.blur._gather_kernels`.
"""

from __future__ import annotations

import numpy as np

from defocuskit.blur._common import kernel_radius
from defocuskit.blur._gather_kernels import (
    GATHER_SIGNATURE,
    LANES,
    PAD_SIGNATURE,
    gather_rows,
    pad_planar_rows,
)
from defocuskit.blur._jit import JIT_DISABLED, compile_kernel, run_threads, thread_count

__all__ = ["blur_gather", "pad_planar_fast"]

_TINY = np.float32(1e-18)  # same flush threshold as the kernel's recurrence


def pad_planar_fast(img: np.ndarray, pad: int, extra_right: int = 0,
                    extra_bottom: int = 0, *, threads: int | None = None) -> np.ndarray:
    """:func:`~defocuskit.blur._common.pad_planar` in one JIT pass (same result).

    ``extra_bottom`` more rows continue the reflection at the bottom.
    """
    H, W, _ = img.shape
    if JIT_DISABLED or pad + extra_bottom >= H or pad + extra_right >= W:
        # several reflections per side: NumPy's reflect padding does them
        planar = np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)
        return np.pad(planar, ((0, 0), (pad, pad + extra_bottom), (pad, pad + extra_right)),
                      mode="reflect")
    compile_kernel(pad_planar_rows, PAD_SIGNATURE)
    out = np.empty((3, H + 2 * pad + extra_bottom, W + 2 * pad + extra_right), np.float32)
    run_threads(pad_planar_rows, thread_count(threads),
                np.ascontiguousarray(img, dtype=np.float32), np.int64(pad), out)
    return out


def blur_gather(img: np.ndarray, sigma: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """Spatially varying Gaussian blur, each pixel with its own sigma (gather); wraps the JIT
    kernel.

    Parameters
    ----------
    img : (H, W, 3) float32 ndarray
        Image, any range.
    sigma : (H, W) float32 ndarray, pixels
        Clean sigma map (finite, >= 0, clamped; see ``_common.check_sigma``).
    threads : int, optional
        Threads to split the rows into; None: Numba's thread count.

    Returns
    -------
    (H, W, 3) float32 ndarray
    """
    H, W = sigma.shape
    compile_kernel(gather_rows, GATHER_SIGNATURE, simd="slp+loop")
    pad = kernel_radius(float(sigma.max()))
    wg = -(-W // LANES) * LANES  # whole lane groups
    hs = H + H % 2  # whole row pairs
    n = thread_count(threads)
    src = pad_planar_fast(img.astype(np.float32, copy=False), pad, extra_right=wg - W,
                          extra_bottom=hs - H, threads=n)
    if wg == W and hs == H:
        sig = np.ascontiguousarray(sigma, dtype=np.float32)
    else:
        sig = np.zeros((hs, wg), np.float32)
        sig[:H, :W] = sigma
    # first step of each pixel's weight recurrence, exp(-1 / (2 sigma^2)), by NumPy's SIMD exp
    with np.errstate(divide="ignore", under="ignore"):
        alpha = np.exp(np.float32(-0.5) / np.square(sig))
    alpha[alpha < _TINY] = 0.0
    out = np.empty((H, W, 3), np.float32)
    run_threads(gather_rows, n, src, sig, alpha, np.int64(pad), out)
    return out
