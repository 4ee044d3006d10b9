"""Depth-boundary errors in the style of iBims-1 (Koch et al., "Evaluation of CNN-based
Single-Image Depth Estimation Methods", ECCV-W 2018): how close the predicted depth's edges
lie to the true depth's edges, and how many true edges the prediction recovers.

Both maps are brought to [0, 1] by their own minimum and maximum over the valid pixels
(invalid true-depth pixels take the value of the nearest valid one, so a hole makes no
edge), then edges are found by Canny as iBims-1 does with scikit-image's ``canny``:
Gaussian smoothing of sigma sqrt(2), 3x3 Sobel gradients, non-maximum suppression and
hysteresis between the gradient magnitudes 0.15 and 0.3 (:data:`CANNY`). OpenCV does the
suppression and hysteresis on the gradients scaled to 16-bit integers. Only edge pixels on
valid true depth count. With ``D_true`` (``D_pred``) the Euclidean distance of every pixel
to the nearest true (predicted) edge pixel, in pixels:

- ``edge_acc`` (accuracy) = mean of ``D_true`` over the predicted edge pixels that lie
  within :data:`MAX_DIST` px of a true edge (farther ones are not boundaries of the scene);
- ``edge_comp`` (completeness) = mean of ``D_pred`` over the true edge pixels.

Lower is better for both. When no predicted edge lies within :data:`MAX_DIST` px of a true
edge both are :data:`MAX_DIST` (as in iBims-1); an image without a true edge gives NaN
(left out of the averages).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy import ndimage

__all__ = ["depth_edge_metrics", "depth_edges", "EDGE_KEYS", "CANNY", "MAX_DIST"]

EDGE_KEYS = ("edge_acc", "edge_comp")
CANNY = {"sigma": math.sqrt(2.0), "low": 0.15, "high": 0.3}  # iBims-1's settings
MAX_DIST = 10.0  # pixels: iBims-1's truncation of the accuracy term
_SCALE = 1000.0  # gradients of a [0, 1] map are <= 4 * sqrt(2): 16-bit after scaling


def _normalised(depth: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``depth`` in [0, 1] over ``valid``, the other pixels filled by the nearest valid one."""
    if not valid.all():
        _, (iy, ix) = ndimage.distance_transform_edt(~valid, return_indices=True)
        depth = depth[iy, ix]
    lo, hi = float(depth.min()), float(depth.max())
    return (depth - lo) / (hi - lo) if hi > lo else np.zeros_like(depth)


def depth_edges(depth, valid=None) -> np.ndarray:
    """Boolean Canny edge map of a depth map (``(H, W)``; see the module docstring).

    Parameters
    ----------
    depth : ndarray (H, W)
        Depth (any unit: the map is normalised to [0, 1] first).
    valid : ndarray of bool (H, W), optional
        Pixels to normalise over and to keep edges on; default: the finite ones.
    """
    d = np.asarray(depth, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(f"depth_edges: expected an (H, W) map, got shape {d.shape}")
    valid = np.isfinite(d) if valid is None else np.asarray(valid, bool)
    if not valid.any():
        return np.zeros(d.shape, bool)
    smooth = ndimage.gaussian_filter(_normalised(np.where(valid, d, 0.0), valid),
                                     CANNY["sigma"], mode="nearest")
    grads = [cv2.Sobel(smooth, cv2.CV_64F, dx, dy, ksize=3, borderType=cv2.BORDER_REPLICATE)
             for dx, dy in ((1, 0), (0, 1))]
    gx, gy = (np.round(g * _SCALE).astype(np.int16) for g in grads)
    edges = cv2.Canny(gx, gy, CANNY["low"] * _SCALE, CANNY["high"] * _SCALE, L2gradient=True)
    return (edges > 0) & valid


def depth_edge_metrics(pred, gt) -> dict:
    """``edge_acc`` and ``edge_comp`` (pixels) of a predicted depth map against the true one.

    Parameters
    ----------
    pred, gt : ndarray (H, W) (or (1, H, W))
        Predicted and true depth; ``gt`` pixels are valid when finite and > 0.

    Returns
    -------
    dict[str, float]
        :data:`EDGE_KEYS`; NaN when the true depth has no edge.
    """
    p, g = np.squeeze(np.asarray(pred, np.float64)), np.squeeze(np.asarray(gt, np.float64))
    if p.shape != g.shape or p.ndim != 2:
        raise ValueError(f"depth_edge_metrics: expected two (H, W) maps of one shape, got "
                         f"{np.shape(pred)} and {np.shape(gt)}")
    valid = np.isfinite(g) & (g > 0)
    true_edges = depth_edges(g, valid)
    if not true_edges.any():
        return dict.fromkeys(EDGE_KEYS, math.nan)
    pred_edges = depth_edges(np.where(np.isfinite(p), p, 0.0), valid)
    d_true = ndimage.distance_transform_edt(~true_edges)
    near = pred_edges & (d_true < MAX_DIST)
    if not near.any():
        return dict.fromkeys(EDGE_KEYS, MAX_DIST)
    d_pred = ndimage.distance_transform_edt(~pred_edges)
    return {"edge_acc": float(d_true[near].mean()),
            "edge_comp": float(d_pred[true_edges].mean())}
