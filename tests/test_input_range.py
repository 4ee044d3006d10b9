"""The encoder's input range (``input_range``: centred 2x - 1 or unit x): what the model
sees, what the AiF head adds back, what the config, the checkpoint and resume record."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _helpers import TINY, tiny_split  # noqa: E402

from defocuskit.errors import ConfigError  # noqa: E402
from defocuskit.store import write_arrays  # noqa: E402
from trainer.checkpoint import build_model, load_checkpoint  # noqa: E402
from trainer.config import TrainConfig, resolve_config, resolve_run_config  # noqa: E402
from trainer.fit import fit  # noqa: E402
from trainer.model import ModelConfig, TwoHeadedNet  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("input_range", ["unit", "centred"])
def test_zero_output_aif_head_reproduces_the_input_exactly(input_range):
    torch.manual_seed(0)
    net = TwoHeadedNet(ModelConfig(heads=("depth", "aif"), input_range=input_range, **TINY))
    with torch.no_grad():
        torch.nn.init.zeros_(net.heads["aif"].predict.weight)
        torch.nn.init.zeros_(net.heads["aif"].predict.bias)
    x = torch.rand(2, 3, 32, 64)
    with torch.no_grad():
        out = net.eval()(x)
    assert torch.equal(out["aif"], x)  # in the image's own range [0, 1], bit for bit


def test_centred_model_is_the_unit_model_fed_two_x_minus_one():
    torch.manual_seed(1)
    centred = TwoHeadedNet(ModelConfig(heads=("depth", "aif"), input_range="centred", **TINY))
    unit = TwoHeadedNet(ModelConfig(heads=("depth", "aif"), input_range="unit", **TINY))
    with torch.no_grad():
        torch.nn.init.normal_(centred.heads["aif"].predict.weight)
    unit.load_state_dict(centred.state_dict())
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        a, b = centred.eval()(x), unit.eval()(2 * x - 1)
    torch.testing.assert_close(a["depth"], b["depth"], rtol=0, atol=0)
    # the residual: the decoded part is the same, the image added back is x, not 2x - 1
    torch.testing.assert_close(a["aif"] - x, b["aif"] - (2 * x - 1), rtol=0, atol=1e-6)
    assert (a["depth"] - unit(x)["depth"]).abs().max() > 0  # the range changes what it sees


def test_paper_preset_is_centred_and_bad_values_are_refused():
    assert resolve_config().input_range == "centred"
    assert resolve_config(preset="paper").input_range == "centred"
    assert resolve_config(overrides={"input_range": "unit"}).input_range == "unit"
    with pytest.raises(ConfigError, match=r"input_range: expected one of \['unit', 'centred'\]"):
        TrainConfig(input_range="centered")
    with pytest.raises(ConfigError, match="model.input_range: set it with the top-level key"):
        TrainConfig(model={"input_range": "unit"})
    with pytest.raises(ConfigError, match="model.input_range: expected one of"):
        ModelConfig(input_range="0-255")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("range") / "tiny.zarr"
    write_arrays(path, {"train": tiny_split(np.random.default_rng(0), 4)})
    return path


def _cfg(**kw):
    base = dict(epochs=1, batch_size=2, lr=0.01, crop=32, val_split=None, plots=False,
                num_workers=0, progress=False, model=dict(TINY), max_steps=1)
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("input_range", ["unit", "centred"])
def test_checkpoint_records_the_range_and_rebuilds_with_it(tmp_path, tiny_data, input_range):
    run = tmp_path / "run"
    fit(tiny_data, run, _cfg(input_range=input_range), log=lambda _m: None)
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["model_config"]["input_range"] == input_range
    assert json.loads((run / "config.json").read_text())["input_range"] == input_range
    assert build_model(ckpt).config.input_range == input_range  # eval, predict, export


def test_a_run_config_without_the_key_resumes_as_unit(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"epochs": 3, "model": TINY}))
    assert resolve_run_config(tmp_path, resume=True).input_range == "unit"
    given = resolve_run_config(tmp_path, resume=True, overrides={"input_range": "centred"})
    assert given.input_range == "centred"
    assert resolve_run_config(tmp_path, resume=False).input_range == "centred"
