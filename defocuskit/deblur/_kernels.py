"""JIT kernels of the deconvolution (private; called by :mod:`defocuskit.deblur.hqs` and
:mod:`defocuskit.deblur.methods`).

:func:`rhs_rows` is the ``w``-step of a whole image fused with its adjoint gradient.
In :func:`patch_rows` every output pixel solves the problem of
:mod:`defocuskit.deblur.hqs` on the P x P patch of the blurred image centred on it, with
the PSF of its own sigma, and keeps the patch's centre.
The patch is small, so its DCT-II is two P x P matrix products (``C X C^T``) written as loops
that LLVM vectorises, instead of an FFT; the last HQS step evaluates only the centre pixel.
The PSF spectrum is rebuilt only when sigma changes from the previous pixel of the row. The
formulas are those of :func:`defocuskit.deblur.hqs.kernel_spectrum` (Gaussian on the
``ceil(3 sigma)`` square window, anti-aliased disc of radius ``2 sigma``); a test compares
the two.
"""

import math

import numpy as np
from numba import njit

from defocuskit.blur._jit import JIT_OPTIONS
from defocuskit.blur.psf import DISC_MIN_RADIUS_PX, DISC_RADIUS_PER_SIGMA

__all__ = ["PATCH_SIGNATURE", "RHS_SIGNATURE", "patch_rows", "rhs_rows"]

PATCH_SIGNATURE = ("void(int64, int64, float64[:, :, ::1], float64[:, ::1], int64, float64, "
                   "float64[::1], float64[:, ::1], float64, float64, float64[:, ::1], "
                   "float64[:, ::1], float64[:, ::1], float64[:, :, ::1])")
RHS_SIGNATURE = ("void(int64, int64, float64[:, :, ::1], float64[::1], float64, float64, float64, "
                 "float64[:, :, ::1])")


@njit(forceinline=True, **JIT_OPTIONS)
def _mm3(a, x, b, tmp, out):  # pragma: no cover - covered without JIT
    """out = a @ x @ b for P x P matrices (inner loops contiguous)."""
    n = x.shape[0]
    tmp[:, :] = 0.0
    for u in range(n):
        for i in range(n):
            c = a[u, i]
            for j in range(n):
                tmp[u, j] += c * x[i, j]
    out[:, :] = 0.0
    for u in range(n):
        for j in range(n):
            c = tmp[u, j]
            for v in range(n):
                out[u, v] += c * b[j, v]


@njit(forceinline=True, **JIT_OPTIONS)
def _spectrum(s, psf, cos, k1, q, acc, k):  # pragma: no cover - covered without JIT
    """The PSF's DCT-II eigenvalues on the P x P patch into ``k`` (see hqs.kernel_spectrum)."""
    n = k.shape[0]
    if psf == 0:  # Gaussian: separable
        r = int(math.ceil(3.0 * s))
        norm = 0.0
        for d in range(r + 1):
            q[0, d] = math.exp(-0.5 * (d / s) ** 2)
            norm += q[0, d] if d == 0 else 2.0 * q[0, d]
        for u in range(n):
            t = q[0, 0]
            for d in range(1, r + 1):
                t += 2.0 * q[0, d] * cos[u, d]
            k1[u] = t / norm
        for u in range(n):
            for v in range(n):
                k[u, v] = k1[u] * k1[v]
        return
    rr = DISC_RADIUS_PER_SIGMA * s  # disc of radius 2 sigma, anti-aliased by coverage
    r = int(math.ceil(rr - 0.5))
    total = 0.0
    for dy in range(r + 1):
        for dx in range(r + 1):
            w = min(max(rr + 0.5 - math.sqrt(dy * dy + dx * dx), 0.0), 1.0)
            w *= (1.0 if dy == 0 else 2.0) * (1.0 if dx == 0 else 2.0)
            q[dy, dx] = w
            total += w
    for u in range(n):
        for dx in range(r + 1):
            t = 0.0
            for dy in range(r + 1):
                t += q[dy, dx] * cos[u, dy]
            acc[u, dx] = t / total
    for u in range(n):
        for v in range(n):
            t = 0.0
            for dx in range(r + 1):
                t += acc[u, dx] * cos[v, dx]
            k[u, v] = t


@njit(forceinline=True, **JIT_OPTIONS)
def _shrink(v, table, scale, vmax, beta, alpha):  # pragma: no cover - covered without JIT
    """The w-step of one gradient value (as hqs.shrink)."""
    a = abs(v)
    if a > vmax:
        w = a - alpha * a ** (alpha - 1.0) / beta
    else:
        f = a * scale
        i = min(int(f), table.size - 2)
        t = f - i
        w = table[i] * (1.0 - t) + table[i + 1] * t
    return w if v >= 0.0 else -w


@njit(forceinline=True, **JIT_OPTIONS)
def _rhs(x, table, scale, vmax, beta, alpha, r):  # pragma: no cover - covered without JIT
    """r = f_1^T w_1 + f_2^T w_2, w_i the shrunk forward differences of x (Neumann)."""
    n = x.shape[0]
    r[:, :] = 0.0
    for i in range(n):
        for j in range(n):
            if i + 1 < n:
                w = _shrink(x[i + 1, j] - x[i, j], table, scale, vmax, beta, alpha)
                r[i, j] -= w
                r[i + 1, j] += w
            if j + 1 < n:
                w = _shrink(x[i, j + 1] - x[i, j], table, scale, vmax, beta, alpha)
                r[i, j] -= w
                r[i, j + 1] += w


@njit(**JIT_OPTIONS)
def patch_rows(t, nthreads, src, sigma, psf, lam, betas, tables, vmax, alpha, dct, cos, lap,
               out):  # pragma: no cover - covered without JIT
    """Rows ``t, t + nthreads, ...`` of the per-pixel deconvolution into ``out`` (H, W, 3).

    ``src`` is the blurred image padded by P // 2 (reflect-101); ``dct`` the orthonormal
    DCT-II matrix of size P; ``cos[u, d] = cos(pi u d / P)``; ``lap`` the Laplacian's
    eigenvalues; ``tables`` the w-step tables of ``betas`` over [0, vmax]. A pixel whose PSF is
    a single tap (sigma 0, or a disc under half a pixel, as ``hqs.is_identity``) is copied.
    """
    H, W = sigma.shape
    n = dct.shape[0]
    h = n // 2
    dct_t = np.ascontiguousarray(dct.T)
    x = np.empty((3, n, n))
    yk = np.empty((3, n, n))
    k = np.empty((n, n))
    den = np.empty((n, n))
    tmp = np.empty((n, n))
    r = np.empty((n, n))
    xh = np.empty((n, n))
    k1 = np.empty(n)
    q = np.empty((cos.shape[1], cos.shape[1]))
    acc = np.empty((n, cos.shape[1]))
    centre = np.empty(n)
    for u in range(n):
        centre[u] = dct[u, h]
    scale = (tables.shape[1] - 1) / vmax
    for y in range(t, H, nthreads):
        s_prev = -1.0
        for xc in range(W):
            s = sigma[y, xc]
            if s <= 0.0 or (psf == 1 and DISC_RADIUS_PER_SIGMA * s < DISC_MIN_RADIUS_PX):
                for c in range(3):
                    out[y, xc, c] = src[y + h, xc + h, c]
                continue
            if s != s_prev:
                _spectrum(s, psf, cos, k1, q, acc, k)
                s_prev = s
            for c in range(3):
                for i in range(n):
                    for j in range(n):
                        x[c, i, j] = src[y + i, xc + j, c]
                _mm3(dct, x[c], dct_t, tmp, yk[c])
                for i in range(n):
                    for j in range(n):
                        yk[c, i, j] *= k[i, j]
            for b in range(betas.size):
                beta = betas[b]
                ratio = lam / beta
                for i in range(n):
                    for j in range(n):
                        den[i, j] = 1.0 / (lap[i, j] + ratio * k[i, j] * k[i, j])
                last = b == betas.size - 1
                for c in range(3):
                    _rhs(x[c], tables[b], scale, vmax, beta, alpha, r)
                    _mm3(dct, r, dct_t, tmp, xh)
                    for i in range(n):
                        for j in range(n):
                            xh[i, j] = (xh[i, j] + ratio * yk[c, i, j]) * den[i, j]
                    if last:  # only the centre pixel is kept
                        v = 0.0
                        for i in range(n):
                            for j in range(n):
                                v += centre[i] * xh[i, j] * centre[j]
                        out[y, xc, c] = v
                    else:
                        _mm3(dct_t, xh, dct, tmp, x[c])


@njit(**JIT_OPTIONS)
def rhs_rows(t, nthreads, x, table, vmax, beta, alpha, out):  # pragma: no cover
    """Rows ``t, t + nthreads, ...`` of ``f_1^T w_1 + f_2^T w_2`` for a whole (H, W, C)
    image ``x``: the w-step and its adjoint in one pass (see hqs.deconvolve_constant)."""
    H, W, C = x.shape
    scale = (table.size - 1) / vmax
    for i in range(t, H, nthreads):
        for j in range(W):
            for c in range(C):
                v = 0.0
                if i + 1 < H:
                    v -= _shrink(x[i + 1, j, c] - x[i, j, c], table, scale, vmax, beta, alpha)
                if i > 0:
                    v += _shrink(x[i, j, c] - x[i - 1, j, c], table, scale, vmax, beta, alpha)
                if j + 1 < W:
                    v -= _shrink(x[i, j + 1, c] - x[i, j, c], table, scale, vmax, beta, alpha)
                if j > 0:
                    v += _shrink(x[i, j, c] - x[i, j - 1, c], table, scale, vmax, beta, alpha)
                out[i, j, c] = v
