"""The thin-lens blur of :class:`defocuskit.camera.optics.Camera` in torch, differentiable in depth.

For an object at distance ``x`` (metres) seen by a lens of focal length ``f`` and f-number
``N`` (aperture ``D = f / N``) focused at ``S``, the circle of confusion on the sensor is

* ``"exact"``: ``D * f / (S - f) * |x - S| / x`` (the thin-lens equation);
* ``"paper"``: ``(f / S) * D * |x - S| / x`` (Nazir et al., IEEE TCI 2023, eq. 8, which
  takes f / S for f / (S - f)),

and the Gaussian sigma in pixels is ``coc_to_sigma * CoC / pixel_pitch``. These are the
formulas of ``Camera.coc_m`` / ``Camera.sigma_px``, written once more for torch tensors
with one camera per sample (the per-sample scalars a defocuskit split stores), so that a
predicted depth map can be turned into the defocus map it implies and compared with a
predicted one (MDDNet's physical consistency: He et al., "Multi-task Learning for
Monocular Depth and Defocus Estimations with Real Images", eq. 2). ``tests/test_thinlens.py``
checks them against the lens equation and similar triangles worked out independently,
``tests/test_defocus_head.py`` against ``Camera.sigma_px``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from defocuskit.camera.optics import COC_MODELS
from defocuskit.dataset.store import PER_SAMPLE_SCALARS
from defocuskit.errors import ConfigError

__all__ = ["sigma_px_from_depth", "CAMERA_KEYS", "MIN_DEPTH_M"]

CAMERA_KEYS = PER_SAMPLE_SCALARS  # focus_distance, focal_length, f_number, pixel_pitch, ...
MIN_DEPTH_M = 1e-3  # predicted depths are floored here (the metrics' floor): x > 0 always


def _per_sample(value, batch: int, like: Tensor) -> Tensor:
    """A scalar or (B,) tensor as (B, 1, 1, 1) in ``like``'s dtype and device."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device).reshape(-1)
    if t.numel() not in (1, batch):
        raise ConfigError(f"thin lens: expected one camera value or one per sample ({batch}), "
                          f"got {t.numel()}")
    return t.expand(batch).reshape(batch, 1, 1, 1)


def sigma_px_from_depth(depth_m: Tensor, camera: dict, *, coc_model: str = "exact",
                        coc_offset_px: float = 0.0) -> Tensor:
    """Gaussian blur sigma (pixels) that a thin lens gives each pixel of a depth map.

    Parameters
    ----------
    depth_m : (B, 1, H, W) float Tensor, metres
        Object distances (e.g. a predicted depth map); values below :data:`MIN_DEPTH_M` are
        floored there (so a network's early negative outputs stay defined).
    camera : dict of scalars or (B,) tensors
        The :data:`CAMERA_KEYS`: ``focus_distance``, ``focal_length``, ``pixel_pitch``
        (metres), ``f_number`` and ``coc_to_sigma`` (unitless); one camera per sample.
    coc_offset_px : float, keyword-only
        A preset's sharp-below threshold (SYNDOF: 1 px): sigma uses ``max(CoC - offset, 0)``,
        as ``Camera.sigma_px`` does. The preset's CoC rounding (SYNDOF: 0.1 px) is left out:
        it has no gradient, and changes sigma by at most half a step times coc_to_sigma.
    coc_model : {"exact", "paper"}, keyword-only
        The CoC formula (module docstring); a dataset records its own in the root
        attributes ``camera.coc_model``.

    Returns
    -------
    (B, 1, H, W) Tensor, pixels
        Differentiable with respect to ``depth_m`` (the gradient at ``x = S`` is 0).

    Raises
    ------
    ConfigError
        Unknown ``coc_model``, a missing camera key, or a wrong number of cameras.
    """
    if coc_model not in COC_MODELS:
        raise ConfigError(f"thin lens: coc_model must be one of {COC_MODELS}, got {coc_model!r}")
    missing = [k for k in CAMERA_KEYS if k not in camera]
    if missing:
        raise ConfigError(f"thin lens: camera values {missing} missing; expected {CAMERA_KEYS}")
    if depth_m.ndim != 4 or depth_m.shape[1] != 1:
        raise ConfigError(f"thin lens: expected depth (B, 1, H, W), got {tuple(depth_m.shape)}")
    x = depth_m if depth_m.dtype in (torch.float32, torch.float64) else depth_m.float()
    b = x.shape[0]
    s, f, n, pitch, k = (_per_sample(camera[key], b, x) for key in
                         ("focus_distance", "focal_length", "f_number", "pixel_pitch",
                          "coc_to_sigma"))
    aperture = f / n
    scale = aperture * f / (s - f) if coc_model == "exact" else (f / s) * aperture
    x = x.clamp(min=MIN_DEPTH_M)
    coc_px = scale * (x - s).abs() / x / pitch
    if coc_offset_px > 0:
        coc_px = (coc_px - coc_offset_px).clamp(min=0.0)
    return k * coc_px
