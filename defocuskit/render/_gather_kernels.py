"""JIT kernel of the exact gather blur (private; called by :mod:`defocuskit.render.gather`).

Each output pixel is a Gaussian average of its neighbourhood with the pixel's *own* sigma,
support ``ceil(3 sigma)`` pixels each side (a square window), weights normalised to sum 1.
The Gaussian is separable, so one pixel needs one 1-D row of weights ``g(d)``, built with a
single ``exp`` by the recurrence ``g(d+1) = g(d) * a * b**d`` (``a = exp(-1/(2 sigma^2))``,
``b = a^2``); the 2-D weight is ``g(dy) g(dx)`` and the normalisation ``1 / (sum g)^2`` is
applied once at the end.

Speed: LANES neighbouring output pixels of a row are computed together, written as
explicit scalar accumulators (one per lane and channel) so that LLVM's SLP vectoriser packs
them into SIMD registers; a lane whose own radius is smaller than the group's largest gets
zero weights outside its radius, so every lane stays exact. The image is planar (3, H, W),
inner indices are unsigned (signed ones make Numba emit wrap-around code that blocks
vectorisation) and rows are dealt to threads alternately (sigma varies with y).

The lane-unrolled statements below are deliberate (one line per lane and channel).
"""

import math

import numpy as np
from numba import njit, prange

from defocuskit.render._jit import JIT_OPTIONS

__all__ = ["GATHER_SIGNATURE", "LANES", "gather_kernel"]

LANES = 16
GATHER_SIGNATURE = "void(float32[:, :, ::1], float32[:, ::1], int64, int64, float32[:, :, ::1])"
_TINY = np.float32(1e-18)  # flush weights below this to 0: keeps the recurrence off denormals


@njit(parallel=True, **JIT_OPTIONS)
def gather_kernel(src, sigma, pad, nthreads, out):  # pragma: no cover - covered without JIT
    """Exact per-pixel Gaussian gather.

    Parameters
    ----------
    src : (3, H + 2 pad, Wg + 2 pad) float32, C-contiguous
        Planar image padded by ``pad`` pixels (reflect-101) on every side.
    sigma : (H, Wg) float32
        Per-pixel sigma in pixels, finite, ``0 <= sigma``, ``ceil(3 sigma) <= pad``;
        ``Wg`` is a multiple of LANES (extra columns hold 0).
    pad : int
        Padding of ``src``, pixels.
    nthreads : int
        Number of row interleaves (one per thread).
    out : (3, H, Wg) float32
        Output, overwritten.
    """
    H, Wg = sigma.shape
    ngroups = Wg // LANES
    for t in prange(nthreads):
        wt = np.zeros((2 * pad + 1, LANES), np.float32)
        par = np.empty((3, LANES), np.float32)
        for y in range(t, H, nthreads):
            for grp in range(ngroups):
                x0 = grp * LANES
                R = 0
                for l in range(LANES):
                    s = sigma[y, x0 + l]
                    r = math.ceil(3.0 * s)
                    a = math.exp(-0.5 / (s * s)) if s > 0 else 0.0
                    a = a if a > 1e-18 else 0.0
                    b = a * a
                    par[0, l] = r
                    par[1, l] = a
                    par[2, l] = b if b > 1e-18 else 0.0
                    if r > R:
                        R = int(r)
                r0 = par[0, 0]
                r1 = par[0, 1]
                r2 = par[0, 2]
                r3 = par[0, 3]
                r4 = par[0, 4]
                r5 = par[0, 5]
                r6 = par[0, 6]
                r7 = par[0, 7]
                r8 = par[0, 8]
                r9 = par[0, 9]
                r10 = par[0, 10]
                r11 = par[0, 11]
                r12 = par[0, 12]
                r13 = par[0, 13]
                r14 = par[0, 14]
                r15 = par[0, 15]
                q0 = par[1, 0]
                q1 = par[1, 1]
                q2 = par[1, 2]
                q3 = par[1, 3]
                q4 = par[1, 4]
                q5 = par[1, 5]
                q6 = par[1, 6]
                q7 = par[1, 7]
                q8 = par[1, 8]
                q9 = par[1, 9]
                q10 = par[1, 10]
                q11 = par[1, 11]
                q12 = par[1, 12]
                q13 = par[1, 13]
                q14 = par[1, 14]
                q15 = par[1, 15]
                b0 = par[2, 0]
                b1 = par[2, 1]
                b2 = par[2, 2]
                b3 = par[2, 3]
                b4 = par[2, 4]
                b5 = par[2, 5]
                b6 = par[2, 6]
                b7 = par[2, 7]
                b8 = par[2, 8]
                b9 = par[2, 9]
                b10 = par[2, 10]
                b11 = par[2, 11]
                b12 = par[2, 12]
                b13 = par[2, 13]
                b14 = par[2, 14]
                b15 = par[2, 15]
                g0 = np.float32(1.0)
                g1 = np.float32(1.0)
                g2 = np.float32(1.0)
                g3 = np.float32(1.0)
                g4 = np.float32(1.0)
                g5 = np.float32(1.0)
                g6 = np.float32(1.0)
                g7 = np.float32(1.0)
                g8 = np.float32(1.0)
                g9 = np.float32(1.0)
                g10 = np.float32(1.0)
                g11 = np.float32(1.0)
                g12 = np.float32(1.0)
                g13 = np.float32(1.0)
                g14 = np.float32(1.0)
                g15 = np.float32(1.0)
                t0 = np.float32(1.0)
                t1 = np.float32(1.0)
                t2 = np.float32(1.0)
                t3 = np.float32(1.0)
                t4 = np.float32(1.0)
                t5 = np.float32(1.0)
                t6 = np.float32(1.0)
                t7 = np.float32(1.0)
                t8 = np.float32(1.0)
                t9 = np.float32(1.0)
                t10 = np.float32(1.0)
                t11 = np.float32(1.0)
                t12 = np.float32(1.0)
                t13 = np.float32(1.0)
                t14 = np.float32(1.0)
                t15 = np.float32(1.0)
                wt[R, 0] = 1.0
                wt[R, 1] = 1.0
                wt[R, 2] = 1.0
                wt[R, 3] = 1.0
                wt[R, 4] = 1.0
                wt[R, 5] = 1.0
                wt[R, 6] = 1.0
                wt[R, 7] = 1.0
                wt[R, 8] = 1.0
                wt[R, 9] = 1.0
                wt[R, 10] = 1.0
                wt[R, 11] = 1.0
                wt[R, 12] = 1.0
                wt[R, 13] = 1.0
                wt[R, 14] = 1.0
                wt[R, 15] = 1.0
                for d in range(1, R + 1):
                    fd = np.float32(d)
                    g0 = g0 * q0
                    g1 = g1 * q1
                    g2 = g2 * q2
                    g3 = g3 * q3
                    g4 = g4 * q4
                    g5 = g5 * q5
                    g6 = g6 * q6
                    g7 = g7 * q7
                    g8 = g8 * q8
                    g9 = g9 * q9
                    g10 = g10 * q10
                    g11 = g11 * q11
                    g12 = g12 * q12
                    g13 = g13 * q13
                    g14 = g14 * q14
                    g15 = g15 * q15
                    g0 = g0 if g0 > _TINY else np.float32(0.0)
                    g1 = g1 if g1 > _TINY else np.float32(0.0)
                    g2 = g2 if g2 > _TINY else np.float32(0.0)
                    g3 = g3 if g3 > _TINY else np.float32(0.0)
                    g4 = g4 if g4 > _TINY else np.float32(0.0)
                    g5 = g5 if g5 > _TINY else np.float32(0.0)
                    g6 = g6 if g6 > _TINY else np.float32(0.0)
                    g7 = g7 if g7 > _TINY else np.float32(0.0)
                    g8 = g8 if g8 > _TINY else np.float32(0.0)
                    g9 = g9 if g9 > _TINY else np.float32(0.0)
                    g10 = g10 if g10 > _TINY else np.float32(0.0)
                    g11 = g11 if g11 > _TINY else np.float32(0.0)
                    g12 = g12 if g12 > _TINY else np.float32(0.0)
                    g13 = g13 if g13 > _TINY else np.float32(0.0)
                    g14 = g14 if g14 > _TINY else np.float32(0.0)
                    g15 = g15 if g15 > _TINY else np.float32(0.0)
                    q0 = q0 * b0
                    q1 = q1 * b1
                    q2 = q2 * b2
                    q3 = q3 * b3
                    q4 = q4 * b4
                    q5 = q5 * b5
                    q6 = q6 * b6
                    q7 = q7 * b7
                    q8 = q8 * b8
                    q9 = q9 * b9
                    q10 = q10 * b10
                    q11 = q11 * b11
                    q12 = q12 * b12
                    q13 = q13 * b13
                    q14 = q14 * b14
                    q15 = q15 * b15
                    q0 = q0 if q0 > _TINY else np.float32(0.0)
                    q1 = q1 if q1 > _TINY else np.float32(0.0)
                    q2 = q2 if q2 > _TINY else np.float32(0.0)
                    q3 = q3 if q3 > _TINY else np.float32(0.0)
                    q4 = q4 if q4 > _TINY else np.float32(0.0)
                    q5 = q5 if q5 > _TINY else np.float32(0.0)
                    q6 = q6 if q6 > _TINY else np.float32(0.0)
                    q7 = q7 if q7 > _TINY else np.float32(0.0)
                    q8 = q8 if q8 > _TINY else np.float32(0.0)
                    q9 = q9 if q9 > _TINY else np.float32(0.0)
                    q10 = q10 if q10 > _TINY else np.float32(0.0)
                    q11 = q11 if q11 > _TINY else np.float32(0.0)
                    q12 = q12 if q12 > _TINY else np.float32(0.0)
                    q13 = q13 if q13 > _TINY else np.float32(0.0)
                    q14 = q14 if q14 > _TINY else np.float32(0.0)
                    q15 = q15 if q15 > _TINY else np.float32(0.0)
                    v0 = g0 if fd <= r0 else np.float32(0.0)
                    v1 = g1 if fd <= r1 else np.float32(0.0)
                    v2 = g2 if fd <= r2 else np.float32(0.0)
                    v3 = g3 if fd <= r3 else np.float32(0.0)
                    v4 = g4 if fd <= r4 else np.float32(0.0)
                    v5 = g5 if fd <= r5 else np.float32(0.0)
                    v6 = g6 if fd <= r6 else np.float32(0.0)
                    v7 = g7 if fd <= r7 else np.float32(0.0)
                    v8 = g8 if fd <= r8 else np.float32(0.0)
                    v9 = g9 if fd <= r9 else np.float32(0.0)
                    v10 = g10 if fd <= r10 else np.float32(0.0)
                    v11 = g11 if fd <= r11 else np.float32(0.0)
                    v12 = g12 if fd <= r12 else np.float32(0.0)
                    v13 = g13 if fd <= r13 else np.float32(0.0)
                    v14 = g14 if fd <= r14 else np.float32(0.0)
                    v15 = g15 if fd <= r15 else np.float32(0.0)
                    wt[R + d, 0] = v0
                    wt[R + d, 1] = v1
                    wt[R + d, 2] = v2
                    wt[R + d, 3] = v3
                    wt[R + d, 4] = v4
                    wt[R + d, 5] = v5
                    wt[R + d, 6] = v6
                    wt[R + d, 7] = v7
                    wt[R + d, 8] = v8
                    wt[R + d, 9] = v9
                    wt[R + d, 10] = v10
                    wt[R + d, 11] = v11
                    wt[R + d, 12] = v12
                    wt[R + d, 13] = v13
                    wt[R + d, 14] = v14
                    wt[R + d, 15] = v15
                    wt[R - d, 0] = v0
                    wt[R - d, 1] = v1
                    wt[R - d, 2] = v2
                    wt[R - d, 3] = v3
                    wt[R - d, 4] = v4
                    wt[R - d, 5] = v5
                    wt[R - d, 6] = v6
                    wt[R - d, 7] = v7
                    wt[R - d, 8] = v8
                    wt[R - d, 9] = v9
                    wt[R - d, 10] = v10
                    wt[R - d, 11] = v11
                    wt[R - d, 12] = v12
                    wt[R - d, 13] = v13
                    wt[R - d, 14] = v14
                    wt[R - d, 15] = v15
                    t0 += v0 + v0
                    t1 += v1 + v1
                    t2 += v2 + v2
                    t3 += v3 + v3
                    t4 += v4 + v4
                    t5 += v5 + v5
                    t6 += v6 + v6
                    t7 += v7 + v7
                    t8 += v8 + v8
                    t9 += v9 + v9
                    t10 += v10 + v10
                    t11 += v11 + v11
                    t12 += v12 + v12
                    t13 += v13 + v13
                    t14 += v14 + v14
                    t15 += v15 + v15
                n = 2 * R + 1
                a0_0 = np.float32(0.0)
                a0_1 = np.float32(0.0)
                a0_2 = np.float32(0.0)
                a0_3 = np.float32(0.0)
                a0_4 = np.float32(0.0)
                a0_5 = np.float32(0.0)
                a0_6 = np.float32(0.0)
                a0_7 = np.float32(0.0)
                a0_8 = np.float32(0.0)
                a0_9 = np.float32(0.0)
                a0_10 = np.float32(0.0)
                a0_11 = np.float32(0.0)
                a0_12 = np.float32(0.0)
                a0_13 = np.float32(0.0)
                a0_14 = np.float32(0.0)
                a0_15 = np.float32(0.0)
                a1_0 = np.float32(0.0)
                a1_1 = np.float32(0.0)
                a1_2 = np.float32(0.0)
                a1_3 = np.float32(0.0)
                a1_4 = np.float32(0.0)
                a1_5 = np.float32(0.0)
                a1_6 = np.float32(0.0)
                a1_7 = np.float32(0.0)
                a1_8 = np.float32(0.0)
                a1_9 = np.float32(0.0)
                a1_10 = np.float32(0.0)
                a1_11 = np.float32(0.0)
                a1_12 = np.float32(0.0)
                a1_13 = np.float32(0.0)
                a1_14 = np.float32(0.0)
                a1_15 = np.float32(0.0)
                a2_0 = np.float32(0.0)
                a2_1 = np.float32(0.0)
                a2_2 = np.float32(0.0)
                a2_3 = np.float32(0.0)
                a2_4 = np.float32(0.0)
                a2_5 = np.float32(0.0)
                a2_6 = np.float32(0.0)
                a2_7 = np.float32(0.0)
                a2_8 = np.float32(0.0)
                a2_9 = np.float32(0.0)
                a2_10 = np.float32(0.0)
                a2_11 = np.float32(0.0)
                a2_12 = np.float32(0.0)
                a2_13 = np.float32(0.0)
                a2_14 = np.float32(0.0)
                a2_15 = np.float32(0.0)
                ubase = np.uint64(x0 + pad - R)
                for ky in range(n):
                    yy = y + pad - R + ky
                    r0 = src[0, yy]
                    r1 = src[1, yy]
                    r2 = src[2, yy]
                    h0_0 = np.float32(0.0)
                    h0_1 = np.float32(0.0)
                    h0_2 = np.float32(0.0)
                    h0_3 = np.float32(0.0)
                    h0_4 = np.float32(0.0)
                    h0_5 = np.float32(0.0)
                    h0_6 = np.float32(0.0)
                    h0_7 = np.float32(0.0)
                    h0_8 = np.float32(0.0)
                    h0_9 = np.float32(0.0)
                    h0_10 = np.float32(0.0)
                    h0_11 = np.float32(0.0)
                    h0_12 = np.float32(0.0)
                    h0_13 = np.float32(0.0)
                    h0_14 = np.float32(0.0)
                    h0_15 = np.float32(0.0)
                    h1_0 = np.float32(0.0)
                    h1_1 = np.float32(0.0)
                    h1_2 = np.float32(0.0)
                    h1_3 = np.float32(0.0)
                    h1_4 = np.float32(0.0)
                    h1_5 = np.float32(0.0)
                    h1_6 = np.float32(0.0)
                    h1_7 = np.float32(0.0)
                    h1_8 = np.float32(0.0)
                    h1_9 = np.float32(0.0)
                    h1_10 = np.float32(0.0)
                    h1_11 = np.float32(0.0)
                    h1_12 = np.float32(0.0)
                    h1_13 = np.float32(0.0)
                    h1_14 = np.float32(0.0)
                    h1_15 = np.float32(0.0)
                    h2_0 = np.float32(0.0)
                    h2_1 = np.float32(0.0)
                    h2_2 = np.float32(0.0)
                    h2_3 = np.float32(0.0)
                    h2_4 = np.float32(0.0)
                    h2_5 = np.float32(0.0)
                    h2_6 = np.float32(0.0)
                    h2_7 = np.float32(0.0)
                    h2_8 = np.float32(0.0)
                    h2_9 = np.float32(0.0)
                    h2_10 = np.float32(0.0)
                    h2_11 = np.float32(0.0)
                    h2_12 = np.float32(0.0)
                    h2_13 = np.float32(0.0)
                    h2_14 = np.float32(0.0)
                    h2_15 = np.float32(0.0)
                    for kx in range(n):
                        xx = ubase + np.uint64(kx)
                        w0 = wt[kx, 0]
                        w1 = wt[kx, 1]
                        w2 = wt[kx, 2]
                        w3 = wt[kx, 3]
                        w4 = wt[kx, 4]
                        w5 = wt[kx, 5]
                        w6 = wt[kx, 6]
                        w7 = wt[kx, 7]
                        w8 = wt[kx, 8]
                        w9 = wt[kx, 9]
                        w10 = wt[kx, 10]
                        w11 = wt[kx, 11]
                        w12 = wt[kx, 12]
                        w13 = wt[kx, 13]
                        w14 = wt[kx, 14]
                        w15 = wt[kx, 15]
                        h0_0 += w0 * r0[xx + np.uint64(0)]
                        h0_1 += w1 * r0[xx + np.uint64(1)]
                        h0_2 += w2 * r0[xx + np.uint64(2)]
                        h0_3 += w3 * r0[xx + np.uint64(3)]
                        h0_4 += w4 * r0[xx + np.uint64(4)]
                        h0_5 += w5 * r0[xx + np.uint64(5)]
                        h0_6 += w6 * r0[xx + np.uint64(6)]
                        h0_7 += w7 * r0[xx + np.uint64(7)]
                        h0_8 += w8 * r0[xx + np.uint64(8)]
                        h0_9 += w9 * r0[xx + np.uint64(9)]
                        h0_10 += w10 * r0[xx + np.uint64(10)]
                        h0_11 += w11 * r0[xx + np.uint64(11)]
                        h0_12 += w12 * r0[xx + np.uint64(12)]
                        h0_13 += w13 * r0[xx + np.uint64(13)]
                        h0_14 += w14 * r0[xx + np.uint64(14)]
                        h0_15 += w15 * r0[xx + np.uint64(15)]
                        h1_0 += w0 * r1[xx + np.uint64(0)]
                        h1_1 += w1 * r1[xx + np.uint64(1)]
                        h1_2 += w2 * r1[xx + np.uint64(2)]
                        h1_3 += w3 * r1[xx + np.uint64(3)]
                        h1_4 += w4 * r1[xx + np.uint64(4)]
                        h1_5 += w5 * r1[xx + np.uint64(5)]
                        h1_6 += w6 * r1[xx + np.uint64(6)]
                        h1_7 += w7 * r1[xx + np.uint64(7)]
                        h1_8 += w8 * r1[xx + np.uint64(8)]
                        h1_9 += w9 * r1[xx + np.uint64(9)]
                        h1_10 += w10 * r1[xx + np.uint64(10)]
                        h1_11 += w11 * r1[xx + np.uint64(11)]
                        h1_12 += w12 * r1[xx + np.uint64(12)]
                        h1_13 += w13 * r1[xx + np.uint64(13)]
                        h1_14 += w14 * r1[xx + np.uint64(14)]
                        h1_15 += w15 * r1[xx + np.uint64(15)]
                        h2_0 += w0 * r2[xx + np.uint64(0)]
                        h2_1 += w1 * r2[xx + np.uint64(1)]
                        h2_2 += w2 * r2[xx + np.uint64(2)]
                        h2_3 += w3 * r2[xx + np.uint64(3)]
                        h2_4 += w4 * r2[xx + np.uint64(4)]
                        h2_5 += w5 * r2[xx + np.uint64(5)]
                        h2_6 += w6 * r2[xx + np.uint64(6)]
                        h2_7 += w7 * r2[xx + np.uint64(7)]
                        h2_8 += w8 * r2[xx + np.uint64(8)]
                        h2_9 += w9 * r2[xx + np.uint64(9)]
                        h2_10 += w10 * r2[xx + np.uint64(10)]
                        h2_11 += w11 * r2[xx + np.uint64(11)]
                        h2_12 += w12 * r2[xx + np.uint64(12)]
                        h2_13 += w13 * r2[xx + np.uint64(13)]
                        h2_14 += w14 * r2[xx + np.uint64(14)]
                        h2_15 += w15 * r2[xx + np.uint64(15)]
                    v0 = wt[ky, 0]
                    v1 = wt[ky, 1]
                    v2 = wt[ky, 2]
                    v3 = wt[ky, 3]
                    v4 = wt[ky, 4]
                    v5 = wt[ky, 5]
                    v6 = wt[ky, 6]
                    v7 = wt[ky, 7]
                    v8 = wt[ky, 8]
                    v9 = wt[ky, 9]
                    v10 = wt[ky, 10]
                    v11 = wt[ky, 11]
                    v12 = wt[ky, 12]
                    v13 = wt[ky, 13]
                    v14 = wt[ky, 14]
                    v15 = wt[ky, 15]
                    a0_0 += v0 * h0_0
                    a0_1 += v1 * h0_1
                    a0_2 += v2 * h0_2
                    a0_3 += v3 * h0_3
                    a0_4 += v4 * h0_4
                    a0_5 += v5 * h0_5
                    a0_6 += v6 * h0_6
                    a0_7 += v7 * h0_7
                    a0_8 += v8 * h0_8
                    a0_9 += v9 * h0_9
                    a0_10 += v10 * h0_10
                    a0_11 += v11 * h0_11
                    a0_12 += v12 * h0_12
                    a0_13 += v13 * h0_13
                    a0_14 += v14 * h0_14
                    a0_15 += v15 * h0_15
                    a1_0 += v0 * h1_0
                    a1_1 += v1 * h1_1
                    a1_2 += v2 * h1_2
                    a1_3 += v3 * h1_3
                    a1_4 += v4 * h1_4
                    a1_5 += v5 * h1_5
                    a1_6 += v6 * h1_6
                    a1_7 += v7 * h1_7
                    a1_8 += v8 * h1_8
                    a1_9 += v9 * h1_9
                    a1_10 += v10 * h1_10
                    a1_11 += v11 * h1_11
                    a1_12 += v12 * h1_12
                    a1_13 += v13 * h1_13
                    a1_14 += v14 * h1_14
                    a1_15 += v15 * h1_15
                    a2_0 += v0 * h2_0
                    a2_1 += v1 * h2_1
                    a2_2 += v2 * h2_2
                    a2_3 += v3 * h2_3
                    a2_4 += v4 * h2_4
                    a2_5 += v5 * h2_5
                    a2_6 += v6 * h2_6
                    a2_7 += v7 * h2_7
                    a2_8 += v8 * h2_8
                    a2_9 += v9 * h2_9
                    a2_10 += v10 * h2_10
                    a2_11 += v11 * h2_11
                    a2_12 += v12 * h2_12
                    a2_13 += v13 * h2_13
                    a2_14 += v14 * h2_14
                    a2_15 += v15 * h2_15
                t0 = np.float32(1.0) / (t0 * t0)
                t1 = np.float32(1.0) / (t1 * t1)
                t2 = np.float32(1.0) / (t2 * t2)
                t3 = np.float32(1.0) / (t3 * t3)
                t4 = np.float32(1.0) / (t4 * t4)
                t5 = np.float32(1.0) / (t5 * t5)
                t6 = np.float32(1.0) / (t6 * t6)
                t7 = np.float32(1.0) / (t7 * t7)
                t8 = np.float32(1.0) / (t8 * t8)
                t9 = np.float32(1.0) / (t9 * t9)
                t10 = np.float32(1.0) / (t10 * t10)
                t11 = np.float32(1.0) / (t11 * t11)
                t12 = np.float32(1.0) / (t12 * t12)
                t13 = np.float32(1.0) / (t13 * t13)
                t14 = np.float32(1.0) / (t14 * t14)
                t15 = np.float32(1.0) / (t15 * t15)
                out[0, y, x0 + 0] = a0_0 * t0
                out[0, y, x0 + 1] = a0_1 * t1
                out[0, y, x0 + 2] = a0_2 * t2
                out[0, y, x0 + 3] = a0_3 * t3
                out[0, y, x0 + 4] = a0_4 * t4
                out[0, y, x0 + 5] = a0_5 * t5
                out[0, y, x0 + 6] = a0_6 * t6
                out[0, y, x0 + 7] = a0_7 * t7
                out[0, y, x0 + 8] = a0_8 * t8
                out[0, y, x0 + 9] = a0_9 * t9
                out[0, y, x0 + 10] = a0_10 * t10
                out[0, y, x0 + 11] = a0_11 * t11
                out[0, y, x0 + 12] = a0_12 * t12
                out[0, y, x0 + 13] = a0_13 * t13
                out[0, y, x0 + 14] = a0_14 * t14
                out[0, y, x0 + 15] = a0_15 * t15
                out[1, y, x0 + 0] = a1_0 * t0
                out[1, y, x0 + 1] = a1_1 * t1
                out[1, y, x0 + 2] = a1_2 * t2
                out[1, y, x0 + 3] = a1_3 * t3
                out[1, y, x0 + 4] = a1_4 * t4
                out[1, y, x0 + 5] = a1_5 * t5
                out[1, y, x0 + 6] = a1_6 * t6
                out[1, y, x0 + 7] = a1_7 * t7
                out[1, y, x0 + 8] = a1_8 * t8
                out[1, y, x0 + 9] = a1_9 * t9
                out[1, y, x0 + 10] = a1_10 * t10
                out[1, y, x0 + 11] = a1_11 * t11
                out[1, y, x0 + 12] = a1_12 * t12
                out[1, y, x0 + 13] = a1_13 * t13
                out[1, y, x0 + 14] = a1_14 * t14
                out[1, y, x0 + 15] = a1_15 * t15
                out[2, y, x0 + 0] = a2_0 * t0
                out[2, y, x0 + 1] = a2_1 * t1
                out[2, y, x0 + 2] = a2_2 * t2
                out[2, y, x0 + 3] = a2_3 * t3
                out[2, y, x0 + 4] = a2_4 * t4
                out[2, y, x0 + 5] = a2_5 * t5
                out[2, y, x0 + 6] = a2_6 * t6
                out[2, y, x0 + 7] = a2_7 * t7
                out[2, y, x0 + 8] = a2_8 * t8
                out[2, y, x0 + 9] = a2_9 * t9
                out[2, y, x0 + 10] = a2_10 * t10
                out[2, y, x0 + 11] = a2_11 * t11
                out[2, y, x0 + 12] = a2_12 * t12
                out[2, y, x0 + 13] = a2_13 * t13
                out[2, y, x0 + 14] = a2_14 * t14
                out[2, y, x0 + 15] = a2_15 * t15
