"""A label-free σ estimate from a cost volume: the self-supervised method's anchor.

The re-blur loss (:mod:`trainer.selfsup`) is not convex in σ: with the gather model a
pixel's re-blurred value depends on its own σ only, and as σ grows textures enter and
leave the kernel, so each pixel's cost has several local minima and a descent from a
small σ stops at the first one (``benchmarks/selfsup_sanity.py``). This module finds the
global basin without a label, as stereo matching does with disparity:

1. blur the all-in-focus image ``A`` with each σ of a uniform grid ``0, step, …, sigma_max``
   (one padded FFT, :class:`trainer.defocus._Levels`);
2. per pixel and level, the cost ``|blur(A, σ_k) − I_b|`` averaged over the colour channels;
3. aggregate each level's cost over a ``window`` × ``window`` box (reflect borders): this
   assumes σ is locally constant and sums many pixels' landscapes, whose spurious minima
   fall at different σ while the true one is shared;
4. per pixel the grid's argmin, refined by a parabola through its two neighbours.

The confidence of a pixel is ``c / (c + c0)`` with ``c`` the aggregated cost's range over
the grid (max − min) and ``c0 = 1/255``: on a flat patch every σ reproduces the input, the
range is near zero and so is the weight.

Uses only the defocused input and the AiF, exactly what the self-supervised loss sees.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from defocuskit.errors import ConfigError
from trainer.defocus import _Levels

__all__ = ["cost_volume_sigma", "CONFIDENCE_C0"]

CONFIDENCE_C0 = 1.0 / 255.0  # one grey level of 8-bit data: the cost range of half weight


def _box(cost: Tensor, window: int) -> Tensor:
    if window <= 1:
        return cost
    r = window // 2
    return F.avg_pool2d(F.pad(cost, (r, r, r, r), mode="reflect"), window, stride=1)


@torch.no_grad()
def cost_volume_sigma(aif: Tensor, blurred: Tensor, *, sigma_max: float, window: int = 7,
                      step: float = 0.25) -> tuple[Tensor, Tensor]:
    """σ per pixel that best explains ``blurred`` as a Gaussian blur of ``aif``.

    Parameters
    ----------
    aif, blurred : (B, C, H, W) float Tensor, [0, 1]
        The all-in-focus image and the defocused input.
    sigma_max : float, keyword-only
        Top of the σ grid, pixels (> 0).
    window : int, keyword-only
        Odd side of the box that aggregates each level's cost (1: per-pixel costs).
    step : float, keyword-only
        Grid spacing, pixels (> 0).

    Returns
    -------
    sigma : (B, 1, H, W) float32 Tensor, pixels in [0, sigma_max]
    confidence : (B, 1, H, W) float32 Tensor in [0, 1)

    Raises
    ------
    ConfigError
        On mismatched shapes, a bad ``window``, ``step`` or ``sigma_max``, or frames too
        small for the grid's ``ceil(3 sigma_max)`` border or the window.
    """
    if aif.ndim != 4 or aif.shape != blurred.shape:
        raise ConfigError(f"cost_volume_sigma: expected two (B, C, H, W) tensors of one "
                          f"shape, got {tuple(aif.shape)} and {tuple(blurred.shape)}")
    if window < 1 or window % 2 == 0 or window // 2 >= min(aif.shape[-2:]):
        raise ConfigError(f"cost_volume_sigma: window must be odd, >= 1 and smaller than "
                          f"the frame, got {window}")
    if not (sigma_max > 0 and step > 0):
        raise ConfigError(f"cost_volume_sigma: sigma_max and step must be > 0, got "
                          f"{sigma_max} and {step}")
    n = int(round(sigma_max / step))
    grid = [min(k * step, sigma_max) for k in range(n + 1)]
    if grid[-1] < sigma_max:
        grid.append(float(sigma_max))
    a, b = aif.float(), blurred.float()
    stack = _Levels(a, grid[-1])
    cost = torch.cat([_box((stack.level(s) - b).abs().mean(1, keepdim=True), window)
                      for s in grid], 1)  # (B, L, H, W)
    k = cost.argmin(1, keepdim=True)
    g = torch.tensor(grid, dtype=torch.float32, device=a.device)
    sigma = g[k]
    if len(grid) >= 3:  # parabola through the argmin and its neighbours (interior only)
        kc = k.clamp(1, len(grid) - 2)
        c0, c1, c2 = (cost.gather(1, kc + d) for d in (-1, 0, 1))
        curv = c0 - 2 * c1 + c2
        off = torch.where(curv > 0, 0.5 * (c0 - c2) / curv.clamp_min(1e-12),
                          torch.zeros_like(curv)).clamp(-0.5, 0.5)
        interior = (k >= 1) & (k <= len(grid) - 2)
        lo, hi = g[(kc - 1)], g[(kc + 1)]
        refined = g[kc] + off * torch.where(off < 0, g[kc] - lo, hi - g[kc])
        sigma = torch.where(interior, refined, sigma)
    spread = cost.amax(1, keepdim=True) - cost.amin(1, keepdim=True)
    return sigma.clamp(0.0, float(sigma_max)), spread / (spread + CONFIDENCE_C0)
