"""Checkpoints: one plain dict per file, loadable with ``torch.load(weights_only=True)``.

A checkpoint holds everything needed to continue a run exactly or to rebuild the model for
evaluation: model, optimiser and scheduler state, the epoch and step counts, the best
validation value, the model and training configs (plain JSON), the per-epoch history and
the RNG states of python, numpy and torch (CPU and CUDA). Every value is a tensor, a number,
a string or a container of those, which is what the safe ``weights_only`` unpickler accepts.
"""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path

import numpy as np
import torch

from defocuskit.errors import DefocusKitError
from trainer.models import get_spec

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "rng_state",
           "set_rng_state", "build_model", "check_model_name", "model_name_of",
           "FORMAT_VERSION"]

# 2: decoder wired as in the official code (skip concatenated before each decoding block);
#    version-1 weights (skip concatenated inside the block) do not fit it
FORMAT_VERSION = 2
_REQUIRED = ("format_version", "model", "model_config", "epoch", "step")


class CheckpointError(DefocusKitError):
    """A checkpoint is missing, unreadable, or does not match the model."""


def rng_state() -> dict:
    """The RNG states of python, numpy (legacy global) and torch as plain data."""
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002 (global state on purpose)
    state = {
        "python": _to_lists(random.getstate()),
        "numpy": {"bit_generator": np_state["bit_generator"],
                  "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]),
                  "has_gauss": int(np_state["has_gauss"]), "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    legacy = {"bit_generator": n["bit_generator"],
              "state": {"key": n["key"].cpu().numpy().astype(np.uint32), "pos": n["pos"]},
              "has_gauss": n["has_gauss"], "gauss": n["gauss"]}
    np.random.set_state(legacy)  # noqa: NPY002 (the global state on purpose)
    # a checkpoint loaded with map_location="cuda" carries these on the GPU: RNG states
    # must be CPU byte tensors
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, tuple | list) else x


def save_checkpoint(path, state: dict) -> Path:
    """Write ``state`` (see module doc) atomically: a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format_version": FORMAT_VERSION, **state}, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch.save wraps a full disk in RuntimeError
        with contextlib.suppress(OSError):
            tmp.unlink()
        reason = getattr(exc, "strerror", None) or str(exc).strip().splitlines()[-1][:200]
        kept = "the previous one is intact" if path.exists() else "nothing was written"
        raise CheckpointError(f"checkpoint {path}: could not be saved ({reason}); the partial "
                              f"file was removed and {kept}") from None
    return path


def load_checkpoint(path, *, map_location="cpu") -> dict:
    """Load a checkpoint dict with the safe unpickler.

    Raises
    ------
    CheckpointError
        If the file is missing, corrupt, not a trainer checkpoint, or of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: file not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch.load on junk raises many different types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights only" in str(exc).lower() or "weights_only" in str(exc):
            # torch's own advice (load with weights_only=False) would run arbitrary code
            first = ("it holds Python objects that the safe loader refuses: not a "
                     "checkpoint written by this trainer; do not load it unsafely")
        raise CheckpointError(f"checkpoint {path}: unreadable or corrupt ({first})") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in _REQUIRED):
        raise CheckpointError(f"checkpoint {path}: not a trainer checkpoint (expected a dict "
                              f"with keys {list(_REQUIRED)})")
    if ckpt["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path}: format version {ckpt['format_version']} is "
                              f"not supported (this trainer reads version {FORMAT_VERSION} "
                              "only; retrain with this version)")
    return ckpt


def model_name_of(ckpt: dict) -> str:
    """The registry name of the model a checkpoint holds (``model_name``; a checkpoint
    that records none holds 2HDED:NET, the trainer's only model before the registry)."""
    return ckpt.get("model_name", "2hded")


def check_model_name(ckpt: dict, expected: str, path="checkpoint") -> None:
    """Refuse a checkpoint of another model than ``expected`` (one line naming both)."""
    held = model_name_of(ckpt)
    if held != expected:
        raise CheckpointError(f"{path}: holds a {held} model, this run is a {expected} model "
                              f"(--model {expected}); its weights cannot be loaded into it. "
                              f"Use --model {held}, or start a new run")


def build_model(ckpt: dict, *, path="checkpoint"):
    """Rebuild the checkpoint's model (:mod:`trainer.models`, by its recorded name) and
    load its weights.

    Raises
    ------
    CheckpointError
        If the model name is unknown, the stored config is invalid or the weights do not
        fit the architecture.
    """
    try:
        spec = get_spec(model_name_of(ckpt))
        model = spec.build(spec.config_from_dict(ckpt["model_config"]))
    except DefocusKitError as exc:
        raise CheckpointError(f"{path}: invalid model config ({exc})") from None
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in lines[:3])
        raise CheckpointError(f"{path}: weights do not match the model config "
                              f"({detail[:300]})") from None
    return model
