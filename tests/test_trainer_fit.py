"""trainer.config, trainer.checkpoint and trainer.fit on a tiny model and dataset (CPU)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _helpers import TINY, tiny_split

from defocuskit.errors import ConfigError
from defocuskit.store import write_arrays
from trainer.checkpoint import (
    CheckpointError,
    build_model,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from trainer.config import PRESETS, TrainConfig, resolve_config
from trainer.fit import fit

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """train: 4 samples, test: 2; 64 x 64; depth 1..5 m; the input is a dimmed AiF."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("trainer_fit") / "tiny.zarr"
    write_arrays(path, {"train": tiny_split(rng, 4), "test": tiny_split(rng, 2)})
    return path


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=2, lr=0.01, crop=32, val_split=None, plots=False,
                num_workers=0, progress=False, model=dict(TINY))
    return TrainConfig(**{**base, **kw})


def quiet(_msg):
    pass


# ------------------------------------------------------------------ config
def test_paper_defaults_and_resolution_order(tmp_path):
    paper = TrainConfig()
    assert (paper.epochs, paper.batch_size, paper.lr, paper.lr_milestones, paper.lr_gamma,
            paper.crop, paper.heads) == (500, 4, 2e-4, (300,), 0.1, 256, ("depth", "aif"))
    assert (paper.mu, paper.charbonnier_eps, paper.psi, paper.lam) == (1e-3, 1e-3, 4.0, 0.01)
    # model selection on a holdout of the training split, never on the test split
    assert (paper.val_split, paper.val_fraction, paper.val_indices) == ("holdout", 0.05, None)
    assert (paper.resize, paper.max_depth, paper.clip_depth) == (None, None, True)
    toml = tmp_path / "c.toml"
    toml.write_text('preset = "demo"\nepochs = 9\nheads = ["depth"]\n[model]\ngrowth_rate = 8\n')
    cfg = resolve_config(config_file=toml, overrides={"epochs": 3, "lr": None})
    assert cfg.epochs == 3  # CLI beats the file
    assert cfg.crop == PRESETS["demo"]["crop"]  # the file's preset applies
    assert cfg.lr == PRESETS["demo"]["lr"]  # None = not given
    assert cfg.heads == ("depth",) and cfg.model == {"growth_rate": 8}
    js = tmp_path / "c.json"
    js.write_text(json.dumps(cfg.to_dict()))
    assert resolve_config(config_file=js) == cfg  # config.json round-trips
    assert resolve_config(overrides={"heads": "aif", "val_split": "none"}).val_split is None


@pytest.mark.parametrize("bad, message", [
    ({"epoch": 3}, r"unknown option\(s\) \['epoch'\]"),
    ({"epochs": "3"}, "'epochs' expected an integer, got '3'"),
    ({"lr": True}, "'lr' expected a number"),
    ({"heads": "depth,normals"}, "heads"),
    ({"crop": 100}, "multiple of 32"),
    ({"resize": [256, 100]}, "resize: expected"),
    ({"resize": [256, 256, 256]}, "resize: expected"),
    ({"val_fraction": 0.0}, "val_fraction"),
    ({"val_fraction": 1.0}, "val_fraction"),
    ({"max_steps": 0}, r"max_steps: expected an integer in \[1, inf\), got 0"),
    ({"val_max_samples": 0}, r"val_max_samples: expected an integer in \[1, inf\)"),
    ({"max_depth": -1.0}, r"max_depth: expected a number in \(0, inf\], got -1"),
    ({"batch_size": 1, "crop": 32}, "BatchNorm one value per channel"),
    ({"amp": "no"}, "'amp' expected true or false"),
])
def test_config_rejects_bad_options(bad, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(overrides=bad)


def _broken_json(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{epochs: 3")
    return {"config_file": broken}


@pytest.mark.parametrize("make_args, message", [
    (lambda tmp_path: {"config_file": tmp_path / "nope.toml"}, "not found"),
    (_broken_json, "not valid JSON"),
    (lambda tmp_path: {"preset": "fast"}, "preset 'fast'"),
], ids=["missing-file", "broken-json", "unknown-preset"])
def test_config_file_errors(tmp_path, make_args, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(**make_args(tmp_path))


# ------------------------------------------------------------------ checkpoint
@pytest.fixture(scope="module")
def one_step_run(tmp_path_factory, tiny_data):
    """A run folder after one optimiser step of ``fit``."""
    run = tmp_path_factory.mktemp("one_step") / "run"
    fit(tiny_data, run, tiny_cfg(epochs=1, max_steps=1), log=quiet)
    return run


def test_missing_checkpoint_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="file not found"):
        load_checkpoint(tmp_path / "none.pt")


@pytest.mark.parametrize("seed", range(5), ids=lambda seed: f"junk-bytes-seed{seed}")
def test_junk_checkpoint_is_refused(tmp_path, seed):
    corrupt = tmp_path / "corrupt.pt"  # junk bytes make torch.load fail in many different ways
    corrupt.write_bytes(np.random.default_rng(seed).bytes(2000))
    with pytest.raises(CheckpointError, match="unreadable or corrupt"):
        load_checkpoint(corrupt)


def test_truncated_checkpoint_is_refused(tmp_path, one_step_run):
    whole = (one_step_run / "last.pt").read_bytes()
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(whole[: len(whole) // 2])  # an interrupted copy
    with pytest.raises(CheckpointError, match="unreadable or corrupt"):
        load_checkpoint(corrupt)


def test_foreign_torch_file_is_not_a_checkpoint(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not a trainer checkpoint"):
        load_checkpoint(other)


@pytest.mark.parametrize("change, message", [
    ({"growth_rate": 6}, "do not match"),  # the weights no longer fit
    ({"growth_rate": 6, "colour": "red"}, "invalid model config"),
], ids=["weights-do-not-fit", "unknown-model-option"])
def test_bad_model_config_in_checkpoint_is_refused(one_step_run, change, message):
    ckpt = load_checkpoint(one_step_run / "last.pt")
    ckpt["model_config"].update(change)
    with pytest.raises(CheckpointError, match=message):
        build_model(ckpt)


def test_rng_state_round_trip(tmp_path):
    import random

    save_checkpoint(tmp_path / "r.pt", {"model": {}, "model_config": {}, "epoch": 0, "step": 0,
                                        "rng": rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(2))  # noqa: NPY002
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    got = (random.random(), np.random.rand(), torch.rand(2))  # noqa: NPY002
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])


# ------------------------------------------------------------------ fit
def test_loss_falls_when_overfitting_one_batch(tmp_path, tiny_data):
    # crop = frame size, no flip, batch = the whole 4-sample split: one batch, 12 times
    cfg = tiny_cfg(epochs=12, crop=64, hflip=False, batch_size=4, lr=0.005)
    summary = fit(tiny_data, tmp_path / "of", cfg, log=quiet)
    hist = load_checkpoint(tmp_path / "of" / "last.pt")["history"]
    total = [r["train_total"] for r in hist]
    assert summary["steps"] == 12 and len(total) == 12
    assert total[-1] < 0.7 * total[0], total
    assert total[-1] <= min(total[:-1]), total  # still falling at the end
    assert all(np.isfinite(total))
    assert (tmp_path / "of" / "log.csv").read_text().count("\n") == 13


def test_resume_equals_uninterrupted_run(tmp_path, tiny_data):
    cfg = tiny_cfg(epochs=3, lr_milestones=(1,))  # the lr drop falls between the two parts
    fit(tiny_data, tmp_path / "a", cfg, log=quiet)
    fit(tiny_data, tmp_path / "b", dataclasses.replace(cfg, epochs=1), log=quiet)
    fit(tiny_data, tmp_path / "b", cfg, resume=True, log=quiet)
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert (a["epoch"], a["step"]) == (b["epoch"], b["step"]) == (3, 6)
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    for k, v in a["optimizer"]["state"].items():
        assert torch.equal(v["momentum_buffer"], b["optimizer"]["state"][k]["momentum_buffer"])

    def untimed(h):
        return [{k: v for k, v in r.items() if not k.endswith("per_s")} for r in h]

    assert untimed(a["history"]) == untimed(b["history"])
    assert a["history"][-1]["lr"] == pytest.approx(0.001)


def _depth_cfg() -> TrainConfig:
    return tiny_cfg(epochs=1, val_split="test", plots=True, heads=("depth",))


@pytest.fixture(scope="module")
def depth_run(tmp_path_factory, tiny_data):
    """(run folder, its summary) of one epoch of the depth head, validated on the test split."""
    run = tmp_path_factory.mktemp("depth_run") / "run"
    return run, fit(tiny_data, run, _depth_cfg(), log=quiet)


def test_fit_writes_run_files(depth_run):
    run, summary = depth_run
    for name in ("config.json", "log.csv", "last.pt", "best.pt", "loss_curves.png",
                 "val_panel.png"):
        assert (run / name).is_file(), name
    assert json.loads((run / "config.json").read_text()) == _depth_cfg().to_dict()
    assert summary["monitor"] == "val_rmse" and np.isfinite(summary["best"])
    assert "val_psnr" not in summary["last"]  # depth head alone


def test_fit_refuses_to_overwrite_an_earlier_run(tiny_data, depth_run):
    run, _ = depth_run
    with pytest.raises(ConfigError, match="holds an earlier run"):
        fit(tiny_data, run, _depth_cfg(), log=quiet)


@pytest.mark.parametrize("change, options, message", [
    ({}, {"resume": True}, "no checkpoint"),
    ({"val_split": "val"}, {}, "val_split 'val'"),
], ids=["resume-without-checkpoint", "absent-val-split"])
def test_fit_refuses_bad_start(tmp_path, tiny_data, change, options, message):
    cfg = dataclasses.replace(_depth_cfg(), **change)
    with pytest.raises(ConfigError, match=message):
        fit(tiny_data, tmp_path / "run", cfg, log=quiet, **options)


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path, tiny_data):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"model": TINY, "num_workers": 0, "plots": False}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "trainer", "fit", "--data", str(tiny_data), "--run-dir",
           str(tmp_path / "ddp"), "--config", str(cfg), "--epochs", "2", "--batch-size", "1",
           "--crop", "64", "--device", "cpu", "--val-split", "test"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(tmp_path / "ddp" / "last.pt")
    # 4 samples over 2 ranks at batch 1: 2 steps per epoch on each rank
    assert (ckpt["epoch"], ckpt["step"]) == (2, 4)
    assert proc.stdout.count("epoch ") == 2  # only rank 0 reports
    assert np.isfinite(ckpt["history"][-1]["val_rmse"])


# ------------------------------------------------------------------ validation holdout
@pytest.fixture(scope="module")
def train_only(tmp_path_factory):
    """A dataset with a train split of 8 samples and no test split at all."""
    rng = np.random.default_rng(5)
    aif = rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    depth = rng.uniform(1.0, 4.0, (8, 64, 64)).astype(np.float32)
    path = tmp_path_factory.mktemp("train_only") / "train_only.zarr"
    write_arrays(path, {"train": {"aif": aif, "defocused": aif, "depth": depth}})
    return path


def test_default_validation_is_a_recorded_holdout_of_train(tmp_path, train_only,
                                                           monkeypatch):
    import trainer.datasets as fit_module  # the datasets are built there

    opened = []
    real = fit_module.DefocusDataset

    def spy(path, split, **kw):
        ds = real(path, split, **kw)
        opened.append((split, list(ds.indices)))
        return ds

    monkeypatch.setattr(fit_module, "DefocusDataset", spy)
    cfg = tiny_cfg(epochs=1, val_split="holdout", val_fraction=0.25, heads=("depth",))
    summary = fit(train_only, tmp_path / "a", cfg, log=quiet)  # no test split: still fine
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["val_split"] == "holdout" and saved["val_fraction"] == 0.25
    val = saved["val_indices"]
    assert len(val) == 2  # 25 % of 8
    (train_split, train_idx), (val_split, val_idx) = opened
    assert train_split == val_split == "train"  # nothing else is opened
    assert val_idx == val and sorted(train_idx + val_idx) == list(range(8))
    assert not set(train_idx) & set(val_idx)
    assert summary["monitor"] == "val_rmse" and np.isfinite(summary["best"])
    ckpt = load_checkpoint(tmp_path / "a" / "best.pt")
    assert ckpt["train_config"]["val_indices"] == val
    # the same seed draws the same holdout; another seed another one
    fit(train_only, tmp_path / "b", cfg, log=quiet)
    assert json.loads((tmp_path / "b" / "config.json").read_text())["val_indices"] == val
    fit(train_only, tmp_path / "c", dataclasses.replace(cfg, seed=1), log=quiet)
    assert json.loads((tmp_path / "c" / "config.json").read_text())["val_indices"] != val
    # a recorded holdout is reused as given (e.g. from config.json)
    fit(train_only, tmp_path / "d", dataclasses.replace(cfg, val_indices=(0, 7)), log=quiet)
    assert opened[-1] == ("train", [0, 7])
    with pytest.raises(ConfigError, match="val_indices"):
        fit(train_only, tmp_path / "e", dataclasses.replace(cfg, val_indices=(9,)), log=quiet)


def test_named_and_disabled_validation(tmp_path, tiny_data, train_only):
    cfg = tiny_cfg(epochs=1, heads=("depth",))
    run = fit(tiny_data, tmp_path / "t", dataclasses.replace(cfg, val_split="test"),
              log=quiet)
    assert run["monitor"] == "val_rmse"
    assert json.loads((tmp_path / "t" / "config.json").read_text())["val_indices"] is None
    run = fit(train_only, tmp_path / "n", dataclasses.replace(cfg, val_split="none"),
              log=quiet)
    assert run["monitor"] == "train_total"
    with pytest.raises(ConfigError, match="val_split 'test'"):
        fit(train_only, tmp_path / "x", dataclasses.replace(cfg, val_split="test"), log=quiet)


# ------------------------------------------------------------------ resize protocol
def test_resize_protocol_trains_and_evaluates_at_the_same_size(tmp_path, tiny_data):
    from trainer.evaluate import evaluate_checkpoint

    cfg = tiny_cfg(epochs=1, resize=(32,), val_split="test", heads=("depth",))
    assert cfg.resize == (32, 32)
    fit(tiny_data, tmp_path / "r", cfg, log=quiet)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["resize"] == [32, 32]
    ckpt = tmp_path / "r" / "last.pt"
    as_trained = evaluate_checkpoint(tiny_data, ckpt, device="cpu")
    assert as_trained["resize"] == [32, 32] and as_trained["n_images"] == 2
    native = evaluate_checkpoint(tiny_data, ckpt, device="cpu", resize=None)
    assert native["resize"] is None and native["rmse"] != as_trained["rmse"]
    assert as_trained["clip"] is True and as_trained["max_depth"] is None
    limited = evaluate_checkpoint(tiny_data, ckpt, device="cpu", max_depth=3.0, clip=False)
    assert (limited["max_depth"], limited["clip"]) == (3.0, False)
