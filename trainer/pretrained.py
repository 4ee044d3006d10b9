"""ImageNet initialisation of the encoder from a local torchvision DenseNet-121 state dict.

The official 2HDED:NET code (and D3-Net before it) starts the encoder from torchvision's
ImageNet DenseNet-121; the paper does not say. Nothing here downloads anything: the user
supplies the file (see docs/trainer.md), read with ``torch.load(weights_only=True)``.

Two key styles are accepted, the current torchvision one and the legacy one of older
published files (``densenet121-a639ec97.pth``)::

    features.conv0.weight                          encoder.stem.0.weight
    features.norm0.*                               encoder.stem.1.*
    features.denseblockN.denselayerM.norm1.*       encoder.blocks.N-1.layers.M-1.body.0.*
    features.denseblockN.denselayerM.conv1.weight  ... .body.2.weight
    features.denseblockN.denselayerM.norm2.*       ... .body.3.*
    features.denseblockN.denselayerM.conv2.weight  ... .body.5.weight
      legacy: ...denselayerM.norm.1.* / conv.1.* / norm.2.* / conv.2.*
    features.transitionN.norm.*                    encoder.transitions.N-1.0.*
    features.transitionN.conv.weight               encoder.transitions.N-1.2.weight
    features.norm5.*                               encoder.final.0.*

``classifier.*`` is ignored; so is ``num_batches_tracked`` where a file lacks it (files
saved before PyTorch 0.4 do). The 4x4 strided convolution that replaces the stem max-pool
(``encoder.stem_down``) has no ImageNet counterpart and keeps its own initialisation.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch
from torch import nn

from defocuskit.errors import ConfigError
from trainer.checkpoint import CheckpointError

__all__ = ["torchvision_key_map", "read_state_dict", "load_encoder_weights"]

_LEGACY = re.compile(r"(\.denselayer\d+\.)(norm|conv)\.([12])\.")
_IGNORED_PREFIX = "classifier."
_OPTIONAL_SUFFIX = ".num_batches_tracked"
_SHOWN = 6  # keys listed per kind in an error message; the rest are counted


def torchvision_key_map(encoder: nn.Module) -> dict[str, str]:
    """torchvision state-dict key -> key of ``encoder.state_dict()``, for every tensor.

    Parameters
    ----------
    encoder : trainer.model._Encoder
        The model's encoder (``TwoHeadedNet.encoder``); the map follows its block layout.

    Returns
    -------
    dict[str, str]
        Covers every parameter and buffer of ``encoder`` except ``stem_down``'s.
    """
    modules = {"features.conv0": encoder.stem[0], "features.norm0": encoder.stem[1],
               "features.norm5": encoder.final[0]}
    for n, block in enumerate(encoder.blocks, 1):
        for m, layer in enumerate(block.layers, 1):
            prefix = f"features.denseblock{n}.denselayer{m}"
            body = layer.body
            modules.update({f"{prefix}.norm1": body[0], f"{prefix}.conv1": body[2],
                            f"{prefix}.norm2": body[3], f"{prefix}.conv2": body[5]})
    for n, trans in enumerate(encoder.transitions, 1):
        modules.update({f"features.transition{n}.norm": trans[0],
                        f"features.transition{n}.conv": trans[2]})
    ours = {id(mod): name for name, mod in encoder.named_modules()}
    return {f"{tv}.{k}": f"{ours[id(mod)]}.{k}"
            for tv, mod in modules.items() for k in mod.state_dict()}


def read_state_dict(path) -> dict[str, torch.Tensor]:
    """Read a state dict with the safe unpickler; legacy keys renamed, ``classifier`` dropped.

    Raises
    ------
    ConfigError
        If ``path`` is not a file.
    CheckpointError
        If it cannot be read or is not a flat mapping of names to tensors.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"encoder weights {path}: is a folder; model 2hded takes one "
                          "torchvision densenet121 state dict file (see docs/trainer.md)")
    if not path.is_file():
        raise ConfigError(f"encoder weights {path}: file not found (see docs/trainer.md for "
                          "how to get densenet121 ImageNet weights)")
    raw = load_state_dict_file(path, "densenet121")
    return {_LEGACY.sub(r"\1\2\3.", k): v for k, v in raw.items()
            if not k.startswith(_IGNORED_PREFIX)}


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    more = f", ... ({len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
    return f"{len(keys)} [{shown}{more}]"


def load_encoder_weights(model: nn.Module, path) -> dict:
    """Copy a torchvision-format DenseNet-121 state dict into ``model.encoder`` in place.

    All-or-nothing: the file is checked in full before any tensor is copied.

    Parameters
    ----------
    model : TwoHeadedNet
        Its encoder must have the file's layout (the default :class:`ModelConfig`).
    path : str or path-like
        ``torch.save(densenet121(...).state_dict(), path)`` output, or a published file
        with legacy keys.

    Returns
    -------
    dict
        ``path`` (absolute), ``sha256`` of the file and ``tensors`` (the number copied).

    Raises
    ------
    ConfigError
        If the file does not exist.
    CheckpointError
        If it is unreadable, has missing, unexpected or mis-shaped keys (listed), or
        tensors with NaN or inf values.
    """
    path = Path(path).resolve()
    state = read_state_dict(path)
    key_map = torchvision_key_map(model.encoder)
    target = model.encoder.state_dict()
    missing = [k for k in key_map if k not in state and not k.endswith(_OPTIONAL_SUFFIX)]
    extra = [k for k in state if k not in key_map]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(target[key_map[k]].shape)}"
              for k in key_map if k in state and state[k].shape != target[key_map[k]].shape]
    if missing or extra or shapes:
        parts = [f"{name} {_listed(keys)}" for name, keys in
                 (("missing", missing), ("unexpected", extra), ("mis-shaped (file vs model)",
                                                                shapes)) if keys]
        c = model.config
        raise CheckpointError(
            f"encoder weights {path}: does not fit the encoder (growth_rate {c.growth_rate}, "
            f"block_config {list(c.block_config)}, num_init_features {c.num_init_features}, "
            f"bn_size {c.bn_size}; DenseNet-121 is the default 32, [6, 12, 24, 16], 64, 4): "
            + "; ".join(parts))
    nonfinite = [k for k in key_map if k in state and state[k].is_floating_point()
                 and not bool(torch.isfinite(state[k]).all())]
    if nonfinite:
        raise CheckpointError(f"encoder weights {path}: tensors with NaN or inf values "
                              f"{_listed(nonfinite)}; the file is damaged or not a trained "
                              "model: replace it (nothing was loaded)")
    copied = 0
    with torch.no_grad():
        for tv_key, our_key in key_map.items():
            if tv_key in state:
                target[our_key].copy_(state[tv_key])
                copied += 1
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"path": str(path), "sha256": digest, "tensors": copied}


def load_state_dict_file(path: Path, network: str) -> dict:
    """The state dict (names -> tensors) in the file ``path`` of torchvision's ``network``;
    CheckpointError naming the file if it cannot be read or holds anything else."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load on junk raises many different types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"encoder weights {path}: unreadable ({first[:200]})") from None
    if not isinstance(raw, dict) or not all(
            isinstance(k, str) and torch.is_tensor(v) for k, v in raw.items()):
        raise CheckpointError(f"encoder weights {path}: expected a state dict (names -> "
                              f"tensors) of torchvision's {network}, got {type(raw).__name__}")
    return raw
