"""The 2HDED:NET training loss (Nazir et al. 2023, section III-D), every term differentiable.

``L = L_depth + lam * L_deblur`` with

* ``L_depth  = L1(d_hat, d) + mu * L_grad``, ``L_grad = (1/n) sum |dx R| + |dy R|``,
  ``R = d_hat - d`` over valid depth pixels (finite and > 0), mu = 0.001;
* ``L_deblur = L_charb + psi * (1 - SSIM(a_hat, a))``, ``L_charb = mean sqrt((a_hat - a)^2 +
  eps^2)``, eps = 1e-3, psi = 4, SSIM with an 11-tap Gaussian window (sigma 1.5);
* lam = 0.01.

With the defocus-map head (sigma in pixels, the thesis's and MDDNet's second map) the total
gains ``defocus_weight * L_defocus``, ``L_defocus`` the L1 (or L2) error against the stored
sigma over its valid (finite) pixels, and, with both depth and defocus heads, MDDNet's
physical consistency ``consistency * mean |sigma_hat - sigma_camera(d_hat)|`` (norm
``l1``) or ``consistency * mean (sigma_hat - sigma_camera(d_hat))^2`` (norm ``l2``, MDDNet's
eq. 5) (:func:`consistency_loss`, the thin lens of :mod:`trainer.thinlens` with each
sample's camera). With ``loss = "mddnet"`` the depth and defocus terms are MDDNet's eqs.
3-4 instead (SSIM + scale-invariant log, :mod:`trainer.losses_mddnet`). The label-free loss
of the self-supervised variant is in :mod:`trainer.selfsup`.

Losses are computed in float32 (or float64 when given float64), so they are safe under bf16
autocast. Kernels are built on the input's device and dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from trainer.defocus import SIGMA_MAX_PX
from trainer.losses_mddnet import mddnet_map_loss
from trainer.ssim import _as_float, ssim
from trainer.thinlens import sigma_px_from_depth

__all__ = ["ssim", "charbonnier", "depth_loss", "defocus_map_loss", "consistency_loss",
           "LossConfig", "TwoHeadedLoss", "valid_depth_mask", "DEFOCUS_LOSSES", "LOSSES",
           "CONSISTENCY_NORMS"]

DEFOCUS_LOSSES = ("l1", "l2")
LOSSES = ("2hded", "mddnet")  # the depth / defocus-map terms: 2HDED:NET's or MDDNet's
CONSISTENCY_NORMS = ("l1", "l2")


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return values.mean()
    mask = mask.expand_as(values)
    n = mask.sum()
    total = torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))
    return total.sum() / n.clamp(min=1)


def charbonnier(pred: Tensor, target: Tensor, *, eps: float = 1e-3, mask: Tensor | None = None):
    """Charbonnier loss ``mean(sqrt((pred - target)^2 + eps^2))``, a smooth L1.

    Parameters
    ----------
    pred, target : Tensor
        Same shape (e.g. (B, 3, H, W) images in [0, 1]).
    eps : float
        Smoothing constant, same unit as the images.
    mask : bool Tensor, optional
        Broadcastable to ``pred``; the mean runs over True elements only (0 if none).

    Returns
    -------
    Tensor
        Scalar loss (float32, or float64 for float64 inputs).
    """
    pred, target = _as_float(pred), _as_float(target)
    if pred.shape != target.shape:
        raise ValueError(
            f"charbonnier: shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    diff = pred - target
    if mask is not None:  # NaN targets outside the mask must not reach the graph
        diff = torch.where(mask, diff, torch.zeros((), dtype=diff.dtype, device=diff.device))
    return _masked_mean(torch.sqrt(diff * diff + eps * eps), mask)


def valid_depth_mask(depth: Tensor) -> Tensor:
    """Boolean mask of usable ground-truth depth: finite and > 0 (metres)."""
    return torch.isfinite(depth) & (depth > 0)


def depth_loss(
    pred: Tensor, target: Tensor, *, mu: float = 0.001, mask: Tensor | None = None
) -> tuple[Tensor, dict[str, Tensor]]:
    """Depth loss ``L1 + mu * L_grad`` over valid pixels (paper eqs. 1-3).

    ``L_grad = (sum |dx R| + sum |dy R|) / n`` with ``R = pred - target``, forward differences
    taken only between two valid neighbours, and ``n`` the number of valid pixels.

    Parameters
    ----------
    pred : (B, 1, H, W) float Tensor
        Predicted depth, metres.
    target : (B, 1, H, W) float Tensor
        Ground-truth depth, metres; NaN, inf or <= 0 marks invalid pixels.
    mu : float
        Weight of the gradient term.
    mask : bool Tensor, optional
        Extra validity mask, combined (AND) with the target's own validity.

    Returns
    -------
    loss : Tensor
        Scalar, metres (0 with a gradient path if no pixel is valid).
    terms : dict[str, Tensor]
        Detached ``"l1"`` and ``"grad"`` scalars.
    """
    pred, target = _as_float(pred), _as_float(target)
    if pred.shape != target.shape:
        raise ValueError(f"depth_loss: shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    valid = valid_depth_mask(target)
    if mask is not None:
        valid = valid & mask.expand_as(valid)
    zero = torch.zeros((), dtype=pred.dtype, device=pred.device)
    r = torch.where(valid, pred - torch.nan_to_num(target), zero)
    n = valid.sum().clamp(min=1)
    l1 = r.abs().sum() / n
    vx = valid[..., :, 1:] & valid[..., :, :-1]
    vy = valid[..., 1:, :] & valid[..., :-1, :]
    dx = torch.where(vx, r[..., :, 1:] - r[..., :, :-1], zero).abs().sum()
    dy = torch.where(vy, r[..., 1:, :] - r[..., :-1, :], zero).abs().sum()
    grad = (dx + dy) / n
    loss = l1 + mu * grad
    return loss, {"l1": l1.detach(), "grad": grad.detach()}


def defocus_map_loss(pred: Tensor, target: Tensor, *, kind: str = "l1") -> Tensor:
    """Error of a predicted defocus map over the valid pixels of the stored one.

    Parameters
    ----------
    pred : (B, 1, H, W) float Tensor
        Predicted Gaussian sigma, pixels.
    target : (B, 1, H, W) float Tensor
        The dataset's ``sigma``, pixels; NaN (or inf) marks invalid pixels (no depth).
    kind : {"l1", "l2"}, keyword-only
        ``mean |pred - target|`` (pixels) or ``mean (pred - target)^2`` (pixels squared).

    Returns
    -------
    Tensor
        Scalar (0 with a gradient path if no pixel is valid).
    """
    if kind not in DEFOCUS_LOSSES:
        raise ValueError(f"defocus_map_loss: kind must be one of {DEFOCUS_LOSSES}, got {kind!r}")
    pred, target = _as_float(pred), _as_float(target)
    if pred.shape != target.shape:
        raise ValueError(f"defocus_map_loss: shapes differ: {tuple(pred.shape)} vs "
                         f"{tuple(target.shape)}")
    valid = torch.isfinite(target)
    r = torch.where(valid, pred - torch.nan_to_num(target), torch.zeros_like(pred))
    err = r.abs() if kind == "l1" else r * r
    return _masked_mean(err, valid)


def consistency_loss(sigma_hat: Tensor, depth_hat: Tensor, camera: dict, *,
                     coc_model: str, coc_offset_px: float = 0.0, norm: str = "l1") -> Tensor:
    """MDDNet's physical consistency between the two maps: with ``r = sigma_hat -
    sigma_camera(depth_hat)``, ``mean |r|`` (``norm="l1"``, pixels) or ``mean r^2``
    (``norm="l2"``, pixels squared: eq. 5's L2 norm, read as the mean squared residual;
    as printed, ``(1/N) ||r||_2``, it would shrink as 1/sqrt(N) with the image size).

    Uses no label: both maps are predictions, tied by the thin lens of each sample's camera
    (:func:`trainer.thinlens.sigma_px_from_depth`); the gradient reaches both heads. The
    mean runs over every pixel. The implied sigma is capped at ``SIGMA_MAX_PX`` (32 px, the
    renderer's own cap): near zero depth the thin lens gives sigma ~ 1/d with a 1/d^2
    slope, which an untrained depth head reaches and which would blow the step up.

    Parameters
    ----------
    sigma_hat : (B, 1, H, W) Tensor, pixels
    depth_hat : (B, 1, H, W) Tensor, metres
    camera : dict
        Per-sample (B,) ``focus_distance``, ``focal_length``, ``f_number``, ``pixel_pitch``,
        ``coc_to_sigma`` (the split's stored scalars).
    coc_model : {"exact", "paper"}
    coc_offset_px : float
        The dataset's sharp-below CoC threshold (its ``camera.sigma_rule``; SYNDOF: 1 px).
    norm : {"l1", "l2"}
    """
    if norm not in CONSISTENCY_NORMS:
        raise ValueError(f"consistency_loss: norm must be one of {CONSISTENCY_NORMS}, got "
                         f"{norm!r}")
    implied = sigma_px_from_depth(_as_float(depth_hat), camera, coc_model=coc_model,
                                  coc_offset_px=coc_offset_px)
    implied = implied.clamp(max=SIGMA_MAX_PX)
    r = _as_float(sigma_hat) - implied
    return r.abs().mean() if norm == "l1" else (r * r).mean()


@dataclass
class LossConfig:
    """Weights of the supervised loss (defaults = the 2HDED:NET paper's)."""

    mu: float = 0.001  # weight of the depth gradient term
    charbonnier_eps: float = 1e-3  # Charbonnier smoothing, image units ([0, 1])
    psi: float = 4.0  # weight of (1 - SSIM) in the deblurring loss
    lam: float = 0.01  # weight of the deblurring loss when another head is trained with it
    defocus_loss: str = "l1"  # "l1" or "l2" against the stored sigma map
    defocus_weight: float = 1.0  # weight of the defocus-map loss
    consistency: float = 0.0  # weight of |sigma_hat - sigma_camera(d_hat)| (depth + defocus)
    coc_model: str = "exact"  # the dataset's CoC formula, for the consistency term
    coc_offset_px: float = 0.0  # the dataset's sharp-below CoC threshold (SYNDOF: 1 px)
    consistency_norm: str = "l1"  # "l1": mean |r|; "l2": mean r^2 (MDDNet eq. 5)
    loss: str = "2hded"  # depth / defocus terms: "2hded" (L1 + gradient, L1/L2 sigma) or
    # "mddnet" (eqs. 3-4: SSIM + scale-invariant log for each map)
    mddnet_lambdas: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)  # lambda1..4 of eqs. 3-4


class TwoHeadedLoss(nn.Module):
    """The supervised loss over the heads present in the prediction.

    ``L_depth + lam * L_deblur + defocus_weight * L_defocus + consistency * L_consistency``
    with the terms of the heads that are there. ``lam`` only balances the AiF head against
    another head: with the AiF head alone the total is ``L_deblur`` unweighted (on one head
    it would merely rescale the learning rate by 100). ``L_consistency`` needs both depth
    and defocus heads and the per-sample camera values in the target.
    """

    def __init__(self, config: LossConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else LossConfig()

    def forward(
        self, pred: dict[str, Tensor], target: dict[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Compute the loss.

        Parameters
        ----------
        pred : dict
            Model output: ``"depth"`` (B, 1, H, W) metres, ``"aif"`` (B, 3, H, W) [0, 1],
            ``"defocus"`` (B, 1, H, W) pixels; any non-empty subset.
        target : dict
            ``"depth"`` (B, 1, H, W) metres, NaN = invalid; ``"aif"`` (B, 3, H, W) in [0, 1];
            ``"sigma"`` (B, 1, H, W) pixels, NaN = invalid; for the consistency term the
            (B,) camera values of :data:`trainer.thinlens.CAMERA_KEYS`.

        Returns
        -------
        total : Tensor
            Scalar loss to back-propagate (float32).
        terms : dict[str, Tensor]
            Detached scalars: ``depth_l1``, ``depth_grad``, ``depth`` (depth head);
            ``aif_charbonnier``, ``aif_ssim`` (the SSIM index itself, not 1 - SSIM),
            ``deblur`` (AiF head); ``defocus`` (defocus head); ``consistency`` (when
            weighted); ``total``. With ``loss = "mddnet"``: ``depth_ssim``,
            ``depth_silog``, ``depth``, ``defocus_ssim``, ``defocus_silog``, ``defocus``.
        """
        cfg = self.config
        heads = [h for h in ("depth", "aif", "defocus") if h in pred]
        if not heads:
            raise ValueError(f"TwoHeadedLoss: prediction has no known head, keys {sorted(pred)}")
        needed = {"depth": "depth", "aif": "aif", "defocus": "sigma"}
        missing = [needed[h] for h in heads if needed[h] not in target]
        if missing:
            raise ValueError(f"TwoHeadedLoss: target lacks {missing}, keys {sorted(target)}")
        terms: dict[str, Tensor] = {}
        parts: list[Tensor] = []
        if cfg.loss == "mddnet":
            parts += self._mddnet_terms(pred, target, terms)
        elif "depth" in pred:
            l_depth, dterms = depth_loss(pred["depth"], target["depth"], mu=cfg.mu)
            terms.update(depth_l1=dterms["l1"], depth_grad=dterms["grad"],
                         depth=l_depth.detach())
            parts.append(l_depth)
        if "aif" in pred:
            a_hat, a = _as_float(pred["aif"]), _as_float(target["aif"])
            l_charb = charbonnier(a_hat, a, eps=cfg.charbonnier_eps)
            s = ssim(a_hat, a)
            l_deblur = l_charb + cfg.psi * (1 - s)
            terms.update(
                aif_charbonnier=l_charb.detach(), aif_ssim=s.detach(), deblur=l_deblur.detach()
            )
            parts.append(l_deblur if heads == ["aif"] else cfg.lam * l_deblur)
        if "defocus" in pred and cfg.loss != "mddnet":
            l_def = defocus_map_loss(pred["defocus"], target["sigma"], kind=cfg.defocus_loss)
            terms["defocus"] = l_def.detach()
            parts.append(cfg.defocus_weight * l_def)
        if cfg.consistency > 0 and "depth" in pred and "defocus" in pred:
            l_cons = consistency_loss(pred["defocus"], pred["depth"], target,
                                      coc_model=cfg.coc_model,
                                      coc_offset_px=cfg.coc_offset_px,
                                      norm=cfg.consistency_norm)
            terms["consistency"] = l_cons.detach()
            parts.append(cfg.consistency * l_cons)
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        terms["total"] = total.detach()
        return total, terms

    def _mddnet_terms(self, pred: dict[str, Tensor], target: dict[str, Tensor],
                      terms: dict[str, Tensor]) -> list[Tensor]:
        """MDDNet's eq. 3 (depth head) and eq. 4 (defocus head, weighted by
        ``defocus_weight``); their terms go to ``terms``."""
        l1, l2, l3, l4 = self.config.mddnet_lambdas
        parts = []
        for head, label, w_ssim, w_silog, weight in (
                ("depth", "depth", l1, l2, 1.0),
                ("defocus", "sigma", l3, l4, self.config.defocus_weight)):
            if head in pred:
                loss, t = mddnet_map_loss(pred[head], target[label], kind=head,
                                          w_ssim=w_ssim, w_silog=w_silog)
                terms.update({f"{head}_ssim": t["ssim"], f"{head}_silog": t["silog"],
                              head: loss.detach()})
                parts.append(weight * loss)
        return parts
