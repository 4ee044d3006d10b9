"""The depth layers of the layered mode: sigma levels, their spacing rule, and each level's
bounding box (:class:`FrameLevels`, which lets a window of a frame be layered exactly as the
whole frame is).

Layers are cut in *signed* sigma (negative in front of the focus plane, positive behind),
monotonic in depth, so layer order is depth order; each pixel is split between its two
neighbouring levels with hat weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from defocuskit.blur._layered_kernels import level_boxes
from defocuskit.blur.psf import support_radius

__all__ = ["MAX_LEVEL_REL_STEP", "MAX_LEVEL_STEP_PX", "FrameLevels", "assign_levels",
           "level_boxes_of", "level_rule", "sigma_levels", "signed_sigma", "window_reach"]

MAX_LEVEL_STEP_PX = 0.5
# Relative level step: beyond 1.25 px of sigma, neighbouring levels are up to 40 % of the
# level apart, the relative step that 0.5 px already is at 1.25 px. Chosen with
# benchmarks/layered_levels.py (docs/camera_model.md, "Layered: level spacing"):
# against uniform 0.5 px steps, on the real Middlebury depth at sigma max 8 17 levels
# instead of 33, 1.6x faster and closer to gather (mean 2.40/255 against 3.17: fewer cuts
# through continuous surfaces); on a plane through focus 1.75 against 1.90; on a plane
# far from focus (sigma 2.8-6 px) 0.99 against 0.61 (coarser quantisation). 0 gives the
# uniform rule of the releases before.
MAX_LEVEL_REL_STEP = 0.4


def signed_sigma(sigma: np.ndarray, depth: np.ndarray, focus_distance: float) -> np.ndarray:
    """Sigma (pixels) signed by the side of the focus plane: negative in front of it.

    Invalid depth (NaN, inf, <= 0) counts as behind the focus plane."""
    d = np.asarray(depth, dtype=np.float64)
    front = np.isfinite(d) & (d > 0) & (d < focus_distance)
    return np.where(front, -sigma, sigma).astype(np.float64)


@dataclass(frozen=True)
class FrameLevels:
    """The sigma levels of a whole frame and each level's bounding box in it.

    A window of the frame rendered with these (``blur_layered(frame_levels=...)``, with
    :meth:`window`) is cut into the same levels and fills the same boxes as the whole
    frame, so its pixels farther than :func:`window_reach` from the window's cut edges
    equal the whole frame's (the hidden-background fill of a level covers the level's
    bounding box, which may lie partly outside the window).
    """

    levels: np.ndarray  # (nlev,) signed sigma, pixels
    boxes: np.ndarray   # (4, nlev + 1) int64: y min, y max, x min, x max (y max < 0: empty)

    @classmethod
    def of(cls, sigma: np.ndarray, depth: np.ndarray, focus_distance: float, *,
           max_step: float = MAX_LEVEL_STEP_PX,
           rel_step: float = MAX_LEVEL_REL_STEP) -> FrameLevels:
        """The levels of the frame's clean ``sigma`` (finite, clamped) and ``depth``."""
        levels, j, _ = assign_levels(signed_sigma(sigma, depth, focus_distance), None,
                                      max_step, rel_step)
        return cls(levels, level_boxes_of(j, levels.size))

    def window(self, y0: int, x0: int, h: int, w: int) -> np.ndarray:
        """The boxes cut to the window ``(y0, x0, h, w)``, in its coordinates."""
        ext = self.boxes.copy()
        ext[0:2] -= y0
        ext[2:4] -= x0
        np.clip(ext[0], 0, None, out=ext[0])
        np.clip(ext[2], 0, None, out=ext[2])
        np.clip(ext[1], None, h - 1, out=ext[1])
        np.clip(ext[3], None, w - 1, out=ext[3])
        empty = (ext[1] < ext[0]) | (ext[3] < ext[2])
        ext[:, empty] = np.array([[h], [-1], [w], [-1]])[:, [0]]
        return ext


def assign_levels(signed: np.ndarray, levels: np.ndarray | None, max_step: float,
                   rel_step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(levels, j, frac)``: each pixel between levels ``j`` and ``j + 1`` (hat weights);
    ``levels`` from the image's own signed range when None (given ones span a whole frame,
    of which the image is a window)."""
    if levels is None:
        levels = sigma_levels(float(signed.min()), float(signed.max()), max_step=max_step,
                              rel_step=rel_step)
    pos = np.interp(signed, levels, np.arange(levels.size, dtype=np.float64))
    j = np.minimum(np.floor(pos).astype(np.int64), levels.size - 1)
    return levels, j, (pos - j).astype(np.float32)


def level_boxes_of(j: np.ndarray, nlev: int) -> np.ndarray:
    """Bounding box of every level's pixels (a pixel feeds levels j and j + 1)."""
    ext = np.empty((4, nlev + 1), np.int64)
    level_boxes(np.ascontiguousarray(j), nlev, ext)
    return ext


def window_reach(lo: float, hi: float, psf: str = "gaussian", *,
                 max_step: float = MAX_LEVEL_STEP_PX,
                 rel_step: float = MAX_LEVEL_REL_STEP) -> int:
    """How far (pixels) the result at a pixel depends on the image around it, for levels
    spanning ``(lo, hi)``.

    A level's blur reaches its support radius; each level in front of the focus plane
    fills the background it uncovers with a blur of what was composited before, so those
    radii add up: ``max r + sum of the front levels' r + 1``. A window grown by this much
    on each side renders its inner part exactly as the whole frame does."""
    levels = sigma_levels(lo, hi, max_step=max_step, rel_step=rel_step)
    radii = [support_radius(abs(float(v)), psf) for v in levels]
    front = sum(r for v, r in zip(levels, radii, strict=True) if v < 0)
    return max(radii) + front + 1


def level_rule() -> dict:
    """The default level spacing, as datasets record it (``max_step_px``, ``rel_step``)."""
    return {"max_step_px": MAX_LEVEL_STEP_PX, "rel_step": MAX_LEVEL_REL_STEP}


def sigma_levels(lo: float, hi: float, *, max_step: float = MAX_LEVEL_STEP_PX,
                 rel_step: float = MAX_LEVEL_REL_STEP) -> np.ndarray:
    """Levels from ``lo <= 0`` to ``hi >= 0`` (pixels, signed), 0 included.

    Steps are at most ``max(max_step, rel_step |level|)``: ``max_step`` near focus,
    relatively spaced far from it; ``rel_step = 0``: uniform steps of at most ``max_step``
    (``benchmarks/layered_levels.py`` measures both).
    """
    if rel_step > 0:
        neg = -_relative_side(-lo, max_step, rel_step)[::-1] if lo < 0 else np.zeros(1)
        pos = _relative_side(hi, max_step, rel_step) if hi > 0 else np.zeros(1)
        return np.concatenate([neg[:-1], pos]).astype(np.float64)
    neg = np.linspace(lo, 0.0, max(2, math.ceil(-lo / max_step) + 1)) if lo < 0 else np.zeros(1)
    pos = np.linspace(0.0, hi, max(2, math.ceil(hi / max_step) + 1)) if hi > 0 else np.zeros(1)
    return np.concatenate([neg[:-1], pos]).astype(np.float64)


def _relative_side(ext: float, max_step: float, rel_step: float) -> np.ndarray:
    """``0 .. ext`` in steps ``max(max_step, rel_step level)``: taken greedily until they
    reach ``ext``, then all scaled by ``ext / last`` (<= 1, so every step still obeys the
    rule) so that the last level is ``ext`` itself."""
    pts = [0.0]
    while pts[-1] < ext:
        pts.append(pts[-1] + max(max_step, rel_step * pts[-1]))
    return np.asarray(pts) * (ext / pts[-1])
