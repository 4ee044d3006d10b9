"""Scatter mode: each source pixel spreads its own normalised Gaussian PSF; result normalised.

``out(p) = sum_q G_{sigma(q)}(p - q) img(q) / sum_q G_{sigma(q)}(p - q)``: the PSF belongs
to the *source* pixel (003 eq. 9, MDDNet's model), unlike gather where the window belongs
to the output pixel. The two agree for a constant sigma and differ at depth edges, where
neither models occlusion: here a blurred foreground spreads over a sharp background, but
a blurred background spreads over a sharp foreground just as far.
Dividing by the received weight keeps a constant image constant. Wraps the JIT kernels in
:mod:`defocuskit.blur._scatter_kernels`.
"""

from __future__ import annotations

import numpy as np

from defocuskit.blur._common import aligned_zeros, kernel_radius
from defocuskit.blur._jit import compile_kernel, run_threads, thread_count
from defocuskit.blur._scatter_kernels import (
    NORMALISE_SIGNATURE,
    SCATTER_SIGNATURE,
    acc_columns,
    normalise_kernel,
    scatter_rows,
)
from defocuskit.blur.gather import _TINY, pad_planar_fast

__all__ = ["blur_scatter"]


def blur_scatter(img: np.ndarray, sigma: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """Normalised scatter blur; wraps the JIT kernel. Arguments and result as
    :func:`~defocuskit.blur.gather.blur_gather`'s."""
    H, W = sigma.shape
    compile_kernel(scatter_rows, SCATTER_SIGNATURE, simd="slp")
    compile_kernel(normalise_kernel, NORMALISE_SIGNATURE)
    pad = kernel_radius(float(sigma.max()))
    n = thread_count(threads)
    src = pad_planar_fast(img.astype(np.float32, copy=False), pad, threads=n)
    sig = np.ascontiguousarray(np.pad(sigma, pad, mode="reflect")) if pad else sigma
    # first step of each source's weight recurrence, exp(-1 / (2 sigma^2)), by NumPy's SIMD exp
    with np.errstate(divide="ignore", under="ignore"):
        alpha = np.exp(np.float32(-0.5) / np.square(sig))
    alpha[alpha < _TINY] = 0.0
    # rows of a multiple of 8 floats from a 64-byte boundary: the kernel's 8-float vectors
    # from even columns are then 32-byte aligned (faster, the same result)
    acc = aligned_zeros((H, acc_columns(W)))
    out = np.empty((H, W, 3), np.float32)
    run_threads(scatter_rows, n, src, sig, alpha, np.int64(pad), acc)
    normalise_kernel(acc, out)
    return out
