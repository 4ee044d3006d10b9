"""FROZEN BASELINE, not used by defocuskit: ``blur_layered`` as it was at commit 4bf6d1b
(``defocuskit/blur/layered.py``), every level blurred by ``cv2.GaussianBlur`` on a fresh
box, kept only so that ``benchmarks/bench_render.py`` can time the current layered mode
against it side by side in one run. Do not edit. The JIT helpers it used (extraction,
compositing, from ``defocuskit/blur/_layered_kernels.py`` at the same commit) are copied
at the end of this file, so that later engine changes do not reach it.

Original module docstring follows.

Layered mode: occlusion-aware compositing of depth layers, back to front.

The scene is cut into layers of *signed* sigma (negative in front of the focus plane,
positive behind), which is monotonic in depth, so layer order is depth order. Each pixel is
split between its two neighbouring levels with hat weights (levels at most ``max_step``
pixels apart, 0 always a level). Each layer's premultiplied colour and coverage are blurred
with the level's sigma (``cv2.GaussianBlur``, support ``ceil(3 sigma)``; or, for the disc
PSF, ``cv2.filter2D`` with the level's disc; reflect-101, on the layer's bounding box) and
composited "over" what lies behind it. Consequences:

* a blurred foreground spreads over the background (its blurred coverage covers it);
* a sharp foreground keeps its pixels (coverage 1) and the blurred background behind it is
  computed from the background pixels only, so the foreground does not leak into it;
* where a blurred layer in front of the focus plane turns semi-transparent, the background
  it hid is filled first by a normalised blur of what is behind (premultiplied, so colours
  are not darkened), as SYNDOF does for the layers in front of focus;
* the result is divided by the accumulated coverage, so a constant image stays constant.

Approximations: sigma is quantised to the levels; the hidden background's fill covers it
only partly, so just inside a blurred foreground's edge the foreground weighs more than a
lens gives it (up to 0.10 of the step, ``docs/camera_model.md``, "At an occlusion edge").
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from defocuskit.blur._jit import JIT_OPTIONS
from defocuskit.blur.psf import disc_kernel, support_radius

__all__ = ["blur_layered", "estimate_focus_depth", "sigma_levels"]

MAX_LEVEL_STEP_PX = 0.5


def estimate_focus_depth(sigma: np.ndarray, depth: np.ndarray) -> float:
    """Depth (metres) of the sharpest valid pixels: the median depth where sigma is minimal."""
    valid = np.isfinite(depth) & (depth > 0)
    if not valid.any():
        return float("nan")
    s = sigma[valid]
    smin = s.min()
    near_min = s <= smin + 0.02 * (s.max() - smin) + 1e-6
    return float(np.median(depth[valid][near_min]))


def sigma_levels(lo: float, hi: float, *, max_step: float = MAX_LEVEL_STEP_PX) -> np.ndarray:
    """Levels from ``lo <= 0`` to ``hi >= 0`` (pixels, signed), 0 included, steps <= max_step."""
    neg = np.linspace(lo, 0.0, max(2, math.ceil(-lo / max_step) + 1)) if lo < 0 else np.zeros(1)
    pos = np.linspace(0.0, hi, max(2, math.ceil(hi / max_step) + 1)) if hi > 0 else np.zeros(1)
    return np.concatenate([neg[:-1], pos]).astype(np.float64)


def _blur(rgba: np.ndarray, sigma: float, psf: str) -> np.ndarray:
    r = support_radius(sigma, psf)
    if r == 0:
        return rgba.copy()
    import cv2  # here, not at module level: keeps OpenCV off the import (and cold start) path

    # reflect-101 at a box edge only mirrors zeros (the box has a margin of the PSF's
    # support) or the true image border, so blurring the box equals blurring the whole
    # frame there
    if psf == "disc":
        return cv2.filter2D(rgba, -1, disc_kernel(sigma), borderType=cv2.BORDER_REFLECT_101)
    return cv2.GaussianBlur(rgba, (2 * r + 1, 2 * r + 1), sigma, sigmaY=sigma,
                            borderType=cv2.BORDER_REFLECT_101)


def blur_layered(img: np.ndarray, sigma: np.ndarray, depth: np.ndarray, *,
                 focus_distance: float | None = None,
                 max_step: float = MAX_LEVEL_STEP_PX, psf: str = "gaussian") -> np.ndarray:
    """Occlusion-aware layered defocus.

    Parameters
    ----------
    img : (H, W, 3) float32 ndarray, C-contiguous
        Image, any range.
    sigma : (H, W) float32 ndarray, pixels
        Clean sigma map (finite, >= 0, clamped).
    depth : (H, W) float ndarray, metres
        Used for the front/back order only. Invalid depth (NaN, inf, <= 0) puts the pixel
        behind the focus plane with its own sigma (0 for the usual NaN sigma: in focus).
    focus_distance : float, optional
        Focus distance, metres; estimated from sigma and depth when omitted.
    max_step : float
        Largest spacing of sigma levels, pixels.
    psf : {"gaussian", "disc"}
        PSF shape of every layer's blur (:mod:`defocuskit.blur.psf`).

    Returns
    -------
    (H, W, 3) float32 ndarray
    """
    H, W = sigma.shape
    d = np.asarray(depth, dtype=np.float64)
    if focus_distance is None:
        focus_distance = estimate_focus_depth(sigma, d)
    front = np.isfinite(d) & (d > 0) & (d < focus_distance)
    signed = np.where(front, -sigma, sigma).astype(np.float64)
    levels = sigma_levels(float(signed.min()), float(signed.max()), max_step=max_step)
    pos = np.interp(signed, levels, np.arange(levels.size, dtype=np.float64))
    j = np.minimum(np.floor(pos).astype(np.int64), levels.size - 1)
    img = np.ascontiguousarray(img, dtype=np.float32)
    frac = (pos - j).astype(np.float32)
    acc = np.zeros((H, W, 4), np.float32)
    # bounding box of every level's pixels (a pixel feeds levels j and j + 1)
    nlev = levels.size
    ext = np.empty((4, nlev + 1), np.int64)
    level_boxes(np.ascontiguousarray(j), nlev, ext)
    for k in range(nlev - 1, -1, -1):  # far (large signed sigma) to near
        if ext[1, k] < 0:
            continue
        s = abs(float(levels[k]))
        r = support_radius(s, psf)
        y0, y1 = max(ext[0, k] - r, 0), min(ext[1, k] + r + 1, H)
        x0, x1 = max(ext[2, k] - r, 0), min(ext[3, k] + r + 1, W)
        rgba = np.empty((y1 - y0, x1 - x0, 4), np.float32)
        extract_layer(img, j, frac, k, y0, x0, rgba)
        layer = _blur(rgba, s, psf)
        if r > 0 and levels[k] < 0 and acc[y0:y1, x0:x1, 3].min() < 1.0:
            # a blurred layer in front of the focus plane uncovers what it hid: fill that
            # with a normalised blur of what lies behind (premultiplied, so no darkening)
            fill_hidden(acc, _blur(np.ascontiguousarray(acc[y0:y1, x0:x1]), s, psf), y0, x0)
        composite_over(acc, layer, y0, x0)
    out = np.empty((H, W, 3), np.float32)
    unpremultiply(acc, img, out)
    return out


# JIT helpers as they were at commit 4bf6d1b (defocuskit/blur/_layered_kernels.py)


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
