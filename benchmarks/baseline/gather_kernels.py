"""FROZEN BASELINE, not used by defocuskit: the gather kernel as it was at commit c7580f6
(``defocuskit/blur/_gather_kernels.py``), before the lane-loop rewrite, kept only so that
``benchmarks/bench_render.py`` can time the current kernel against it side by side in one
run and check that both give the same output. Do not edit; compile it under the flags it
was written for (``SLP_VECTORIZE=1, LOOP_VECTORIZE=0``).

Original module docstring follows.

JIT kernels of the exact gather blur (private; called by :mod:`defocuskit.blur.gather`).

Each output pixel is a Gaussian average of its neighbourhood with the pixel's *own* sigma,
support ``ceil(3 sigma)`` pixels each side (a square window), weights normalised to sum 1.
The Gaussian is separable, so one pixel needs one 1-D row of weights ``g(d)``, built from a
single ``exp`` by the recurrence ``g(d+1) = g(d) * q(d)``, ``q(d+1) = q(d) * b`` with
``q(1) = a = exp(-1/(2 sigma^2))`` and ``b = a^2``; the 2-D weight is ``g(dy) g(dx)`` and the
normalisation ``1 / (sum g)^2`` is applied once at the end. The ``exp`` itself is taken by
the wrapper for the whole image at once (NumPy's SIMD ``exp``), so the kernel only reads it.

Speed: LANES neighbouring output pixels of a row are computed together, written as
explicit scalar accumulators (one per lane and channel) so that LLVM's SLP vectoriser packs
them into SIMD registers; a lane whose own radius is smaller than the group's largest gets
zero weights outside its radius, so every lane stays exact. The image is planar (3, H, W),
inner indices are unsigned (signed ones make Numba emit wrap-around code that blocks
vectorisation), the group loop is ``range(W // LANES)`` and rows are dealt to threads
alternately (sigma varies with y). Two output rows are computed per group (row y and y + 1,
each with its own weights): they share every image load of the horizontal pass, which is
the bottleneck (the loads, not the FMAs), for ~10-15 % more speed; the image and sigma get
one extra zero-sigma row when the height is odd. A finished row is kept planar (so each
channel's lanes are stored contiguously, which is what SLP packs on; interleaved stores
made it pack across channels instead, 3x slower) and then copied, still in cache, into
the (H, W, 3) output.

The lane-unrolled statements below are deliberate (one line per lane and channel); they
were written out from templates, so every lane line has the same shape.
"""

import math

import numpy as np
from numba import njit, prange

# the flags of defocuskit.blur._jit at that commit
JIT_OPTIONS = {"cache": True, "fastmath": {"contract"}, "boundscheck": False, "nogil": True}

__all__ = ["GATHER_SIGNATURE", "LANES", "PAD_SIGNATURE", "gather_kernel", "pad_planar_kernel"]

LANES = 16
GATHER_SIGNATURE = ("void(float32[:, :, ::1], float32[:, ::1], float32[:, ::1], int64, int64, "
                    "float32[:, :, ::1])")
PAD_SIGNATURE = "void(float32[:, :, ::1], int64, float32[:, :, ::1])"
_TINY = np.float32(1e-18)  # flush weights below this to 0: keeps the recurrence off denormals


@njit(parallel=True, **JIT_OPTIONS)
def pad_planar_kernel(img, pad, out):  # pragma: no cover - covered without JIT
    """(H, W, 3) -> planar (3, H + 2 pad, Wp) with reflect-101 borders (cv2 BORDER_REFLECT_101).

    Columns beyond ``W + 2 pad`` (lane padding on the right) continue the reflection.
    Needs ``pad < H`` and ``Wp - W - pad < W`` (a single reflection per side).
    """
    H, W = img.shape[0], img.shape[1]
    Hp, Wp = out.shape[1], out.shape[2]
    for yp in prange(Hp):
        y = yp - pad
        y = -y if y < 0 else (2 * H - 2 - y if y >= H else y)
        for xp in range(Wp):
            x = xp - pad
            x = -x if x < 0 else (2 * W - 2 - x if x >= W else x)
            out[0, yp, xp] = img[y, x, 0]
            out[1, yp, xp] = img[y, x, 1]
            out[2, yp, xp] = img[y, x, 2]


@njit(**JIT_OPTIONS)
def _gather_thread(src, sigma, alpha, pad, nthreads, t, out):  # pragma: no cover
    """Row pairs ``t, t + nthreads, ...`` of :func:`gather_kernel` (one thread's share).

    Kept out of the ``prange`` body: Numba's parallel passes over this long unrolled
    body made the first compile about 4x slower (138 s against 32 s here).
    """
    Hs, Wg = sigma.shape
    H = out.shape[0]
    W = out.shape[1]
    ngroups = Wg // LANES
    npairs = Hs // 2
    # 1-D weights of the two rows' lanes, tap k at index k + 1; index 0 and 2 R + 2
    # hold 0 so that each row's vertical weights can run over the pair's 2 R + 2 rows
    wta = np.zeros((2 * pad + 3, LANES), np.float32)
    wtb = np.zeros((2 * pad + 3, LANES), np.float32)
    rowa = np.empty((3, Wg), np.float32)  # the finished rows, planar (see module doc)
    rowb = np.empty((3, Wg), np.float32)
    for p in range(t, npairs, nthreads):
        y = 2 * p
        for grp in range(ngroups):
            x0 = grp * LANES
            sa0 = sigma[y, x0 + 0]
            sa1 = sigma[y, x0 + 1]
            sa2 = sigma[y, x0 + 2]
            sa3 = sigma[y, x0 + 3]
            sa4 = sigma[y, x0 + 4]
            sa5 = sigma[y, x0 + 5]
            sa6 = sigma[y, x0 + 6]
            sa7 = sigma[y, x0 + 7]
            sa8 = sigma[y, x0 + 8]
            sa9 = sigma[y, x0 + 9]
            sa10 = sigma[y, x0 + 10]
            sa11 = sigma[y, x0 + 11]
            sa12 = sigma[y, x0 + 12]
            sa13 = sigma[y, x0 + 13]
            sa14 = sigma[y, x0 + 14]
            sa15 = sigma[y, x0 + 15]
            ra0 = math.ceil(np.float32(3.0) * sa0)
            ra1 = math.ceil(np.float32(3.0) * sa1)
            ra2 = math.ceil(np.float32(3.0) * sa2)
            ra3 = math.ceil(np.float32(3.0) * sa3)
            ra4 = math.ceil(np.float32(3.0) * sa4)
            ra5 = math.ceil(np.float32(3.0) * sa5)
            ra6 = math.ceil(np.float32(3.0) * sa6)
            ra7 = math.ceil(np.float32(3.0) * sa7)
            ra8 = math.ceil(np.float32(3.0) * sa8)
            ra9 = math.ceil(np.float32(3.0) * sa9)
            ra10 = math.ceil(np.float32(3.0) * sa10)
            ra11 = math.ceil(np.float32(3.0) * sa11)
            ra12 = math.ceil(np.float32(3.0) * sa12)
            ra13 = math.ceil(np.float32(3.0) * sa13)
            ra14 = math.ceil(np.float32(3.0) * sa14)
            ra15 = math.ceil(np.float32(3.0) * sa15)
            sb0 = sigma[y + 1, x0 + 0]
            sb1 = sigma[y + 1, x0 + 1]
            sb2 = sigma[y + 1, x0 + 2]
            sb3 = sigma[y + 1, x0 + 3]
            sb4 = sigma[y + 1, x0 + 4]
            sb5 = sigma[y + 1, x0 + 5]
            sb6 = sigma[y + 1, x0 + 6]
            sb7 = sigma[y + 1, x0 + 7]
            sb8 = sigma[y + 1, x0 + 8]
            sb9 = sigma[y + 1, x0 + 9]
            sb10 = sigma[y + 1, x0 + 10]
            sb11 = sigma[y + 1, x0 + 11]
            sb12 = sigma[y + 1, x0 + 12]
            sb13 = sigma[y + 1, x0 + 13]
            sb14 = sigma[y + 1, x0 + 14]
            sb15 = sigma[y + 1, x0 + 15]
            rb0 = math.ceil(np.float32(3.0) * sb0)
            rb1 = math.ceil(np.float32(3.0) * sb1)
            rb2 = math.ceil(np.float32(3.0) * sb2)
            rb3 = math.ceil(np.float32(3.0) * sb3)
            rb4 = math.ceil(np.float32(3.0) * sb4)
            rb5 = math.ceil(np.float32(3.0) * sb5)
            rb6 = math.ceil(np.float32(3.0) * sb6)
            rb7 = math.ceil(np.float32(3.0) * sb7)
            rb8 = math.ceil(np.float32(3.0) * sb8)
            rb9 = math.ceil(np.float32(3.0) * sb9)
            rb10 = math.ceil(np.float32(3.0) * sb10)
            rb11 = math.ceil(np.float32(3.0) * sb11)
            rb12 = math.ceil(np.float32(3.0) * sb12)
            rb13 = math.ceil(np.float32(3.0) * sb13)
            rb14 = math.ceil(np.float32(3.0) * sb14)
            rb15 = math.ceil(np.float32(3.0) * sb15)
            rm = max(ra0, ra1, ra2, ra3, ra4, ra5, ra6, ra7)
            rm = max(rm, ra8, ra9, ra10, ra11, ra12, ra13, ra14, ra15)
            rm = max(rm, rb0, rb1, rb2, rb3, rb4, rb5, rb6, rb7)
            rm = max(rm, rb8, rb9, rb10, rb11, rb12, rb13, rb14, rb15)
            R = int(rm)
            q0 = alpha[y, x0 + 0]
            q1 = alpha[y, x0 + 1]
            q2 = alpha[y, x0 + 2]
            q3 = alpha[y, x0 + 3]
            q4 = alpha[y, x0 + 4]
            q5 = alpha[y, x0 + 5]
            q6 = alpha[y, x0 + 6]
            q7 = alpha[y, x0 + 7]
            q8 = alpha[y, x0 + 8]
            q9 = alpha[y, x0 + 9]
            q10 = alpha[y, x0 + 10]
            q11 = alpha[y, x0 + 11]
            q12 = alpha[y, x0 + 12]
            q13 = alpha[y, x0 + 13]
            q14 = alpha[y, x0 + 14]
            q15 = alpha[y, x0 + 15]
            b0 = q0 * q0
            b1 = q1 * q1
            b2 = q2 * q2
            b3 = q3 * q3
            b4 = q4 * q4
            b5 = q5 * q5
            b6 = q6 * q6
            b7 = q7 * q7
            b8 = q8 * q8
            b9 = q9 * q9
            b10 = q10 * q10
            b11 = q11 * q11
            b12 = q12 * q12
            b13 = q13 * q13
            b14 = q14 * q14
            b15 = q15 * q15
            b0 = b0 if b0 > _TINY else np.float32(0.0)
            b1 = b1 if b1 > _TINY else np.float32(0.0)
            b2 = b2 if b2 > _TINY else np.float32(0.0)
            b3 = b3 if b3 > _TINY else np.float32(0.0)
            b4 = b4 if b4 > _TINY else np.float32(0.0)
            b5 = b5 if b5 > _TINY else np.float32(0.0)
            b6 = b6 if b6 > _TINY else np.float32(0.0)
            b7 = b7 if b7 > _TINY else np.float32(0.0)
            b8 = b8 if b8 > _TINY else np.float32(0.0)
            b9 = b9 if b9 > _TINY else np.float32(0.0)
            b10 = b10 if b10 > _TINY else np.float32(0.0)
            b11 = b11 if b11 > _TINY else np.float32(0.0)
            b12 = b12 if b12 > _TINY else np.float32(0.0)
            b13 = b13 if b13 > _TINY else np.float32(0.0)
            b14 = b14 if b14 > _TINY else np.float32(0.0)
            b15 = b15 if b15 > _TINY else np.float32(0.0)
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
            ta0 = np.float32(1.0)
            ta1 = np.float32(1.0)
            ta2 = np.float32(1.0)
            ta3 = np.float32(1.0)
            ta4 = np.float32(1.0)
            ta5 = np.float32(1.0)
            ta6 = np.float32(1.0)
            ta7 = np.float32(1.0)
            ta8 = np.float32(1.0)
            ta9 = np.float32(1.0)
            ta10 = np.float32(1.0)
            ta11 = np.float32(1.0)
            ta12 = np.float32(1.0)
            ta13 = np.float32(1.0)
            ta14 = np.float32(1.0)
            ta15 = np.float32(1.0)
            wta[R + 1, 0] = np.float32(1.0)
            wta[R + 1, 1] = np.float32(1.0)
            wta[R + 1, 2] = np.float32(1.0)
            wta[R + 1, 3] = np.float32(1.0)
            wta[R + 1, 4] = np.float32(1.0)
            wta[R + 1, 5] = np.float32(1.0)
            wta[R + 1, 6] = np.float32(1.0)
            wta[R + 1, 7] = np.float32(1.0)
            wta[R + 1, 8] = np.float32(1.0)
            wta[R + 1, 9] = np.float32(1.0)
            wta[R + 1, 10] = np.float32(1.0)
            wta[R + 1, 11] = np.float32(1.0)
            wta[R + 1, 12] = np.float32(1.0)
            wta[R + 1, 13] = np.float32(1.0)
            wta[R + 1, 14] = np.float32(1.0)
            wta[R + 1, 15] = np.float32(1.0)
            wta[2 * R + 2, 0] = np.float32(0.0)
            wta[2 * R + 2, 1] = np.float32(0.0)
            wta[2 * R + 2, 2] = np.float32(0.0)
            wta[2 * R + 2, 3] = np.float32(0.0)
            wta[2 * R + 2, 4] = np.float32(0.0)
            wta[2 * R + 2, 5] = np.float32(0.0)
            wta[2 * R + 2, 6] = np.float32(0.0)
            wta[2 * R + 2, 7] = np.float32(0.0)
            wta[2 * R + 2, 8] = np.float32(0.0)
            wta[2 * R + 2, 9] = np.float32(0.0)
            wta[2 * R + 2, 10] = np.float32(0.0)
            wta[2 * R + 2, 11] = np.float32(0.0)
            wta[2 * R + 2, 12] = np.float32(0.0)
            wta[2 * R + 2, 13] = np.float32(0.0)
            wta[2 * R + 2, 14] = np.float32(0.0)
            wta[2 * R + 2, 15] = np.float32(0.0)
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
                v0 = g0 if fd <= ra0 else np.float32(0.0)
                v1 = g1 if fd <= ra1 else np.float32(0.0)
                v2 = g2 if fd <= ra2 else np.float32(0.0)
                v3 = g3 if fd <= ra3 else np.float32(0.0)
                v4 = g4 if fd <= ra4 else np.float32(0.0)
                v5 = g5 if fd <= ra5 else np.float32(0.0)
                v6 = g6 if fd <= ra6 else np.float32(0.0)
                v7 = g7 if fd <= ra7 else np.float32(0.0)
                v8 = g8 if fd <= ra8 else np.float32(0.0)
                v9 = g9 if fd <= ra9 else np.float32(0.0)
                v10 = g10 if fd <= ra10 else np.float32(0.0)
                v11 = g11 if fd <= ra11 else np.float32(0.0)
                v12 = g12 if fd <= ra12 else np.float32(0.0)
                v13 = g13 if fd <= ra13 else np.float32(0.0)
                v14 = g14 if fd <= ra14 else np.float32(0.0)
                v15 = g15 if fd <= ra15 else np.float32(0.0)
                wta[R + 1 + d, 0] = v0
                wta[R + 1 + d, 1] = v1
                wta[R + 1 + d, 2] = v2
                wta[R + 1 + d, 3] = v3
                wta[R + 1 + d, 4] = v4
                wta[R + 1 + d, 5] = v5
                wta[R + 1 + d, 6] = v6
                wta[R + 1 + d, 7] = v7
                wta[R + 1 + d, 8] = v8
                wta[R + 1 + d, 9] = v9
                wta[R + 1 + d, 10] = v10
                wta[R + 1 + d, 11] = v11
                wta[R + 1 + d, 12] = v12
                wta[R + 1 + d, 13] = v13
                wta[R + 1 + d, 14] = v14
                wta[R + 1 + d, 15] = v15
                wta[R + 1 - d, 0] = v0
                wta[R + 1 - d, 1] = v1
                wta[R + 1 - d, 2] = v2
                wta[R + 1 - d, 3] = v3
                wta[R + 1 - d, 4] = v4
                wta[R + 1 - d, 5] = v5
                wta[R + 1 - d, 6] = v6
                wta[R + 1 - d, 7] = v7
                wta[R + 1 - d, 8] = v8
                wta[R + 1 - d, 9] = v9
                wta[R + 1 - d, 10] = v10
                wta[R + 1 - d, 11] = v11
                wta[R + 1 - d, 12] = v12
                wta[R + 1 - d, 13] = v13
                wta[R + 1 - d, 14] = v14
                wta[R + 1 - d, 15] = v15
                ta0 += v0 + v0
                ta1 += v1 + v1
                ta2 += v2 + v2
                ta3 += v3 + v3
                ta4 += v4 + v4
                ta5 += v5 + v5
                ta6 += v6 + v6
                ta7 += v7 + v7
                ta8 += v8 + v8
                ta9 += v9 + v9
                ta10 += v10 + v10
                ta11 += v11 + v11
                ta12 += v12 + v12
                ta13 += v13 + v13
                ta14 += v14 + v14
                ta15 += v15 + v15
            q0 = alpha[y + 1, x0 + 0]
            q1 = alpha[y + 1, x0 + 1]
            q2 = alpha[y + 1, x0 + 2]
            q3 = alpha[y + 1, x0 + 3]
            q4 = alpha[y + 1, x0 + 4]
            q5 = alpha[y + 1, x0 + 5]
            q6 = alpha[y + 1, x0 + 6]
            q7 = alpha[y + 1, x0 + 7]
            q8 = alpha[y + 1, x0 + 8]
            q9 = alpha[y + 1, x0 + 9]
            q10 = alpha[y + 1, x0 + 10]
            q11 = alpha[y + 1, x0 + 11]
            q12 = alpha[y + 1, x0 + 12]
            q13 = alpha[y + 1, x0 + 13]
            q14 = alpha[y + 1, x0 + 14]
            q15 = alpha[y + 1, x0 + 15]
            b0 = q0 * q0
            b1 = q1 * q1
            b2 = q2 * q2
            b3 = q3 * q3
            b4 = q4 * q4
            b5 = q5 * q5
            b6 = q6 * q6
            b7 = q7 * q7
            b8 = q8 * q8
            b9 = q9 * q9
            b10 = q10 * q10
            b11 = q11 * q11
            b12 = q12 * q12
            b13 = q13 * q13
            b14 = q14 * q14
            b15 = q15 * q15
            b0 = b0 if b0 > _TINY else np.float32(0.0)
            b1 = b1 if b1 > _TINY else np.float32(0.0)
            b2 = b2 if b2 > _TINY else np.float32(0.0)
            b3 = b3 if b3 > _TINY else np.float32(0.0)
            b4 = b4 if b4 > _TINY else np.float32(0.0)
            b5 = b5 if b5 > _TINY else np.float32(0.0)
            b6 = b6 if b6 > _TINY else np.float32(0.0)
            b7 = b7 if b7 > _TINY else np.float32(0.0)
            b8 = b8 if b8 > _TINY else np.float32(0.0)
            b9 = b9 if b9 > _TINY else np.float32(0.0)
            b10 = b10 if b10 > _TINY else np.float32(0.0)
            b11 = b11 if b11 > _TINY else np.float32(0.0)
            b12 = b12 if b12 > _TINY else np.float32(0.0)
            b13 = b13 if b13 > _TINY else np.float32(0.0)
            b14 = b14 if b14 > _TINY else np.float32(0.0)
            b15 = b15 if b15 > _TINY else np.float32(0.0)
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
            tb0 = np.float32(1.0)
            tb1 = np.float32(1.0)
            tb2 = np.float32(1.0)
            tb3 = np.float32(1.0)
            tb4 = np.float32(1.0)
            tb5 = np.float32(1.0)
            tb6 = np.float32(1.0)
            tb7 = np.float32(1.0)
            tb8 = np.float32(1.0)
            tb9 = np.float32(1.0)
            tb10 = np.float32(1.0)
            tb11 = np.float32(1.0)
            tb12 = np.float32(1.0)
            tb13 = np.float32(1.0)
            tb14 = np.float32(1.0)
            tb15 = np.float32(1.0)
            wtb[R + 1, 0] = np.float32(1.0)
            wtb[R + 1, 1] = np.float32(1.0)
            wtb[R + 1, 2] = np.float32(1.0)
            wtb[R + 1, 3] = np.float32(1.0)
            wtb[R + 1, 4] = np.float32(1.0)
            wtb[R + 1, 5] = np.float32(1.0)
            wtb[R + 1, 6] = np.float32(1.0)
            wtb[R + 1, 7] = np.float32(1.0)
            wtb[R + 1, 8] = np.float32(1.0)
            wtb[R + 1, 9] = np.float32(1.0)
            wtb[R + 1, 10] = np.float32(1.0)
            wtb[R + 1, 11] = np.float32(1.0)
            wtb[R + 1, 12] = np.float32(1.0)
            wtb[R + 1, 13] = np.float32(1.0)
            wtb[R + 1, 14] = np.float32(1.0)
            wtb[R + 1, 15] = np.float32(1.0)
            wtb[2 * R + 2, 0] = np.float32(0.0)
            wtb[2 * R + 2, 1] = np.float32(0.0)
            wtb[2 * R + 2, 2] = np.float32(0.0)
            wtb[2 * R + 2, 3] = np.float32(0.0)
            wtb[2 * R + 2, 4] = np.float32(0.0)
            wtb[2 * R + 2, 5] = np.float32(0.0)
            wtb[2 * R + 2, 6] = np.float32(0.0)
            wtb[2 * R + 2, 7] = np.float32(0.0)
            wtb[2 * R + 2, 8] = np.float32(0.0)
            wtb[2 * R + 2, 9] = np.float32(0.0)
            wtb[2 * R + 2, 10] = np.float32(0.0)
            wtb[2 * R + 2, 11] = np.float32(0.0)
            wtb[2 * R + 2, 12] = np.float32(0.0)
            wtb[2 * R + 2, 13] = np.float32(0.0)
            wtb[2 * R + 2, 14] = np.float32(0.0)
            wtb[2 * R + 2, 15] = np.float32(0.0)
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
                v0 = g0 if fd <= rb0 else np.float32(0.0)
                v1 = g1 if fd <= rb1 else np.float32(0.0)
                v2 = g2 if fd <= rb2 else np.float32(0.0)
                v3 = g3 if fd <= rb3 else np.float32(0.0)
                v4 = g4 if fd <= rb4 else np.float32(0.0)
                v5 = g5 if fd <= rb5 else np.float32(0.0)
                v6 = g6 if fd <= rb6 else np.float32(0.0)
                v7 = g7 if fd <= rb7 else np.float32(0.0)
                v8 = g8 if fd <= rb8 else np.float32(0.0)
                v9 = g9 if fd <= rb9 else np.float32(0.0)
                v10 = g10 if fd <= rb10 else np.float32(0.0)
                v11 = g11 if fd <= rb11 else np.float32(0.0)
                v12 = g12 if fd <= rb12 else np.float32(0.0)
                v13 = g13 if fd <= rb13 else np.float32(0.0)
                v14 = g14 if fd <= rb14 else np.float32(0.0)
                v15 = g15 if fd <= rb15 else np.float32(0.0)
                wtb[R + 1 + d, 0] = v0
                wtb[R + 1 + d, 1] = v1
                wtb[R + 1 + d, 2] = v2
                wtb[R + 1 + d, 3] = v3
                wtb[R + 1 + d, 4] = v4
                wtb[R + 1 + d, 5] = v5
                wtb[R + 1 + d, 6] = v6
                wtb[R + 1 + d, 7] = v7
                wtb[R + 1 + d, 8] = v8
                wtb[R + 1 + d, 9] = v9
                wtb[R + 1 + d, 10] = v10
                wtb[R + 1 + d, 11] = v11
                wtb[R + 1 + d, 12] = v12
                wtb[R + 1 + d, 13] = v13
                wtb[R + 1 + d, 14] = v14
                wtb[R + 1 + d, 15] = v15
                wtb[R + 1 - d, 0] = v0
                wtb[R + 1 - d, 1] = v1
                wtb[R + 1 - d, 2] = v2
                wtb[R + 1 - d, 3] = v3
                wtb[R + 1 - d, 4] = v4
                wtb[R + 1 - d, 5] = v5
                wtb[R + 1 - d, 6] = v6
                wtb[R + 1 - d, 7] = v7
                wtb[R + 1 - d, 8] = v8
                wtb[R + 1 - d, 9] = v9
                wtb[R + 1 - d, 10] = v10
                wtb[R + 1 - d, 11] = v11
                wtb[R + 1 - d, 12] = v12
                wtb[R + 1 - d, 13] = v13
                wtb[R + 1 - d, 14] = v14
                wtb[R + 1 - d, 15] = v15
                tb0 += v0 + v0
                tb1 += v1 + v1
                tb2 += v2 + v2
                tb3 += v3 + v3
                tb4 += v4 + v4
                tb5 += v5 + v5
                tb6 += v6 + v6
                tb7 += v7 + v7
                tb8 += v8 + v8
                tb9 += v9 + v9
                tb10 += v10 + v10
                tb11 += v11 + v11
                tb12 += v12 + v12
                tb13 += v13 + v13
                tb14 += v14 + v14
                tb15 += v15 + v15
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
            b0_0 = np.float32(0.0)
            b0_1 = np.float32(0.0)
            b0_2 = np.float32(0.0)
            b0_3 = np.float32(0.0)
            b0_4 = np.float32(0.0)
            b0_5 = np.float32(0.0)
            b0_6 = np.float32(0.0)
            b0_7 = np.float32(0.0)
            b0_8 = np.float32(0.0)
            b0_9 = np.float32(0.0)
            b0_10 = np.float32(0.0)
            b0_11 = np.float32(0.0)
            b0_12 = np.float32(0.0)
            b0_13 = np.float32(0.0)
            b0_14 = np.float32(0.0)
            b0_15 = np.float32(0.0)
            b1_0 = np.float32(0.0)
            b1_1 = np.float32(0.0)
            b1_2 = np.float32(0.0)
            b1_3 = np.float32(0.0)
            b1_4 = np.float32(0.0)
            b1_5 = np.float32(0.0)
            b1_6 = np.float32(0.0)
            b1_7 = np.float32(0.0)
            b1_8 = np.float32(0.0)
            b1_9 = np.float32(0.0)
            b1_10 = np.float32(0.0)
            b1_11 = np.float32(0.0)
            b1_12 = np.float32(0.0)
            b1_13 = np.float32(0.0)
            b1_14 = np.float32(0.0)
            b1_15 = np.float32(0.0)
            b2_0 = np.float32(0.0)
            b2_1 = np.float32(0.0)
            b2_2 = np.float32(0.0)
            b2_3 = np.float32(0.0)
            b2_4 = np.float32(0.0)
            b2_5 = np.float32(0.0)
            b2_6 = np.float32(0.0)
            b2_7 = np.float32(0.0)
            b2_8 = np.float32(0.0)
            b2_9 = np.float32(0.0)
            b2_10 = np.float32(0.0)
            b2_11 = np.float32(0.0)
            b2_12 = np.float32(0.0)
            b2_13 = np.float32(0.0)
            b2_14 = np.float32(0.0)
            b2_15 = np.float32(0.0)
            ubase = np.uint64(x0 + pad - R)
            uy0 = np.uint64(y + pad - R)
            for ky in range(2 * R + 2):
                yy = uy0 + np.uint64(ky)
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
                k0_0 = np.float32(0.0)
                k0_1 = np.float32(0.0)
                k0_2 = np.float32(0.0)
                k0_3 = np.float32(0.0)
                k0_4 = np.float32(0.0)
                k0_5 = np.float32(0.0)
                k0_6 = np.float32(0.0)
                k0_7 = np.float32(0.0)
                k0_8 = np.float32(0.0)
                k0_9 = np.float32(0.0)
                k0_10 = np.float32(0.0)
                k0_11 = np.float32(0.0)
                k0_12 = np.float32(0.0)
                k0_13 = np.float32(0.0)
                k0_14 = np.float32(0.0)
                k0_15 = np.float32(0.0)
                k1_0 = np.float32(0.0)
                k1_1 = np.float32(0.0)
                k1_2 = np.float32(0.0)
                k1_3 = np.float32(0.0)
                k1_4 = np.float32(0.0)
                k1_5 = np.float32(0.0)
                k1_6 = np.float32(0.0)
                k1_7 = np.float32(0.0)
                k1_8 = np.float32(0.0)
                k1_9 = np.float32(0.0)
                k1_10 = np.float32(0.0)
                k1_11 = np.float32(0.0)
                k1_12 = np.float32(0.0)
                k1_13 = np.float32(0.0)
                k1_14 = np.float32(0.0)
                k1_15 = np.float32(0.0)
                k2_0 = np.float32(0.0)
                k2_1 = np.float32(0.0)
                k2_2 = np.float32(0.0)
                k2_3 = np.float32(0.0)
                k2_4 = np.float32(0.0)
                k2_5 = np.float32(0.0)
                k2_6 = np.float32(0.0)
                k2_7 = np.float32(0.0)
                k2_8 = np.float32(0.0)
                k2_9 = np.float32(0.0)
                k2_10 = np.float32(0.0)
                k2_11 = np.float32(0.0)
                k2_12 = np.float32(0.0)
                k2_13 = np.float32(0.0)
                k2_14 = np.float32(0.0)
                k2_15 = np.float32(0.0)
                for kx in range(2 * R + 1):
                    xx = ubase + np.uint64(kx)
                    ux = np.uint64(kx + 1)
                    w0 = wta[ux, 0]
                    w1 = wta[ux, 1]
                    w2 = wta[ux, 2]
                    w3 = wta[ux, 3]
                    w4 = wta[ux, 4]
                    w5 = wta[ux, 5]
                    w6 = wta[ux, 6]
                    w7 = wta[ux, 7]
                    w8 = wta[ux, 8]
                    w9 = wta[ux, 9]
                    w10 = wta[ux, 10]
                    w11 = wta[ux, 11]
                    w12 = wta[ux, 12]
                    w13 = wta[ux, 13]
                    w14 = wta[ux, 14]
                    w15 = wta[ux, 15]
                    z0 = wtb[ux, 0]
                    z1 = wtb[ux, 1]
                    z2 = wtb[ux, 2]
                    z3 = wtb[ux, 3]
                    z4 = wtb[ux, 4]
                    z5 = wtb[ux, 5]
                    z6 = wtb[ux, 6]
                    z7 = wtb[ux, 7]
                    z8 = wtb[ux, 8]
                    z9 = wtb[ux, 9]
                    z10 = wtb[ux, 10]
                    z11 = wtb[ux, 11]
                    z12 = wtb[ux, 12]
                    z13 = wtb[ux, 13]
                    z14 = wtb[ux, 14]
                    z15 = wtb[ux, 15]
                    s0_0 = src[0, yy, xx + np.uint64(0)]
                    s0_1 = src[0, yy, xx + np.uint64(1)]
                    s0_2 = src[0, yy, xx + np.uint64(2)]
                    s0_3 = src[0, yy, xx + np.uint64(3)]
                    s0_4 = src[0, yy, xx + np.uint64(4)]
                    s0_5 = src[0, yy, xx + np.uint64(5)]
                    s0_6 = src[0, yy, xx + np.uint64(6)]
                    s0_7 = src[0, yy, xx + np.uint64(7)]
                    s0_8 = src[0, yy, xx + np.uint64(8)]
                    s0_9 = src[0, yy, xx + np.uint64(9)]
                    s0_10 = src[0, yy, xx + np.uint64(10)]
                    s0_11 = src[0, yy, xx + np.uint64(11)]
                    s0_12 = src[0, yy, xx + np.uint64(12)]
                    s0_13 = src[0, yy, xx + np.uint64(13)]
                    s0_14 = src[0, yy, xx + np.uint64(14)]
                    s0_15 = src[0, yy, xx + np.uint64(15)]
                    s1_0 = src[1, yy, xx + np.uint64(0)]
                    s1_1 = src[1, yy, xx + np.uint64(1)]
                    s1_2 = src[1, yy, xx + np.uint64(2)]
                    s1_3 = src[1, yy, xx + np.uint64(3)]
                    s1_4 = src[1, yy, xx + np.uint64(4)]
                    s1_5 = src[1, yy, xx + np.uint64(5)]
                    s1_6 = src[1, yy, xx + np.uint64(6)]
                    s1_7 = src[1, yy, xx + np.uint64(7)]
                    s1_8 = src[1, yy, xx + np.uint64(8)]
                    s1_9 = src[1, yy, xx + np.uint64(9)]
                    s1_10 = src[1, yy, xx + np.uint64(10)]
                    s1_11 = src[1, yy, xx + np.uint64(11)]
                    s1_12 = src[1, yy, xx + np.uint64(12)]
                    s1_13 = src[1, yy, xx + np.uint64(13)]
                    s1_14 = src[1, yy, xx + np.uint64(14)]
                    s1_15 = src[1, yy, xx + np.uint64(15)]
                    s2_0 = src[2, yy, xx + np.uint64(0)]
                    s2_1 = src[2, yy, xx + np.uint64(1)]
                    s2_2 = src[2, yy, xx + np.uint64(2)]
                    s2_3 = src[2, yy, xx + np.uint64(3)]
                    s2_4 = src[2, yy, xx + np.uint64(4)]
                    s2_5 = src[2, yy, xx + np.uint64(5)]
                    s2_6 = src[2, yy, xx + np.uint64(6)]
                    s2_7 = src[2, yy, xx + np.uint64(7)]
                    s2_8 = src[2, yy, xx + np.uint64(8)]
                    s2_9 = src[2, yy, xx + np.uint64(9)]
                    s2_10 = src[2, yy, xx + np.uint64(10)]
                    s2_11 = src[2, yy, xx + np.uint64(11)]
                    s2_12 = src[2, yy, xx + np.uint64(12)]
                    s2_13 = src[2, yy, xx + np.uint64(13)]
                    s2_14 = src[2, yy, xx + np.uint64(14)]
                    s2_15 = src[2, yy, xx + np.uint64(15)]
                    h0_0 += w0 * s0_0
                    h0_1 += w1 * s0_1
                    h0_2 += w2 * s0_2
                    h0_3 += w3 * s0_3
                    h0_4 += w4 * s0_4
                    h0_5 += w5 * s0_5
                    h0_6 += w6 * s0_6
                    h0_7 += w7 * s0_7
                    h0_8 += w8 * s0_8
                    h0_9 += w9 * s0_9
                    h0_10 += w10 * s0_10
                    h0_11 += w11 * s0_11
                    h0_12 += w12 * s0_12
                    h0_13 += w13 * s0_13
                    h0_14 += w14 * s0_14
                    h0_15 += w15 * s0_15
                    k0_0 += z0 * s0_0
                    k0_1 += z1 * s0_1
                    k0_2 += z2 * s0_2
                    k0_3 += z3 * s0_3
                    k0_4 += z4 * s0_4
                    k0_5 += z5 * s0_5
                    k0_6 += z6 * s0_6
                    k0_7 += z7 * s0_7
                    k0_8 += z8 * s0_8
                    k0_9 += z9 * s0_9
                    k0_10 += z10 * s0_10
                    k0_11 += z11 * s0_11
                    k0_12 += z12 * s0_12
                    k0_13 += z13 * s0_13
                    k0_14 += z14 * s0_14
                    k0_15 += z15 * s0_15
                    h1_0 += w0 * s1_0
                    h1_1 += w1 * s1_1
                    h1_2 += w2 * s1_2
                    h1_3 += w3 * s1_3
                    h1_4 += w4 * s1_4
                    h1_5 += w5 * s1_5
                    h1_6 += w6 * s1_6
                    h1_7 += w7 * s1_7
                    h1_8 += w8 * s1_8
                    h1_9 += w9 * s1_9
                    h1_10 += w10 * s1_10
                    h1_11 += w11 * s1_11
                    h1_12 += w12 * s1_12
                    h1_13 += w13 * s1_13
                    h1_14 += w14 * s1_14
                    h1_15 += w15 * s1_15
                    k1_0 += z0 * s1_0
                    k1_1 += z1 * s1_1
                    k1_2 += z2 * s1_2
                    k1_3 += z3 * s1_3
                    k1_4 += z4 * s1_4
                    k1_5 += z5 * s1_5
                    k1_6 += z6 * s1_6
                    k1_7 += z7 * s1_7
                    k1_8 += z8 * s1_8
                    k1_9 += z9 * s1_9
                    k1_10 += z10 * s1_10
                    k1_11 += z11 * s1_11
                    k1_12 += z12 * s1_12
                    k1_13 += z13 * s1_13
                    k1_14 += z14 * s1_14
                    k1_15 += z15 * s1_15
                    h2_0 += w0 * s2_0
                    h2_1 += w1 * s2_1
                    h2_2 += w2 * s2_2
                    h2_3 += w3 * s2_3
                    h2_4 += w4 * s2_4
                    h2_5 += w5 * s2_5
                    h2_6 += w6 * s2_6
                    h2_7 += w7 * s2_7
                    h2_8 += w8 * s2_8
                    h2_9 += w9 * s2_9
                    h2_10 += w10 * s2_10
                    h2_11 += w11 * s2_11
                    h2_12 += w12 * s2_12
                    h2_13 += w13 * s2_13
                    h2_14 += w14 * s2_14
                    h2_15 += w15 * s2_15
                    k2_0 += z0 * s2_0
                    k2_1 += z1 * s2_1
                    k2_2 += z2 * s2_2
                    k2_3 += z3 * s2_3
                    k2_4 += z4 * s2_4
                    k2_5 += z5 * s2_5
                    k2_6 += z6 * s2_6
                    k2_7 += z7 * s2_7
                    k2_8 += z8 * s2_8
                    k2_9 += z9 * s2_9
                    k2_10 += z10 * s2_10
                    k2_11 += z11 * s2_11
                    k2_12 += z12 * s2_12
                    k2_13 += z13 * s2_13
                    k2_14 += z14 * s2_14
                    k2_15 += z15 * s2_15
                v0 = wta[ky + 1, 0]
                v1 = wta[ky + 1, 1]
                v2 = wta[ky + 1, 2]
                v3 = wta[ky + 1, 3]
                v4 = wta[ky + 1, 4]
                v5 = wta[ky + 1, 5]
                v6 = wta[ky + 1, 6]
                v7 = wta[ky + 1, 7]
                v8 = wta[ky + 1, 8]
                v9 = wta[ky + 1, 9]
                v10 = wta[ky + 1, 10]
                v11 = wta[ky + 1, 11]
                v12 = wta[ky + 1, 12]
                v13 = wta[ky + 1, 13]
                v14 = wta[ky + 1, 14]
                v15 = wta[ky + 1, 15]
                u0 = wtb[ky, 0]
                u1 = wtb[ky, 1]
                u2 = wtb[ky, 2]
                u3 = wtb[ky, 3]
                u4 = wtb[ky, 4]
                u5 = wtb[ky, 5]
                u6 = wtb[ky, 6]
                u7 = wtb[ky, 7]
                u8 = wtb[ky, 8]
                u9 = wtb[ky, 9]
                u10 = wtb[ky, 10]
                u11 = wtb[ky, 11]
                u12 = wtb[ky, 12]
                u13 = wtb[ky, 13]
                u14 = wtb[ky, 14]
                u15 = wtb[ky, 15]
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
                b0_0 += u0 * k0_0
                b0_1 += u1 * k0_1
                b0_2 += u2 * k0_2
                b0_3 += u3 * k0_3
                b0_4 += u4 * k0_4
                b0_5 += u5 * k0_5
                b0_6 += u6 * k0_6
                b0_7 += u7 * k0_7
                b0_8 += u8 * k0_8
                b0_9 += u9 * k0_9
                b0_10 += u10 * k0_10
                b0_11 += u11 * k0_11
                b0_12 += u12 * k0_12
                b0_13 += u13 * k0_13
                b0_14 += u14 * k0_14
                b0_15 += u15 * k0_15
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
                b1_0 += u0 * k1_0
                b1_1 += u1 * k1_1
                b1_2 += u2 * k1_2
                b1_3 += u3 * k1_3
                b1_4 += u4 * k1_4
                b1_5 += u5 * k1_5
                b1_6 += u6 * k1_6
                b1_7 += u7 * k1_7
                b1_8 += u8 * k1_8
                b1_9 += u9 * k1_9
                b1_10 += u10 * k1_10
                b1_11 += u11 * k1_11
                b1_12 += u12 * k1_12
                b1_13 += u13 * k1_13
                b1_14 += u14 * k1_14
                b1_15 += u15 * k1_15
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
                b2_0 += u0 * k2_0
                b2_1 += u1 * k2_1
                b2_2 += u2 * k2_2
                b2_3 += u3 * k2_3
                b2_4 += u4 * k2_4
                b2_5 += u5 * k2_5
                b2_6 += u6 * k2_6
                b2_7 += u7 * k2_7
                b2_8 += u8 * k2_8
                b2_9 += u9 * k2_9
                b2_10 += u10 * k2_10
                b2_11 += u11 * k2_11
                b2_12 += u12 * k2_12
                b2_13 += u13 * k2_13
                b2_14 += u14 * k2_14
                b2_15 += u15 * k2_15
            ta0 = np.float32(1.0) / (ta0 * ta0)
            ta1 = np.float32(1.0) / (ta1 * ta1)
            ta2 = np.float32(1.0) / (ta2 * ta2)
            ta3 = np.float32(1.0) / (ta3 * ta3)
            ta4 = np.float32(1.0) / (ta4 * ta4)
            ta5 = np.float32(1.0) / (ta5 * ta5)
            ta6 = np.float32(1.0) / (ta6 * ta6)
            ta7 = np.float32(1.0) / (ta7 * ta7)
            ta8 = np.float32(1.0) / (ta8 * ta8)
            ta9 = np.float32(1.0) / (ta9 * ta9)
            ta10 = np.float32(1.0) / (ta10 * ta10)
            ta11 = np.float32(1.0) / (ta11 * ta11)
            ta12 = np.float32(1.0) / (ta12 * ta12)
            ta13 = np.float32(1.0) / (ta13 * ta13)
            ta14 = np.float32(1.0) / (ta14 * ta14)
            ta15 = np.float32(1.0) / (ta15 * ta15)
            rowa[0, x0 + 0] = a0_0 * ta0
            rowa[0, x0 + 1] = a0_1 * ta1
            rowa[0, x0 + 2] = a0_2 * ta2
            rowa[0, x0 + 3] = a0_3 * ta3
            rowa[0, x0 + 4] = a0_4 * ta4
            rowa[0, x0 + 5] = a0_5 * ta5
            rowa[0, x0 + 6] = a0_6 * ta6
            rowa[0, x0 + 7] = a0_7 * ta7
            rowa[0, x0 + 8] = a0_8 * ta8
            rowa[0, x0 + 9] = a0_9 * ta9
            rowa[0, x0 + 10] = a0_10 * ta10
            rowa[0, x0 + 11] = a0_11 * ta11
            rowa[0, x0 + 12] = a0_12 * ta12
            rowa[0, x0 + 13] = a0_13 * ta13
            rowa[0, x0 + 14] = a0_14 * ta14
            rowa[0, x0 + 15] = a0_15 * ta15
            rowa[1, x0 + 0] = a1_0 * ta0
            rowa[1, x0 + 1] = a1_1 * ta1
            rowa[1, x0 + 2] = a1_2 * ta2
            rowa[1, x0 + 3] = a1_3 * ta3
            rowa[1, x0 + 4] = a1_4 * ta4
            rowa[1, x0 + 5] = a1_5 * ta5
            rowa[1, x0 + 6] = a1_6 * ta6
            rowa[1, x0 + 7] = a1_7 * ta7
            rowa[1, x0 + 8] = a1_8 * ta8
            rowa[1, x0 + 9] = a1_9 * ta9
            rowa[1, x0 + 10] = a1_10 * ta10
            rowa[1, x0 + 11] = a1_11 * ta11
            rowa[1, x0 + 12] = a1_12 * ta12
            rowa[1, x0 + 13] = a1_13 * ta13
            rowa[1, x0 + 14] = a1_14 * ta14
            rowa[1, x0 + 15] = a1_15 * ta15
            rowa[2, x0 + 0] = a2_0 * ta0
            rowa[2, x0 + 1] = a2_1 * ta1
            rowa[2, x0 + 2] = a2_2 * ta2
            rowa[2, x0 + 3] = a2_3 * ta3
            rowa[2, x0 + 4] = a2_4 * ta4
            rowa[2, x0 + 5] = a2_5 * ta5
            rowa[2, x0 + 6] = a2_6 * ta6
            rowa[2, x0 + 7] = a2_7 * ta7
            rowa[2, x0 + 8] = a2_8 * ta8
            rowa[2, x0 + 9] = a2_9 * ta9
            rowa[2, x0 + 10] = a2_10 * ta10
            rowa[2, x0 + 11] = a2_11 * ta11
            rowa[2, x0 + 12] = a2_12 * ta12
            rowa[2, x0 + 13] = a2_13 * ta13
            rowa[2, x0 + 14] = a2_14 * ta14
            rowa[2, x0 + 15] = a2_15 * ta15
            tb0 = np.float32(1.0) / (tb0 * tb0)
            tb1 = np.float32(1.0) / (tb1 * tb1)
            tb2 = np.float32(1.0) / (tb2 * tb2)
            tb3 = np.float32(1.0) / (tb3 * tb3)
            tb4 = np.float32(1.0) / (tb4 * tb4)
            tb5 = np.float32(1.0) / (tb5 * tb5)
            tb6 = np.float32(1.0) / (tb6 * tb6)
            tb7 = np.float32(1.0) / (tb7 * tb7)
            tb8 = np.float32(1.0) / (tb8 * tb8)
            tb9 = np.float32(1.0) / (tb9 * tb9)
            tb10 = np.float32(1.0) / (tb10 * tb10)
            tb11 = np.float32(1.0) / (tb11 * tb11)
            tb12 = np.float32(1.0) / (tb12 * tb12)
            tb13 = np.float32(1.0) / (tb13 * tb13)
            tb14 = np.float32(1.0) / (tb14 * tb14)
            tb15 = np.float32(1.0) / (tb15 * tb15)
            rowb[0, x0 + 0] = b0_0 * tb0
            rowb[0, x0 + 1] = b0_1 * tb1
            rowb[0, x0 + 2] = b0_2 * tb2
            rowb[0, x0 + 3] = b0_3 * tb3
            rowb[0, x0 + 4] = b0_4 * tb4
            rowb[0, x0 + 5] = b0_5 * tb5
            rowb[0, x0 + 6] = b0_6 * tb6
            rowb[0, x0 + 7] = b0_7 * tb7
            rowb[0, x0 + 8] = b0_8 * tb8
            rowb[0, x0 + 9] = b0_9 * tb9
            rowb[0, x0 + 10] = b0_10 * tb10
            rowb[0, x0 + 11] = b0_11 * tb11
            rowb[0, x0 + 12] = b0_12 * tb12
            rowb[0, x0 + 13] = b0_13 * tb13
            rowb[0, x0 + 14] = b0_14 * tb14
            rowb[0, x0 + 15] = b0_15 * tb15
            rowb[1, x0 + 0] = b1_0 * tb0
            rowb[1, x0 + 1] = b1_1 * tb1
            rowb[1, x0 + 2] = b1_2 * tb2
            rowb[1, x0 + 3] = b1_3 * tb3
            rowb[1, x0 + 4] = b1_4 * tb4
            rowb[1, x0 + 5] = b1_5 * tb5
            rowb[1, x0 + 6] = b1_6 * tb6
            rowb[1, x0 + 7] = b1_7 * tb7
            rowb[1, x0 + 8] = b1_8 * tb8
            rowb[1, x0 + 9] = b1_9 * tb9
            rowb[1, x0 + 10] = b1_10 * tb10
            rowb[1, x0 + 11] = b1_11 * tb11
            rowb[1, x0 + 12] = b1_12 * tb12
            rowb[1, x0 + 13] = b1_13 * tb13
            rowb[1, x0 + 14] = b1_14 * tb14
            rowb[1, x0 + 15] = b1_15 * tb15
            rowb[2, x0 + 0] = b2_0 * tb0
            rowb[2, x0 + 1] = b2_1 * tb1
            rowb[2, x0 + 2] = b2_2 * tb2
            rowb[2, x0 + 3] = b2_3 * tb3
            rowb[2, x0 + 4] = b2_4 * tb4
            rowb[2, x0 + 5] = b2_5 * tb5
            rowb[2, x0 + 6] = b2_6 * tb6
            rowb[2, x0 + 7] = b2_7 * tb7
            rowb[2, x0 + 8] = b2_8 * tb8
            rowb[2, x0 + 9] = b2_9 * tb9
            rowb[2, x0 + 10] = b2_10 * tb10
            rowb[2, x0 + 11] = b2_11 * tb11
            rowb[2, x0 + 12] = b2_12 * tb12
            rowb[2, x0 + 13] = b2_13 * tb13
            rowb[2, x0 + 14] = b2_14 * tb14
            rowb[2, x0 + 15] = b2_15 * tb15
        for x in range(W):
            out[y, x, 0] = rowa[0, x]
            out[y, x, 1] = rowa[1, x]
            out[y, x, 2] = rowa[2, x]
        if y + 1 < H:
            for x in range(W):
                out[y + 1, x, 0] = rowb[0, x]
                out[y + 1, x, 1] = rowb[1, x]
                out[y + 1, x, 2] = rowb[2, x]


@njit(parallel=True, **JIT_OPTIONS)
def gather_kernel(src, sigma, alpha, pad, nthreads, out):  # pragma: no cover - covered without JIT
    """Exact per-pixel Gaussian gather, two output rows at a time.

    Parameters
    ----------
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
    nthreads : int
        Number of row-pair interleaves (one per thread).
    out : (H, W, 3) float32, ``W <= Wg``, ``H <= Hs``
        Output, overwritten; lanes and rows beyond it are computed and dropped.
    """
    for t in prange(nthreads):
        _gather_thread(src, sigma, alpha, pad, nthreads, t, out)
