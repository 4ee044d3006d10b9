"""JIT helpers of the layered mode (private): layer extraction, blur, "over" compositing.

Plain loops over a bounding box, working in place on the full-frame accumulator; each
replaces several full-size NumPy temporaries (or a copy of the box).

:func:`blur_columns` then :func:`blur_rows` are the layers' separable Gaussian (the same
truncated, normalised 1-D weights as ``cv2.getGaussianKernel`` and the same reflect-101
border as ``cv2.GaussianBlur``; equal to it within float32 rounding, about twice as fast on
a 640x480 RGBA frame at sigma 8 on the machine of ``docs/benchmarks.md``). An RGBA row is
treated as one flat row of ``4 W`` floats: the vertical pass adds whole rows, the horizontal
pass adds the row shifted by ``4 d`` floats (d pixels), so both passes are the same
contiguous multiply-add over :data:`BLUR_LANES` floats at a time, held on the stack, with
unsigned indices and loads kept in their own lane loops so that LLVM vectorises them (the
rules found for the gather kernel, ``_gather_kernels``). Both are compiled with both
vectorisers on (``compile_kernel(..., simd="slp+loop")``); each pass deals its column groups
or rows to threads (``_jit.run_threads``).
"""

import numpy as np
from numba import njit

from defocuskit.blur._jit import JIT_OPTIONS, stack_array

__all__ = ["BLUR_COLUMNS_SIGNATURE", "BLUR_LANES", "BLUR_ROWS_SIGNATURE", "NEEDED_SIGNATURE",
           "blur_columns", "blur_rows", "composite_over", "extract_layer", "fill_hidden",
           "level_boxes", "needed_groups", "unpremultiply"]

BLUR_LANES = 64  # floats per SIMD group of the blur passes (16 RGBA pixels); change and measure
# (AVX2 host, layered on the Motorcycle: 32 floats 1.6-2.1x slower, 128 floats
# 4-7 % slower than 64)
BLUR_COLUMNS_SIGNATURE = ("void(int64, int64, float32[::1], int64, int64, int64, int64, "
                          "float32[::1], int64, float32[::1], boolean[:, ::1])")
BLUR_ROWS_SIGNATURE = ("void(int64, int64, float32[::1], int64, int64, float32[::1], int64, "
                       "float32[:, ::1], float32[::1], boolean[:, ::1], boolean[:, ::1])")
NEEDED_SIGNATURE = ("void(float32[:, :, ::1], int64, int64, int64, int64, int64, "
                    "boolean[:, ::1], boolean[:, ::1])")
_UBLUR = np.uint64(BLUR_LANES)


@njit(forceinline=True, **JIT_OPTIONS)
def _reflect101(i, n):  # pragma: no cover - covered without JIT
    """Index ``i`` mirrored into ``[0, n)`` without repeating the edge (cv2's REFLECT_101)."""
    if n == 1:
        return 0
    while i < 0 or i >= n:
        if i < 0:
            i = -i
        if i >= n:
            i = 2 * (n - 1) - i
    return i


@njit(forceinline=True, **JIT_OPTIONS)
def _any_nonzero(bits, start, stop):  # pragma: no cover - covered without JIT
    """Whether the floats ``start:stop`` (seen as uint32 ``bits``) hold a non-zero value
    (-0.0 counts as zero). An OR over the bits, so that LLVM vectorises it."""
    acc = np.uint32(0)
    if stop - start == BLUR_LANES:
        b0 = np.uint64(start)
        for lane in range(_UBLUR):
            acc |= bits[b0 + lane]
    else:
        for i in range(start, stop):
            acc |= bits[i]
    return (acc & np.uint32(0x7FFFFFFF)) != 0


@njit(**JIT_OPTIONS)
def blur_columns(t, nthreads, src, off, stride, h, w, g, r, tmp,
                 needed):  # pragma: no cover - covered without JIT
    """Vertical pass of the separable Gaussian of an (h, w, 4) image, column groups
    ``t, t + nthreads, ...`` of :data:`BLUR_LANES` floats, into the flat (h, 4 w) ``tmp``.

    Row y of the image is ``src[off + y stride:][:4 w]`` (a box of a larger flat image, or a
    flat image of its own with ``stride = 4 w``). ``src`` and ``tmp`` hold at least
    :data:`BLUR_LANES` floats past the last row (the last lane group of a row reads past
    the row's end); ``g[d]`` (d = 0 .. r) is one side of the normalised,
    symmetric 1-D kernel. A layer is mostly zeros, so the pass skips the rows of a group
    that are all zero (adding them would add exact zeros: the result is the same bits).
    Only the groups with ``needed[y, grp]`` are computed (the others are left as they were).
    """
    n = w * 4
    acc = stack_array(BLUR_LANES, np.float32)
    va = stack_array(BLUR_LANES, np.float32)
    vb = stack_array(BLUR_LANES, np.float32)
    groups = (n + BLUR_LANES - 1) // BLUR_LANES
    bits = src.view(np.uint32)
    filled = np.empty(h, np.bool_)  # row y of this group has a non-zero value
    count = np.empty(h + 1, np.int64)  # filled rows before y
    # tmp row y = sum over d of g[d] (row y - d + row y + d); column groups outermost, so the
    # 2 r + 1 rows of one group stay in the L1 cache
    for grp in range(t, groups, nthreads):
        c0 = grp * BLUR_LANES
        valid = min(BLUR_LANES, n - c0)
        count[0] = 0
        for y in range(h):
            filled[y] = _any_nonzero(bits, off + y * stride + c0, off + y * stride + c0 + valid)
            count[y + 1] = count[y] + filled[y]
        for y in range(h):
            if not needed[y, grp]:
                continue
            b0 = np.uint64(y * n + c0)
            if count[min(y + r + 1, h)] == count[max(y - r, 0)]:
                # nothing within reach (reflected rows lie inside the clamped window too)
                if valid == BLUR_LANES:
                    for lane in range(_UBLUR):
                        tmp[b0 + lane] = 0.0
                else:
                    for lane in range(valid):
                        tmp[b0 + lane] = 0.0
                continue
            s0 = np.uint64(off + y * stride + c0)
            for lane in range(_UBLUR):
                acc[lane] = g[0] * src[s0 + lane]
            for d in range(1, r + 1):
                ya = _reflect101(y - d, h)
                yb = _reflect101(y + d, h)
                if not (filled[ya] or filled[yb]):
                    continue
                ba = np.uint64(off + ya * stride + c0)
                bb = np.uint64(off + yb * stride + c0)
                gd = g[d]
                for lane in range(_UBLUR):
                    va[lane] = src[ba + lane]
                for lane in range(_UBLUR):
                    vb[lane] = src[bb + lane]
                for lane in range(_UBLUR):
                    acc[lane] += gd * (va[lane] + vb[lane])
            if valid == BLUR_LANES:
                for lane in range(_UBLUR):
                    tmp[b0 + lane] = acc[lane]
            else:  # the row's last group: lanes past its end belong to the next row
                for lane in range(valid):
                    tmp[b0 + lane] = acc[lane]


@njit(forceinline=True, **JIT_OPTIONS)
def _load_row(tmp, yn, w, r, row, bits, filled, count):  # pragma: no cover - without JIT
    """Row ``tmp[yn:yn + 4 w]`` into ``row`` from float ``4 r`` with r reflected pixels each
    side; ``filled[i]``: cell i (``BLUR_LANES`` floats) of the copy holds a non-zero value,
    ``count[i]``: filled cells before cell i (``bits`` is ``row`` as uint32)."""
    n = 4 * w
    c0 = 4 * r
    m = c0 + n + c0
    row[c0:c0 + n] = tmp[yn:yn + n]
    for x in range(1, r + 1):
        xl = 4 * _reflect101(-x, w)
        xr = 4 * _reflect101(w - 1 + x, w)
        for c in range(4):
            row[c0 - 4 * x + c] = tmp[yn + xl + c]
            row[c0 + n + 4 * (x - 1) + c] = tmp[yn + xr + c]
    count[0] = 0
    for i in range(filled.shape[0]):
        lo = i * BLUR_LANES
        filled[i] = lo < m and _any_nonzero(bits, lo, min(lo + BLUR_LANES, m))
        count[i + 1] = count[i] + filled[i]


@njit(**JIT_OPTIONS)
def blur_rows(t, nthreads, tmp, h, w, g, r, rows, out, needed,
              written):  # pragma: no cover - covered without JIT
    """Horizontal pass over rows ``t, t + nthreads, ...`` of the vertical pass's ``tmp`` into
    ``out`` (at least ``4 h w`` floats); ``rows`` (nthreads, >= 4 (w + 2 r) + BLUR_LANES) is
    each thread's copy of a row with r reflected pixels each side. Skips the shifted copies
    that lie in all-zero stretches of the row (exact, as in :func:`blur_columns`); computes
    only the groups with ``needed[y, grp]``, whose inputs the vertical pass must have
    computed (``needed`` grown by the reach of the kernel, :func:`needed_groups`).
    ``written[y, grp]`` is set where the group's output may be non-zero (False where it was
    written as zeros or not computed)."""
    n = w * 4
    acc = stack_array(BLUR_LANES, np.float32)
    va = stack_array(BLUR_LANES, np.float32)
    vb = stack_array(BLUR_LANES, np.float32)
    groups = (n + BLUR_LANES - 1) // BLUR_LANES
    c0 = 4 * r
    m = c0 + n + c0  # floats of the row copy that are written
    cells = (m + 2 * BLUR_LANES - 1) // BLUR_LANES  # one more: reads reach past the end
    filled = np.zeros(cells, np.bool_)  # cell i = row[i L:(i + 1) L] has a non-zero value
    count = np.empty(cells + 1, np.int64)
    row = rows[t]
    bits = row.view(np.uint32)
    for y in range(t, h, nthreads):
        wanted = False
        for grp in range(groups):
            wanted |= needed[y, grp]
        if not wanted:
            for grp in range(groups):
                written[y, grp] = False
            continue
        yn = y * n
        _load_row(tmp, yn, w, r, row, bits, filled, count)
        for grp in range(groups):
            written[y, grp] = False
            if not needed[y, grp]:
                continue
            valid = min(BLUR_LANES, n - grp * BLUR_LANES)
            start = c0 + grp * BLUR_LANES
            b0 = np.uint64(start)
            ob = np.uint64(yn + grp * BLUR_LANES)
            first, last = (start - c0) // BLUR_LANES, (start + BLUR_LANES - 1 + c0) // BLUR_LANES
            if count[last + 1] == count[first]:  # every tap reads zeros
                if valid == BLUR_LANES:
                    for lane in range(_UBLUR):
                        out[ob + lane] = 0.0
                else:
                    for lane in range(valid):
                        out[ob + lane] = 0.0
                continue
            for lane in range(_UBLUR):
                acc[lane] = g[0] * row[b0 + lane]
            for d in range(1, r + 1):
                sa, sb = start - 4 * d, start + 4 * d
                if not (filled[sa // BLUR_LANES] or filled[(sa + BLUR_LANES - 1) // BLUR_LANES]
                        or filled[sb // BLUR_LANES]
                        or filled[(sb + BLUR_LANES - 1) // BLUR_LANES]):
                    continue
                ba = np.uint64(sa)
                bb = np.uint64(sb)
                gd = g[d]
                for lane in range(_UBLUR):
                    va[lane] = row[ba + lane]
                for lane in range(_UBLUR):
                    vb[lane] = row[bb + lane]
                for lane in range(_UBLUR):
                    acc[lane] += gd * (va[lane] + vb[lane])
            written[y, grp] = True
            if valid == BLUR_LANES:
                for lane in range(_UBLUR):
                    out[ob + lane] = acc[lane]
            else:
                for lane in range(valid):
                    out[ob + lane] = acc[lane]


@njit(**JIT_OPTIONS)
def needed_groups(acc, y0, x0, h, w, reach, needed_out, needed_tmp):  # pragma: no cover
    """Which lane groups of the hidden-background fill's blur over the (h, w) box at
    (y0, x0) of ``acc`` are needed: ``needed_out[y, grp]`` where a pixel of the group is not
    exactly covered (alpha != 1: the fill is added there), ``needed_tmp`` the same grown by
    ``reach`` groups each side (what the vertical pass must compute for those)."""
    groups = (4 * w + BLUR_LANES - 1) // BLUR_LANES
    px = BLUR_LANES // 4
    for y in range(h):
        for grp in range(groups):
            hole = False
            for x in range(grp * px, min((grp + 1) * px, w)):
                if acc[y0 + y, x0 + x, 3] != 1.0:  # also a rounding above 1
                    hole = True
                    break
            needed_out[y, grp] = hole
        for grp in range(groups):
            grown = False
            for k in range(max(grp - reach, 0), min(grp + reach + 1, groups)):
                if needed_out[y, k]:
                    grown = True
                    break
            needed_tmp[y, grp] = grown


@njit(**JIT_OPTIONS)
def extract_layer(img, j, frac, k, y0, x0, out):  # pragma: no cover - covered without JIT
    """Premultiplied RGBA of level ``k`` over the box at (y0, x0) of shape ``out.shape[:2]``.

    A pixel with level index ``j`` and fraction ``frac`` gives weight ``1 - frac`` to level
    ``j`` and ``frac`` to level ``j + 1``. ``img`` (H, W, 3) float32, ``out`` (h, w, 4).
    """
    h, w = out.shape[0], out.shape[1]
    for y in range(h):
        for x in range(w):
            jj = j[y0 + y, x0 + x]
            f = frac[y0 + y, x0 + x]
            m = np.float32(0.0)
            if jj == k:
                m = np.float32(1.0) - f
            elif jj == k - 1:
                m = f
            for c in range(3):
                out[y, x, c] = img[y0 + y, x0 + x, c] * m
            out[y, x, 3] = m


@njit(**JIT_OPTIONS)
def level_boxes(j, nlev, ext):  # pragma: no cover - covered without JIT
    """Bounding box of every level's pixels; a pixel with level index ``j`` feeds j and j + 1.

    ``ext`` (4, nlev + 1) int64 receives (y min, y max, x min, x max) per level; a level
    without pixels keeps (H, -1, W, -1).
    """
    H, W = j.shape
    for k in range(nlev + 1):
        ext[0, k] = H
        ext[1, k] = -1
        ext[2, k] = W
        ext[3, k] = -1
    for y in range(H):
        for x in range(W):
            jj = j[y, x]
            for k in (jj, jj + 1):
                ext[0, k] = min(ext[0, k], y)
                ext[1, k] = max(ext[1, k], y)
                ext[2, k] = min(ext[2, k], x)
                ext[3, k] = max(ext[3, k], x)


@njit(**JIT_OPTIONS)
def fill_hidden(acc, fill, y0, x0, groups):  # pragma: no cover - covered without JIT
    """``acc += (1 - acc.alpha) * fill`` in place on the box of ``fill`` at (y0, x0).

    ``acc`` (H, W, 4) and ``fill`` (h, w, 4) are premultiplied RGBA. Only the 16-pixel
    groups of the box with ``groups[y, grp]`` are visited (the others are exactly covered:
    they would add 0).
    """
    h, w = fill.shape[0], fill.shape[1]
    px = BLUR_LANES // 4
    for y in range(h):
        for grp in range((w + px - 1) // px):
            if not groups[y, grp]:
                continue
            for x in range(grp * px, min((grp + 1) * px, w)):
                t = np.float32(1.0) - acc[y0 + y, x0 + x, 3]
                for c in range(4):
                    acc[y0 + y, x0 + x, c] += t * fill[y, x, c]


@njit(**JIT_OPTIONS)
def composite_over(acc, layer, y0, x0, groups):  # pragma: no cover - covered without JIT
    """``acc = layer + (1 - layer.alpha) * acc`` in place on the box of ``layer`` at (y0, x0).

    ``acc`` (H, W, 4) and ``layer`` (h, w, 4) are premultiplied RGBA. Only the 16-pixel
    groups of the box with ``groups[y, grp]`` are visited (the others are exactly zero in
    ``layer``: compositing them changes nothing).
    """
    h, w = layer.shape[0], layer.shape[1]
    px = BLUR_LANES // 4
    for y in range(h):
        for grp in range((w + px - 1) // px):
            if not groups[y, grp]:
                continue
            for x in range(grp * px, min((grp + 1) * px, w)):
                t = np.float32(1.0) - layer[y, x, 3]
                for c in range(4):
                    acc[y0 + y, x0 + x, c] = layer[y, x, c] + t * acc[y0 + y, x0 + x, c]


@njit(**JIT_OPTIONS)
def unpremultiply(acc, img, out):  # pragma: no cover - covered without JIT
    """``out = acc.rgb / acc.alpha`` where alpha > 1e-6, else the input pixel ``img``."""
    H, W = img.shape[0], img.shape[1]
    for y in range(H):
        for x in range(W):
            a = acc[y, x, 3]
            if a > 1e-6:
                for c in range(3):
                    out[y, x, c] = acc[y, x, c] / a
            else:
                for c in range(3):
                    out[y, x, c] = img[y, x, c]
