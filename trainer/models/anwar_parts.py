"""The layers of Anwar et al.'s depth network that are not plain convolutions: the keypoint
grid, patch pooling, the log-spaced depth classes, their softmax loss, and the edge-aware
upsampling of the keypoint depths to a dense map (:mod:`trainer.models.anwar`).

* **Keypoints**: a regular grid, one keypoint per ``stride`` x ``stride`` pixel cell, at
  pixel ``(stride * i + stride // 2, stride * j + stride // 2)``.
* **Patch pooling**: the ``patch_px`` x ``patch_px`` image window centred on a keypoint is
  mapped onto the feature map (``feature_stride`` pixels per cell; the top / left edge
  rounded down, the bottom / right edge up, as the paper says) and that feature window is
  max-pooled to ``out`` x ``out`` cells with adaptive max pooling's bins (bin ``a`` of a
  window of ``h`` cells spans cells ``floor(a h / out)`` to ``ceil((a + 1) h / out)``), so a
  window smaller than the output repeats cells. The gradient follows the argmax switches.
* **Depth classes**: ``n`` class depths spaced evenly in log depth from ``depth_min`` to
  ``depth_max`` (both included); a depth's class is the nearest in log depth.
* **Upsampling**: joint bilateral upsampling (Kopf et al., SIGGRAPH 2007) guided by the input
  image: each pixel is the average of the keypoint depths within ``radius`` grid cells of
  its own cell, weighted by a Gaussian of the pixel distance (sigma ``sigma_spatial``
  keypoint spacings) times a Gaussian of the RGB difference between the pixel and the
  keypoint's pixel (sigma ``sigma_range``, RGB in [0, 1]).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["keypoint_positions", "patch_windows", "patch_pool", "class_depths",
           "depth_to_class", "joint_bilateral_upsample", "AnwarLoss", "IGNORE_INDEX"]

IGNORE_INDEX = -100  # keypoints without a valid depth label


def keypoint_positions(size: int, stride: int) -> list[int]:
    """The pixel row (or column) of every keypoint along an axis of ``size`` pixels."""
    return [stride * i + stride // 2 for i in range(size // stride)]


def patch_windows(positions, patch_px: int, feature_stride: int,
                  feature_size: int) -> list[tuple[int, int]]:
    """Each keypoint's feature window ``[start, end)`` along one axis (clipped to the map)."""
    half = patch_px / 2
    out = []
    for p in positions:
        start = max(0, math.floor((p - half) / feature_stride))
        end = min(feature_size, math.ceil((p + half) / feature_stride))
        out.append((start, max(end, start + 1)))
    return out


def _bin_index(windows, out: int, device) -> tuple[Tensor, int]:
    """(n * out * L) indices along one axis and L: bin ``a`` of window ``w`` lists its cells,
    repeating the last one up to the longest bin's length L (harmless for a max)."""
    bins = []
    for start, end in windows:
        h = end - start
        for a in range(out):
            bins.append((start + (a * h) // out, start + -((-(a + 1) * h) // out)))
    length = max(e - s for s, e in bins)
    idx = [min(s + k, e - 1) for s, e in bins for k in range(length)]
    return torch.tensor(idx, dtype=torch.long, device=device), length


def patch_pool(features: Tensor, rows, cols, out: int) -> Tensor:
    """Max-pool each keypoint's feature window to ``out`` x ``out`` cells.

    Parameters
    ----------
    features : (B, C, Hf, Wf) Tensor
    rows, cols : list of (start, end)
        The feature windows of the keypoint rows and columns (:func:`patch_windows`).
    out : int

    Returns
    -------
    (B, n_rows, n_cols, C * out * out) Tensor
        Flattened channel-major (``C, out, out``), as torchvision's VGG flattens its 7x7
        pooled features before the classifier.
    """
    b, c, _, wf = features.shape
    ri, lr = _bin_index(rows, out, features.device)
    ci, lc = _bin_index(cols, out, features.device)
    x = features.index_select(2, ri).view(b, c, len(rows), out, lr, wf).amax(4)
    x = x.index_select(4, ci).view(b, c, len(rows), out, len(cols), out, lc).amax(6)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, len(rows), len(cols), c * out * out)


def class_depths(depth_min: float, depth_max: float, n: int) -> Tensor:
    """The ``n`` class depths (metres), evenly spaced in log depth, ends included."""
    return torch.logspace(math.log10(depth_min), math.log10(depth_max), n,
                          dtype=torch.float64).float()


def depth_to_class(depth: Tensor, depth_min: float, depth_max: float, n: int) -> Tensor:
    """The class of each depth (nearest class depth in log depth, clamped to the range);
    :data:`IGNORE_INDEX` where the depth is not finite or not > 0."""
    valid = torch.isfinite(depth) & (depth > 0)
    step = (math.log(depth_max) - math.log(depth_min)) / (n - 1)
    safe = torch.where(valid, depth, torch.ones_like(depth))
    k = torch.round((torch.log(safe.double()) - math.log(depth_min)) / step)
    k = k.clamp(0, n - 1).long()
    return torch.where(valid, k, torch.full_like(k, IGNORE_INDEX))


def joint_bilateral_upsample(values: Tensor, guide: Tensor, stride: int, *,
                             sigma_spatial: float = 1.0, sigma_range: float = 0.1,
                             radius: int = 2) -> Tensor:
    """Dense map from keypoint values, guided by the image (module doc).

    Parameters
    ----------
    values : (B, 1, gh, gw) Tensor
        One value per keypoint (:func:`keypoint_positions` with ``stride``).
    guide : (B, C, H, W) Tensor
        The image (RGB in [0, 1]); ``H // stride == gh``, ``W // stride == gw``.
    sigma_spatial : float
        In keypoint spacings (``stride`` pixels).
    sigma_range : float
        In the guide's units.
    radius : int
        Keypoints within this many grid cells of the pixel's own cell take part.

    Returns
    -------
    (B, 1, H, W) Tensor
    """
    b, _, gh, gw = values.shape
    h, w = guide.shape[-2:]
    if h // stride != gh or w // stride != gw:
        raise ValueError(f"joint_bilateral_upsample: {gh}x{gw} keypoints do not match a "
                         f"{h}x{w} guide at stride {stride}")
    dev, dt = guide.device, guide.dtype
    ys = torch.arange(h, device=dev)
    xs = torch.arange(w, device=dev)
    gy = (ys // stride).clamp(max=gh - 1)
    gx = (xs // stride).clamp(max=gw - 1)
    key_guide = guide[:, :, stride // 2::stride, stride // 2::stride][:, :, :gh, :gw]
    flat_v = values.reshape(b, 1, gh * gw)
    flat_g = key_guide.reshape(b, guide.shape[1], gh * gw)
    num = torch.zeros(b, 1, h, w, device=dev, dtype=dt)
    den = torch.zeros_like(num)
    two_ss = 2 * (sigma_spatial * stride) ** 2
    two_sr = 2 * sigma_range ** 2
    for dy in range(-radius, radius + 1):
        qi = gy + dy
        ok_y = (qi >= 0) & (qi < gh)
        qi = qi.clamp(0, gh - 1)
        dist_y = (ys - (stride * qi + stride // 2)).to(dt) ** 2
        for dx in range(-radius, radius + 1):
            qj = gx + dx
            ok = ok_y[:, None] & ((qj >= 0) & (qj < gw))[None, :]
            qj = qj.clamp(0, gw - 1)
            dist_x = (xs - (stride * qj + stride // 2)).to(dt) ** 2
            index = (qi[:, None] * gw + qj[None, :]).reshape(-1)
            v = flat_v.index_select(2, index).view(b, 1, h, w)
            g = flat_g.index_select(2, index).view(b, -1, h, w)
            colour = ((guide - g) ** 2).sum(1, keepdim=True)
            weight = torch.exp(-(dist_y[:, None] + dist_x[None, :]) / two_ss
                               - colour / two_sr) * ok
            num += weight * v
            den += weight
    nearest = flat_v.index_select(2, (gy[:, None] * gw + gx[None, :]).reshape(-1))
    nearest = nearest.view(b, 1, h, w)
    return torch.where(den > 1e-30, num / den.clamp(min=1e-30), nearest)


class AnwarLoss(nn.Module):
    """Softmax (cross-entropy) loss of the keypoint depth classes.

    ``forward(pred, batch)`` takes the network's training output ``pred["depth_logits"]``
    (B, n_classes, gh, gw) and the batch's ``"depth"`` (B, 1, H, W) metres (NaN invalid),
    reads the true depth at every keypoint pixel, and returns ``(loss, terms)`` with the
    mean cross entropy over keypoints with a valid label (0, with a gradient path, if
    none has), terms ``ce``, ``keypoint_acc`` (share of keypoints whose arg-max class is
    the label's) and ``total``.
    """

    def __init__(self, depth_min: float, depth_max: float, n_classes: int,
                 stride: int) -> None:
        super().__init__()
        self.depth_min, self.depth_max = float(depth_min), float(depth_max)
        self.n_classes, self.stride = int(n_classes), int(stride)

    def labels(self, depth: Tensor, gh: int, gw: int) -> Tensor:
        """(B, gh, gw) class labels of the keypoints (:data:`IGNORE_INDEX` where invalid)."""
        s = self.stride
        at = depth[:, 0, s // 2::s, s // 2::s][:, :gh, :gw]
        return depth_to_class(at, self.depth_min, self.depth_max, self.n_classes)

    def forward(self, pred: dict, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        if "depth_logits" not in pred:
            raise ValueError("AnwarLoss: expected the network's training output "
                             "'depth_logits' (call the model in train mode)")
        logits = pred["depth_logits"].float()
        gh, gw = logits.shape[-2:]
        target = self.labels(batch["depth"], gh, gw)
        valid = target != IGNORE_INDEX
        if bool(valid.any()):
            ce = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)
        else:
            ce = logits.sum() * 0.0
        hit = (logits.argmax(1) == target) & valid
        acc = hit.sum().float() / valid.sum().clamp(min=1).float()
        return ce, {"ce": ce.detach(), "keypoint_acc": acc.detach(), "total": ce.detach()}
