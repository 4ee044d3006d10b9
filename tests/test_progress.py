"""Progress of trainer fit (training and validation), eval and predict: a tqdm bar on a
terminal, plain lines at a set pace without one, nothing with --no-progress."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from _helpers import TINY, tiny_split
from click.testing import CliRunner

from cli.trainer_cmd import trainer
from defocuskit.store import write_arrays
from trainer.progress import Progress, Ticker, format_duration

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN_LINE = re.compile(r"^epoch (\d+)/(\d+)  step (\d+)/(\d+)  loss (\S+)  (\S+) img/s  "
                        r"ETA (\S+)$")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """train: 4 samples, test: 2; 64 x 64 (tests/_helpers.tiny_split)."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("progress") / "tiny.zarr"
    write_arrays(path, {"train": tiny_split(rng, 4), "test": tiny_split(rng, 2)})
    return path


def _fit(data, run_dir, *extra):
    cfg = run_dir.parent / f"{run_dir.name}.toml"
    cfg.write_text("[model]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in TINY.items()))
    return CliRunner().invoke(trainer, [
        "fit", "--data", str(data), "--run-dir", str(run_dir), "--config", str(cfg),
        "--epochs", "2", "--batch-size", "2", "--crop", "32", "--lr", "0.01",
        "--val-split", "test", "--workers", "0", "--device", "cpu", "--no-tensorboard",
        "--seed", "1", *extra])


@pytest.fixture(scope="module")
def fitted(tiny_data, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("progress_run") / "run"
    res = _fit(tiny_data, run_dir, "--progress-every", "0")
    assert res.exit_code == 0, res.output
    return run_dir, res


@pytest.mark.torch
def test_fit_without_a_terminal_prints_a_line_per_due_step(fitted):
    run_dir, res = fitted
    lines = res.stderr.splitlines()
    train = [TRAIN_LINE.match(ln) for ln in lines if ln.startswith("epoch ")]
    assert all(train), lines
    # 4 training samples, batch 2: 2 steps an epoch, 4 in the run; every step is due at 0 s
    assert [(m[1], m[2], m[3], m[4]) for m in train] == [
        ("1", "2", "1", "4"), ("1", "2", "2", "4"), ("2", "2", "3", "4"), ("2", "2", "4", "4")]
    assert train[-1][7] == "0s"  # nothing left after the last step
    # an epoch's first step (worker start, warm-up) gives no pace: no number is guessed
    assert train[0][7] == train[2][7] == "estimating"
    # the loss shown is the epoch's mean so far: at its last step, the epoch's log.csv value
    with open(run_dir / "log.csv") as f:
        rows = list(csv.DictReader(f))
    for m, row in zip((train[1], train[3]), rows, strict=True):
        assert float(m[5]) == pytest.approx(float(row["train_total"]), rel=1e-3)
    # validation on the 2 test images after each epoch, between the epochs' lines
    val = [ln for ln in lines if ln.startswith("validate")]
    assert [ln.split("  ")[:2] for ln in val] == [
        ["validate epoch 1", "1/2 images"], ["validate epoch 1", "2/2 images"],
        ["validate epoch 2", "1/2 images"], ["validate epoch 2", "2/2 images"]]
    order = [ln.split("  ")[0] for ln in lines if ln.startswith(("epoch", "validate"))]
    assert order == ["epoch 1/2"] * 2 + ["validate epoch 1"] * 2 + ["epoch 2/2"] * 2 \
        + ["validate epoch 2"] * 2
    # progress goes to stderr; stdout keeps the per-epoch summary lines
    assert not any(TRAIN_LINE.match(ln) for ln in res.stdout.splitlines())
    assert sum(ln.startswith("epoch ") for ln in res.stdout.splitlines()) == 2


@pytest.mark.torch
def test_fit_with_the_default_pace_prints_no_line_in_a_short_run(tiny_data, tmp_path):
    res = _fit(tiny_data, tmp_path / "run")  # 30 s default: a run of seconds stays quiet
    assert res.exit_code == 0, res.output
    assert not [ln for ln in res.stderr.splitlines() if ln.startswith(("epoch", "validate"))]


@pytest.mark.torch
def test_fit_no_progress_is_silent(tiny_data, tmp_path):
    res = _fit(tiny_data, tmp_path / "run", "--no-progress", "--progress-every", "0")
    assert res.exit_code == 0, res.output
    assert not [ln for ln in res.stderr.splitlines() if ln.startswith(("epoch", "validate"))]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["progress"] is False


def _eval(data, run_dir, *extra):
    return CliRunner().invoke(trainer, ["eval", "--data", str(data), "--checkpoint",
                                        str(run_dir / "last.pt"), "--device", "cpu", "--json",
                                        *extra])


@pytest.mark.torch
def test_eval_progress_lines_keep_stdout_json(tiny_data, fitted):
    res = _eval(tiny_data, fitted[0], "--progress-every", "0")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n_images"] == 2
    lines = res.stderr.splitlines()
    assert [ln.split("  ")[:2] for ln in lines] == [["eval test", "1/2 images"],
                                                    ["eval test", "2/2 images"]]
    assert lines[-1].endswith("ETA 0s")
    quiet = _eval(tiny_data, fitted[0], "--progress-every", "0", "--no-progress")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert json.loads(quiet.stdout)["rmse"] == json.loads(res.stdout)["rmse"]


def _predict(run_dir, out, images, *extra):
    return CliRunner().invoke(trainer, ["predict", "--checkpoint", str(run_dir / "last.pt"),
                                        "--output", str(out), "--device", "cpu", *extra,
                                        *map(str, images)])


@pytest.mark.torch
def test_predict_progress_lines_and_no_progress(fitted, tmp_path):
    rng = np.random.default_rng(5)
    images = []
    for k in range(3):
        images.append(tmp_path / f"im{k}.png")
        cv2.imwrite(str(images[-1]), rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    res = _predict(fitted[0], tmp_path / "out", images, "--progress-every", "0")
    assert res.exit_code == 0, res.output
    assert [ln.split("  ")[:2] for ln in res.stderr.splitlines()] == [
        ["predict", f"{k}/3 images"] for k in (1, 2, 3)]
    quiet = _predict(fitted[0], tmp_path / "out2", images, "--no-progress",
                     "--progress-every", "0")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert quiet.stdout.strip() == res.stdout.strip().replace("/out", "/out2")


@pytest.mark.torch
def test_a_negative_interval_is_refused(fitted, tmp_path):
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((40, 48, 3), np.uint8))
    res = _predict(fitted[0], tmp_path / "out", [tmp_path / "x.png"], "--progress-every", "-1")
    assert res.exit_code == 2 and "--progress-every" in res.output
    assert not (tmp_path / "out").exists()
    with pytest.raises(Exception, match=r"progress interval: expected >= 0 seconds, got -1"):
        Ticker(-1)


# -- the pieces -------------------------------------------------------------------------
class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.mark.torch
def test_training_eta_leaves_out_the_slow_first_step():
    import time

    from trainer.fit import _train_line

    now = time.perf_counter()
    # the first step took 90 s (warm-up), the 10 after it 1 s each; 10 steps are left
    state = {"n_batches": 11, "n_images": 22, "step": 11, "sums": {}, "t_first": now - 10}
    line = _train_line(0, 1, 21, state, now - 100, 1)
    assert line.endswith("ETA 10s"), line  # the pace since the first step, not 100 s / 11
    first = dict(state, n_batches=1, step=1)
    assert _train_line(0, 1, 21, first, now - 90, 1).endswith("ETA estimating")


def test_ticker_pace_follows_the_clock():
    clock = FakeClock()
    ticker = Ticker(10.0, clock=clock)
    due = []
    for t in (0, 3, 9.9, 10, 12, 19.9, 25, 26):
        clock.now = 100.0 + t
        due.append(ticker.due())
    # due at 10 s after the start, then 10 s after that line (20 s: not yet at 19.9)
    assert due == [False, False, False, True, False, False, True, False]


def test_progress_lines_share_the_ticker_across_loops():
    clock, out = FakeClock(), io.StringIO()
    ticker = Ticker(5.0, clock=clock)
    for loop in ("a", "b"):
        with Progress(3, loop, ticker=ticker, stream=out) as p:
            for _ in range(3):
                clock.now += 2.0
                p.update()
    # 2 s a step, 6 steps: due at 6 s (a, 3rd) and at 12 s (b, 3rd)
    assert [ln.split("  ")[:2] for ln in out.getvalue().splitlines()] == [
        ["a", "3/3 images"], ["b", "3/3 images"]]


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_a_bar_replaces_the_lines():
    out = Terminal()
    with Progress(4, "eval test", ticker=Ticker(0), stream=out) as p:
        assert p.bar is not None
        for _ in range(4):
            p.update()
        assert p.bar.n == 4 and p.bar.total == 4
    text = out.getvalue()  # tqdm redraws at most every 0.1 s: the first draw is certain
    assert "\r" in text and "0/4" in text and "eval test" in text
    assert "ETA" not in text  # the plain line's wording is not used
    off = Terminal()
    with Progress(4, "eval test", enabled=False, ticker=Ticker(0), stream=off) as p:
        assert p.bar is None
        p.update(4)
    assert off.getvalue() == ""


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (44.6, "45s"), (200, "3m20s"),
                                               (7500, "2h05m"), (float("inf"), "?"),
                                               (float("nan"), "?")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
