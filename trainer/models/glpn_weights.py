"""MDDNet's encoder from GLPN's NYU weights, read from a local file or folder.

MDDNet starts its encoder from GLP's NYU model and its decoders from scratch. The weights
are read in the key format of the published GLPN NYU model as ``transformers`` stores it
(``GLPNForDepthEstimation``, e.g. the ``vinvino02/glpn-nyu`` files)::

    glpn.encoder.patch_embeddings.N.*      encoder.patch_embeddings.N.*
    glpn.encoder.block.N.M.*               encoder.block.N.M.*
    glpn.encoder.layer_norm.N.*            encoder.layer_norm.N.*
    decoder.*, head.*                      GLPN's own depth decoder: not used (counted)

Accepted: a ``.safetensors`` file, a ``torch.save`` state dict (``.bin`` / ``.pt`` /
``.pth``, read with the safe unpickler), or a folder holding ``model.safetensors`` or
``pytorch_model.bin`` (a saved model's folder). Nothing is downloaded. Every missing,
unexpected or mis-shaped key is listed, and nothing is copied unless all fit.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from defocuskit.errors import ConfigError
from trainer.checkpoint import CheckpointError

__all__ = ["load_glpn_encoder_weights", "read_glpn_state_dict", "ENCODER_PREFIX",
           "FOLDER_FILES"]

ENCODER_PREFIX = "glpn.encoder."
UNUSED_PREFIXES = ("decoder.", "head.")  # GLPN's depth decoder: MDDNet's start from scratch
FOLDER_FILES = ("model.safetensors", "pytorch_model.bin")
_SHOWN = 6


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    more = f", ... ({len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
    return f"{len(keys)} [{shown}{more}]"


def _weights_file(path: Path) -> Path:
    if path.is_dir():
        for name in FOLDER_FILES:
            if (path / name).is_file():
                return path / name
        raise ConfigError(f"encoder weights {path}: the folder holds none of "
                          f"{list(FOLDER_FILES)} (a saved GLPN NYU model's folder)")
    if not path.is_file():
        raise ConfigError(f"encoder weights {path}: file or folder not found (see "
                          "docs/trainer.md, 'MDDNet', for GLPN's NYU weights)")
    return path


def read_glpn_state_dict(path) -> tuple[Path, dict[str, torch.Tensor]]:
    """``(file read, state dict)`` from a file or folder (see the module doc).

    Raises
    ------
    ConfigError
        The path does not exist, or a folder holds no weights file.
    CheckpointError
        The file cannot be read or is not a flat mapping of names to tensors.
    """
    file = _weights_file(Path(path))
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file  # optional (the mddnet extra)

            raw = load_file(str(file), device="cpu")
        else:
            raw = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # both readers raise many types on junk
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"encoder weights {file}: unreadable ({first[:200]})") from None
    if not isinstance(raw, dict) or not all(
            isinstance(k, str) and torch.is_tensor(v) for k, v in raw.items()):
        raise CheckpointError(f"encoder weights {file}: expected a state dict (names -> "
                              f"tensors) of GLPN's NYU model, got {type(raw).__name__}")
    return file, raw


def load_glpn_encoder_weights(model, path) -> dict:
    """Copy the ``glpn.encoder.*`` tensors of a GLPN state dict into ``model.encoder``.

    All or nothing: the file is checked in full before any tensor is copied.

    Returns
    -------
    dict
        ``path`` (the file read, absolute), ``sha256``, ``tensors`` (copied), ``unused``
        (GLPN decoder / head tensors left out) and ``source``.

    Raises
    ------
    ConfigError
        No such file or folder.
    CheckpointError
        Unreadable; missing, unexpected or mis-shaped keys (listed); NaN or inf values.
    """
    file, state = read_glpn_state_dict(Path(path).resolve())
    target = model.encoder.state_dict()
    wanted = {ENCODER_PREFIX + k: k for k in target}
    missing = [k for k in wanted if k not in state]
    unused = [k for k in state if k.startswith(UNUSED_PREFIXES)]
    extra = [k for k in state if k not in wanted and not k.startswith(UNUSED_PREFIXES)]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(target[ours].shape)}"
              for k, ours in wanted.items() if k in state
              and state[k].shape != target[ours].shape]
    if missing or extra or shapes:
        parts = [f"{name} {_listed(keys)}" for name, keys in
                 (("missing", missing), ("unexpected", extra),
                  ("mis-shaped (file vs model)", shapes)) if keys]
        c = model.config
        raise CheckpointError(
            f"encoder weights {file}: does not fit the MDDNet encoder (depths "
            f"{list(c.depths)}, hidden_sizes {list(c.hidden_sizes)}; GLPN's NYU model is "
            f"MiT-b4: [3, 8, 27, 3], [64, 128, 320, 512]; keys as transformers' "
            f"GLPNForDepthEstimation): " + "; ".join(parts))
    nonfinite = [k for k in wanted if state[k].is_floating_point()
                 and not bool(torch.isfinite(state[k]).all())]
    if nonfinite:
        raise CheckpointError(f"encoder weights {file}: tensors with NaN or inf values "
                              f"{_listed(nonfinite)}; the file is damaged (nothing was "
                              "loaded)")
    with torch.no_grad():
        for key, ours in wanted.items():
            target[ours].copy_(state[key])
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    return {"path": str(file), "sha256": digest, "tensors": len(wanted),
            "unused": len(unused), "source": "GLPN NYU"}
