"""The two spatially varying deconvolutions: per pixel (the reference) and by sigma levels.

``per-pixel`` (Anwar et al., "Deblur and Deep Depth from Single Defocus Image", sec. 4)
    every pixel is deconvolved from the P x P patch (P = 25) of the blurred image around it
    with the PSF of its own sigma: :mod:`defocuskit.deblur.hqs`'s problem on the patch, with
    the patch mirrored at its edges. Wraps the JIT kernel of
    :mod:`defocuskit.deblur._kernels`.
``levels``
    the whole image is deconvolved at a ladder of constant sigmas ``0, step, 2 step, ...``
    up to the largest sigma present (only the levels some pixel needs), and each pixel
    interpolates linearly between the two levels around its sigma (level 0 is the input).
"""

from __future__ import annotations

import math

import numpy as np

from defocuskit.blur._jit import compile_kernel, run_threads, thread_count
from defocuskit.blur.psf import support_radius
from defocuskit.deblur._kernels import PATCH_SIGNATURE, patch_rows
from defocuskit.deblur.hqs import (
    ALPHA,
    LAMBDA,
    betas,
    deconvolve_constant,
    laplacian_spectrum,
    table_range,
    w_table,
)

__all__ = ["LEVEL_STEP_PX", "PATCH_PX", "deconvolve_levels", "deconvolve_per_pixel",
           "sigma_levels"]

PATCH_PX = 25  # Anwar et al.'s patch side
LEVEL_STEP_PX = 0.5  # sigma spacing of the levels; 1 px gave the same PSNR (docs/deconvolution.md)


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix: ``C[u, i] = a_u cos(pi u (i + 1/2) / n)``."""
    u = np.arange(n)[:, None]
    c = np.cos(np.pi * u * (np.arange(n)[None, :] + 0.5) / n) * math.sqrt(2.0 / n)
    c[0] /= math.sqrt(2.0)
    return np.ascontiguousarray(c)


def deconvolve_per_pixel(y: np.ndarray, sigma: np.ndarray, psf: str, *, lam: float = LAMBDA,
                         alpha: float = ALPHA, patch: int = PATCH_PX,
                         threads: int | None = None) -> np.ndarray:
    """Per-pixel deconvolution of (H, W, 3) float64 ``y`` with the (H, W) sigma map, pixels.

    Wraps the JIT kernel; returns (H, W, 3) float64.
    """
    compile_kernel(patch_rows, PATCH_SIGNATURE, simd="slp+loop")
    h = patch // 2
    # reflect-101, the renderer's border (NumPy repeats the reflection past a small image)
    src = np.ascontiguousarray(np.pad(y, ((h, h), (h, h), (0, 0)), mode="reflect"))
    bl = betas()
    vmax = table_range(y)
    tables = w_table(vmax, alpha).copy()  # the kernel takes writeable arrays
    dmax = support_radius(float(sigma.max()), psf)
    cos = np.ascontiguousarray(np.cos(np.pi * np.outer(np.arange(patch), np.arange(dmax + 1))
                                      / patch))
    lap = np.ascontiguousarray(laplacian_spectrum((patch, patch)))
    out = np.empty(y.shape, np.float64)
    run_threads(patch_rows, thread_count(threads), src,
                np.ascontiguousarray(sigma, dtype=np.float64), np.int64(psf == "disc"),
                float(lam), bl, tables, vmax, float(alpha), _dct_matrix(patch), cos, lap, out)
    return out


def sigma_levels(sigma_max: float, step: float) -> np.ndarray:
    """``0, step, 2 step, ...`` up to the first level >= ``sigma_max``."""
    return np.arange(int(math.ceil(sigma_max / step - 1e-9)) + 1) * step


def deconvolve_levels(y: np.ndarray, sigma: np.ndarray, psf: str, *, lam: float = LAMBDA,
                      alpha: float = ALPHA, step: float = LEVEL_STEP_PX,
                      threads: int | None = None) -> np.ndarray:
    """Levels deconvolution of (H, W, 3) float64 ``y`` (see the module docstring)."""
    levels = sigma_levels(float(sigma.max()), step)
    pos = sigma / step  # fractional level index of every pixel
    out = np.zeros(y.shape, np.float64)
    for j, s in enumerate(levels):
        hat = np.clip(1.0 - np.abs(pos - j), 0.0, None)  # linear interpolation weight
        if not hat.any():
            continue
        x = y if j == 0 else deconvolve_constant(y, float(s), psf, lam=lam, alpha=alpha,
                                                 threads=threads)
        out += hat[..., None] * x
    return out
