"""JIT helpers of the layered mode (private): layer extraction and "over" compositing.

Plain loops over a bounding box; each replaces several full-size NumPy temporaries.
"""

import numpy as np
from numba import njit

from defocuskit.render._jit import JIT_OPTIONS

__all__ = ["extract_layer", "fill_hidden", "composite_over"]


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
def fill_hidden(tile, fill):  # pragma: no cover - covered without JIT
    """``tile += (1 - tile.alpha) * fill`` in place; both (h, w, 4) premultiplied RGBA."""
    h, w = tile.shape[0], tile.shape[1]
    for y in range(h):
        for x in range(w):
            t = np.float32(1.0) - tile[y, x, 3]
            for c in range(4):
                tile[y, x, c] += t * fill[y, x, c]


@njit(**JIT_OPTIONS)
def composite_over(tile, layer):  # pragma: no cover - covered without JIT
    """``tile = layer + (1 - layer.alpha) * tile`` in place; (h, w, 4) premultiplied RGBA."""
    h, w = tile.shape[0], tile.shape[1]
    for y in range(h):
        for x in range(w):
            t = np.float32(1.0) - layer[y, x, 3]
            for c in range(4):
                tile[y, x, c] = layer[y, x, c] + t * tile[y, x, c]
