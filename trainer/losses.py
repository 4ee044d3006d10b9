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
import torch.nn.functional as F
from torch import Tensor, nn

from trainer.defocus import SIGMA_MAX_PX
from trainer.thinlens import sigma_px_from_depth

__all__ = ["ssim", "charbonnier", "depth_loss", "defocus_map_loss", "consistency_loss",
           "LossConfig", "TwoHeadedLoss", "valid_depth_mask", "DEFOCUS_LOSSES", "LOSSES",
           "CONSISTENCY_NORMS"]

DEFOCUS_LOSSES = ("l1", "l2")
LOSSES = ("2hded", "mddnet")  # the depth / defocus-map terms: 2HDED:NET's or MDDNet's
CONSISTENCY_NORMS = ("l1", "l2")


def _as_float(x: Tensor) -> Tensor:
    """Half / bfloat16 / integer tensors to float32; float32 and float64 unchanged."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _gaussian_window(window_size: int, sigma: float, *, device, dtype) -> Tensor:
    r = (window_size - 1) / 2
    t = torch.arange(window_size, device=device, dtype=dtype) - r
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def ssim(
    x: Tensor,
    y: Tensor,
    *,
    window_size: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    reduction: str = "mean",
) -> Tensor:
    """Structural similarity (Wang et al. 2004) with a Gaussian window, differentiable.

    Local statistics use population (not sample) covariances and a separable Gaussian
    window; only windows lying wholly inside the image are used (no padding), which is
    what ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)`` averages over. K1 = 0.01, K2 = 0.03.

    Parameters
    ----------
    x, y : (B, C, H, W) float Tensor
        Images in ``[0, data_range]``; H and W at least ``window_size``.
    window_size : int
        Gaussian window taps (odd).
    sigma : float
        Gaussian standard deviation, pixels.
    data_range : float
        Dynamic range of the images (1.0 for [0, 1] floats).
    reduction : {"mean", "image", "none"}
        ``"mean"``: one scalar over batch, channels and pixels; ``"image"``: (B,) per-image
        means; ``"none"``: the (B, C, H - w + 1, W - w + 1) SSIM map.

    Returns
    -------
    Tensor
        SSIM in [-1, 1] (1 for identical images), float32 (float64 for float64 inputs).
    """
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(
            f"ssim: expected two (B, C, H, W) tensors of equal shape, got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    if window_size % 2 != 1 or min(x.shape[-2:]) < window_size:
        raise ValueError(
            f"ssim: window_size must be odd and at most the image size, got {window_size} for "
            f"an image of {x.shape[-2]}x{x.shape[-1]}"
        )
    if reduction not in ("mean", "image", "none"):
        raise ValueError(f"ssim: reduction must be 'mean', 'image' or 'none', got {reduction!r}")
    x, y = _as_float(x), _as_float(y)
    dtype = torch.promote_types(x.dtype, y.dtype)
    x, y = x.to(dtype), y.to(dtype)
    c = x.shape[1]
    g = _gaussian_window(window_size, sigma, device=x.device, dtype=dtype)
    gx = g.view(1, 1, 1, -1).expand(c, 1, 1, window_size)
    gy = g.view(1, 1, -1, 1).expand(c, 1, window_size, 1)

    def blur(t: Tensor) -> Tensor:  # separable depthwise Gaussian, 'valid' region only
        # autocast would run conv2d in bf16/fp16 and ruin the moments: keep the input dtype
        with torch.autocast(device_type=t.device.type, enabled=False):
            return F.conv2d(F.conv2d(t, gx, groups=c), gy, groups=c)

    # Moments about a common per-channel offset m: E[(x-m)^2] - (mu_x-m)^2 equals the variance
    # for any m, and cancels far less in float32 than E[x^2] - mu_x^2 does.
    m = (0.5 * (x + y)).mean(dim=(2, 3), keepdim=True).detach()
    xc, yc = x - m, y - m
    mu_xc, mu_yc = blur(xc), blur(yc)
    mu_x, mu_y = mu_xc + m, mu_yc + m
    var_x = blur(xc * xc) - mu_xc * mu_xc
    var_y = blur(yc * yc) - mu_yc * mu_yc
    cov = blur(xc * yc) - mu_xc * mu_yc
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    smap = num / den
    if reduction == "none":
        return smap
    if reduction == "image":
        return smap.mean(dim=(1, 2, 3))
    return smap.mean()


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
        # breaks a cycle: losses_mddnet imports ssim from here
        from trainer.losses_mddnet import mddnet_map_loss

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
