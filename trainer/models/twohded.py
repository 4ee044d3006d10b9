"""2HDED:NET in the registry: :mod:`trainer.model` (the network) and
:mod:`trainer.pretrained` (its ImageNet DenseNet-121 encoder weights)."""

from __future__ import annotations

from trainer.model import KNOWN_HEADS, SIZE_MULTIPLE, ModelConfig, TwoHeadedNet, count_parameters
from trainer.models import ModelSpec
from trainer.pretrained import load_encoder_weights

__all__ = ["SPEC", "parameter_counts"]


def _make_config(heads, overrides: dict) -> ModelConfig:
    return ModelConfig.from_dict({**dict(overrides), "heads": tuple(heads)})


def _load_encoder_weights(model, path) -> dict:
    return {**load_encoder_weights(model, path), "source": "ImageNet"}


def parameter_counts(model: TwoHeadedNet) -> dict[str, int]:
    """``encoder``, one entry per head (its decoder and prediction conv) and ``total``."""
    counts = {"encoder": count_parameters(model.encoder)}
    counts.update({h: count_parameters(head) for h, head in model.heads.items()})
    counts["total"] = count_parameters(model)
    return counts


SPEC = ModelSpec(
    name="2hded", title="2HDED:NET", heads=KNOWN_HEADS, default_heads=("depth", "aif"),
    input_range="centred", preset="paper", size_multiple=SIZE_MULTIPLE,
    make_config=_make_config, config_from_dict=ModelConfig.from_dict, build=TwoHeadedNet,
    load_encoder_weights=_load_encoder_weights, parameter_counts=parameter_counts,
    encoder_weights_help="a torchvision DenseNet-121 state dict file (ImageNet)",
    input_ranges=("centred", "unit"), camera_input=True)
