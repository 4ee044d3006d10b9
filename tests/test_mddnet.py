"""MDDNet (trainer.models.mddnet): parameter counts, the network, GLPN encoder weights, and
fit / resume / eval / predict through the command line on the bundled samples (CPU).

The parameter counts are checked against a count made by hand from the layer list
(:func:`mit_encoder_parameters`, :func:`sff_decoder_parameters`) and against GLPN's NYU
model as ``transformers`` builds it (an independent construction); the weights file is
written from ``transformers``' own ``GLPNForDepthEstimation``.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("transformers", reason="the [mddnet] extra is not installed")

from transformers import GLPNConfig  # noqa: E402
from transformers.models.glpn.modeling_glpn import GLPNForDepthEstimation  # noqa: E402

from cli.trainer_cmd import trainer  # noqa: E402
from defocuskit.errors import ConfigError  # noqa: E402
from trainer.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from trainer.models import get_spec  # noqa: E402
from trainer.models.glpn_weights import load_glpn_encoder_weights  # noqa: E402
from trainer.models.mddnet import (  # noqa: E402
    MDDNet,
    MDDNetConfig,
    mit_encoder_parameters,
    parameter_counts,
    sff_decoder_parameters,
)

pytestmark = pytest.mark.usefixtures("one_thread")

# a MiT with one layer per stage and an 8-channel decoder: MDDNet's code paths, 122 k params
TINY = {"depths": [1, 1, 1, 1], "hidden_sizes": [8, 16, 32, 64],
        "num_attention_heads": [1, 1, 2, 2], "decoder_hidden_size": 8}
B4 = dict(depths=[3, 8, 27, 3], hidden_sizes=[64, 128, 320, 512],
          num_attention_heads=[1, 2, 5, 8], sr_ratios=[8, 4, 2, 1])


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------ parameter counts
def test_mit_b4_counts_match_glpn_nyu_and_the_hand_count():
    with torch.device("meta"):  # shapes only: no 61 M parameters to initialise
        ours = MDDNet(MDDNetConfig())
        glpn = GLPNForDepthEstimation(GLPNConfig(**B4, decoder_hidden_size=64))
    counts = parameter_counts(ours)
    # the hand count from the layer list, and GLPN's NYU model built by transformers
    assert counts["encoder"] == mit_encoder_parameters(B4["depths"], B4["hidden_sizes"],
                                                       B4["sr_ratios"]) == _count(glpn.glpn)
    assert counts["encoder"] == 60_842_688
    decoder = _count(glpn.decoder) + _count(glpn.head)
    assert counts["depth"] == counts["defocus"] == decoder == sff_decoder_parameters(
        B4["hidden_sizes"], 64) == 378_215
    assert counts["total"] == 60_842_688 + 2 * 378_215 == 61_599_118
    # GLPN with one decoder is the "about 62 M" MiT-b4 model of the paper's backbone
    assert _count(glpn) == 61_220_903


@pytest.mark.parametrize("cfg", [TINY, {**TINY, "sr_ratios": [4, 2, 1, 1], "mlp_ratios":
                                        [2, 2, 4, 4], "decoder_hidden_size": 16},
                                 {"depths": [2, 2, 2, 2], "hidden_sizes": [32, 64, 160, 256],
                                  "decoder_hidden_size": 32}])
def test_the_hand_count_matches_built_models(cfg):
    c = MDDNetConfig(**cfg, heads=("depth",))
    counts = parameter_counts(MDDNet(c))
    assert counts["encoder"] == mit_encoder_parameters(c.depths, c.hidden_sizes, c.sr_ratios,
                                                       c.mlp_ratios)
    assert counts["depth"] == sff_decoder_parameters(c.hidden_sizes, c.decoder_hidden_size)
    assert "defocus" not in counts and counts["total"] == counts["encoder"] + counts["depth"]


# ------------------------------------------------------------------ the network
def test_outputs_are_full_size_and_in_range():
    torch.manual_seed(0)
    net = MDDNet(MDDNetConfig(**TINY, max_depth=7.0)).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 64, 96))
    assert set(out) == {"depth", "defocus"}
    for v in out.values():
        assert v.shape == (2, 1, 64, 96)
    assert float(out["depth"].min()) > 0 and float(out["depth"].max()) < 7.0
    assert float(out["defocus"].min()) >= 0
    with pytest.raises(ValueError, match="multiple of 32"):
        net(torch.rand(1, 3, 64, 80))


def test_the_encoder_is_glpns():
    """Same weights in, same four feature maps out as transformers' GLPN model."""
    glpn = GLPNForDepthEstimation(GLPNConfig(**{k: v for k, v in TINY.items()})).eval()
    net = MDDNet(MDDNetConfig(**TINY)).eval()
    net.encoder.load_state_dict(glpn.glpn.encoder.state_dict())
    x = torch.rand(1, 3, 64, 64)
    ours = net.encoder(x, output_hidden_states=True).hidden_states
    theirs = glpn.glpn(x, output_hidden_states=True).hidden_states
    assert [t.shape[-1] for t in ours] == [16, 8, 4, 2]  # 1/4, 1/8, 1/16, 1/32
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("bad, match", [
    ({"heads": ["depth", "aif"]}, r"model mddnet \(MDDNet\) has heads \['depth', 'defocus'\]"),
    ({"depths": [1, 1, 1]}, "model.depths: expected 4 positive integers"),
    ({"hidden_sizes": [8, 16, 33, 64]}, "multiple of its num_attention_heads"),
    ({"decoder_hidden_size": 7}, "even integer"),
    ({"max_depth": 0}, "max_depth"),
    ({"growth_rate": 8}, r"unknown key\(s\) \['growth_rate'\] for model mddnet"),
])
def test_bad_configs_are_refused(bad, match):
    with pytest.raises(ConfigError, match=match):
        MDDNetConfig.from_dict({**TINY, **bad})


# ------------------------------------------------------------------ GLPN NYU weights
def _glpn_file(tmp_path, cfg=TINY, *, kind="safetensors"):
    """GLPN's depth model as transformers saves it, with non-default values."""
    from safetensors.torch import save_file

    torch.manual_seed(3)
    glpn = GLPNForDepthEstimation(GLPNConfig(**cfg))
    state = {k: v + 0.5 if v.is_floating_point() else v for k, v in glpn.state_dict().items()}
    if kind == "folder":
        folder = tmp_path / "glpn-nyu"
        folder.mkdir()
        save_file(state, str(folder / "model.safetensors"))
        return folder, state
    path = tmp_path / ("model.safetensors" if kind == "safetensors" else "pytorch_model.bin")
    if kind == "safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path, state


@pytest.mark.parametrize("kind", ["safetensors", "bin", "folder"])
def test_encoder_weights_from_a_file_or_folder(tmp_path, kind):
    path, state = _glpn_file(tmp_path, kind=kind)
    net = MDDNet(MDDNetConfig(**TINY))
    before = {k: v.clone() for k, v in net.heads.state_dict().items()}
    info = load_glpn_encoder_weights(net, path)
    enc = net.encoder.state_dict()
    assert info["tensors"] == len(enc) and info["source"] == "GLPN NYU"
    assert info["unused"] == sum(k.startswith(("decoder.", "head.")) for k in state)
    for k, v in enc.items():
        torch.testing.assert_close(v, state["glpn.encoder." + k])
    for k, v in net.heads.state_dict().items():  # decoders start from scratch
        torch.testing.assert_close(v, before[k])


def test_a_wrong_weights_file_lists_its_keys_and_loads_nothing(tmp_path):
    path, _ = _glpn_file(tmp_path, cfg={"depths": [1, 1, 1, 1]})  # MiT-b0 widths
    net = MDDNet(MDDNetConfig(**TINY))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"mis-shaped \(file vs model\) \d+ \["
                                              r"glpn\.encoder\.patch_embeddings\.0\.proj"):
        load_glpn_encoder_weights(net, path)
    densenet = tmp_path / "densenet121.pth"
    torch.save({"features.conv0.weight": torch.zeros(64, 3, 7, 7)}, densenet)
    with pytest.raises(CheckpointError) as err:
        load_glpn_encoder_weights(net, densenet)
    msg = str(err.value)
    n = len(net.encoder.state_dict())
    assert f"missing {n} [glpn.encoder.patch_embeddings.0.proj.weight" in msg
    assert "unexpected 1 [features.conv0.weight]" in msg and "\n" not in msg
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds none of"):
        load_glpn_encoder_weights(net, tmp_path / "empty")
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_a_missing_transformers_is_one_line(monkeypatch, tmp_path, samples_dataset):
    monkeypatch.setitem(sys.modules, "transformers", None)
    res = CliRunner().invoke(trainer, ["fit", "--model", "mddnet", "--data",
                                       str(samples_dataset), "--run-dir", str(tmp_path / "r"),
                                       "--device", "cpu"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        'Error: model mddnet needs the optional package transformers: pip install -e '
        '".[mddnet]" (pinned in constraints.txt)']
    assert not (tmp_path / "r" / "last.pt").exists()


# ------------------------------------------------------------------ the command line
def _fit(samples_dataset, run_dir, tmp_path, *extra, **options):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({"model": TINY, **options}))
    return CliRunner().invoke(trainer, [
        "fit", "--model", "mddnet", "--data", str(samples_dataset), "--run-dir", str(run_dir),
        "--config", str(cfg), "--crop", "64", "--batch-size", "2", "--workers", "0",
        "--device", "cpu", "--no-progress", "--val-split", "none", *extra])


@pytest.fixture(scope="module")
def mdd_run(samples_dataset, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mddnet")
    res = _fit(samples_dataset, tmp / "run", tmp, "--epochs", "1", "--max-steps", "1")
    assert res.exit_code == 0, res.output
    return tmp / "run"


def test_fit_records_the_model_and_mddnets_recipe(mdd_run):
    ckpt = load_checkpoint(mdd_run / "last.pt")
    assert ckpt["model_name"] == "mddnet" and ckpt["step"] == 1
    assert ckpt["model_config"]["hidden_sizes"] == TINY["hidden_sizes"]
    cfg = ckpt["train_config"]  # --model mddnet alone selects the mddnet preset
    assert (cfg["optimizer"], cfg["lr"], cfg["loss"], cfg["consistency_norm"],
            cfg["heads"]) == ("adam", 1e-4, "mddnet", "l2", ["depth", "defocus"])
    assert "betas" in ckpt["optimizer"]["param_groups"][0]  # Adam's state, not SGD's
    row = ckpt["history"][0]
    assert {"train_depth_ssim", "train_depth_silog", "train_defocus_ssim",
            "train_defocus_silog", "train_consistency"} <= set(row)


def test_resume_continues_and_another_model_is_refused(mdd_run, samples_dataset, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(mdd_run, run)
    res = _fit(samples_dataset, run, tmp_path, "--model", "2hded", "--resume", "--epochs",
               "2", "--max-steps", "2")
    assert res.exit_code == 1
    assert "holds a mddnet model, this run is a 2hded model" in res.output
    res = _fit(samples_dataset, run, tmp_path, "--resume", "--epochs", "2", "--max-steps", "2")
    assert res.exit_code == 0, res.output
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["step"] == 2 and ckpt["model_name"] == "mddnet"


def test_eval_json_reports_depth_and_defocus_metrics(mdd_run, samples_dataset):
    res = CliRunner().invoke(trainer, ["eval", "--data", str(samples_dataset), "--checkpoint",
                                       str(mdd_run / "last.pt"), "--device", "cpu", "--json",
                                       "--no-progress"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["n_images"] == 2 and "psnr" not in out
    for key in ("rmse", "abs_rel", "delta1", "defocus_mae", "defocus_mse"):
        assert np.isfinite(out[key]), key


def test_predict_writes_both_maps(mdd_run, samples_dir, tmp_path):
    image = samples_dir / "scenes" / "room_06_rgb.png"
    res = CliRunner().invoke(trainer, ["predict", "--checkpoint", str(mdd_run / "last.pt"),
                                       "--output", str(tmp_path), "--device", "cpu",
                                       "--no-progress", str(image)])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["room_06_rgb_depth.png", "room_06_rgb_depth_color.png",
                     "room_06_rgb_sigma.npy", "room_06_rgb_sigma_color.png"]
    sigma = np.load(tmp_path / "room_06_rgb_sigma.npy")
    assert sigma.dtype == np.float32 and sigma.min() >= 0


def test_self_supervised_and_on_the_fly_run_with_mddnet(samples_dataset, tmp_path):
    res = _fit(samples_dataset, tmp_path / "ss", tmp_path, "--method", "self-supervised",
               "--epochs", "1", "--max-steps", "1", "--preset", "demo", sigma_max=8.0)
    assert res.exit_code == 0, res.output
    ckpt = load_checkpoint(tmp_path / "ss" / "last.pt")
    assert ckpt["train_config"]["heads"] == ["defocus"]  # MDDNet has no AiF head
    res = _fit(samples_dataset, tmp_path / "otf", tmp_path, "--on-the-fly", "--epochs", "1",
               "--max-steps", "1")
    assert res.exit_code == 0, res.output
    assert load_checkpoint(tmp_path / "otf" / "last.pt")["train_config"]["on_the_fly"]


def test_the_spec_declares_heads_range_and_recipe():
    spec = get_spec("mddnet")
    assert (spec.heads, spec.default_heads, spec.input_range, spec.preset) == (
        ("depth", "defocus"), ("depth", "defocus"), "unit", "mddnet")
    assert spec.method_heads("self-supervised") == ("defocus",)


def test_the_extra_and_what_it_pulls_in_are_pinned():
    """Every package of the [mddnet] extra and of its installed requirement closure (markers
    for other platforms or Pythons aside) has a pin in constraints.txt."""
    import re
    import tomllib
    from importlib.metadata import PackageNotFoundError, distribution
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    extra = tomllib.loads((repo / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["mddnet"]
    pins = {re.split("==", line)[0].lower().replace("_", "-")
            for line in (repo / "constraints.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#")}
    todo = [re.match(r"[\w.-]+", r)[0] for r in extra]
    seen = set()
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = distribution(name)
        except PackageNotFoundError:  # a requirement of another platform or Python
            continue
        assert name in pins, f"{name} is not pinned in constraints.txt"
        todo += [re.match(r"[\w.-]+", r)[0] for r in dist.requires or [] if "extra ==" not in r]
    assert {"transformers", "huggingface-hub", "tokenizers", "safetensors"} <= seen
