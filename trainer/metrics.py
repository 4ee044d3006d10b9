"""Evaluation metrics of 2HDED:NET: depth errors and image quality.

Depth, over the valid ground-truth pixels only (the 2HDED:NET set of Nazir et al., "Depth
Estimation and Image Restoration by Deep Learning From Defocused Images", IEEE Trans.
Comput. Imaging 2023, sec. III-E, plus Sq Rel, RMSE log and the tight thresholds 1.05 /
1.15 reported by He et al., "Multi-task Learning for Monocular Depth and Defocus
Estimations with Real Images" (MDDNet); the formulas are those of Eigen et al., NIPS 2014):

- ``rmse`` = sqrt(mean((p - g)^2)) metres; ``rmse_log`` = sqrt(mean((ln p - ln g)^2));
- ``abs_rel`` = mean(|p - g| / g); ``sq_rel`` = mean((p - g)^2 / g) metres;
- ``log10`` = mean(|log10 p - log10 g|);
- ``delta105``, ``delta115``, ``delta1..3`` = share of pixels with ``max(p/g, g/p) < t``
  for t = 1.05, 1.15, 1.25, 1.25^2, 1.25^3 (:data:`DELTA_THRESHOLDS`).

The evaluated depth range is ``(min_depth, max_depth]``: ground truth outside it is not
scored, and with ``clip=True`` (the default, the usual NYU-v2 / Make3D protocol)
predictions are clipped to it before any metric. NYU-v2 is scored up to 10 m; Make3D
reports two ranges, :data:`MAKE3D_RANGES` (C1: gt <= 70 m, C2: <= 80 m).
:data:`BENCHMARK_MAX_DEPTH` maps a dataset source to its range. Images: PSNR (dB) and
SSIM over [0, 1]. Defocus maps (:func:`defocus_metrics`): ``defocus_mse`` (pixels squared)
and ``defocus_mae`` (pixels) as the thesis's Table 5.1 reports them, its normalised MAE
``defocus_nmae``, and MDDNet's depth-style scores of the map (``defocus_rmse``,
``defocus_abs_rel``, ``defocus_delta*``). Depth boundaries (iBims-1's ``edge_acc`` and
``edge_comp``, pixels): :mod:`trainer.edges`.

All sums run in float64 on the CPU (numpy), whatever the input's device and dtype.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from trainer.edges import EDGE_KEYS, depth_edge_metrics
from trainer.ssim import ssim

__all__ = ["depth_metrics", "image_metrics", "defocus_metrics", "MetricAccumulator",
           "MAKE3D_RANGES", "BENCHMARK_MAX_DEPTH", "DELTA_THRESHOLDS", "DEPTH_KEYS",
           "DEFOCUS_KEYS", "EDGE_KEYS", "MIN_SIGMA", "benchmark_max_depth"]

MAKE3D_RANGES = {"c1": 70.0, "c2": 80.0}
# the evaluated depth range (metres) of each benchmark, by defocuskit source name: NYU-v2's
# Kinect range, Make3D's wider C2 range (C1 comes with ``make3d=True`` in evaluate)
BENCHMARK_MAX_DEPTH = {"nyu": 10.0, "make3d": MAKE3D_RANGES["c2"]}
# threshold accuracies: key -> t in max(p/g, g/p) < t
DELTA_THRESHOLDS = {"delta105": 1.05, "delta115": 1.15, "delta1": 1.25, "delta2": 1.25**2,
                    "delta3": 1.25**3}
DEPTH_KEYS = ("rmse", "abs_rel", "sq_rel", "rmse_log", "log10", *DELTA_THRESHOLDS)
DEFOCUS_KEYS = ("defocus_mse", "defocus_mae", "defocus_nmae", "defocus_rmse",
                "defocus_abs_rel", *(f"defocus_{k}" for k in DELTA_THRESHOLDS))
# sigma below this (pixels) is "in focus": left out of the ratio scores of a defocus map
# (AbsRel, deltas), where a ratio to a sigma of ~0 would be undefined; predictions are
# floored here for them, as depth predictions are floored at 1 mm
MIN_SIGMA = 0.1


def benchmark_max_depth(dataset_attrs: dict) -> float | None:
    """The evaluated depth range of a dataset, from its ``source`` attribute, or ``None``.

    Parameters
    ----------
    dataset_attrs : dict
        Root attributes of a defocuskit dataset (``open_dataset(path).attrs``).

    Returns
    -------
    float or None
        Metres, from :data:`BENCHMARK_MAX_DEPTH`; ``None`` (no upper limit) for other sources.
    """
    source = dataset_attrs.get("source")
    name = source.get("name") if isinstance(source, dict) else None
    return BENCHMARK_MAX_DEPTH.get(name)


def _to_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().to("cpu", torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def depth_metrics(pred, gt, *, min_depth: float = 1e-3, max_depth: float | None = None,
                  clip: bool = True) -> dict:
    """Depth errors over the valid ground-truth pixels.

    Parameters
    ----------
    pred, gt : ndarray or Tensor, any equal shape
        Predicted and true depth, metres. ``gt`` pixels are valid when finite,
        ``> min_depth`` and (if given) ``<= max_depth``.
    min_depth : float
        Smallest valid depth, metres. Predictions are always floored here, so that ratios
        and logarithms stay defined.
    max_depth : float, optional
        Largest valid depth, metres (e.g. 10 for NYU-v2, ``MAKE3D_RANGES["c1"]``).
    clip : bool
        Also clip predictions above at ``max_depth`` (when given): the published protocol.
        ``False`` scores predictions beyond the range as they are.

    Returns
    -------
    dict[str, float]
        The :data:`DEPTH_KEYS` (``rmse``, ``sq_rel`` in metres; the rest unitless, the
        deltas fractions in [0, 1]) and ``n_pixels``; the errors are NaN when no pixel is
        valid.
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
    upper = max_depth if (clip and max_depth is not None) else np.inf
    p = np.clip(p[valid], min_depth, upper)
    g = g[valid]
    err = p - g
    log_err = np.log(p) - np.log(g)
    ratio = np.maximum(p / g, g / p)
    out = {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "abs_rel": float(np.mean(np.abs(err) / g)),
        "sq_rel": float(np.mean(err**2 / g)),
        "rmse_log": float(np.sqrt(np.mean(log_err**2))),
        "log10": float(np.mean(np.abs(np.log10(p) - np.log10(g)))),
    }
    out.update({k: float(np.mean(ratio < t)) for k, t in DELTA_THRESHOLDS.items()})
    out["n_pixels"] = n
    return out


def defocus_metrics(pred, gt, *, min_sigma: float = MIN_SIGMA) -> dict:
    """Errors of a predicted defocus (sigma) map over the valid stored pixels.

    Parameters
    ----------
    pred, gt : ndarray or Tensor, any equal shape
        Predicted and stored Gaussian sigma, pixels; ``gt`` pixels are valid when finite.
    min_sigma : float
        Pixels: the ratio scores use only the valid pixels with ``gt > min_sigma``, with
        predictions floored at ``min_sigma``.

    Returns
    -------
    dict[str, float]
        Over every valid pixel: ``defocus_mse`` (px^2), ``defocus_mae``, ``defocus_rmse``
        (px) and ``defocus_nmae`` = mean|p - g| / max(g), the MAE of both maps divided by
        the stored map's largest sigma in the image (unitless, the true map scaled to
        [0, 1]). Over ``gt > min_sigma``: ``defocus_abs_rel`` = mean(|p - g| / g) and
        ``defocus_delta*`` (share with max(p/g, g/p) < t, :data:`DELTA_THRESHOLDS`).
        NaN where no pixel qualifies (``nmae`` also when max(g) = 0); plus ``n_pixels``.
    """
    p, g = _to_numpy(pred), _to_numpy(gt)
    if p.shape != g.shape:
        raise ValueError(f"defocus_metrics: shapes differ: pred {p.shape} vs gt {g.shape}")
    valid = np.isfinite(g)
    n = int(valid.sum())
    if n == 0:
        return {k: math.nan for k in DEFOCUS_KEYS} | {"n_pixels": 0}
    err = p[valid] - g[valid]
    top = float(g[valid].max())
    out = {"defocus_mse": float(np.mean(err**2)), "defocus_mae": float(np.mean(np.abs(err))),
           "defocus_rmse": float(np.sqrt(np.mean(err**2))),
           "defocus_nmae": float(np.mean(np.abs(err)) / top) if top > 0 else math.nan}
    blurred = valid & (g > min_sigma)
    if blurred.any():
        pb, gb = np.maximum(p[blurred], min_sigma), g[blurred]
        ratio = np.maximum(pb / gb, gb / pb)
        out["defocus_abs_rel"] = float(np.mean(np.abs(pb - gb) / gb))
        out.update({f"defocus_{k}": float(np.mean(ratio < t))
                    for k, t in DELTA_THRESHOLDS.items()})
    else:
        out.update({k: math.nan for k in DEFOCUS_KEYS if k not in out})
    return out | {"n_pixels": n}


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
    valid depth (sigma) pixel are left out of the depth (defocus) averages only.

    Parameters
    ----------
    max_depth : float, optional
        Upper end of the evaluated depth range, metres (``MAKE3D_RANGES["c1"]`` for
        Make3D C1); see :func:`depth_metrics`.
    min_depth : float
        Lower end of the evaluated depth range, metres.
    clip : bool
        Clip predictions to the range before the depth metrics.
    edges : bool
        Also the depth-boundary errors :data:`EDGE_KEYS` (:mod:`trainer.edges`), on the
        unclipped prediction against every valid true depth.
    """

    def __init__(self, *, max_depth: float | None = None, min_depth: float = 1e-3,
                 clip: bool = True, edges: bool = True) -> None:
        self.max_depth = max_depth
        self.min_depth = min_depth
        self.clip = clip
        self.edges = edges
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self.n_images = 0

    def _add(self, values: dict) -> None:
        for k, v in values.items():
            if k == "n_pixels" or (k in DEPTH_KEYS + DEFOCUS_KEYS + EDGE_KEYS
                                   and not math.isfinite(v)):
                continue
            self._sums[k] = self._sums.get(k, 0.0) + v
            self._counts[k] = self._counts.get(k, 0) + 1

    def update(self, pred: dict, target: dict) -> None:
        """Add one batch: ``pred`` dicts of (B, C, H, W) ``depth`` (m), ``aif``, ``defocus``
        (px), ``target`` of ``depth``, ``aif``, ``sigma`` (px)."""
        batch = None
        for head, key in (("depth", "depth"), ("aif", "aif"), ("defocus", "sigma")):
            if head in pred and key in target:
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
                        clip=self.clip,
                    )
                )
                if self.edges:
                    self._add(depth_edge_metrics(_to_numpy(pred["depth"][i]),
                                                 _to_numpy(target["depth"][i])))
            if "aif" in pred and "aif" in target:
                self._add(image_metrics(pred["aif"][i], target["aif"][i]))
            if "defocus" in pred and "sigma" in target:
                self._add(defocus_metrics(pred["defocus"][i], target["sigma"][i]))
            self.n_images += 1

    def compute(self) -> dict[str, float]:
        """Means over images, plus ``n_images``."""
        out = {k: self._sums[k] / self._counts[k] for k in self._sums}
        out["n_images"] = self.n_images
        return out

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self.__init__(max_depth=self.max_depth, min_depth=self.min_depth, clip=self.clip,
                      edges=self.edges)
