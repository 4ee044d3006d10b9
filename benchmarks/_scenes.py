"""The benchmark scenes at 640x480 (shared by ``bench_render.py`` and ``layered_levels.py``).

* :func:`scene`: the engine notes' reference scene, ten constant-depth bands;
* :func:`realistic_scene`: ``room`` (a procedural indoor room) and ``motorcycle`` (the
  real Middlebury 2014 Motorcycle), with the ``2hded`` camera's thin-lens sigma scaled to a
  sigma max; :func:`without_runs` takes every equal-sigma run out of a sigma map.
"""

from __future__ import annotations

import numpy as np

from defocuskit.blur._scatter_kernels import RUN_MIN
from defocuskit.camera.presets import get_preset

H, W = 480, 640
REALISTIC = {"room": 2.0, "motorcycle": 3.0}  # scene -> focus distance (m)


def scene(sigma_max: float):
    """The reference scene of the engine notes, sigma scaled so that its maximum is ``sigma_max``.

    Textured image; depth in ten horizontal bands from 10 m (top) to 1.2 m (bottom),
    geometrically spaced, through the 2 m focus plane; a near object at 0.7 m (the
    largest sigma) and a far box at 6 m. At sigma max 8 px: mean sigma 2.5 px and, with
    the kernel radius ceil(3 sigma), about 396 taps per pixel (both written to the JSON).
    """
    rng = np.random.default_rng(0)
    img = rng.random((H, W, 3), dtype=np.float32)
    bands = np.geomspace(10.0, 1.2, 10)
    depth = bands[(np.arange(H) * bands.size // H)][:, None].repeat(W, 1)
    depth[H - 120:H - 40, 40:280] = 0.7  # near object
    depth[60:200, 380:560] = 6.0  # far box
    cam = get_preset("2hded").make(image_width=W, rng=rng).with_focus(2.0)
    sigma = cam.sigma_px(depth)
    return img, (sigma * sigma_max / sigma.max()).astype(np.float32), depth


def without_runs(sigma: np.ndarray) -> np.ndarray:
    """``sigma`` plus noise below 1e-3 px: no two neighbours equal (scatter's worst case)."""
    noise = np.random.default_rng(1).uniform(0, 1e-3, sigma.shape).astype(np.float32)
    return sigma + noise


def scene_stats(sigma: np.ndarray) -> dict:
    """Mean sigma (px) and mean taps per pixel of the exact gather, (2 ceil(3 sigma) + 1)^2."""
    r = np.ceil(3.0 * sigma.astype(np.float64))
    taps = float(((2 * r + 1) ** 2).mean())
    return {"mean_sigma_px": float(sigma.mean()), "taps_per_pixel": taps}


def run_fraction(sigma: np.ndarray) -> float:
    """Share of pixels in a row run of >= RUN_MIN equal sigmas (scatter's separable path)."""
    h, w = sigma.shape
    n = 0
    for row in sigma:
        change = np.flatnonzero(row[1:] != row[:-1]) + 1
        edges = np.concatenate(([0], change, [w]))
        lengths = np.diff(edges)
        n += int(lengths[lengths >= RUN_MIN].sum())
    return n / (h * w)


_BASE: dict = {}


def realistic_base(name: str):
    """``(img float32 in [0, 1], depth metres)`` of a realistic scene at 640x480 (cached)."""
    if name in _BASE:
        return _BASE[name]
    from defocuskit.sources import get_source

    if name == "room":
        s = get_source("procedural", None, height=H, width=W, n_train=1, n_test=0).read("train", 0)
        img, depth = s.aif, s.depth.astype(np.float64)
    elif name == "motorcycle":
        import cv2

        from defocuskit.pipeline.synth import fill_invalid_depth

        s = get_source("middlebury", None).read("test", 0)
        depth = fill_invalid_depth(s.depth.astype(np.float64))
        h0, w0 = depth.shape  # centre crop to 4:3, then resize
        cw = min(w0, round(h0 * W / H))
        x0 = (w0 - cw) // 2
        img = cv2.resize(np.ascontiguousarray(s.aif[:, x0:x0 + cw]), (W, H),
                         interpolation=cv2.INTER_AREA)
        depth = cv2.resize(np.ascontiguousarray(depth[:, x0:x0 + cw]), (W, H),
                           interpolation=cv2.INTER_NEAREST)
    else:
        raise ValueError(name)
    assert img.shape == (H, W, 3) and depth.shape == (H, W) and np.isfinite(depth).all()
    _BASE[name] = (np.ascontiguousarray(img, dtype=np.float32) / np.float32(255.0), depth)
    return _BASE[name]


def realistic_scene(name: str, sigma_max: float):
    """``(img, sigma, depth, focus)``: the ``2hded`` camera focused at the scene's focus
    distance, its thin-lens sigma scaled so that the maximum is ``sigma_max``."""
    img, depth = realistic_base(name)
    focus = REALISTIC[name]
    cam = get_preset("2hded").make(image_width=W, rng=np.random.default_rng(0)).with_focus(focus)
    sigma = cam.sigma_px(depth)
    return img, (sigma * sigma_max / sigma.max()).astype(np.float32), depth, focus
