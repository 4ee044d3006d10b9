"""trainer.models: the registry, each model's spec, and what the trainer takes from it
(default heads and recipe, the optimiser, the model name in checkpoints)."""

from __future__ import annotations

import pytest
import torch
from _helpers import TINY as TINY_2HDED

from defocuskit.errors import ConfigError
from trainer.checkpoint import CheckpointError, build_model, check_model_name
from trainer.config import PRESETS, TrainConfig, resolve_config
from trainer.models import MODELS, get_spec, model_names
from trainer.run import make_optimizer

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_MDDNET = {"depths": [1, 1, 1, 1], "hidden_sizes": [8, 16, 32, 64],
               "num_attention_heads": [1, 1, 2, 2], "decoder_hidden_size": 8}
TINY_ANWAR = {"widths": [4, 4, 8, 8, 8], "fc_width": 16, "pool_size": 2, "keypoint_stride": 8}
TINY = {"2hded": TINY_2HDED, "mddnet": TINY_MDDNET, "anwar": TINY_ANWAR}
_OUT_CHANNELS = {"depth": 1, "aif": 3, "defocus": 1}


def _build(name, heads=None):
    if name == "mddnet":
        pytest.importorskip("transformers", reason="the [mddnet] extra is not installed")
    spec = get_spec(name)
    cfg = spec.make_config(heads or spec.heads, TINY[name])
    return spec, spec.build(cfg)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_builds_its_heads_and_counts_its_parameters(name):
    spec, model = _build(name)
    assert spec.name == name and set(spec.default_heads) <= set(spec.heads)
    assert spec.preset in PRESETS and spec.input_range in ("unit", "centred")
    torch.manual_seed(0)
    with torch.no_grad():
        out = model.eval()(torch.rand(1, 3, 64, 96))
    assert tuple(out) == tuple(model.config.heads) == spec.heads
    for head, y in out.items():
        assert y.shape == (1, _OUT_CHANNELS[head], 64, 96)
    counts = spec.parameter_counts(model)
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["total"] == counts["encoder"] + sum(counts[h] for h in spec.heads)
    # the config round-trips through a checkpoint's plain dict
    again = spec.build(spec.config_from_dict(model.config.to_dict()))
    again.load_state_dict(model.state_dict())


def test_an_unknown_model_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"model 'densenet': unknown; choose one of "
                                          r"\['2hded', 'mddnet', 'anwar'\]"):
        get_spec("densenet")
    assert model_names() == ("2hded", "mddnet", "anwar")
    with pytest.raises(ConfigError, match="model 'x'"):
        TrainConfig(model_name="x")


def test_heads_are_checked_against_the_model():
    with pytest.raises(ConfigError, match=r"model mddnet \(MDDNet\) has heads"):
        TrainConfig(model_name="mddnet", heads=("depth", "aif"))
    assert TrainConfig(model_name="2hded", heads=("aif",)).heads == ("aif",)


def test_the_model_chooses_its_recipe_and_heads():
    mdd = resolve_config(overrides={"model_name": "mddnet"})
    for key, value in PRESETS["mddnet"].items():
        assert mdd.to_dict()[key] == value, key
    assert (mdd.optimizer, mdd.lr, mdd.batch_size, mdd.consistency_norm) == (
        "adam", 1e-4, 4, "l2")
    # another preset keeps its own schedule; the heads follow the model and the method
    demo = resolve_config(preset="demo", overrides={"model_name": "mddnet"})
    assert demo.heads == ("depth", "defocus") and demo.optimizer == "sgd"
    ss = resolve_config(preset="demo", overrides={"model_name": "mddnet",
                                                  "method": "self-supervised"})
    assert ss.heads == ("defocus",)
    assert resolve_config().heads == ("depth", "aif") and resolve_config().model_name == "2hded"
    assert resolve_config(overrides={"method": "self-supervised"}).heads == ("aif", "defocus")


def test_the_optimiser_follows_the_config():
    _, model = _build("2hded", ("depth",))
    adam = make_optimizer(model, TrainConfig(optimizer="adam", lr=1e-4))
    sgd = make_optimizer(model, TrainConfig())
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["betas"] == (0.9, 0.999)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9
    with pytest.raises(ConfigError, match=r"optimizer: expected one of \['sgd', 'adam'\]"):
        TrainConfig(optimizer="rmsprop")


def test_checkpoints_name_their_model():
    _, model = _build("2hded", ("depth",))
    ckpt = {"model": model.state_dict(), "model_config": model.config.to_dict()}
    # no recorded name: the trainer's first model
    assert type(build_model(ckpt)).__name__ == "TwoHeadedNet"
    check_model_name(ckpt, "2hded")
    with pytest.raises(CheckpointError, match="holds a 2hded model, this run is a mddnet "
                                              "model"):
        check_model_name(ckpt, "mddnet", "last.pt")
    with pytest.raises(CheckpointError, match="invalid model config"):
        build_model({**ckpt, "model_name": "mddnet"})
