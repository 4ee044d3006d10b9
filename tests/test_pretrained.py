"""trainer.pretrained: ImageNet DenseNet-121 weights from a local torchvision-format file.

The fake files are built from the model's own encoder through a key mapping written here
from torchvision's naming (independently of ``torchvision_key_map``), filled with values
unlike the model's initialisation, then loaded into a fresh model and checked tensor by
tensor.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli.trainer_cmd import trainer
from defocuskit.errors import ConfigError
from defocuskit.store import write_arrays
from trainer.checkpoint import CheckpointError, load_checkpoint
from trainer.config import TrainConfig
from trainer.fit import fit
from trainer.model import ModelConfig, TwoHeadedNet
from trainer.pretrained import load_encoder_weights, torchvision_key_map

TINY = {"growth_rate": 4, "block_config": (1, 2, 1, 1), "num_init_features": 8}
_LAYER = {"0": "norm1", "2": "conv1", "3": "norm2", "5": "conv2"}
_LEGACY = {"norm1": "norm.1", "conv1": "conv.1", "norm2": "norm.2", "conv2": "conv.2"}


pytestmark = pytest.mark.usefixtures("one_thread")


def torchvision_name(ours: str, *, legacy: bool = False) -> str | None:
    """Our encoder key -> torchvision's densenet key (None for the stem_down conv)."""
    if ours.startswith("stem_down."):
        return None
    m = re.fullmatch(r"blocks\.(\d+)\.layers\.(\d+)\.body\.(\d)\.(\w+)", ours)
    if m:
        layer = _LAYER[m[3]]
        layer = _LEGACY[layer] if legacy else layer
        return f"features.denseblock{int(m[1]) + 1}.denselayer{int(m[2]) + 1}.{layer}.{m[4]}"
    m = re.fullmatch(r"transitions\.(\d+)\.(\d)\.(\w+)", ours)
    if m:
        return f"features.transition{int(m[1]) + 1}.{'norm' if m[2] == '0' else 'conv'}.{m[3]}"
    head, _, leaf = ours.rpartition(".")
    return {"stem.0": "features.conv0", "stem.1": "features.norm0",
            "final.0": "features.norm5"}[head] + "." + leaf


def fake_state_dict(config: ModelConfig, *, legacy: bool = False, seed: int = 1) -> dict:
    """A torchvision-format file for ``config``'s encoder with distinctive values."""
    encoder = TwoHeadedNet(config).encoder
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for ours, value in encoder.state_dict().items():
        name = torchvision_name(ours, legacy=legacy)
        if name is None:
            continue
        if name.endswith("num_batches_tracked"):
            if legacy:  # pre-0.4 files have no such buffer
                continue
            out[name] = torch.tensor(int(torch.randint(1, 10**6, (1,), generator=gen)))
        else:
            out[name] = torch.randn(value.shape, generator=gen) + 3.0  # unlike any init
    c = encoder.skip_channels[-1]
    out["classifier.weight"] = torch.randn(1000, c, generator=gen)
    out["classifier.bias"] = torch.zeros(1000)
    return out


def save(state: dict, path) -> str:
    torch.save(state, path)
    return str(path)


@pytest.mark.parametrize("legacy", [False, True], ids=["torchvision", "legacy-keys"])
def test_every_tensor_lands_in_its_place(tmp_path, legacy):
    cfg = ModelConfig(**TINY)
    state = fake_state_dict(cfg, legacy=legacy)
    torch.manual_seed(5)
    net = TwoHeadedNet(cfg)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    info = load_encoder_weights(net, save(state, tmp_path / "w.pth"))
    after = net.state_dict()
    copied = 0
    for ours in net.encoder.state_dict():
        key = f"encoder.{ours}"
        name = torchvision_name(ours, legacy=legacy)
        if name is None or name not in state:  # stem_down; legacy num_batches_tracked
            assert torch.equal(after[key], before[key]), key
        else:
            assert torch.equal(after[key], state[name].to(after[key].dtype)), key
            copied += 1
    assert info["tensors"] == copied == len(state) - 2  # all but the classifier
    for key in after:  # the heads keep their own initialisation
        if not key.startswith("encoder."):
            assert torch.equal(after[key], before[key]), key
    assert len(info["sha256"]) == 64 and info["path"].endswith("w.pth")


def test_full_densenet121_names_and_shapes():
    # torchvision's densenet121 state dict has 727 entries, 2 of them the classifier
    key_map = torchvision_key_map(TwoHeadedNet(ModelConfig(heads=("depth",))).encoder)
    assert len(key_map) == 725
    expected = {"features.conv0.weight", "features.norm0.running_var", "features.norm5.bias"}
    for n, layers in enumerate((6, 12, 24, 16), 1):
        expected |= {f"features.denseblock{n}.denselayer{m}.{p}"
                     for m in range(1, layers + 1)
                     for p in ("norm1.weight", "conv1.weight", "norm2.bias", "conv2.weight")}
    expected |= {f"features.transition{n}.conv.weight" for n in (1, 2, 3)}
    assert expected <= set(key_map)
    assert all(k.startswith("features.") for k in key_map)
    encoder = TwoHeadedNet(ModelConfig(heads=("depth",))).encoder.state_dict()
    shapes = {"features.conv0.weight": (64, 3, 7, 7),
              "features.denseblock1.denselayer1.conv1.weight": (128, 64, 1, 1),
              "features.denseblock4.denselayer16.conv2.weight": (32, 128, 3, 3),
              "features.transition3.conv.weight": (512, 1024, 1, 1),
              "features.norm5.weight": (1024,)}
    for name, shape in shapes.items():
        assert tuple(encoder[key_map[name]].shape) == shape, name


def _edit(state: dict, kind: str) -> dict:
    state = dict(state)
    if kind == "missing":
        del state["features.denseblock2.denselayer1.conv1.weight"]
    elif kind == "unexpected":
        state["features.denseblock5.denselayer1.conv1.weight"] = torch.zeros(1)
    elif kind == "mis-shaped":
        state["features.conv0.weight"] = torch.zeros(8, 3, 3, 3)
    return state


@pytest.mark.parametrize(("kind", "pattern"), [
    ("missing", r"missing 1 \[features\.denseblock2\.denselayer1\.conv1\.weight\]"),
    ("unexpected", r"unexpected 1 \[features\.denseblock5\.denselayer1\.conv1\.weight\]"),
    ("mis-shaped", r"mis-shaped \(file vs model\) 1 \[features\.conv0\.weight "
                   r"\(8, 3, 3, 3\) vs \(8, 3, 7, 7\)\]"),
])
def test_bad_keys_are_listed_and_nothing_is_copied(tmp_path, kind, pattern):
    cfg = ModelConfig(**TINY)
    net = TwoHeadedNet(cfg)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    path = save(_edit(fake_state_dict(cfg), kind), tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match=pattern) as info:
        load_encoder_weights(net, path)
    assert "\n" not in str(info.value)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_non_finite_weights_are_refused_naming_the_file_and_nothing_is_copied(tmp_path, bad):
    cfg = ModelConfig(**TINY)
    net = TwoHeadedNet(cfg)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    state = fake_state_dict(cfg)
    state["features.norm5.running_var"][1] = bad
    path = save(state, tmp_path / "nan.pth")
    with pytest.raises(CheckpointError, match=r"nan\.pth: tensors with NaN or inf values 1 "
                                              r"\[features\.norm5\.running_var\]") as info:
        load_encoder_weights(net, path)
    assert "\n" not in str(info.value)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_long_key_lists_are_truncated(tmp_path):
    # DenseNet-121 weights offered to the tiny model: hundreds of unexpected keys
    big = fake_state_dict(ModelConfig(heads=("depth",)))
    with pytest.raises(CheckpointError) as info:
        load_encoder_weights(TwoHeadedNet(ModelConfig(**TINY)), save(big, tmp_path / "w.pth"))
    msg = str(info.value)
    assert re.search(r"unexpected \d{3} \[", msg) and "more)" in msg and "mis-shaped" in msg
    assert len(msg) < 2000 and "\n" not in msg


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_encoder_weights(TwoHeadedNet(ModelConfig(**TINY)), tmp_path / "none.pth")


@pytest.mark.parametrize("content", [[1, 2], {"features.conv0.weight": 1.0}, b"junk"],
                         ids=["list", "non-tensor", "junk"])
def test_not_a_state_dict_is_refused(tmp_path, content):
    path = tmp_path / "w.pth"
    if isinstance(content, bytes):
        path.write_bytes(content * 100)
    else:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match="encoder weights"):
        load_encoder_weights(TwoHeadedNet(ModelConfig(**TINY)), path)


# ------------------------------------------------------------------ in fit and the CLI
@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    rng = np.random.default_rng(0)
    aif = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    depth = np.full((2, 32, 32), 2.0, np.float32)
    path = tmp_path_factory.mktemp("pretrained") / "tiny.zarr"
    write_arrays(path, {"train": {"aif": aif, "defocused": aif // 2, "depth": depth}})
    return path


def test_fit_loads_on_a_fresh_run_only(tmp_path, tiny_data):
    weights = tmp_path / "w.pth"
    state = fake_state_dict(ModelConfig(**TINY))
    save(state, weights)
    cfg = TrainConfig(epochs=1, max_steps=1, batch_size=2, crop=32, lr=1e-9, momentum=0.0,
                      val_split=None, plots=False, num_workers=0, progress=False,
                      model=dict(TINY), encoder_weights=str(weights))
    lines = []
    fit(tiny_data, tmp_path / "run", cfg, log=lines.append)
    assert any(line.startswith("encoder: ") and "ImageNet tensors" in line for line in lines)
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    # lr 1e-9: one step leaves the loaded conv weights as they came
    torch.testing.assert_close(ckpt["model"]["encoder.stem.0.weight"],
                               state["features.conv0.weight"], rtol=0, atol=1e-6)
    assert ckpt["encoder_init"]["sha256"] and ckpt["train_config"]["encoder_weights"]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["encoder_weights"] == str(weights)
    weights.unlink()  # a resumed run takes its weights from last.pt, not from the file
    more = dataclasses.replace(cfg, epochs=2, max_steps=2)
    fit(tiny_data, tmp_path / "run", more, resume=True, log=lines.append)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["encoder_init"] == ckpt["encoder_init"]
    with pytest.raises(ConfigError, match="file not found"):  # but a fresh run needs it
        fit(tiny_data, tmp_path / "run2", cfg, log=lines.append)
    assert not (tmp_path / "run2" / "config.json").exists()


def test_cli_option_records_the_absolute_path(tmp_path, tiny_data, monkeypatch):
    save(fake_state_dict(ModelConfig(**TINY)), tmp_path / "w.pth")
    (tmp_path / "tiny.json").write_text(json.dumps({"model": TINY, "plots": False}))
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(trainer, ["fit", "--data", str(tiny_data), "--run-dir", "run",
                                       "--config", "tiny.json", "--encoder-weights", "w.pth",
                                       "--max-steps", "1", "--epochs", "1", "--crop", "32",
                                       "--batch-size", "2", "--workers", "0",
                                       "--val-split", "none", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["encoder_weights"] == str((tmp_path / "w.pth").resolve())
    bad = CliRunner().invoke(trainer, ["fit", "--data", str(tiny_data), "--run-dir", "run3",
                                       "--config", "tiny.json", "--encoder-weights",
                                       str(tmp_path / "tiny.json")])
    assert bad.exit_code == 1 and "encoder weights" in bad.output


# ------------------------------------------------------------------ the run-time note
def test_imagenet_note_only_for_a_fresh_paper_run_without_weights(tmp_path):
    from trainer.config import IMAGENET_NOTE, imagenet_note

    plain = TrainConfig()
    assert imagenet_note(plain) == IMAGENET_NOTE  # no preset named: the paper's
    assert imagenet_note(plain, preset="paper") == IMAGENET_NOTE
    assert imagenet_note(plain, preset="demo") is None
    assert imagenet_note(plain, preset="paper", resume=True) is None  # weights in last.pt
    assert imagenet_note(TrainConfig(encoder_weights="w.pth")) is None
    assert imagenet_note(TrainConfig(model=dict(TINY))) is None  # ImageNet weights do not fit
    demo_file = tmp_path / "c.json"
    demo_file.write_text(json.dumps({"preset": "demo"}))
    assert imagenet_note(plain, config_file=demo_file) is None
    assert "\n" not in IMAGENET_NOTE  # one line


def test_imagenet_note_gives_the_documented_command():
    from trainer.config import IMAGENET_NOTE

    docs = (Path(__file__).resolve().parents[1] / "docs" / "trainer.md").read_text()
    command = IMAGENET_NOTE.split("available: ")[1].split(" and pass")[0]
    assert command.startswith("python -c ") and command in docs


def test_cli_prints_the_note_once_before_fitting(tmp_path, monkeypatch):
    import trainer.fit as fit_module
    from trainer.config import IMAGENET_NOTE

    monkeypatch.setattr(fit_module, "fit", lambda *a, **k: {"best": None})
    data = tmp_path / "d"
    data.mkdir()
    args = ["fit", "--data", str(data), "--run-dir", str(tmp_path / "r")]
    res = CliRunner().invoke(trainer, args)
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == [IMAGENET_NOTE]
    res = CliRunner().invoke(trainer, [*args, "--preset", "demo"])
    assert res.exit_code == 0 and res.output == ""
