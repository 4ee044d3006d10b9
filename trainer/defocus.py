"""Differentiable defocus: re-blur an all-in-focus image with a per-pixel sigma map in torch.

:func:`reblur` approximates defocuskit's exact gather (``defocuskit.render(mode="gather")``:
each output pixel is the normalised Gaussian average of its neighbours with its *own* σ,
window ``ceil(3σ)``, reflect-101 borders) in a form that is differentiable with respect to
both the image and σ, and whose memory does not grow with σ:

1. A ladder of levels ``σ_0 = 0 < σ_1 < … < σ_L`` (``σ_max`` at least the map's maximum):
   quarter-pixel steps up to 1 px, then a geometric ladder (ratio 1.15 in σ).
2. Each level is the image blurred with that constant σ: a separable, normalised
   Gaussian truncated at ``ceil(3σ)`` with reflect-101 padding (exactly the gather's
   kernel when σ is constant).
3. Per pixel, the two levels around its σ are mixed linearly *in the variance* t = σ²:
   a Gaussian-blurred image is a smooth function of t (it solves the heat equation
   ∂I/∂t = ½∇²I), so interpolation in t is far more accurate than in σ.

All levels come from one padded FFT of the image (a level costs one inverse FFT, whatever
its σ); the forward pass keeps one level at a time; the backward pass recomputes them
(a custom autograd function), so memory is a few images whatever ``σ_max``: at 512² and
σ up to 32 px about 30 levels cost time, not memory. The gradient with respect to σ is
that of the interpolation (the secant slope of each level interval): its agreement with
finite differences of the exact gather is measured in ``tests/test_defocus.py``.

Inputs in bf16 or fp16 are computed in float32 and returned in their dtype.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from defocuskit.errors import ConfigError

__all__ = ["reblur", "sigma_levels", "blur_constant", "SIGMA_MAX_PX"]

SIGMA_MAX_PX = 32.0  # the Numba engine's clamp (defocuskit.blur._common.SIGMA_MAX_PX)
_FINE_STEP = 0.25  # level spacing below 1 px
_RATIO = 1.15  # geometric level ratio above 1 px (1.3: 2x faster, sigma gradient 6 % off)


def sigma_levels(sigma_max: float) -> list[float]:
    """The ladder of constant-σ levels covering ``[0, sigma_max]``; the top one is
    ``sigma_max`` itself (so a constant map is blurred with exactly its σ)."""
    levels = [0.0]
    while levels[-1] < min(1.0, sigma_max) - 1e-9:
        levels.append(round(levels[-1] + _FINE_STEP, 6))
    while levels[-1] < sigma_max - 1e-9:
        levels.append(levels[-1] * _RATIO)
    if len(levels) > 1:
        levels[-1] = float(sigma_max)
    return levels


def _kernel_1d(sigma: float, device, dtype=torch.float32) -> Tensor:
    radius = int(math.ceil(3.0 * sigma))
    x = torch.arange(-radius, radius + 1, device=device, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).to(dtype)


class _Levels:
    """Constant-σ blurs of one stack of planes, all from a single padded FFT.

    The planes are reflect-101 padded by the largest level's radius ``ceil(3σ_max)``;
    each level multiplies the padded spectrum by its truncated, normalised separable
    kernel's transfer function and transforms back. Inside the frame this equals the
    direct convolution (the kernel never reaches the wrapped-around border), at a cost
    that does not grow with σ.
    """

    def __init__(self, planes: Tensor, sigma_top: float):
        self.h, self.w = planes.shape[-2:]
        self.r = int(math.ceil(3.0 * sigma_top))
        if self.r >= self.h or self.r >= self.w:
            raise ConfigError(f"reblur: sigma {sigma_top:.2f} px needs a {self.r} px border, "
                              f"more than the image ({self.h}x{self.w}) can reflect")
        padded = F.pad(planes, (self.r,) * 4, mode="reflect") if self.r else planes
        self.size = padded.shape[-2:]
        self.spectrum = torch.fft.rfft2(padded)
        self.planes = planes

    def _transfer(self, sigma: float) -> Tensor:
        k = _kernel_1d(sigma, self.spectrum.device, torch.float64)
        r = (k.numel() - 1) // 2

        def circular(n: int) -> Tensor:
            row = torch.zeros(n, dtype=torch.float64, device=k.device)
            idx = torch.arange(-r, r + 1, device=k.device) % n
            return row.index_add(0, idx, k)

        ky = torch.fft.fft(circular(self.size[0]))
        kx = torch.fft.rfft(circular(self.size[1]))
        return (ky[:, None] * kx[None, :]).to(self.spectrum.dtype)

    def level(self, sigma: float) -> Tensor:
        if sigma <= 0:
            return self.planes
        full = torch.fft.irfft2(self.spectrum * self._transfer(sigma), s=self.size)
        return full[..., self.r:self.r + self.h, self.r:self.r + self.w]


def blur_constant(planes: Tensor, sigma: float) -> Tensor:
    """Blur (N, C, H, W) planes with one σ: separable, ``ceil(3σ)``, reflect-101 borders."""
    if sigma <= 0:
        return planes
    return _Levels(planes, sigma).level(sigma)


class _Ladder:
    """Each pixel's interval ``[t_k, t_k+1]`` of the level ladder (in variance t = σ²).

    The pixel's value is ``(1 - f) · level_k + f · level_k+1`` with ``f`` its position in
    the interval; the top level closes the last interval, and a t above it (σ clamped
    by ``sigma_max``) stays on the top level with no slope.
    """

    def __init__(self, t: Tensor, levels: tuple[float, ...]):
        t_lv = torch.tensor([s * s for s in levels], dtype=t.dtype, device=t.device)
        n = len(levels)
        self.n = n
        if n == 1:
            self.k, self.f, self.inv = None, None, None
            return
        k = (torch.bucketize(t, t_lv, right=True) - 1).clamp(0, n - 2)
        lo, hi = t_lv[k], t_lv[k + 1]
        self.k = k
        self.f = ((t - lo) / (hi - lo)).clamp(0.0, 1.0)
        self.inv = torch.where(t <= hi, 1.0 / (hi - lo), torch.zeros_like(t))

    def weights(self, level: int) -> tuple[Tensor, Tensor]:
        """Weight of ``level`` per pixel and its derivative with respect to t."""
        if self.n == 1:
            return torch.ones(()), torch.zeros(())
        lower, upper = self.k == level, self.k == level - 1
        zero = torch.zeros_like(self.f)
        w = torch.where(lower, 1.0 - self.f, zero) + torch.where(upper, self.f, zero)
        dw = torch.where(lower, -self.inv, zero) + torch.where(upper, self.inv, zero)
        return w, dw

    def used(self, level: int) -> bool:
        return self.n == 1 or bool(((self.k == level) | (self.k == level - 1)).any())


class _Reblur(torch.autograd.Function):
    @staticmethod
    def forward(ctx, planes: Tensor, sigma: Tensor, levels: tuple[float, ...]):
        # planes: (B, C, H, W) float32; sigma: (B, 1, H, W) float32
        ladder = _Ladder(sigma.square(), levels)
        stack = _Levels(planes, levels[-1])
        out = torch.zeros_like(planes)
        slope = torch.zeros_like(planes)  # d out / d t
        for i, s in enumerate(levels):
            if not ladder.used(i):
                continue
            wl, dwl = ladder.weights(i)
            level = stack.level(s)
            out += wl * level
            slope += dwl * level
        ctx.save_for_backward(planes, sigma, slope)
        ctx.levels = levels
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        planes, sigma, slope = ctx.saved_tensors
        grad_planes = grad_sigma = None
        if ctx.needs_input_grad[1]:
            # d out / d sigma = d out / d t * 2 sigma, summed over the colour channels
            grad_sigma = (grad_out * slope).sum(1, keepdim=True) * 2.0 * sigma
        if ctx.needs_input_grad[0]:
            ladder = _Ladder(sigma.square(), ctx.levels)
            used = [i for i in range(len(ctx.levels)) if ladder.used(i)]
            with torch.enable_grad():  # the adjoint of the level blurs, through autograd
                x = planes.detach().requires_grad_(True)
                stack = _Levels(x, ctx.levels[-1])
                y = sum(ladder.weights(i)[0] * stack.level(ctx.levels[i]) for i in used)
                (grad_planes,) = torch.autograd.grad(y, x, grad_out)
        return grad_planes, grad_sigma, None


def reblur(aif: Tensor, sigma_px: Tensor, *, psf: str = "gaussian",
           sigma_max: float | None = None) -> Tensor:
    """Blur ``aif`` with a per-pixel Gaussian of standard deviation ``sigma_px``.

    Parameters
    ----------
    aif : (B, C, H, W) float tensor
        The all-in-focus image (any range; usually [0, 1]).
    sigma_px : (B, 1, H, W) float tensor, pixels, >= 0
        The defocus map; values above 32 px are clamped like the Numba engine's.
    psf : {"gaussian"}, keyword-only
        Only the Gaussian PSF is differentiable here (the disc's support changes with its
        radius); ``"disc"`` raises.
    sigma_max : float, optional, keyword-only
        Top of the level ladder; default: the map's maximum (read from the tensor, a host
        sync). Give it to keep one ladder for a whole batch or to avoid the sync.

    Returns
    -------
    (B, C, H, W) tensor in ``aif``'s dtype; differentiable with respect to ``aif`` and
    ``sigma_px``.

    Raises
    ------
    ConfigError
        On a bad shape, a negative σ, or ``psf="disc"``.
    """
    if psf != "gaussian":
        raise ConfigError(f"reblur: psf {psf!r} is not differentiable here; use 'gaussian'")
    if aif.ndim != 4 or sigma_px.ndim != 4 or sigma_px.shape[1] != 1 or \
            sigma_px.shape[0] != aif.shape[0] or sigma_px.shape[2:] != aif.shape[2:]:
        raise ConfigError(f"reblur: expected aif (B, C, H, W) and sigma_px (B, 1, H, W) of "
                          f"the same B, H, W; got {tuple(aif.shape)} and "
                          f"{tuple(sigma_px.shape)}")
    dtype = aif.dtype
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    sig = sigma_px.to(compute)
    if bool((sig < 0).any()):
        raise ConfigError("reblur: sigma_px must be >= 0")
    sig = sig.clamp(max=SIGMA_MAX_PX)
    top = float(sig.detach().max()) if sigma_max is None else min(float(sigma_max), SIGMA_MAX_PX)
    levels = tuple(sigma_levels(max(top, 0.0)))
    out = _Reblur.apply(aif.to(compute), sig, levels)
    return out.to(dtype)
