"""A non-finite loss stops ``trainer fit`` at once, names the step and the term, exits
non-zero and leaves the last good checkpoint as it was."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _helpers import TINY, tiny_split
from click.testing import CliRunner

import trainer.fit as fit_module
from cli.trainer_cmd import trainer
from defocuskit.store import write_arrays
from trainer.checkpoint import load_checkpoint
from trainer.config import TrainConfig
from trainer.fit import DivergedError, fit

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """train: 4 samples (2 steps of 2 per epoch), test: 2; 64 x 64."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("diverged") / "tiny.zarr"
    write_arrays(path, {"train": tiny_split(rng, 4), "test": tiny_split(rng, 2)})
    return path


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=2, lr=0.01, crop=32, val_split=None, plots=False,
                num_workers=0, progress=False, model=dict(TINY), seed=3)
    return TrainConfig(**{**base, **kw})


def nan_at_step(monkeypatch, bad_step: int, term: str = "depth_l1") -> None:
    """Make the loss of optimiser step ``bad_step`` (1-based) NaN in ``term`` and total."""
    real_build = fit_module.build_run

    def build(*args, **kwargs):
        run = real_build(*args, **kwargs)
        criterion, calls = run.criterion, [0]

        def poisoned(pred, batch):
            loss, terms = criterion(pred, batch)
            calls[0] += 1
            if calls[0] == bad_step:
                terms = {**terms, term: terms[term] * float("nan")}
                terms["total"] = terms["total"] * float("nan")
                loss = loss * float("nan")
            return loss, terms

        run.criterion = poisoned
        return run

    monkeypatch.setattr(fit_module, "build_run", build)


def test_a_nan_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(
        tiny_data, tmp_path, monkeypatch):
    reference = tmp_path / "one_epoch"
    fit(tiny_data, reference, tiny_cfg(epochs=1), log=lambda _m: None)
    good = load_checkpoint(reference / "last.pt")["model"]

    nan_at_step(monkeypatch, 3)  # the first step of epoch 2
    run = tmp_path / "run"
    with pytest.raises(DivergedError) as info:
        fit(tiny_data, run, tiny_cfg(), log=lambda _m: None)
    msg = str(info.value)
    assert msg.startswith("training stopped at step 3: the loss term 'depth_l1' is nan "
                          "(epoch 2); ") and "\n" not in msg
    assert f"{run / 'last.pt'} (epoch 1, step 2) is the last good checkpoint and was kept" in msg
    kept = load_checkpoint(run / "last.pt")
    assert (kept["epoch"], kept["step"]) == (1, 2)
    # the kept weights are those of a clean one-epoch run (CPU training is bitwise)
    assert kept["model"].keys() == good.keys()
    assert all(torch.equal(kept["model"][k], good[k]) for k in good)
    assert load_checkpoint(run / "best.pt")["epoch"] == 1
    assert len((run / "log.csv").read_text().splitlines()) == 2  # header + epoch 1


def test_the_cli_exits_non_zero_with_one_line_and_writes_no_checkpoint(
        tiny_data, tmp_path, monkeypatch):
    nan_at_step(monkeypatch, 1, term="aif_charbonnier")
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({"model": TINY}))
    run = tmp_path / "run"
    res = CliRunner().invoke(trainer, [
        "fit", "--data", str(tiny_data), "--run-dir", str(run), "--config", str(cfg),
        "--epochs", "2", "--batch-size", "2", "--crop", "32", "--val-split", "none",
        "--workers", "0", "--device", "cpu", "--no-progress"])
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert lines[-1].startswith("Error: training stopped at step 1: the loss term "
                                "'aif_charbonnier' is nan (epoch 1); no checkpoint was "
                                "written to ")
    assert "lower --lr (now 0.0002)" in lines[-1] and "Traceback" not in res.output
    assert not (run / "last.pt").exists() and not (run / "best.pt").exists()
