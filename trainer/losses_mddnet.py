"""MDDNet's map losses (He et al., seed 003, eqs. 3-4): SSIM plus the scale-invariant log.

For a predicted map ``P`` and its label ``T`` (depth in metres, eq. 3; the defocus map in
pixels, eq. 4) over the label's valid pixels::

    L = w_ssim * (1 - SSIM(P, T)) / 2 + w_silog * (mean(d^2) - 0.5 * mean(d)^2),
    d = log(T + offset) - log(P + offset)

* The scale-invariant term is Eigen et al.'s (NeurIPS 2014, lambda = 1/2), per image, then
  averaged over the images. Eqs. 3-4 as printed subtract ``sum(d^2) / 2N``, which would
  leave ``mean(d^2) / 2``, a plain log-MSE; the paper cites Eigen's scale-invariant loss,
  whose second term is ``(sum d)^2 / 2N^2``, and that is what is computed.
* SSIM (11-tap Gaussian window, :func:`trainer.losses.ssim`) needs a value range that the
  paper does not give: each map and its label are divided by the label's largest valid
  value (per image), so SSIM sees both in [0, about 1]. Invalid label pixels take the
  (detached) prediction's value and windows centred on them are left out of the mean.
* ``offset``: 0 for depth (valid labels are > 0; the prediction is clamped to >= 1 mm);
  1 px for the defocus map, whose label is 0 px on the focal plane, where a logarithm
  without an offset is -inf (the paper does not say what it does there).
* The weights lambda1..lambda4 are not stated by the paper (``mddnet_lambdas``, 1 each by
  default); docs/trainer.md lists this among the assumptions.
"""

from __future__ import annotations

import torch
from torch import Tensor

from trainer.ssim import ssim

__all__ = ["silog", "map_ssim", "mddnet_map_loss", "DEPTH_FLOOR_M", "SIGMA_LOG_OFFSET_PX",
           "SILOG_LAMBDA"]

DEPTH_FLOOR_M = 1e-3  # predictions below 1 mm are clamped before the logarithm
SIGMA_LOG_OFFSET_PX = 1.0  # log(sigma + 1 px): the defocus label is 0 on the focal plane
SILOG_LAMBDA = 0.5  # Eigen et al.'s scale-invariant weight
_WINDOW = 11


def silog(pred: Tensor, target: Tensor, valid: Tensor, *, offset: float = 0.0,
          floor: float = 0.0) -> Tensor:
    """Eigen's scale-invariant log error ``mean(d^2) - 0.5 mean(d)^2`` per image, averaged.

    Parameters
    ----------
    pred, target : (B, 1, H, W) float Tensor
        Positive maps (``pred`` is clamped to ``floor``), the same unit.
    valid : (B, 1, H, W) bool Tensor
        Pixels that count; an image without any adds nothing (and a batch without any
        gives 0 with a gradient path).
    offset : float
        Added to both maps before the logarithm.
    """
    zero = torch.zeros((), dtype=pred.dtype, device=pred.device)
    p = pred.clamp(min=floor) + offset
    t = torch.where(valid, torch.nan_to_num(target) + offset, torch.ones_like(pred))
    d = torch.where(valid, torch.log(t) - torch.log(torch.where(valid, p, torch.ones_like(p))),
                    zero)
    n = valid.flatten(1).sum(1)
    has = n > 0
    n = n.clamp(min=1)
    mean_d2 = (d * d).flatten(1).sum(1) / n
    mean_d = d.flatten(1).sum(1) / n
    per_image = mean_d2 - SILOG_LAMBDA * mean_d * mean_d
    return torch.where(has, per_image, zero).sum() / has.sum().clamp(min=1)


def map_ssim(pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """Mean SSIM of a predicted map against its label, both scaled by the label's largest
    valid value per image, over windows centred on valid pixels (see the module doc)."""
    zero = torch.zeros((), dtype=pred.dtype, device=pred.device)
    scale = torch.where(valid, torch.nan_to_num(target), zero).flatten(1).amax(1)
    scale = scale.clamp(min=torch.finfo(pred.dtype).tiny).view(-1, 1, 1, 1).detach()
    filled = torch.where(valid, torch.nan_to_num(target), pred.detach())
    smap = ssim(pred / scale, filled / scale, window_size=_WINDOW, reduction="none")
    r = _WINDOW // 2
    centre = valid[..., r:-r, r:-r]
    return torch.where(centre, smap, zero).sum() / centre.sum().clamp(min=1)


def mddnet_map_loss(pred: Tensor, target: Tensor, *, kind: str, w_ssim: float = 1.0,
                    w_silog: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
    """Eq. 3 (``kind="depth"``, metres) or eq. 4 (``kind="defocus"``, sigma in pixels).

    Returns
    -------
    loss : Tensor
        ``w_ssim * (1 - SSIM) / 2 + w_silog * silog``, a scalar.
    terms : dict
        Detached ``ssim`` (the index itself) and ``silog``.
    """
    if kind not in ("depth", "defocus"):
        raise ValueError(f"mddnet_map_loss: kind must be 'depth' or 'defocus', got {kind!r}")
    pred = pred if pred.dtype in (torch.float32, torch.float64) else pred.float()
    target = target.to(pred.dtype)
    if pred.shape != target.shape:
        raise ValueError(f"mddnet_map_loss: shapes differ: {tuple(pred.shape)} vs "
                         f"{tuple(target.shape)}")
    if kind == "depth":
        valid = torch.isfinite(target) & (target > 0)
        offset, floor = 0.0, DEPTH_FLOOR_M
    else:
        valid = torch.isfinite(target) & (target >= 0)
        offset, floor = SIGMA_LOG_OFFSET_PX, 0.0
    s = map_ssim(pred, target, valid)
    si = silog(pred, target, valid, offset=offset, floor=floor)
    loss = w_ssim * (1 - s) / 2 + w_silog * si
    return loss, {"ssim": s.detach(), "silog": si.detach()}
