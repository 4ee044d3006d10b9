"""Blind-zone metric: depth error binned by the distance from the focal plane in dioptres.

A pixel at depth ``d`` in an image focused at ``F`` is ``delta = |1/d - 1/F|`` dioptres
(1/m) from the focal plane; its blur grows with ``delta`` (the thin lens: the circle of
confusion is ``A f / (F - f) * F * delta``). Near the focal plane (``delta`` -> 0) the blur
is below what an image can show, so depth from defocus is blind there, and it should win
over monocular cues away from it. :class:`BlindZoneAccumulator` pools, per ``delta`` bin,
the absolute error ``|d_hat - d|`` (m) and the relative error ``|d_hat - d| / d`` of every
valid pixel (ground truth finite, in ``(min_depth, max_depth]``; predictions floored at
``min_depth`` and, with ``clip``, capped at ``max_depth``, as the main depth metrics).

Bins are ``[e_k, e_{k+1})`` over :data:`DEFAULT_EDGES` (dioptres; the last is open). The
errors are pixel means within a bin, pooled over all images (a bin's images weigh by
their pixel count in it), not image means: a bin may be empty in most images.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["DEFAULT_EDGES", "dioptres_from_focus", "BlindZoneAccumulator"]

DEFAULT_EDGES = (0.0, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, math.inf)


def dioptres_from_focus(depth_m, focus_m) -> np.ndarray:
    """``|1/depth - 1/focus|`` (1/m), elementwise; ``focus_m`` broadcasts against depth."""
    d = np.asarray(depth_m, dtype=np.float64)
    f = np.asarray(focus_m, dtype=np.float64)
    if np.any(~np.isfinite(f)) or np.any(f <= 0):
        raise ValueError(f"blind zone: focus distance must be positive and finite, got {f}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(1.0 / d - 1.0 / f)


class BlindZoneAccumulator:
    """Sums of the depth errors per dioptre bin over batches (module docstring)."""

    def __init__(self, edges=DEFAULT_EDGES, *, min_depth: float = 1e-3,
                 max_depth: float | None = None, clip: bool = True) -> None:
        e = np.asarray(edges, dtype=np.float64)
        if e.ndim != 1 or e.size < 2 or e[0] != 0 or np.any(np.diff(e) <= 0):
            raise ValueError(f"blind zone: edges must rise from 0, got {list(edges)}")
        self.edges, self.min_depth, self.max_depth, self.clip = e, min_depth, max_depth, clip
        n = e.size - 1
        self.abs_sum, self.rel_sum = np.zeros(n), np.zeros(n)
        self.count = np.zeros(n, dtype=np.int64)

    def update(self, pred_m, true_m, focus_m) -> None:
        """Add a batch: (B, 1, H, W) or (B, H, W) predicted and true depth (m, arrays or
        tensors), and the (B,) focus distances (m)."""
        p = _numpy(pred_m).astype(np.float64)
        t = _numpy(true_m).astype(np.float64)
        f = _numpy(focus_m).astype(np.float64).reshape(-1)
        if p.shape != t.shape or p.shape[0] != f.size:
            raise ValueError(f"blind zone: pred {p.shape}, true {t.shape} and focus {f.shape} "
                             "do not match")
        f = f.reshape((-1,) + (1,) * (p.ndim - 1))
        valid = np.isfinite(t) & (t > self.min_depth)
        if self.max_depth is not None:
            valid &= t <= self.max_depth
        p = np.maximum(p, self.min_depth)
        if self.clip and self.max_depth is not None:
            p = np.minimum(p, self.max_depth)
        delta = dioptres_from_focus(np.where(valid, t, 1.0), np.broadcast_to(f, t.shape))
        idx = np.searchsorted(self.edges, delta[valid], side="right") - 1
        err = np.abs(p - t)[valid]
        n = self.count.size
        self.abs_sum += np.bincount(idx, weights=err, minlength=n)[:n]
        self.rel_sum += np.bincount(idx, weights=err / t[valid], minlength=n)[:n]
        self.count += np.bincount(idx, minlength=n)[:n]

    def compute(self) -> dict:
        """``edges_dioptres`` (``None`` = open end), per bin ``mae_m``, ``abs_rel`` (``None``
        for an empty bin) and ``n_pixels``."""
        def mean(s):
            return [float(v / c) if c else None for v, c in zip(s, self.count, strict=True)]

        return {"edges_dioptres": [float(e) if math.isfinite(e) else None for e in self.edges],
                "mae_m": mean(self.abs_sum), "abs_rel": mean(self.rel_sum),
                "n_pixels": [int(c) for c in self.count]}


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)
