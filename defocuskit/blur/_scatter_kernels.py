"""JIT kernels of the scatter blur (private; called by :mod:`defocuskit.blur.scatter`).

Every source pixel spreads its own normalised Gaussian PSF (support ``ceil(3 sigma)``) onto
the output (MDDNet eq. 9). Colour and weight are accumulated together (RGBW interleaved
per pixel), so the caller can normalise by the total weight received. Threads own
alternate *output* rows, so no two threads write the same memory (each thread recomputes
the 1-D weights of the sources it needs: one ``exp`` per source).

A run of at least ``RUN_MIN`` adjacent sources of one row with the very same sigma (flat
depth regions) shares one separable PSF, so it is scattered in two 1-D passes: horizontally
into one RGBW row buffer, then that buffer into the ``2 r + 1`` target rows. Same sums as the
per-source path up to float rounding, at ``O(r)`` instead of ``O(r^2)`` work per source.
Every other source goes through the per-source path, which updates :data:`ROWS` target
rows per pass; its loops over rows, pixels and channels have constant trip counts, so LLVM
unrolls them and its SLP vectoriser packs each row's updates into SIMD instructions (the
loop vectoriser stays off for this kernel: it vectorised across pixels instead, 2x slower).
The 1-D weight row lives on the stack (sigma is clamped, so its length is bounded): a
heap array there kept LLVM from removing the reference counting of the inner passes.
"""

import math

import numpy as np
from numba import njit

from defocuskit.blur._common import SIGMA_MAX_PX, kernel_radius
from defocuskit.blur._jit import JIT_OPTIONS, stack_array

__all__ = ["NORMALISE_SIGNATURE", "ROWS", "RUN_MIN", "SCATTER_SIGNATURE", "normalise_kernel",
           "scatter_rows"]

SCATTER_SIGNATURE = ("void(int64, int64, float32[:, :, ::1], float32[:, ::1], float32[:, ::1], "
                     "int64, float32[:, ::1])")
NORMALISE_SIGNATURE = "void(float32[:, ::1], float32[:, :, ::1])"

# shortest run of equal-sigma sources (same row) that goes through the separable path
RUN_MIN = 3
# target rows per pass of the per-source path (one weight load serves them all)
ROWS = 2
_NPASS = 4 * ROWS  # RGBW per row of a pass
_U2, _U4, _U8 = np.uint64(2), np.uint64(4), np.uint64(8)
_GMAX = 2 * kernel_radius(SIGMA_MAX_PX) + 1  # longest 1-D weight row (sigma is clamped)


@njit(inline="always", **JIT_OPTIONS)
def _row_weights(g, r, a):  # pragma: no cover - without JIT
    """Fill ``g[0 : 2 r + 1]`` with the unnormalised 1-D Gaussian row; return its sum.

    ``a = exp(-1 / (2 sigma^2))``; ``g(d + 1) = g(d) a^(2 d + 1)`` by recurrence.
    """
    g[r] = 1.0
    tot = 1.0
    if r > 0:
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
    return tot


@njit(inline="always", **JIT_OPTIONS)
def _scatter_run(src, g, r, pad, ys, xs, xe, W, inv, hrow, htx0, htx1):  # pragma: no cover
    """Horizontal pass of a run: ``hrow[4 tx + c]`` (tx in [htx0, htx1]) receives the
    1-D-weighted RGB (c < 3) and weight (c = 3) of sources ``xs .. xe - 1`` of row ``ys``."""
    for i in range(np.uint64(4 * htx0), np.uint64(4 * htx1 + 4)):
        hrow[i] = 0.0
    for j in range(xs, xe):
        xc = j - pad
        tx0 = max(xc - r, 0)
        tx1 = min(xc + r, W - 1)
        if tx0 > tx1:
            continue
        k0 = src[0, ys, j] * inv
        k1 = src[1, ys, j] * inv
        k2 = src[2, ys, j] * inv
        ub = np.uint64(4 * tx0)
        gb = np.uint64(tx0 - xc + r)
        for k in range(np.uint64(tx1 - tx0 + 1)):
            w = g[gb + k]
            i = ub + np.uint64(4) * k
            hrow[i] += w * k0
            hrow[i + np.uint64(1)] += w * k1
            hrow[i + np.uint64(2)] += w * k2
            hrow[i + np.uint64(3)] += w * inv


@njit(inline="always", **JIT_OPTIONS)
def _add_rows(acc, hrow, g, r, yc, first, nrows, nthreads, htx0, htx1):  # pragma: no cover
    """Vertical pass of a run: ``acc[ty] += g[ty - yc + r] * hrow`` over columns
    [htx0, htx1], for the ``nrows`` target rows ``first, first + nthreads, ...``."""
    n = np.uint64(4 * (htx1 - htx0 + 1))
    n16 = n // np.uint64(16)
    base = np.uint64(4 * htx0)
    ustep = np.uint64(nthreads)
    uy = np.uint64(first)
    gy = np.uint64(first - yc + r)
    for _ in range(nrows):
        wy = g[gy]
        for k in range(n16):
            i = base + np.uint64(16) * k
            for c in range(16):
                acc[uy, i + np.uint64(c)] += wy * hrow[i + np.uint64(c)]
        for i in range(base + np.uint64(16) * n16, base + n):
            acc[uy, i] += wy * hrow[i]
        uy += ustep
        gy += ustep


@njit(inline="always", **JIT_OPTIONS)
def _spread_rows(acc, nr, uy, ustep, g, gy, gb, ub, npix, col):  # pragma: no cover
    """One pass of the per-source path: ``nr <= ROWS`` target rows at once.

    ``acc[uy + r ustep, ub + 4 k + c] += g[gb + k] * (col[c] * g[gy + r ustep])`` for
    ``r < nr``, ``k < npix``, ``c < 4``: the source's separable PSF times its RGBW
    ``col``. Two target pixels go per step, so one row's eight RGBW updates are one 8-wide
    load, FMA and store; the rows share every weight load. ``nr`` is a constant at each
    call, so the row loop unrolls.
    """
    p = stack_array(_NPASS, np.float32)  # col times each row's vertical weight
    w = stack_array(2, np.float32)  # the two pixels' horizontal weights
    for r in range(np.uint64(nr)):
        wy = g[gy + r * ustep]
        for c in range(_U4):
            p[_U4 * r + c] = col[c] * wy
    for kp in range(np.uint64(npix // 2)):
        uk = _U2 * kp
        i = ub + _U4 * uk
        # read before the stores below: acc might alias g as far as LLVM knows, and a load
        # between the stores would keep SLP from packing them
        w[0] = g[gb + uk]
        w[1] = g[gb + uk + np.uint64(1)]
        for r in range(np.uint64(nr)):
            row = uy + r * ustep
            for j in range(_U8):  # two target pixels x RGBW
                acc[row, i + j] += w[j // _U4] * p[_U4 * r + j % _U4]
    if npix % 2 == 1:
        uk = np.uint64(npix - 1)
        i = ub + _U4 * uk
        w[0] = g[gb + uk]
        for r in range(np.uint64(nr)):
            row = uy + r * ustep
            for c in range(_U4):
                acc[row, i + c] += w[0] * p[_U4 * r + c]


@njit(**JIT_OPTIONS)
def scatter_rows(t, nthreads, src, sigma, alpha, pad, acc):  # pragma: no cover
    """Scatter every padded source pixel's normalised PSF into the output rows of share ``t``.

    Parameters
    ----------
    t, nthreads : int
        This share and the number of shares: share t owns the output rows
        ``ty % nthreads == t`` (so no two shares write the same memory).
    src : (3, H + 2 pad, W + 2 pad) float32
        Planar image padded by ``pad`` (reflect-101): border sources scatter too, so a
        constant sigma reproduces the gather result exactly, borders included.
    sigma : (H + 2 pad, W + 2 pad) float32
        Sigma of every (padded) source pixel, pixels, ``ceil(3 sigma) <= pad``.
    alpha : (H + 2 pad, W + 2 pad) float32
        ``exp(-1 / (2 sigma^2))`` per source (0 where sigma is 0): the first step of the
        weight recurrence, taken by the wrapper with NumPy's SIMD exp.
    pad : int
        Padding, pixels.
    acc : (H, 4 W) float32, zeroed
        Interleaved RGBW per pixel: ``acc[y, 4 x + c]``, c = 0-2 receive sum(w * rgb),
        c = 3 receives sum(w).
    """
    Hp, Wp = sigma.shape
    H = Hp - 2 * pad
    W = Wp - 2 * pad
    g = stack_array(_GMAX, np.float32)  # on the stack: no reference counting in the loops
    hrow = np.empty(4 * W + 8, np.float32)
    col = stack_array(4, np.float32)
    for ys in range(Hp):
        yc = ys - pad
        xs = 0
        while xs < Wp:
            s = sigma[ys, xs]
            r = int(math.ceil(np.float32(3.0) * s))
            ty0 = max(yc - r, 0)
            ty1 = min(yc + r, H - 1)
            if nthreads == 1:
                first = ty0
            elif nthreads == 2:
                first = ty0 + ((t - ty0) & 1)
            else:
                first = ty0 + (t - ty0) % nthreads
            if first > ty1:
                xs += 1
                continue
            nrows = (ty1 - first) // nthreads + 1 if nthreads > 1 else ty1 - first + 1
            # a run of sources with the very same sigma in this row shares one PSF, so
            # it is scattered separably: horizontally into one RGBW row, then that row
            # vertically (exact up to float rounding, whatever the run's length)
            xe = xs + 1
            if r > 0:
                while xe < Wp and sigma[ys, xe] == s:
                    xe += 1
            if xe - xs >= RUN_MIN:
                xc0 = xs - pad
                htx0 = max(xc0 - r, 0)
                htx1 = min(xe - 1 - pad + r, W - 1)
                if htx0 <= htx1:
                    tot = _row_weights(g, r, np.float64(alpha[ys, xs]))
                    inv = np.float32(1.0 / (tot * tot))
                    _scatter_run(src, g, r, pad, ys, xs, xe, W, inv, hrow, htx0, htx1)
                    _add_rows(acc, hrow, g, r, yc, first, nrows, nthreads, htx0, htx1)
                xs = xe
                continue
            xc = xs - pad
            tx0 = max(xc - r, 0)
            tx1 = min(xc + r, W - 1)
            if tx0 > tx1:
                xs += 1
                continue
            tot = _row_weights(g, r, np.float64(alpha[ys, xs]))
            inv = np.float32(1.0 / (tot * tot))
            for c in range(3):
                col[c] = src[c, ys, xs] * inv
            col[3] = inv
            npix = tx1 - tx0 + 1
            ub = np.uint64(4 * tx0)
            gb = np.uint64(tx0 - xc + r)
            gy = np.uint64(first - yc + r)
            uy = np.uint64(first)
            ustep = np.uint64(nthreads)
            for _ in range(nrows // ROWS):
                _spread_rows(acc, ROWS, uy, ustep, g, gy, gb, ub, npix, col)
                gy += np.uint64(ROWS) * ustep
                uy += np.uint64(ROWS) * ustep
            for _ in range(nrows % ROWS):
                _spread_rows(acc, 1, uy, ustep, g, gy, gb, ub, npix, col)
                gy += ustep
                uy += ustep
            xs += 1


@njit(**JIT_OPTIONS)
def normalise_kernel(acc, out):  # pragma: no cover - covered without JIT
    """``out[y, x, c] = acc[y, 4 x + c] / acc[y, 4 x + 3]``; acc (H, 4 W), out (H, W, 3)."""
    H, W = out.shape[0], out.shape[1]
    for y in range(H):
        for x in range(W):
            inv = np.float32(1.0) / acc[y, 4 * x + 3]
            out[y, x, 0] = acc[y, 4 * x] * inv
            out[y, x, 1] = acc[y, 4 * x + 1] * inv
            out[y, x, 2] = acc[y, 4 * x + 2] * inv
