"""The self-supervised loss of 2HDED:NET's defocus-map variant (Nazir, PhD thesis, ch. 5).

The defocus head predicts a sigma map ``D`` (pixels); the ground-truth all-in-focus image
``A`` is re-blurred with it by the differentiable defocus module
(:func:`trainer.defocus.reblur`) into ``I_r``, which is compared with the defocused input
``I_b``. No depth and no sigma label enters the loss::

    L       = 2 * L_re + 0.5 * L_smooth + 0.01 * L_deblur
    L_re    = alpha / 2 * (1 - SSIM(I_r, I_b)) + (1 - alpha) * mean |I_r - I_b|,  alpha = 0.85
    L_smooth = mean(|dx D| * exp(-beta |dx A|)) + mean(|dy D| * exp(-beta |dy A|)), beta = 2.5
    L_deblur = mean sqrt((A_hat - A)^2 + eps^2),  eps = 1e-3  (the AiF head, when present)

An optional label-free anchor (not in the thesis; weight 0 by default) adds
``anchor_weight * sum(w |D - S|) / sum(w)``, where ``S`` and ``w`` are the cost-volume σ
estimate and its confidence from ``A`` and ``I_b`` (:func:`trainer.costvolume.cost_volume_sigma`):
it pulls the map into the re-blur loss's global basin, which a descent from a small σ misses.

``dx``, ``dy`` are forward differences; ``|dx A|`` is the mean over the colour channels of
the absolute per-channel differences (so an edge in any channel lowers the smoothness
weight); each of the two smoothness means runs over its own (H, W - 1) or (H - 1, W)
differences. SSIM is :func:`trainer.losses.ssim` (11-tap Gaussian window, sigma 1.5,
valid windows only), the same code the supervised loss uses. Without an AiF head the
``L_deblur`` term is dropped: the defocus map is learnt from ``L_re`` and ``L_smooth``
alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from trainer.costvolume import cost_volume_sigma
from trainer.defocus import SIGMA_MAX_PX, reblur
from trainer.losses import charbonnier
from trainer.ssim import _as_float, ssim

__all__ = ["reconstruction_loss", "edge_aware_smoothness", "SelfSupervisedConfig",
           "SelfSupervisedLoss", "LABEL_KEYS", "reblur_mismatch"]

LABEL_KEYS = ("depth", "sigma")  # what the self-supervised loss must never see


def reblur_mismatch(mode, psf, linear_light: bool = False) -> str | None:
    """The one-line warning for a training input rendered otherwise than the loss re-blurs.

    The loss re-blurs with :func:`trainer.defocus.reblur`: the gather model with a Gaussian
    PSF, in the stored (sRGB) values. Returns None when the input's render ``mode``,
    ``psf`` and ``linear_light`` match that or the mode is not recorded (``None``: a dataset
    not written by ``synth``), else a one-line message naming the difference.
    """
    diff = []
    if mode is not None and mode != "gather":
        diff.append(f"render mode {mode!r}")
    if (psf or "gaussian") != "gaussian":
        diff.append(f"PSF {psf!r}")
    if linear_light:
        diff.append("linear light")
    if not diff:
        return None
    return (f"self-supervised: the training input was rendered with {', '.join(diff)}, but "
            "the loss re-blurs with the gather model, a Gaussian PSF, in sRGB values")


def reconstruction_loss(reblurred: Tensor, defocused: Tensor, *, alpha: float = 0.85) -> Tensor:
    """``alpha/2 * (1 - SSIM(I_r, I_b)) + (1 - alpha) * mean |I_r - I_b|``.

    Parameters
    ----------
    reblurred, defocused : (B, 3, H, W) float Tensor, [0, 1]
        The re-blurred AiF ``I_r`` and the network's defocused input ``I_b``; H, W >= 11.
    alpha : float, keyword-only
        Balance of the SSIM and L1 terms (0.85 in the thesis).

    Returns
    -------
    Tensor
        Scalar (float32, or float64 for float64 inputs).
    """
    x, y = _as_float(reblurred), _as_float(defocused)
    if x.shape != y.shape:
        raise ValueError(f"reconstruction_loss: shapes differ: {tuple(x.shape)} vs "
                         f"{tuple(y.shape)}")
    return alpha / 2 * (1 - ssim(x, y)) + (1 - alpha) * (x - y).abs().mean()


def edge_aware_smoothness(sigma: Tensor, image: Tensor, *, beta: float = 2.5) -> Tensor:
    """``mean(|dx D| e^(-beta |dx A|)) + mean(|dy D| e^(-beta |dy A|))`` (module docstring).

    Parameters
    ----------
    sigma : (B, 1, H, W) float Tensor, pixels
        The predicted defocus map ``D``.
    image : (B, C, H, W) float Tensor, [0, 1]
        The image whose edges relax the smoothness (the ground-truth AiF ``A``); its
        gradient magnitude is averaged over the C channels.
    beta : float, keyword-only
        Edge sensitivity (2.5 in the thesis).

    Returns
    -------
    Tensor
        Scalar, pixels.
    """
    d, a = _as_float(sigma), _as_float(image)
    if d.ndim != 4 or d.shape[1] != 1 or a.ndim != 4 or a.shape[0] != d.shape[0] or \
            a.shape[2:] != d.shape[2:]:
        raise ValueError(f"edge_aware_smoothness: expected sigma (B, 1, H, W) and image "
                         f"(B, C, H, W); got {tuple(d.shape)} and {tuple(a.shape)}")
    a = a.detach()
    ax = (a[..., :, 1:] - a[..., :, :-1]).abs().mean(1, keepdim=True)
    ay = (a[..., 1:, :] - a[..., :-1, :]).abs().mean(1, keepdim=True)
    dx = (d[..., :, 1:] - d[..., :, :-1]).abs()
    dy = (d[..., 1:, :] - d[..., :-1, :]).abs()
    return (dx * (-beta * ax).exp()).mean() + (dy * (-beta * ay).exp()).mean()


@dataclass
class SelfSupervisedConfig:
    """Weights of the self-supervised loss (defaults = the thesis's, ch. 5)."""

    recon_weight: float = 2.0  # lambda_1, weight of L_re
    smooth_weight: float = 0.5  # lambda_2, weight of L_smooth
    deblur_weight: float = 0.01  # lambda_3, weight of L_deblur (AiF head only)
    alpha: float = 0.85  # SSIM / L1 balance in L_re
    beta: float = 2.5  # edge sensitivity of L_smooth
    charbonnier_eps: float = 1e-3  # Charbonnier smoothing of L_deblur
    sigma_max: float = SIGMA_MAX_PX  # top of the re-blur's level ladder, pixels (fixed per run)
    anchor_weight: float = 0.0  # weight of the cost-volume anchor (0: the thesis's loss)
    anchor_window: int = 7  # box side aggregating the cost volume, pixels (odd)


class SelfSupervisedLoss(nn.Module):
    """``2 L_re + 0.5 L_smooth + 0.01 L_deblur`` from the defocused input and the true AiF.

    The target may hold only ``defocused`` and ``aif``: a depth or sigma label raises, so a
    run cannot train on them by accident (the fit's loader does not even read them).
    """

    def __init__(self, config: SelfSupervisedConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else SelfSupervisedConfig()

    def forward(self, pred: dict[str, Tensor], target: dict[str, Tensor]
                ) -> tuple[Tensor, dict[str, Tensor]]:
        """Compute the loss.

        Parameters
        ----------
        pred : dict
            ``"defocus"`` (B, 1, H, W) pixels, >= 0; optionally ``"aif"`` (B, 3, H, W).
        target : dict
            ``"defocused"`` (the input ``I_b``) and ``"aif"`` (``A``), (B, 3, H, W) [0, 1];
            the (B,) camera values may be present and are ignored.

        Returns
        -------
        total : Tensor
            Scalar loss (float32).
        terms : dict[str, Tensor]
            Detached ``recon``, ``smooth``, ``anchor`` (anchor weight > 0), ``deblur`` (AiF
            head) and ``total``.

        Raises
        ------
        ValueError
            No defocus head, a missing input or AiF, or a label in the target.
        """
        cfg = self.config
        labels = [k for k in LABEL_KEYS if k in target]
        if labels:
            raise ValueError(f"SelfSupervisedLoss: the target holds label(s) {labels}; the "
                             "self-supervised method trains without depth or sigma labels")
        if "defocus" not in pred:
            raise ValueError(f"SelfSupervisedLoss: needs the defocus head, got {sorted(pred)}")
        missing = [k for k in ("defocused", "aif") if k not in target]
        if missing:
            raise ValueError(f"SelfSupervisedLoss: target lacks {missing}")
        aif, blurred = _as_float(target["aif"]), _as_float(target["defocused"])
        sigma = _as_float(pred["defocus"])
        reblurred = reblur(aif, sigma, sigma_max=cfg.sigma_max)
        l_re = reconstruction_loss(reblurred, blurred, alpha=cfg.alpha)
        l_smooth = edge_aware_smoothness(sigma, aif, beta=cfg.beta)
        total = cfg.recon_weight * l_re + cfg.smooth_weight * l_smooth
        terms = {"recon": l_re.detach(), "smooth": l_smooth.detach()}
        if cfg.anchor_weight > 0:
            est, conf = cost_volume_sigma(aif, blurred, sigma_max=cfg.sigma_max,
                                          window=cfg.anchor_window)
            l_anchor = (conf * (sigma - est).abs()).sum() / conf.sum().clamp_min(1e-6)
            total = total + cfg.anchor_weight * l_anchor
            terms["anchor"] = l_anchor.detach()
        if "aif" in pred:
            l_deblur = charbonnier(_as_float(pred["aif"]), aif, eps=cfg.charbonnier_eps)
            total = total + cfg.deblur_weight * l_deblur
            terms["deblur"] = l_deblur.detach()
        terms["total"] = total.detach()
        return total, terms
