"""Means with 95 % bootstrap intervals over test scenes and seeds.

A value is given per (seed, test scene); each seed renders its own scenes, so every pair is
a distinct scene. The interval resamples the scenes with replacement *within each seed*
(stratified: every resample keeps each seed's share) and takes the 2.5 and 97.5 percentiles
of the mean over ``n_boot`` resamples (percentile bootstrap). A paired difference between
two arms is the same on their per-scene differences, so scene difficulty cancels.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mean_ci", "paired_ci"]


def mean_ci(values, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """``{"mean", "lo", "hi", "n"}`` of ``values``: a list (one per seed) of per-scene lists."""
    groups = [np.asarray(v, dtype=np.float64) for v in values]
    if not groups or any(g.ndim != 1 or g.size == 0 for g in groups):
        raise ValueError("mean_ci: expected one non-empty list of per-scene values per seed")
    rng = np.random.default_rng(seed)
    total = sum(g.size for g in groups)
    boots = np.zeros(n_boot)
    for g in groups:
        idx = rng.integers(0, g.size, size=(n_boot, g.size))
        boots += g[idx].sum(1)
    boots /= total
    mean = float(np.concatenate(groups).mean())
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"mean": mean, "lo": float(lo), "hi": float(hi), "n": int(total)}


def paired_ci(a, b, **kw) -> dict:
    """:func:`mean_ci` of the per-scene differences ``a - b`` (same seeds and scenes)."""
    diffs = [np.asarray(x, np.float64) - np.asarray(y, np.float64)
             for x, y in zip(a, b, strict=True)]
    return mean_ci(diffs, **kw)
