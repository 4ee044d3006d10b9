"""JIT kernels of the exact gather blur (private; called by :mod:`defocuskit.blur.gather`).

Each output pixel is a Gaussian average of its neighbourhood with the pixel's *own* sigma,
support ``ceil(3 sigma)`` pixels each side (a square window), weights normalised to sum 1.
The Gaussian is separable, so one pixel needs one 1-D row of weights ``g(d)``, built from a
single ``exp`` by the recurrence ``g(d+1) = g(d) * q(d)``, ``q(d+1) = q(d) * b`` with
``q(1) = a = exp(-1/(2 sigma^2))`` and ``b = a^2``; the 2-D weight is ``g(dy) g(dx)`` and the
normalisation ``1 / (sum g)^2`` is applied once at the end. The ``exp`` itself is taken by
the wrapper for the whole image at once (NumPy's SIMD ``exp``), so the kernel only reads it.

Speed: :data:`LANES` neighbouring output pixels of a row are computed together. Every
per-lane quantity lives in a small fixed-size array on the stack (:func:`stack_array`) and
is updated by a loop over the constant lane count, so LLVM keeps the arrays in registers
and turns each lane loop into SIMD instructions (the kernel is compiled with both of
Numba's vectorisers on, see ``_jit.SIMD_FLAGS``). Loads, arithmetic and stores to the heap
go in separate lane loops where they would otherwise interleave: LLVM cannot tell the
arrays apart and keeps such a loop scalar. LANES must stay >= 16 (LLVM's loop vectoriser
leaves loops of fewer iterations alone: 8 lanes ran 6x slower); 32 was 10-25 % slower
than 16 on the AVX-512 machine of ``docs/camera_model.md``. A lane whose own radius is
smaller than the group's largest gets zero weights outside its radius, so every lane stays
exact.
The image is planar (3, H, W), inner indices are unsigned (signed ones make Numba emit
wrap-around code that blocks vectorisation), the group loop is ``range(W // LANES)`` (a
``range(0, W, LANES)`` loop cost 2.3x) and rows are dealt to threads alternately (sigma
varies with y). Two output rows are computed per group (row y and y + 1, each with its own
weights): they share every image load of the horizontal pass, which is the bottleneck (the
loads, not the FMAs), for ~10-15 % more speed; the image and sigma get one extra zero-sigma
row when the height is odd. A finished row is kept planar (each channel's lanes stored
contiguously) and then copied, still in cache, into the (H, W, 3) output.
"""

import math

import numpy as np
from numba import njit

from defocuskit.blur._jit import JIT_OPTIONS, stack_array

__all__ = ["GATHER_SIGNATURE", "LANES", "PAD_SIGNATURE", "gather_rows", "pad_planar_rows"]

LANES = 16  # output pixels per SIMD group; change and measure (benchmarks/bench_render.py)
GATHER_SIGNATURE = ("void(int64, int64, float32[:, :, ::1], float32[:, ::1], float32[:, ::1], "
                    "int64, float32[:, :, ::1])")
PAD_SIGNATURE = "void(int64, int64, float32[:, :, ::1], int64, float32[:, :, ::1])"
_TINY = np.float32(1e-18)  # flush weights below this to 0: keeps the recurrence off denormals
_ULANES = np.uint64(LANES)
_NACC = 6 * LANES  # accumulators per lane group: two rows x three channels


@njit(**JIT_OPTIONS)
def pad_planar_rows(t, nthreads, img, pad, out):  # pragma: no cover - covered without JIT
    """Rows ``t, t + nthreads, ...`` of (H, W, 3) -> planar (3, H + 2 pad, Wp), reflect-101.

    Columns beyond ``W + 2 pad`` (lane padding on the right) continue the reflection.
    Needs ``pad < H`` and ``Wp - W - pad < W`` (a single reflection per side).
    """
    H, W = img.shape[0], img.shape[1]
    Hp, Wp = out.shape[1], out.shape[2]
    for yp in range(t, Hp, nthreads):
        y = yp - pad
        y = -y if y < 0 else (2 * H - 2 - y if y >= H else y)
        for xp in range(Wp):
            x = xp - pad
            x = -x if x < 0 else (2 * W - 2 - x if x >= W else x)
            out[0, yp, xp] = img[y, x, 0]
            out[1, yp, xp] = img[y, x, 1]
            out[2, yp, xp] = img[y, x, 2]


@njit(forceinline=True, **JIT_OPTIONS)
def _lane_radii(sigma, y, x0, rad):  # pragma: no cover - covered without JIT
    """``rad[l] = ceil(3 sigma)`` of lane l of row y (pixels); returns the largest."""
    rmax = 0
    for lane in range(LANES):
        r = math.ceil(np.float32(3.0) * sigma[y, x0 + lane])
        rad[lane] = r
        rmax = max(rmax, r)
    return rmax


@njit(forceinline=True, **JIT_OPTIONS)
def _lane_weights(alpha, y, x0, R, rad, wt, tot):  # pragma: no cover - covered without JIT
    """1-D weights of the lanes of row y: ``wt[k + 1, l]`` for taps ``k = 0 .. 2 R``.

    Lane l's weights are 0 beyond its own radius ``rad[l]``; ``wt[2 R + 2, l] = 0`` (the
    other pair row's vertical pass reads it). ``tot[l]`` receives the sum of the row.
    """
    q = stack_array(LANES, np.float32)
    b = stack_array(LANES, np.float32)
    g = stack_array(LANES, np.float32)
    v = stack_array(LANES, np.float32)
    # separate loops for loads, arithmetic and stores: a store to wt between two loads
    # (wt might alias alpha as far as LLVM knows) would keep the lanes from vectorising
    for lane in range(LANES):
        q[lane] = alpha[y, x0 + lane]
    for lane in range(LANES):
        bl = q[lane] * q[lane]
        b[lane] = bl if bl > _TINY else np.float32(0.0)
        g[lane] = np.float32(1.0)
        tot[lane] = np.float32(1.0)
    for lane in range(LANES):
        wt[R + 1, lane] = np.float32(1.0)
    for lane in range(LANES):
        wt[2 * R + 2, lane] = np.float32(0.0)
    for d in range(1, R + 1):
        fd = np.float32(d)
        for lane in range(LANES):
            gl = g[lane] * q[lane]
            gl = gl if gl > _TINY else np.float32(0.0)
            ql = q[lane] * b[lane]
            ql = ql if ql > _TINY else np.float32(0.0)
            g[lane] = gl
            q[lane] = ql
            vl = gl if fd <= rad[lane] else np.float32(0.0)
            v[lane] = vl
            tot[lane] += vl + vl
        for lane in range(LANES):
            wt[R + 1 + d, lane] = v[lane]
        for lane in range(LANES):
            wt[R + 1 - d, lane] = v[lane]


@njit(forceinline=True, **JIT_OPTIONS)
def _store_row(row, y, out):  # pragma: no cover - covered without JIT
    """Planar finished row ``row`` (3, >= W) into row y of the (H, W, 3) output."""
    for x in range(out.shape[1]):
        out[y, x, 0] = row[0, x]
        out[y, x, 1] = row[1, x]
        out[y, x, 2] = row[2, x]


@njit(**JIT_OPTIONS)
def gather_rows(t, nthreads, src, sigma, alpha, pad, out):  # pragma: no cover
    """Exact per-pixel Gaussian gather of row pairs ``t, t + nthreads, ...`` (one share).

    Parameters
    ----------
    t, nthreads : int
        This share and the number of shares (row pairs are dealt alternately).
    src : (3, Hs + 2 pad, Wg + 2 pad) float32, C-contiguous
        Planar image padded by ``pad`` pixels (reflect-101) on every side, plus one more
        reflected row at the bottom when the image height ``H`` is odd (``Hs = H + H % 2``).
    sigma : (Hs, Wg) float32
        Per-pixel sigma in pixels, finite, ``0 <= sigma``, ``ceil(3 sigma) <= pad``;
        ``Wg`` is a multiple of LANES, ``Hs`` is even (extra rows and columns hold 0).
    alpha : (Hs, Wg) float32
        ``exp(-1 / (2 sigma^2))`` (0 where sigma is 0), the first step of the recurrence.
    pad : int
        Padding of ``src``, pixels.
    out : (H, W, 3) float32, ``W <= Wg``, ``H <= Hs``
        Output; this share's rows are overwritten, lanes and rows beyond it are dropped.
    """
    Hs, Wg = sigma.shape
    # 1-D weights of the two rows' lanes, tap k at index k + 1; index 0 and 2 R + 2
    # hold 0 so that each row's vertical weights can run over the pair's 2 R + 2 rows
    wta = np.zeros((2 * pad + 3, LANES), np.float32)
    wtb = np.zeros((2 * pad + 3, LANES), np.float32)
    rowa = np.empty((3, Wg), np.float32)  # the finished rows, planar (see module doc)
    rowb = np.empty((3, Wg), np.float32)
    rada = stack_array(LANES, np.int64)
    radb = stack_array(LANES, np.int64)
    tota = stack_array(LANES, np.float32)
    totb = stack_array(LANES, np.float32)
    # acc[c L + l] (row a) and acc[(c + 3) L + l] (row b): the 2-D sums of lane l, channel
    # c; hor the same layout for the horizontal pass over one image row
    acc = stack_array(_NACC, np.float32)
    hor = stack_array(_NACC, np.float32)
    for p in range(t, Hs // 2, nthreads):
        y = 2 * p
        for grp in range(Wg // LANES):
            x0 = grp * LANES
            R = int(max(_lane_radii(sigma, y, x0, rada), _lane_radii(sigma, y + 1, x0, radb)))
            _lane_weights(alpha, y, x0, R, rada, wta, tota)
            _lane_weights(alpha, y + 1, x0, R, radb, wtb, totb)
            for i in range(_NACC):
                acc[i] = np.float32(0.0)
            ubase = np.uint64(x0 + pad - R)
            uy0 = np.uint64(y + pad - R)
            for ky in range(2 * R + 2):  # image rows y - R .. y + 1 + R
                yy = uy0 + np.uint64(ky)
                for i in range(_NACC):
                    hor[i] = np.float32(0.0)
                for kx in range(2 * R + 1):
                    xx = ubase + np.uint64(kx)
                    ux = np.uint64(kx + 1)
                    for lane in range(_ULANES):
                        wa = wta[ux, lane]
                        wb = wtb[ux, lane]
                        for c in range(3):
                            s = src[c, yy, xx + lane]
                            hor[c * _ULANES + lane] += wa * s
                            hor[(c + 3) * _ULANES + lane] += wb * s
                for lane in range(_ULANES):
                    va = wta[ky + 1, lane]  # row a's vertical weight of image row y - R + ky
                    vb = wtb[ky, lane]  # row b's, one row lower
                    for c in range(3):
                        acc[c * _ULANES + lane] += va * hor[c * _ULANES + lane]
                        acc[(c + 3) * _ULANES + lane] += vb * hor[(c + 3) * _ULANES + lane]
            for lane in range(LANES):
                na = np.float32(1.0) / (tota[lane] * tota[lane])
                nb = np.float32(1.0) / (totb[lane] * totb[lane])
                for c in range(3):
                    rowa[c, x0 + lane] = acc[c * LANES + lane] * na
                    rowb[c, x0 + lane] = acc[(c + 3) * LANES + lane] * nb
        _store_row(rowa, y, out)
        if y + 1 < out.shape[0]:
            _store_row(rowb, y + 1, out)
