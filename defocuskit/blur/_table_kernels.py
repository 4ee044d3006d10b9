"""JIT kernels of the kernel-table PSFs (private; called by :mod:`defocuskit.blur.table`).

Every pixel's PSF is ``(1 - f) K[i] + f K[j]``: two entries of a table of kernels
(``kern`` (L, S, S, C), centred, C = 1 or 3) and the weight ``f`` of the second, looked up
beforehand per pixel. The PSF is applied as a convolution, ``out(p) = sum_q k(q) img(p - q)``
(``k(q)``: the light a source sends q pixels away), so an asymmetric kernel keeps its
orientation. The image is (H + 2 pad, W + 2 pad, 3), reflect-101. Plain loops: simple
rather than fast (``benchmarks/bench_render.py`` measures them).
"""

import numpy as np
from numba import njit

from defocuskit.blur._jit import JIT_OPTIONS

__all__ = ["TABLE_GATHER_SIGNATURE", "TABLE_SCATTER_SIGNATURE", "table_gather_rows",
           "table_scatter_rows"]

TABLE_GATHER_SIGNATURE = ("void(int64, int64, float32[:, :, ::1], int32[:, ::1], int32[:, ::1], "
                          "float32[:, ::1], float32[:, :, :, ::1], int64[::1], int64, "
                          "float32[:, :, ::1])")
TABLE_SCATTER_SIGNATURE = ("void(int64, int64, float32[:, :, ::1], int32[:, ::1], "
                           "int32[:, ::1], float32[:, ::1], float32[:, :, :, ::1], "
                           "float32[:, :, :, ::1], int64, int64, float32[:, :, ::1])")


@njit(**JIT_OPTIONS)
def table_gather_rows(t, nthreads, src, lo, hi, frac, kern, rad, pad,
                      out):  # pragma: no cover - covered without JIT
    """Gather of rows ``t, t + nthreads, ...``: each output pixel under its own PSF.

    ``lo``, ``hi``, ``frac`` (H, W): the pixel's two table entries and the weight of
    ``hi``; ``rad`` (L,): each entry's radius (its nonzero taps); ``pad`` >= every radius.
    """
    H, W = out.shape[0], out.shape[1]
    c0 = kern.shape[1] // 2
    C = kern.shape[3]
    for y in range(t, H, nthreads):
        for x in range(W):
            i, j = lo[y, x], hi[y, x]
            f = frac[y, x]
            g = np.float32(1.0) - f
            R = max(rad[i], rad[j])
            a0 = np.float32(0.0)
            a1 = np.float32(0.0)
            a2 = np.float32(0.0)
            for dy in range(-R, R + 1):
                yy = y + pad - dy
                for dx in range(-R, R + 1):
                    xx = x + pad - dx
                    if C == 1:
                        w = g * kern[i, c0 + dy, c0 + dx, 0] + f * kern[j, c0 + dy, c0 + dx, 0]
                        a0 += w * src[yy, xx, 0]
                        a1 += w * src[yy, xx, 1]
                        a2 += w * src[yy, xx, 2]
                    else:
                        a0 += (g * kern[i, c0 + dy, c0 + dx, 0]
                               + f * kern[j, c0 + dy, c0 + dx, 0]) * src[yy, xx, 0]
                        a1 += (g * kern[i, c0 + dy, c0 + dx, 1]
                               + f * kern[j, c0 + dy, c0 + dx, 1]) * src[yy, xx, 1]
                        a2 += (g * kern[i, c0 + dy, c0 + dx, 2]
                               + f * kern[j, c0 + dy, c0 + dx, 2]) * src[yy, xx, 2]
            out[y, x, 0] = a0
            out[y, x, 1] = a1
            out[y, x, 2] = a2


@njit(**JIT_OPTIONS)
def table_scatter_rows(t, nthreads, src, lo, hi, frac, kern, norm, R, pad,
                       out):  # pragma: no cover - covered without JIT
    """Normalised scatter, written as a gather over sources: ``out(p) = sum_q k_{p-q}(q)
    img(p - q) / sum_q n_{p-q}(q)``, ``k_s`` the PSF of source s from ``kern`` and ``n_s``
    from ``norm`` (the same table, or the whole PSF when ``kern`` holds a part of it).

    ``src``, ``lo``, ``hi``, ``frac`` are padded by ``pad`` >= ``R``, the largest radius; a
    pixel that receives no weight keeps its own value.
    """
    H, W = out.shape[0], out.shape[1]
    c0 = kern.shape[1] // 2
    C = kern.shape[3]
    for y in range(t, H, nthreads):
        for x in range(W):
            a0 = np.float32(0.0)
            a1 = np.float32(0.0)
            a2 = np.float32(0.0)
            n0 = np.float32(0.0)
            n1 = np.float32(0.0)
            n2 = np.float32(0.0)
            for dy in range(-R, R + 1):
                sy = y + pad - dy
                for dx in range(-R, R + 1):
                    sx = x + pad - dx
                    i, j = lo[sy, sx], hi[sy, sx]
                    f = frac[sy, sx]
                    g = np.float32(1.0) - f
                    if C == 1:
                        w = g * kern[i, c0 + dy, c0 + dx, 0] + f * kern[j, c0 + dy, c0 + dx, 0]
                        v = g * norm[i, c0 + dy, c0 + dx, 0] + f * norm[j, c0 + dy, c0 + dx, 0]
                        a0 += w * src[sy, sx, 0]
                        a1 += w * src[sy, sx, 1]
                        a2 += w * src[sy, sx, 2]
                        n0 += v
                        n1 += v
                        n2 += v
                    else:
                        w = g * kern[i, c0 + dy, c0 + dx, 0] + f * kern[j, c0 + dy, c0 + dx, 0]
                        a0 += w * src[sy, sx, 0]
                        n0 += g * norm[i, c0 + dy, c0 + dx, 0] + f * norm[j, c0 + dy, c0 + dx, 0]
                        w = g * kern[i, c0 + dy, c0 + dx, 1] + f * kern[j, c0 + dy, c0 + dx, 1]
                        a1 += w * src[sy, sx, 1]
                        n1 += g * norm[i, c0 + dy, c0 + dx, 1] + f * norm[j, c0 + dy, c0 + dx, 1]
                        w = g * kern[i, c0 + dy, c0 + dx, 2] + f * kern[j, c0 + dy, c0 + dx, 2]
                        a2 += w * src[sy, sx, 2]
                        n2 += g * norm[i, c0 + dy, c0 + dx, 2] + f * norm[j, c0 + dy, c0 + dx, 2]
            own_y, own_x = y + pad, x + pad
            out[y, x, 0] = a0 / n0 if n0 > 0 else src[own_y, own_x, 0]
            out[y, x, 1] = a1 / n1 if n1 > 0 else src[own_y, own_x, 1]
            out[y, x, 2] = a2 / n2 if n2 > 0 else src[own_y, own_x, 2]
