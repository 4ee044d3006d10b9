"""Which checkpoints a run keeps (``--save``) and the weights-only ``trainer export``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _helpers import TINY, tiny_split
from click.testing import CliRunner

from cli.trainer_cmd import trainer
from defocuskit.store import write_arrays
from trainer.checkpoint import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """train 6 / test 2 samples of 64 x 64 with a stored input, and a tiny-model config."""
    root = tmp_path_factory.mktemp("export")
    rng = np.random.default_rng(0)
    write_arrays(root / "tiny.zarr", {"train": tiny_split(rng, 6), "test": tiny_split(rng, 2)})
    cfg = root / "tiny.toml"
    cfg.write_text("num_workers = 0\nplots = false\n[model]\n"
                   + "".join(f"{k} = {json.dumps(v)}\n" for k, v in TINY.items()))
    return root / "tiny.zarr", cfg


def _invoke(*args):
    return CliRunner().invoke(trainer, [str(a) for a in args])


def _fit(stored, run_dir, *args):
    data, cfg = stored
    return _invoke("fit", "--data", data, "--run-dir", run_dir, "--config", cfg,
                   "--epochs", "2", "--batch-size", "2", "--crop", "32", "--lr", "0.01",
                   "--device", "cpu", "--val-split", "test", "--no-progress", *args)


@pytest.fixture(scope="module")
def run(stored, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("export_run") / "run"
    res = _fit(stored, run_dir)
    assert res.exit_code == 0, res.output
    return run_dir


def _eval(stored, checkpoint) -> dict:
    res = _invoke("eval", "--data", stored[0], "--checkpoint", checkpoint, "--json",
                  "--device", "cpu", "--no-progress")
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def _tensor_bytes(state: dict) -> int:
    return sum(v.numel() * v.element_size() for v in state.values())


def test_save_both_is_the_default_and_keeps_resume_possible(run):
    assert (run / "best.pt").is_file() and (run / "last.pt").is_file()
    assert "optimizer" in load_checkpoint(run / "last.pt")
    assert json.loads((run / "config.json").read_text())["save"] == "both"


def test_save_best_keeps_only_best_pt_and_resume_says_why_not(stored, tmp_path):
    res = _fit(stored, tmp_path / "r", "--save", "best")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "best.pt").is_file() and not (tmp_path / "r" / "last.pt").exists()
    again = _fit(stored, tmp_path / "r", "--resume")
    assert again.exit_code == 1 and "no checkpoint" in again.output and "last.pt" in again.output


def test_save_last_keeps_only_last_pt(stored, tmp_path):
    res = _fit(stored, tmp_path / "r", "--save", "last")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "last.pt").is_file() and not (tmp_path / "r" / "best.pt").exists()


def test_a_bad_save_value_is_refused(stored, tmp_path):
    res = _fit(stored, tmp_path / "r", "--save", "all")
    assert res.exit_code == 2 and "--save" in res.output
    assert not (tmp_path / "r").exists()


def test_export_scores_like_its_checkpoint_and_half_precision_halves_the_weights(
        stored, run, tmp_path):
    full, half = tmp_path / "w32.pt", tmp_path / "w16.pt"
    for out, extra in ((full, []), (half, ["--half"])):
        res = _invoke("export", "--checkpoint", run / "last.pt", "--output", out, *extra)
        assert res.exit_code == 0 and f"wrote {out}" in res.output, res.output
    last = load_checkpoint(run / "last.pt")
    exported = load_checkpoint(full)
    assert not {"optimizer", "scheduler", "rng"} & set(exported)
    assert all(torch.equal(exported["model"][k], v) for k, v in last["model"].items())
    halved = load_checkpoint(half)["model"]
    floats = [k for k, v in last["model"].items() if v.is_floating_point()]
    assert floats and all(halved[k].dtype == torch.float16 for k in floats)

    # SGD momentum doubles last.pt's tensors; float16 halves the weights' bytes again
    assert full.stat().st_size < (run / "last.pt").stat().st_size
    float_bytes = sum(last["model"][k].numel() * 4 for k in floats)
    assert _tensor_bytes(halved) == _tensor_bytes(exported["model"]) - float_bytes // 2
    reference = _eval(stored, run / "last.pt")
    assert _eval(stored, full)["rmse"] == reference["rmse"]
    assert _eval(stored, half)["rmse"] == pytest.approx(reference["rmse"], rel=1e-2)


def test_export_predicts_and_cannot_be_resumed(stored, run, tmp_path, samples_dir):
    out = tmp_path / "w.pt"
    assert _invoke("export", "--checkpoint", run / "best.pt", "--output", out,
                   "--half").exit_code == 0
    res = _invoke("predict", "--checkpoint", out, "--output", tmp_path / "pred", "--device",
                  "cpu", "--no-progress", samples_dir / "scenes" / "room_06_rgb.png")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "pred" / "room_06_rgb_depth.png").is_file()
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "last.pt").write_bytes(out.read_bytes())
    again = _fit(stored, copy, "--resume")
    assert again.exit_code == 1 and "holds weights only" in again.output, again.output


def test_export_never_replaces_a_file(run, tmp_path):
    foreign = tmp_path / "mine.pt"
    foreign.write_text("not ours")
    res = _invoke("export", "--checkpoint", run / "best.pt", "--output", foreign)
    assert res.exit_code == 1 and "already exists" in res.output
    assert foreign.read_text() == "not ours"
    temp = tmp_path / "new.pt.tmp"
    temp.write_text("also not ours")
    res = _invoke("export", "--checkpoint", run / "best.pt", "--output", tmp_path / "new.pt")
    assert res.exit_code == 1 and temp.read_text() == "also not ours"
    assert not (tmp_path / "new.pt").exists()
