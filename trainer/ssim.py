"""SSIM with an 11-tap Gaussian window (sigma 1.5), differentiable: the structural term of
2HDED:NET's deblurring loss and of MDDNet's depth loss, and the SSIM metric.

Computed in float32 (or float64 when given float64), so it is safe under bf16 autocast;
the window is built on the input's device and dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ssim"]


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
