"""JIT helpers of the layered mode (private): layer extraction and "over" compositing.

Plain loops over a bounding box, working in place on the full-frame accumulator; each
replaces several full-size NumPy temporaries (or a copy of the box).
"""

import numpy as np
from numba import njit

from defocuskit.blur._jit import JIT_OPTIONS

__all__ = ["composite_over", "extract_layer", "fill_hidden", "level_boxes", "unpremultiply"]


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
def fill_hidden(acc, fill, y0, x0):  # pragma: no cover - covered without JIT
    """``acc += (1 - acc.alpha) * fill`` in place on the box of ``fill`` at (y0, x0).

    ``acc`` (H, W, 4) and ``fill`` (h, w, 4) are premultiplied RGBA.
    """
    h, w = fill.shape[0], fill.shape[1]
    for y in range(h):
        for x in range(w):
            t = np.float32(1.0) - acc[y0 + y, x0 + x, 3]
            for c in range(4):
                acc[y0 + y, x0 + x, c] += t * fill[y, x, c]


@njit(**JIT_OPTIONS)
def composite_over(acc, layer, y0, x0):  # pragma: no cover - covered without JIT
    """``acc = layer + (1 - layer.alpha) * acc`` in place on the box of ``layer`` at (y0, x0).

    ``acc`` (H, W, 4) and ``layer`` (h, w, 4) are premultiplied RGBA.
    """
    h, w = layer.shape[0], layer.shape[1]
    for y in range(h):
        for x in range(w):
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
