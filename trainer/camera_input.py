"""Camera-conditioned input (``--camera-input``): the camera of each sample given to the network.

With one defocused image, the blur of a pixel says how far it is from the focal plane in
dioptres, ``|1/d - 1/F|`` times a camera constant, not on which side: near and far are
ambiguous, and the constant changes with the focal length, f-number and pixel pitch. A
network that is told the camera can undo both. No published 2HDED:NET variant does this;
it is off by default (and in every paper preset).

What the network is given. Three numbers per sample, from the per-sample camera values a
synthetic dataset stores (:data:`defocuskit.store.PER_SAMPLE_SCALARS`)::

    c0 = 1 / focus_distance_m - 0.5                     (dioptres, centred near 2 m)
    c1 = ln(f_number / 2.8)
    c2 = ln(focal_length / pixel_pitch / 500)           (focal length in pixels)

How. Feature-wise linear modulation (FiLM): a small MLP per site (3 -> 32 -> 2C, ReLU)
maps ``c`` to a per-channel scale and shift, ``y = (1 + gamma(c)) * y + beta(c)``, applied
at two sites: the encoder's deepest feature (Conv5, before the decoders) and, in every
head, the full-resolution feature just before the prediction convolution (where a pixel's
blur turns into its depth). The MLPs' last layers start at zero, so a camera-conditioned
network starts as the same function as the plain one of the same seed (and the same
weights elsewhere, the FiLM layers being created after them).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from defocuskit.dataset.store import PER_SAMPLE_SCALARS

__all__ = ["CAMERA_KEYS", "N_CAMERA_FEATURES", "camera_features", "CameraFiLM",
           "model_forward", "takes_camera", "scored_arrays"]

CAMERA_KEYS = ("focus_distance", "f_number", "focal_length", "pixel_pitch")
N_CAMERA_FEATURES = 3
_HIDDEN = 32


def camera_features(batch: dict) -> Tensor:
    """The (B, 3) camera features of a batch holding the (B,) :data:`CAMERA_KEYS` values.

    Raises
    ------
    ValueError
        A camera value is missing, or not positive and finite.
    """
    missing = [k for k in CAMERA_KEYS if k not in batch]
    if missing:
        raise ValueError(f"camera input: the batch lacks the per-sample camera value(s) "
                         f"{missing} (a synthetic dataset stores them; a scene-only one with "
                         "--on-the-fly renders them)")
    v = {k: torch.as_tensor(batch[k]).double().reshape(-1) for k in CAMERA_KEYS}
    for k, t in v.items():
        if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
            raise ValueError(f"camera input: {k} must be positive and finite, got "
                             f"{t.tolist()[:4]}")
    feats = torch.stack([1 / v["focus_distance"] - 0.5,
                         torch.log(v["f_number"] / 2.8),
                         torch.log(v["focal_length"] / v["pixel_pitch"] / 500.0)], 1)
    device = torch.as_tensor(batch[CAMERA_KEYS[0]]).device
    return feats.float().to(device)


class CameraFiLM(nn.Module):
    """Per-site scale and shift from the camera features (module docstring).

    Parameters
    ----------
    sites : dict[str, int]
        Site name -> channels of the feature modulated there.
    """

    def __init__(self, sites: dict[str, int]) -> None:
        super().__init__()
        self.mlps = nn.ModuleDict()
        for name, channels in sites.items():
            mlp = nn.Sequential(nn.Linear(N_CAMERA_FEATURES, _HIDDEN), nn.ReLU(inplace=True),
                                nn.Linear(_HIDDEN, 2 * channels))
            nn.init.kaiming_uniform_(mlp[0].weight, a=math.sqrt(5))
            nn.init.zeros_(mlp[2].weight)
            nn.init.zeros_(mlp[2].bias)
            self.mlps[name] = mlp

    def forward(self, y: Tensor, site: str, features: Tensor) -> Tensor:
        """``(1 + gamma) * y + beta`` for the (B, C, H, W) feature ``y`` at ``site``."""
        if features.ndim != 2 or features.shape != (y.shape[0], N_CAMERA_FEATURES):
            raise ValueError(f"camera input: expected features ({y.shape[0]}, "
                             f"{N_CAMERA_FEATURES}), got {tuple(features.shape)}")
        gb = self.mlps[site](features.to(y.dtype))
        gamma, beta = gb.chunk(2, dim=1)
        return (1 + gamma[:, :, None, None]) * y + beta[:, :, None, None]


def _unwrapped(model):
    """The model under DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    for attr in ("module", "_orig_mod", "module"):
        model = getattr(model, attr, model)
    return model


def takes_camera(model) -> bool:
    """Whether ``model`` (possibly wrapped) was built with ``camera_input``; a model whose
    config has no such flag (:attr:`trainer.models.ModelSpec.camera_input` false) never is."""
    return bool(getattr(getattr(_unwrapped(model), "config", None), "camera_input", False))


def model_forward(model, x: Tensor, batch: dict | None = None) -> dict[str, Tensor]:
    """``model(x)``, with the batch's camera features when the model takes them."""
    if takes_camera(model):
        if batch is None:
            raise ValueError("camera input: this model needs the camera of each image "
                             "(trained with --camera-input); none was given")
        return model(x, camera=camera_features(batch))
    return model(x)


def scored_arrays(heads, has, *, camera: bool = True) -> tuple[str, ...]:
    """The arrays a validation or evaluation dataset reads to score ``heads`` and give each
    sample's camera: the heads' labels (required), the AiF and depth where the split has
    them (``has(name)``), and the per-sample camera values (``camera=False``: only the
    focus distance, which the blind-zone metric needs and a resize leaves alone)."""
    # breaks a cycle: trainer.data -> trainer.model -> here
    from trainer.data import required_arrays

    names = [*required_arrays(heads)[1:], *(a for a in ("aif", "depth") if has(a))]
    return (*dict.fromkeys(names), *(PER_SAMPLE_SCALARS if camera else ("focus_distance",)))
