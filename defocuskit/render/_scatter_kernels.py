"""JIT kernel of the scatter blur (private; called by :mod:`defocuskit.render.scatter`).

Every source pixel spreads its own normalised Gaussian PSF (support ``ceil(3 sigma)``) onto
the output (MDDNet eq. 9). Colour and weight are accumulated together (RGBW interleaved
per pixel), so the caller can normalise by the total weight received. Threads own
alternate *output* rows, so no two threads write the same memory (each thread recomputes
the 1-D weights of the sources it needs: one ``exp`` per source).
"""

import math

import numpy as np
from numba import njit, prange

from defocuskit.render._jit import JIT_OPTIONS

__all__ = ["SCATTER_SIGNATURE", "scatter_kernel"]

SCATTER_SIGNATURE = "void(float32[:, :, ::1], float32[:, ::1], int64, int64, float32[:, :, ::1])"


@njit(parallel=True, **JIT_OPTIONS)
def scatter_kernel(src, sigma, pad, nthreads, acc):  # pragma: no cover - covered without JIT
    """Scatter each padded source pixel's normalised PSF into ``acc``.

    Parameters
    ----------
    src : (3, H + 2 pad, W + 2 pad) float32
        Planar image padded by ``pad`` (reflect-101): border sources scatter too, so a
        constant sigma reproduces the gather result exactly, borders included.
    sigma : (H + 2 pad, W + 2 pad) float32
        Sigma of every (padded) source pixel, pixels, ``ceil(3 sigma) <= pad``.
    pad, nthreads : int
        Padding (pixels) and number of output-row interleaves.
    acc : (H, W, 4) float32, zeroed
        Channels 0-2 receive sum(w * rgb), channel 3 sum(w).
    """
    Hp, Wp = sigma.shape
    H = Hp - 2 * pad
    W = Wp - 2 * pad
    for t in prange(nthreads):
        g = np.empty(2 * pad + 1, np.float32)
        for ys in range(Hp):
            yc = ys - pad
            for xs in range(Wp):
                s = sigma[ys, xs]
                r = int(math.ceil(3.0 * s))
                ty0 = max(yc - r, 0)
                ty1 = min(yc + r, H - 1)
                first = ty0 + (t - ty0) % nthreads
                if first > ty1:
                    continue
                xc = xs - pad
                tx0 = max(xc - r, 0)
                tx1 = min(xc + r, W - 1)
                if tx0 > tx1:
                    continue
                g[r] = 1.0
                tot = 1.0
                if r > 0:
                    a = math.exp(-0.5 / (s * s))
                    b = a * a
                    gv = 1.0
                    q = a
                    for d in range(1, r + 1):
                        gv *= q
                        q *= b
                        gv = gv if gv > 1e-18 else 0.0
                        q = q if q > 1e-18 else 0.0
                        g[r + d] = gv
                        g[r - d] = gv
                        tot += 2.0 * gv
                inv = np.float32(1.0 / (tot * tot))
                k0 = src[0, ys, xs] * inv
                k1 = src[1, ys, xs] * inv
                k2 = src[2, ys, xs] * inv
                nx = tx1 - tx0 + 1
                ub = np.uint64(tx0)
                gb = np.uint64(tx0 - xc + r)
                for ty in range(first, ty1 + 1, nthreads):
                    wy = g[ty - yc + r]
                    uy = np.uint64(ty)
                    w0 = k0 * wy
                    w1 = k1 * wy
                    w2 = k2 * wy
                    w3 = inv * wy
                    for k in range(nx):
                        uk = np.uint64(k)
                        w = g[gb + uk]
                        i = ub + uk
                        acc[uy, i, 0] += w * w0
                        acc[uy, i, 1] += w * w1
                        acc[uy, i, 2] += w * w2
                        acc[uy, i, 3] += w * w3
