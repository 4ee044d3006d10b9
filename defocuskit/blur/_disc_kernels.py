"""JIT kernels of the disc PSF (private; called by :mod:`defocuskit.blur.disc`).

The disc (see :mod:`defocuskit.blur.psf`) is not separable, but each row of it is simple:
at row offset ``dy`` the taps ``|dx| <= a`` have weight exactly 1 and only the few taps
``a < |dx| <= b`` on the anti-aliased rim have a fractional weight ``r + 0.5 - d``. So
one row of the disc costs one difference of running sums (gather: row prefix sums of the
image; scatter: a row difference array, integrated at the end) plus the rim taps, and a
pixel costs ``O(r)`` instead of ``O(r^2)``. Running sums are float64, so their
differences are as accurate as the direct sums.

Rows are dealt to threads alternately (sigma varies with y); in scatter every thread owns
its output rows, so no two threads write the same memory.
"""

import math

import numpy as np
from numba import njit

from defocuskit.blur._jit import JIT_OPTIONS
from defocuskit.blur.psf import DISC_MIN_RADIUS_PX, DISC_RADIUS_PER_SIGMA

__all__ = ["DISC_FINISH_SIGNATURE", "DISC_GATHER_SIGNATURE", "DISC_NORM_SIGNATURE",
           "DISC_SCATTER_SIGNATURE", "disc_finish_rows", "disc_gather_rows", "disc_norm_rows",
           "disc_scatter_rows"]

# every kernel computes one share (t of nthreads) of the rows: see _jit.run_threads
DISC_GATHER_SIGNATURE = ("void(int64, int64, float32[:, :, ::1], float64[:, :, ::1], "
                         "float32[:, ::1], int64, float32[:, :, ::1])")
DISC_NORM_SIGNATURE = "void(int64, int64, float32[:, ::1], float64[:, ::1])"
DISC_SCATTER_SIGNATURE = ("void(int64, int64, float32[:, :, ::1], float32[:, ::1], "
                          "float64[:, ::1], int64, float64[:, :, ::1], float64[:, :, ::1])")
DISC_FINISH_SIGNATURE = ("void(int64, int64, float64[:, :, ::1], float64[:, :, ::1], "
                         "float32[:, :, ::1])")


@njit(forceinline=True, **JIT_OPTIONS)
def _row_span(r, dy):  # pragma: no cover - covered without JIT
    """Taps of row ``dy`` of the disc of radius ``r >= 0.5``: returns ``(a, b)``.

    ``|dx| <= a`` have weight 1 (``d <= r - 0.5``; ``a = -1`` if none), ``a < |dx| <= b``
    have weight ``r + 0.5 - d`` in (0, 1), the rest 0. Decided on squares, which are exact
    in float64 for a float32 sigma, so the rim never depends on rounding of a square root.
    """
    dy2 = np.float64(dy * dy)
    vi = (r - 0.5) * (r - 0.5) - dy2
    a = -1
    if vi >= 0.0:
        a = int(math.sqrt(vi))
        while (a + 1) * (a + 1) <= vi:
            a += 1
        while a * a > vi:
            a -= 1
    vo = (r + 0.5) * (r + 0.5) - dy2
    b = -1
    if vo > 0.0:
        b = int(math.sqrt(vo))
        while b >= 0 and b * b >= vo:
            b -= 1
        while (b + 1) * (b + 1) < vo:
            b += 1
    return a, b


@njit(forceinline=True, **JIT_OPTIONS)
def _rim_weight(r, k, dy):  # pragma: no cover - covered without JIT
    """``clip(r + 0.5 - sqrt(k^2 + dy^2), 0, 1)`` for a rim tap."""
    w = r + 0.5 - math.sqrt(np.float64(k * k + dy * dy))
    return min(max(w, 0.0), 1.0)


@njit(**JIT_OPTIONS)
def disc_gather_rows(t, nthreads, src, csum, sigma, pad, out):  # pragma: no cover
    """Disc gather of rows ``t, t + nthreads, ...``: each pixel averages under its own disc.

    Parameters
    ----------
    t, nthreads : int
        This share and the number of shares (rows are dealt alternately).
    src : (3, H + 2 pad, W + 2 pad) float32
        Planar image padded by ``pad`` (reflect-101), ``pad >= ceil(2 sigma - 0.5)``.
    csum : (3, H + 2 pad, W + 2 pad + 1) float64
        Row prefix sums of ``src``: ``csum[c, y, i] = sum(src[c, y, :i])``.
    sigma : (H, W) float32, pixels
        Clean sigma map; the disc radius is ``2 sigma``.
    pad : int
        Padding, pixels.
    out : (H, W, 3) float32
        Output; this share's rows are overwritten.
    """
    H, W = sigma.shape
    for y in range(t, H, nthreads):
        yc = y + pad
        for x in range(W):
            xc = x + pad
            r = DISC_RADIUS_PER_SIGMA * np.float64(sigma[y, x])
            if r < DISC_MIN_RADIUS_PX:
                for c in range(3):
                    out[y, x, c] = src[c, yc, xc]
                continue
            R = int(math.ceil(r - 0.5))
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            tot = 0.0
            for dy in range(-R, R + 1):
                a, b = _row_span(r, dy)
                row = yc + dy
                if a >= 0:
                    lo = xc - a
                    hi = xc + a + 1
                    s0 += csum[0, row, hi] - csum[0, row, lo]
                    s1 += csum[1, row, hi] - csum[1, row, lo]
                    s2 += csum[2, row, hi] - csum[2, row, lo]
                    tot += 2 * a + 1
                k0 = a + 1
                if k0 == 0 and b >= 0:  # the centre tap itself is on the rim
                    w = _rim_weight(r, 0, dy)
                    s0 += w * src[0, row, xc]
                    s1 += w * src[1, row, xc]
                    s2 += w * src[2, row, xc]
                    tot += w
                    k0 = 1
                for k in range(k0, b + 1):
                    w = _rim_weight(r, k, dy)
                    s0 += w * (src[0, row, xc - k] + src[0, row, xc + k])
                    s1 += w * (src[1, row, xc - k] + src[1, row, xc + k])
                    s2 += w * (src[2, row, xc - k] + src[2, row, xc + k])
                    tot += 2.0 * w
            out[y, x, 0] = s0 / tot
            out[y, x, 1] = s1 / tot
            out[y, x, 2] = s2 / tot


@njit(**JIT_OPTIONS)
def disc_norm_rows(t, nthreads, sigma, inv):  # pragma: no cover - covered without JIT
    """``inv[y, x]`` = 1 / (sum of the disc weights of ``sigma[y, x]``); 1 below the threshold.

    Rows ``t, t + nthreads, ...``. A row of equal sigma (a flat depth region) reuses the
    previous pixel's sum.
    """
    H, W = sigma.shape
    for y in range(t, H, nthreads):
        last = -1.0
        val = 1.0
        for x in range(W):
            r = DISC_RADIUS_PER_SIGMA * np.float64(sigma[y, x])
            if r != last:
                last = r
                val = 1.0
                if r >= DISC_MIN_RADIUS_PX:
                    R = int(math.ceil(r - 0.5))
                    tot = 0.0
                    for dy in range(-R, R + 1):
                        a, b = _row_span(r, dy)
                        if a >= 0:
                            tot += 2 * a + 1
                        for k in range(a + 1, b + 1):
                            w = _rim_weight(r, k, dy)
                            tot += w if k == 0 else 2.0 * w
                    val = 1.0 / tot
            inv[y, x] = val


@njit(forceinline=True, **JIT_OPTIONS)
def _add_tap(acc, ty, tx, W, w, v0, v1, v2, q):  # pragma: no cover - covered without JIT
    """One rim tap of weight ``w`` into ``acc[ty, tx]``, if that column is in the image."""
    if 0 <= tx < W:
        acc[ty, tx, 0] += w * v0
        acc[ty, tx, 1] += w * v1
        acc[ty, tx, 2] += w * v2
        acc[ty, tx, 3] += w * q


@njit(**JIT_OPTIONS)
def disc_scatter_rows(t, nthreads, src, sigma, inv, pad, acc, diff):  # pragma: no cover
    """Disc scatter into the output rows ``ty % nthreads == t``: every (padded) source
    pixel spreads its own normalised disc.

    Parameters
    ----------
    t, nthreads : int
        This share and the number of shares; share t owns the output rows
        ``ty % nthreads == t`` (so no two shares write the same memory).
    src : (3, H + 2 pad, W + 2 pad) float32
        Planar image padded by ``pad`` (reflect-101): border sources scatter too.
    sigma : (H + 2 pad, W + 2 pad) float32
        Sigma of every (padded) source, pixels, ``ceil(2 sigma - 0.5) <= pad``.
    inv : (H + 2 pad, W + 2 pad) float64
        1 / (sum of each source's disc weights), from :func:`disc_norm_rows`.
    pad : int
        Padding, pixels.
    acc : (H, W, 4) float64, zeroed
        Receives the rim taps: RGB times weight (c < 3) and the weight (c = 3).
    diff : (H, W + 1, 4) float64, zeroed
        Row difference arrays of the weight-1 spans; :func:`disc_finish_rows`
        integrates them.
    """
    Hp, Wp = sigma.shape
    H = Hp - 2 * pad
    W = Wp - 2 * pad
    for ys in range(Hp):
        yc = ys - pad
        for xs in range(Wp):
            xc = xs - pad
            r = DISC_RADIUS_PER_SIGMA * np.float64(sigma[ys, xs])
            if r < DISC_MIN_RADIUS_PX:  # a point: only its own pixel, weight 1
                if 0 <= yc < H and 0 <= xc < W and yc % nthreads == t:
                    for c in range(3):
                        acc[yc, xc, c] += src[c, ys, xs]
                    acc[yc, xc, 3] += 1.0
                continue
            R = int(math.ceil(r - 0.5))
            if xc + R < 0 or xc - R >= W:
                continue
            ty0 = max(yc - R, 0)
            ty1 = min(yc + R, H - 1)
            first = ty0 + (t - ty0) % nthreads
            if first > ty1:
                continue
            q = inv[ys, xs]
            v0 = src[0, ys, xs] * q
            v1 = src[1, ys, xs] * q
            v2 = src[2, ys, xs] * q
            for ty in range(first, ty1 + 1, nthreads):
                dy = ty - yc
                a, b = _row_span(r, dy)
                if a >= 0:  # weight-1 span: add at its start, subtract after its end
                    lo = max(xc - a, 0)
                    hi = min(xc + a, W - 1)
                    if lo <= hi:
                        diff[ty, lo, 0] += v0
                        diff[ty, lo, 1] += v1
                        diff[ty, lo, 2] += v2
                        diff[ty, lo, 3] += q
                        diff[ty, hi + 1, 0] -= v0
                        diff[ty, hi + 1, 1] -= v1
                        diff[ty, hi + 1, 2] -= v2
                        diff[ty, hi + 1, 3] -= q
                for k in range(a + 1, b + 1):
                    w = _rim_weight(r, k, dy)
                    _add_tap(acc, ty, xc - k, W, w, v0, v1, v2, q)
                    if k > 0:
                        _add_tap(acc, ty, xc + k, W, w, v0, v1, v2, q)


@njit(**JIT_OPTIONS)
def disc_finish_rows(t, nthreads, acc, diff, out):  # pragma: no cover - covered without JIT
    """``out = (acc + cumsum(diff)).rgb / (acc + cumsum(diff)).w``, rows ``t, t + nthreads``."""
    H, W = out.shape[0], out.shape[1]
    for y in range(t, H, nthreads):
        c0 = 0.0
        c1 = 0.0
        c2 = 0.0
        c3 = 0.0
        for x in range(W):
            c0 += diff[y, x, 0]
            c1 += diff[y, x, 1]
            c2 += diff[y, x, 2]
            c3 += diff[y, x, 3]
            wt = acc[y, x, 3] + c3
            out[y, x, 0] = (acc[y, x, 0] + c0) / wt
            out[y, x, 1] = (acc[y, x, 1] + c1) / wt
            out[y, x, 2] = (acc[y, x, 2] + c2) / wt
