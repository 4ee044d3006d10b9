"""Scores of a σ map shared by the self-supervised benchmarks: the textured-pixel mask and
the per-scene MAE over all and over textured pixels."""

from __future__ import annotations

import numpy as np

__all__ = ["TEXTURE_THRESHOLD", "texture_mask", "scene_errors"]

TEXTURE_THRESHOLD = 0.02  # AiF gradient magnitude per pixel ([0, 1] values)


def texture_mask(aif01: np.ndarray, threshold: float = TEXTURE_THRESHOLD) -> np.ndarray:
    """(H, W) bool: AiF gradient magnitude (channel mean, central differences) > threshold."""
    gy, gx = np.gradient(aif01.astype(np.float64).mean(-1))
    return np.hypot(gx, gy) > threshold


def scene_errors(pred: np.ndarray, sigma: np.ndarray, textured: np.ndarray) -> dict:
    """MAE of one σ map over its finite pixels and over the finite textured ones."""
    ok = np.isfinite(sigma)
    err = np.abs(pred.astype(np.float64) - sigma)
    return {"mae_all": float(err[ok].mean()), "mae_textured": float(err[ok & textured].mean())}
