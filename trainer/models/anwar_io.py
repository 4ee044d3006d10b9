"""What Anwar et al.'s network takes from files and datasets, and the AiF of its pipeline.

* :func:`load_vgg16_weights`: ImageNet VGG16 weights from a local torchvision state dict
  (``torch.save(torchvision.models.vgg16(weights=...).state_dict(), path)``; nothing is
  downloaded). Network A takes ``features.N.*`` (the same indices), network B's two hidden
  layers ``classifier.0.*`` and ``classifier.3.*``; ``classifier.6.*`` (1000 ImageNet
  classes, not 21 depth classes) is listed as unused.
* :func:`data_overrides`: what a run on a dataset takes from it: the class depth range and
  the mean colour of its training split, and its camera (for the AiF at predict time).
* :func:`derive_aif`: the pipeline's all-in-focus image: the input deconvolved
  (``defocuskit.deconvolve``, method ``levels``) with the sigma map the predicted depth
  implies through the camera.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

import defocuskit
from defocuskit.camera.presets import get_preset
from defocuskit.dataset.store import PER_SAMPLE_SCALARS
from defocuskit.errors import ConfigError
from trainer.checkpoint import CheckpointError
from trainer.pretrained import load_state_dict_file
from trainer.thinlens import sigma_px_from_depth

__all__ = ["load_vgg16_weights", "data_overrides", "derive_aif", "STAT_SAMPLES",
           "has_deconvolve"]

STAT_SAMPLES = 16  # training samples (spread over the split) read for the range and mean
_CLASSIFIER = ("classifier.0.", "classifier.3.")  # network B's layers with VGG16 shapes
_UNUSED = ("classifier.6.",)  # VGG16's 1000-class layer
_SHOWN = 6


def _listed(keys) -> str:
    keys = list(keys)
    more = f", ... ({len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
    return f"{len(keys)} [{', '.join(keys[:_SHOWN])}{more}]"


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"encoder weights {path}: file not found; model anwar takes a "
                          "torchvision VGG16 state dict file (docs/trainer.md, 'Anwar et al.')")
    return load_state_dict_file(path, "vgg16")


def load_vgg16_weights(model, path) -> dict:
    """Copy a torchvision VGG16 state dict into network A and B's hidden layers, in place.

    All or nothing: every ``features.*`` tensor of the model must be in the file with its
    shape (the default widths), and so must ``classifier.0`` / ``classifier.3`` where the
    file has a classifier at all; ``classifier.6`` is unused. Anything else in the file
    (a VGG16-BN's BatchNorm, another network) is refused, listed.

    Returns
    -------
    dict
        ``path``, ``sha256``, ``tensors`` (copied), ``source`` (``"ImageNet VGG16"``),
        ``missing`` (model tensors left at their initialisation: network B's last layer,
        and the hidden layers if the file has no classifier), ``unused`` (file keys not
        copied).
    """
    path = Path(path).resolve()
    state = _read(path)
    ours = model.state_dict()
    has_classifier = any(k.startswith(_CLASSIFIER) for k in state)
    wanted = [k for k in ours if k.startswith("features.")
              or (has_classifier and k.startswith(_CLASSIFIER))]
    missing = [k for k in wanted if k not in state]
    extra = [k for k in state if k not in ours and not k.startswith(_UNUSED)]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(ours[k].shape)}" for k in wanted
              if k in state and state[k].shape != ours[k].shape]
    if missing or extra or shapes:
        parts = [f"{name} {_listed(keys)}" for name, keys in
                 (("missing", missing), ("unexpected", extra),
                  ("mis-shaped (file vs model)", shapes)) if keys]
        raise CheckpointError(
            f"encoder weights {path}: does not fit model anwar (widths "
            f"{list(model.config.widths)}, fc_width {model.config.fc_width}, pool_size "
            f"{model.config.pool_size}; VGG16 is [64, 128, 256, 512, 512], 4096, 7): "
            + "; ".join(parts) + " (nothing was loaded)")
    bad = [k for k in wanted if state[k].is_floating_point()
           and not bool(torch.isfinite(state[k]).all())]
    if bad:
        raise CheckpointError(f"encoder weights {path}: tensors with NaN or inf values "
                              f"{_listed(bad)} (nothing was loaded)")
    with torch.no_grad():
        for k in wanted:
            ours[k].copy_(state[k])
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "tensors": len(wanted), "source": "ImageNet VGG16",
            "missing": [k for k in ours if k not in wanted],
            "unused": sorted(k for k in state if k not in wanted)}


def _spread(indices: list[int], n: int) -> list[int]:
    if len(indices) <= n:
        return indices
    picks = np.linspace(0, len(indices) - 1, n).round().astype(int)
    return [indices[i] for i in picks]


def _rgb01(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)


def data_overrides(reader, split: str) -> dict:
    """Model settings a run takes from its training split (unless its config sets them).

    ``depth_min`` / ``depth_max``: the smallest and largest valid depth of up to
    :data:`STAT_SAMPLES` samples spread over the split; ``mean_rgb``: their mean input
    colour (the defocused image, or the AiF of a scene-only split: a blur keeps the mean);
    ``camera``: the split's camera (median of each per-sample value, the root attributes'
    CoC model, sigma rule offset and PSF), or None for a split without stored cameras.
    """
    sp = reader[split]
    picks = _spread(sp.usable_indices(), STAT_SAMPLES)
    image = "defocused" if sp.has("defocused") else "aif"
    lo, hi, colour = np.inf, -np.inf, []
    for i in picks:
        d = np.asarray(sp.read_array("depth", i), dtype=np.float64)
        d = d[np.isfinite(d) & (d > 0)]
        if d.size:
            lo, hi = min(lo, float(d.min())), max(hi, float(d.max()))
        rgb = _rgb01(sp.read_array(image, i))
        colour.append(rgb.reshape(-1, rgb.shape[-1]).mean(0))
    out: dict = {}
    if np.isfinite(lo) and hi > lo:
        out.update(depth_min=round(lo, 6), depth_max=round(hi, 6))
    if colour:
        out["mean_rgb"] = [round(float(c), 6) for c in np.mean(colour, 0)[:3]]
    out["camera"] = _camera(reader, sp)
    return out


def _camera(reader, sp) -> dict | None:
    if not all(sp.has(k) for k in PER_SAMPLE_SCALARS):
        return None
    cam = {k: float(np.median(sp.read_all(k))) for k in PER_SAMPLE_SCALARS}
    attrs = reader.attrs.get("camera")
    attrs = attrs if isinstance(attrs, dict) else {}
    rule = attrs.get("sigma_rule") if isinstance(attrs.get("sigma_rule"), dict) else {}
    cam["coc_model"] = attrs.get("coc_model") or "exact"
    cam["coc_offset_px"] = float(rule.get("coc_offset_px", 0.0))
    cam["psf"] = reader.attrs.get("psf") or "gaussian"
    return cam


def has_deconvolve() -> bool:
    """Whether this defocuskit provides ``defocuskit.deconvolve``."""
    try:
        return callable(defocuskit.deconvolve)
    except AttributeError:
        return False


def _camera_from_spec(spec, width: int, focus_distance, psf: str) -> dict:
    """The thin-lens values of a camera preset or table for images ``width`` pixels wide
    (a preset that draws its parameters draws them with seed 0)."""
    if focus_distance is None:
        raise ConfigError(f"camera {spec!r}: give the focus distance of the images too "
                          "(--focus-distance METRES)")
    cam = get_preset(spec).make(image_width=int(width), rng=np.random.default_rng(0),
                                psf=psf)
    return {"focal_length": cam.focal_length, "f_number": cam.f_number,
            "pixel_pitch": cam.pixel_pitch, "coc_to_sigma": cam.coc_to_sigma,
            "focus_distance": float(focus_distance), "coc_model": cam.coc_model,
            "coc_offset_px": cam.coc_offset_px, "psf": psf}


def derive_aif(model, image: torch.Tensor, pred: dict, options: dict) -> dict:
    """``{"aif": (1, 3, H, W)}``: ``image`` deconvolved with the predicted depth's sigma.

    ``options`` may hold ``camera`` (a camera preset name or table, replacing the
    checkpoint's; needs ``focus_distance``) and ``focus_distance`` (metres, replacing the
    camera's).
    """
    if not has_deconvolve():
        raise ConfigError("model anwar: the AiF needs defocuskit.deconvolve, which this "
                          "defocuskit does not provide; predict the depth only")
    stored = model.config.camera or {}
    spec = options.get("camera")
    if spec is not None:
        cam = _camera_from_spec(spec, image.shape[-1], options.get("focus_distance"),
                                stored.get("psf", "gaussian"))
    elif stored:
        cam = dict(stored)
    else:
        raise ConfigError("model anwar: the checkpoint records no camera (its training "
                          "split stores none); give one with --camera and --focus-distance")
    if options.get("focus_distance") is not None:
        cam["focus_distance"] = float(options["focus_distance"])
    sigma = sigma_px_from_depth(pred["depth"].double(), cam,
                                coc_model=cam.get("coc_model", "exact"),
                                coc_offset_px=float(cam.get("coc_offset_px", 0.0)))
    blurred = image[0].permute(1, 2, 0).float().clamp(0, 1).numpy()
    aif = defocuskit.deconvolve(np.ascontiguousarray(blurred),
                                sigma[0, 0].float().numpy(), psf=cam.get("psf", "gaussian"),
                                method="levels")
    return {"aif": torch.from_numpy(np.asarray(aif)).permute(2, 0, 1)[None]}
