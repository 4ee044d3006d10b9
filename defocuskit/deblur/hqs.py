"""Whole-image non-blind deconvolution with a hyper-Laplacian prior (half-quadratic splitting).

Krishnan & Fergus, "Fast Image Deconvolution using Hyper-Laplacian Priors", NIPS 2009,
eq. 1-6: the sharp image ``x`` minimises

    lam / 2 * ||k * x - y||^2 + sum_i |f_i * x|^alpha,     f_1 = [1, -1], f_2 = [1, -1]^T,

split by auxiliary gradients ``w_i``: alternately the ``w``-step (one scalar problem per
gradient value, :func:`w_table`) and the ``x``-step (a quadratic problem), while the coupling
weight ``beta`` grows from :data:`BETA_START` by :data:`BETA_RATE` below :data:`BETA_MAX`
(their published schedule: 1, 2.8, 8, ..., 181, one inner iteration each).

Boundary handling: the image is mirrored half a sample beyond its edges (Neumann boundary).
For a kernel symmetric in each axis (the Gaussian and the disc are) the blur and the
gradient operators are then exactly diagonal in the orthonormal DCT-II basis, so the
``x``-step is one forward and one inverse DCT: the DCT-II equivalent of Krishnan & Fergus'
FFT step, without the wrap-around seams a periodic FFT puts at the borders. The eigenvalue of
a symmetric kernel ``h`` at frequency ``(u, v)`` of an ``N_y x N_x`` grid is
``sum_{dy, dx} h(dy, dx) cos(pi u dy / N_y) cos(pi v dx / N_x)``; that of the Neumann
Laplacian ``sum_i f_i^T f_i`` is ``(2 - 2 cos(pi u / N_y)) + (2 - 2 cos(pi v / N_x))``.
The renderer's borders are reflect-101, one sample different: it shows within about one
kernel radius of the image border only.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.fft

from defocuskit.blur._common import kernel_radius
from defocuskit.blur._jit import compile_kernel, run_threads, thread_count
from defocuskit.blur.psf import DISC_MIN_RADIUS_PX, DISC_RADIUS_PER_SIGMA, disc_kernel
from defocuskit.deblur._kernels import RHS_SIGNATURE, rhs_rows

__all__ = ["ALPHA", "BETA_MAX", "BETA_RATE", "BETA_START", "LAMBDA", "betas", "deconvolve_constant",
           "is_identity", "kernel_spectrum", "laplacian_spectrum", "table_range", "w_table"]

ALPHA = 0.8  # exponent of the gradient prior (Anwar et al. and Krishnan & Fergus' choice)
LAMBDA = 300.0  # data weight, images in [0, 1]; chosen on Middlebury and the samples (docs)
BETA_START = 1.0
BETA_RATE = 2.0 * math.sqrt(2.0)
BETA_MAX = 256.0
TABLE_SIZE = 8192  # samples of each w-step table over [0, vmax]


def betas() -> np.ndarray:
    """The continuation schedule ``BETA_START * BETA_RATE**i < BETA_MAX`` (6 values)."""
    out = [BETA_START]
    while out[-1] * BETA_RATE < BETA_MAX:
        out.append(out[-1] * BETA_RATE)
    return np.asarray(out)


def is_identity(sigma_px: float, psf: str) -> bool:
    """True where the PSF is a single tap (no blur): sigma 0, or a disc under half a pixel."""
    if psf == "disc":
        return DISC_RADIUS_PER_SIGMA * sigma_px < DISC_MIN_RADIUS_PX
    return sigma_px <= 0.0


def _cos_table(n: int, dmax: int, mult: bool) -> np.ndarray:
    """``cos(pi u d / n)`` for u < n, d <= dmax; times 2 for d >= 1 when ``mult``."""
    c = np.cos(np.pi * np.outer(np.arange(n), np.arange(dmax + 1)) / n)
    if mult:
        c[:, 1:] *= 2.0
    return c


def kernel_spectrum(sigma_px: float, psf: str, shape: tuple[int, int]) -> np.ndarray:
    """DCT-II eigenvalues ``(N_y, N_x)`` of the renderer's PSF of ``sigma_px`` on a grid of
    ``shape`` with mirrored borders (see the module docstring); float64.

    The Gaussian is the renderer's ``exp(-(dx^2 + dy^2) / (2 sigma^2))`` on the square window
    ``ceil(3 sigma)`` normalised to sum 1 (separable), the disc is
    :func:`defocuskit.blur.psf.disc_kernel` itself.
    """
    ny, nx = shape
    if is_identity(sigma_px, psf):
        return np.ones(shape)
    if psf == "disc":
        h = disc_kernel(sigma_px).astype(np.float64)
        r = h.shape[0] // 2
        q = h[r:, r:]  # one quadrant; the others are its mirror images
        return _cos_table(ny, r, True) @ q @ _cos_table(nx, r, True).T
    r = kernel_radius(sigma_px)
    g = np.exp(-0.5 * (np.arange(r + 1) / sigma_px) ** 2)
    g /= g[0] + 2.0 * g[1:].sum()
    ky = _cos_table(ny, r, True) @ g
    kx = _cos_table(nx, r, True) @ g
    return np.outer(ky, kx)


def laplacian_spectrum(shape: tuple[int, int]) -> np.ndarray:
    """DCT-II eigenvalues of ``f_1^T f_1 + f_2^T f_2`` with Neumann borders, float64."""
    ny, nx = shape
    ly = 2.0 - 2.0 * np.cos(np.pi * np.arange(ny) / ny)
    lx = 2.0 - 2.0 * np.cos(np.pi * np.arange(nx) / nx)
    return ly[:, None] + lx[None, :]


def _w_solve(v: np.ndarray, beta: float, alpha: float) -> np.ndarray:
    """argmin_w |w|^alpha + beta / 2 (w - v)^2 for v >= 0 (Newton on the stationarity
    condition from w = v, then the better of that root and 0)."""
    w = v.copy()
    ok = v > 0
    for _ in range(40):  # from the right of the largest root on a convex f: monotone
        wc = np.where(ok, w, 1.0)
        f = alpha * wc ** (alpha - 1.0) + beta * (wc - v)
        df = alpha * (alpha - 1.0) * wc ** (alpha - 2.0) + beta
        ok &= df > 0
        w = np.where(ok, wc - f / np.where(ok, df, 1.0), 0.0)
        ok &= w > 0
    wc = np.where(ok, w, 1.0)
    e_root = wc ** alpha + 0.5 * beta * (wc - v) ** 2
    return np.where(ok & (e_root < 0.5 * beta * v * v), w, 0.0)


@functools.lru_cache(maxsize=8)
def w_table(vmax: float, alpha: float = ALPHA) -> np.ndarray:
    """``(len(betas()), TABLE_SIZE)`` table of the ``w``-step solution at
    ``v = i * vmax / (TABLE_SIZE - 1)`` for each ``beta`` of :func:`betas` (Krishnan & Fergus'
    lookup table), float64, read-only (cached)."""
    v = np.linspace(0.0, vmax, TABLE_SIZE)
    out = np.stack([_w_solve(v, float(b), alpha) for b in betas()])
    out.flags.writeable = False
    return out


def table_range(y: np.ndarray) -> float:
    """The ``v`` range of the ``w``-step tables: 4 x the image's range (at least 4)."""
    return 4.0 * max(1.0, float(np.ptp(y)))


def deconvolve_constant(y: np.ndarray, sigma_px: float, psf: str, *, lam: float = LAMBDA,
                        alpha: float = ALPHA, threads: int | None = None) -> np.ndarray:
    """Deconvolve a whole (H, W, C) float64 image blurred by one PSF (DCT-HQS, see module).

    ``sigma_px`` with a single-tap PSF returns ``y`` unchanged.
    """
    if is_identity(sigma_px, psf):
        return y.copy()
    compile_kernel(rhs_rows, RHS_SIGNATURE, simd="slp+loop")
    nthreads = thread_count(threads)
    shape = y.shape[:2]
    k = kernel_spectrum(sigma_px, psf, shape)[..., None]
    lap = laplacian_spectrum(shape)[..., None]
    dct = dict(type=2, norm="ortho", axes=(0, 1), workers=nthreads)
    ky = k * scipy.fft.dctn(y, **dct)
    bl = betas()
    vmax = table_range(y)
    tables = w_table(vmax, alpha).copy()  # the kernel takes writeable arrays
    x = np.ascontiguousarray(y, dtype=np.float64)
    rhs = np.empty_like(x)
    for beta, table in zip(bl, tables, strict=True):
        run_threads(rhs_rows, nthreads, x, table, vmax, float(beta), float(alpha), rhs)
        num = scipy.fft.dctn(rhs, **dct) + (lam / beta) * ky
        x = np.ascontiguousarray(scipy.fft.idctn(num / (lap + (lam / beta) * k * k), **dct))
    return x
