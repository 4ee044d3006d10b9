"""Evaluation metrics of 2HDED:NET (paper section III-E): depth errors and image quality.

Depth: RMSE (m), Abs.Rel, mean |log10| error, and the threshold accuracies
delta_k = share of pixels with ``max(p/g, g/p) < 1.25**k``, all over valid ground truth only.
Make3D reports errors on two depth ranges, ``MAKE3D_RANGES`` (C1: gt <= 70 m, C2: <= 80 m),
selected with ``max_depth``. Images: PSNR (dB) and SSIM over [0, 1].

All sums run in float64 on the CPU (numpy), whatever the input's device and dtype.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from trainer.losses import ssim

__all__ = ["depth_metrics", "image_metrics", "MetricAccumulator", "MAKE3D_RANGES", "DEPTH_KEYS"]

MAKE3D_RANGES = {"c1": 70.0, "c2": 80.0}
DEPTH_KEYS = ("rmse", "abs_rel", "log10", "delta1", "delta2", "delta3")


def _to_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().to("cpu", torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def depth_metrics(pred, gt, *, min_depth: float = 1e-3, max_depth: float | None = None) -> dict:
    """Depth errors over the valid ground-truth pixels.

    Parameters
    ----------
    pred, gt : ndarray or Tensor, any equal shape
        Predicted and true depth, metres. ``gt`` pixels are valid when finite,
        ``> min_depth`` and (if given) ``<= max_depth``. Predictions are clipped below at
        ``min_depth`` so that ratios and logarithms stay defined.
    min_depth : float
        Smallest valid depth, metres.
    max_depth : float, optional
        Largest valid depth, metres (e.g. ``MAKE3D_RANGES["c1"]``).

    Returns
    -------
    dict[str, float]
        ``rmse`` (m), ``abs_rel``, ``log10``, ``delta1``, ``delta2``, ``delta3`` (fractions in
        [0, 1]) and ``n_pixels``; the errors are NaN when no pixel is valid.
    """
    p, g = _to_numpy(pred), _to_numpy(gt)
    if p.shape != g.shape:
        raise ValueError(f"depth_metrics: shapes differ: pred {p.shape} vs gt {g.shape}")
    valid = np.isfinite(g) & (g > min_depth)
    if max_depth is not None:
        valid &= g <= max_depth
    n = int(valid.sum())
    if n == 0:
        return {k: math.nan for k in DEPTH_KEYS} | {"n_pixels": 0}
    p = np.maximum(p[valid], min_depth)
    g = g[valid]
    ratio = np.maximum(p / g, g / p)
    return {
        "rmse": float(np.sqrt(np.mean((p - g) ** 2))),
        "abs_rel": float(np.mean(np.abs(p - g) / g)),
        "log10": float(np.mean(np.abs(np.log10(p) - np.log10(g)))),
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25**2)),
        "delta3": float(np.mean(ratio < 1.25**3)),
        "n_pixels": n,
    }


def _as_batch(a) -> torch.Tensor:
    t = a.detach() if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))
    t = t.to("cpu", torch.float64)
    if t.ndim == 2:
        return t[None, None]
    if t.ndim == 3:
        return t[None]
    if t.ndim == 4:
        return t
    raise ValueError(
        f"image_metrics: expected (H, W), (C, H, W) or (B, C, H, W), got {tuple(t.shape)}"
    )


def image_metrics(pred, gt, *, data_range: float = 1.0) -> dict:
    """PSNR and SSIM of a restored image against its reference.

    Parameters
    ----------
    pred, gt : ndarray or Tensor, (H, W), (C, H, W) or (B, C, H, W)
        Images in ``[0, data_range]``; ``pred`` is clipped to that range first. A batch
        gives the mean of the per-image values.
    data_range : float
        Peak value (1.0 for float images).

    Returns
    -------
    dict[str, float]
        ``psnr`` in dB (``10 log10(range^2 / MSE)``, inf for identical images) and ``ssim``
        (11-tap Gaussian window, sigma 1.5; see :func:`trainer.losses.ssim`).
    """
    p, g = _as_batch(pred), _as_batch(gt)
    if p.shape != g.shape:
        raise ValueError(f"image_metrics: shapes differ: {tuple(p.shape)} vs {tuple(g.shape)}")
    p = p.clamp(0.0, data_range)
    mse = ((p - g) ** 2).mean(dim=(1, 2, 3))
    psnr = 10 * torch.log10(data_range**2 / mse)  # inf where mse == 0
    s = ssim(p, g, data_range=data_range, reduction="image")
    return {"psnr": float(psnr.mean()), "ssim": float(s.mean())}


class MetricAccumulator:
    """Average per-image metrics over a dataset.

    Every metric is computed per image, then averaged over images with equal weight (the
    usual NYU-v2 protocol), so a small image counts as much as a large one. Images with no
    valid depth pixel are left out of the depth averages only.

    Parameters
    ----------
    max_depth : float, optional
        Upper depth limit, metres (``MAKE3D_RANGES["c1"]`` for Make3D C1).
    min_depth : float
        Lower depth limit, metres.
    """

    def __init__(self, *, max_depth: float | None = None, min_depth: float = 1e-3) -> None:
        self.max_depth = max_depth
        self.min_depth = min_depth
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self.n_images = 0

    def _add(self, values: dict) -> None:
        for k, v in values.items():
            if k == "n_pixels" or (k in DEPTH_KEYS and not math.isfinite(v)):
                continue
            self._sums[k] = self._sums.get(k, 0.0) + v
            self._counts[k] = self._counts.get(k, 0) + 1

    def update(self, pred: dict, target: dict) -> None:
        """Add one batch: ``pred``/``target`` dicts of (B, C, H, W) ``depth`` (m), ``aif``."""
        batch = None
        for head in ("depth", "aif"):
            if head in pred and head in target:
                batch = pred[head].shape[0]
        if batch is None:
            raise ValueError(
                f"MetricAccumulator.update: no head in both pred {sorted(pred)} and target "
                f"{sorted(target)}"
            )
        for i in range(batch):
            if "depth" in pred and "depth" in target:
                self._add(
                    depth_metrics(
                        pred["depth"][i],
                        target["depth"][i],
                        min_depth=self.min_depth,
                        max_depth=self.max_depth,
                    )
                )
            if "aif" in pred and "aif" in target:
                self._add(image_metrics(pred["aif"][i], target["aif"][i]))
            self.n_images += 1

    def compute(self) -> dict[str, float]:
        """Means over images, plus ``n_images``."""
        out = {k: self._sums[k] / self._counts[k] for k in self._sums}
        out["n_images"] = self.n_images
        return out

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self.__init__(max_depth=self.max_depth, min_depth=self.min_depth)
