"""Every number a user gives (option or config value) is checked finite and in its valid
range, and refused in one line naming the option or key and that range."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing

import click
import pytest
from click.testing import CliRunner

from cli._common import _Ranged
from cli.defocuskit_cmd import main as defocuskit
from cli.trainer_cmd import trainer
from defocuskit import config as synth_config
from defocuskit.errors import ConfigError
from defocuskit.typed import Range
from trainer import config as train_config

NAN, INF = float("nan"), float("inf")


def _commands():
    for group in (defocuskit, trainer):
        for name, cmd in group.commands.items():
            yield f"{group.name} {name}", cmd


def test_no_numeric_option_takes_a_value_without_a_range():
    """Plain int/float types (and click's FloatRange, which lets NaN through) are not used:
    each number is a ranged type or an IntRange."""
    plain = []
    for where, cmd in _commands():
        for p in cmd.params:
            t = p.type
            if t in (click.INT, click.FLOAT) or isinstance(t, click.FloatRange):
                plain.append(f"{where} {p.opts[-1]}")
            elif isinstance(t, click.IntRange):
                assert t.min is not None, f"{where} {p.opts[-1]}"
    assert plain == []


def _numeric_fields(cls) -> list[str]:
    hints = typing.get_type_hints(cls)
    numeric = (int, float)
    out = []
    for f in dataclasses.fields(cls):
        args = set(typing.get_args(hints[f.name])) | {hints[f.name]}
        inner = {a for arg in args for a in typing.get_args(arg)}
        if (args | inner) & set(numeric) and hints[f.name] is not bool:
            out.append(f.name)
    return out


@pytest.mark.parametrize("cls, ranges", [(train_config.TrainConfig, train_config.RANGES),
                                         (synth_config.SynthConfig, synth_config.RANGES)],
                         ids=["TrainConfig", "SynthConfig"])
def test_every_numeric_config_field_has_a_range(cls, ranges):
    assert sorted(_numeric_fields(cls)) == sorted(ranges)


def _outside(rng: Range) -> list[float]:
    """Values just outside each bound, NaN and the infinities (unless inf is allowed)."""
    step = 1 if rng.integer else 1e-9
    bad = [NAN, -INF] + ([] if rng.inf_ok else [INF])
    if rng.lo is not None:
        bad.append(rng.lo if rng.lo_open else rng.lo - step)
    if rng.hi is not None:
        bad.append(rng.hi if rng.hi_open else rng.hi + max(step, abs(rng.hi) * 1e-9))
    return [int(v) if rng.integer and math.isfinite(v) else v for v in bad]


def _inside(rng: Range) -> float:
    lo = rng.lo if rng.lo is not None else -1.0
    hi = rng.hi if rng.hi is not None else lo + 2
    v = (lo + hi) / 2 if rng.hi is not None else lo + 1
    return int(math.ceil(v)) if rng.integer else v


@pytest.mark.torch  # the trainer's config resolves its model from the registry
@pytest.mark.parametrize("key", sorted(train_config.RANGES))
def test_train_config_values_outside_their_range_are_refused(key):
    rng = train_config.RANGES[key]
    for value in _outside(rng):
        if rng.integer and not math.isfinite(value):
            continue  # an integer field refuses a float by its type already
        given = [value] if key in ("lr_milestones", "val_indices", "mddnet_lambdas") else value
        if key == "resize":
            given = [value, 64]
        with pytest.raises(ConfigError, match=rf"{key}: expected .*{re.escape(str(rng))}"):
            train_config.resolve_config(overrides={key: given})


@pytest.mark.parametrize("key", sorted(synth_config.RANGES))
def test_synth_config_values_outside_their_range_are_refused(key):
    rng = synth_config.RANGES[key]
    for value in _outside(rng):
        if rng.integer and not math.isfinite(value):
            continue
        given = [value, 64] if key == "resize" else value
        given = {"gain": value} if key == "noise" else given
        given = [0.0, value, 0.0] if key == "chromatic" else given
        with pytest.raises(ConfigError, match=rf"{key}: expected .*{re.escape(str(rng))}"):
            synth_config.SynthConfig(source="samples", input="-", output="x.zarr",
                                     **{key: given})


def test_ranges_read_as_written():
    assert str(Range(0, 10, lo_open=True)) == "(0, 10]"
    assert str(Range(0, 1, hi_open=True)) == "[0, 1)"
    assert str(Range(0, None)) == "[0, inf)"
    assert str(Range(0, None, lo_open=True, inf_ok=True)) == "(0, inf]"
    assert Range(0, None, lo_open=True, inf_ok=True).contains(INF)
    assert not Range(0, None).contains(INF) and not Range(None, None).contains(NAN)
    for rng in (*train_config.RANGES.values(), *synth_config.RANGES.values()):
        assert rng.contains(_inside(rng)), rng


def invoke(cli, args):
    res = CliRunner().invoke(cli, args)
    return res.exit_code, res.output


@pytest.fixture
def any_file(tmp_path):
    f = tmp_path / "any.pt"
    f.write_bytes(b"x")
    return str(f)


@pytest.mark.parametrize("args, option, expected", [
    (["--lr", "nan"], "--lr", "a finite number in (0, 10], got nan"),
    (["--lr", "inf"], "--lr", "a finite number in (0, 10], got inf"),
    (["--lr", "1e308"], "--lr", "a finite number in (0, 10], got 1e+308"),
    (["--lr", "0"], "--lr", "a finite number in (0, 10], got 0"),
    (["--seed", "-1"], "--seed", "an integer in [0, 9223372036854775807], got -1"),
    (["--seed", "1" + "0" * 400], "--seed", "an integer in [0, 9223372036854775807], got 1000"),
    (["--workers", "-1"], "--workers", "an integer in [0, 1024], got -1"),
    (["--epochs", "0"], "--epochs", "an integer in [1, inf), got 0"),
    (["--batch-size", "0"], "--batch-size", "an integer in [1, 4096]"),
    (["--crop", "100000"], "--crop", "an integer in [32, 8192]"),
    (["--consistency", "nan"], "--consistency", "a finite number in [0, inf), got nan"),
    (["--val-fraction", "1"], "--val-fraction", "a finite number in (0, 1)"),
    (["--max-steps", "0"], "--max-steps", "an integer in [1, inf)"),
    (["--stack-index", "-1"], "--stack-index", "an integer in [0, inf)"),
    (["--progress-every", "nan"], "--progress-every",
     "a finite number in [0, inf), got nan"),
    (["--resize", "100000"], "--resize", "N or HxW in pixels, multiples of 32 from 32 to 8192"),
])
def test_trainer_fit_refuses_each_option_outside_its_range(tmp_path, any_file, args, option,
                                                           expected):
    code, out = invoke(trainer, ["fit", "--data", any_file, "--run-dir",
                                 str(tmp_path / "run"), *args])
    assert code == 2, out
    assert f"Invalid value for '{option}'" in out and f"expected {expected}" in out
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, option, expected", [
    (["--limit", "0"], "--limit", "an integer in [1, inf), got 0"),
    (["--limit", "-1"], "--limit", "an integer in [1, inf), got -1"),
    (["--max-depth", "0"], "--max-depth", "a number in (0, inf], got 0"),
    (["--max-depth", "-1"], "--max-depth", "a number in (0, inf], got -1"),
    (["--max-depth", "nan"], "--max-depth", "a number in (0, inf], got nan"),
    (["--resize", "33"], "--resize", "N, HxW or none in pixels, multiples of 32"),
    (["--resize", "255x256"], "--resize", "N, HxW or none in pixels, multiples of 32"),
    (["--workers", "-1"], "--workers", "an integer in [0, 1024], got -1"),
])
def test_trainer_eval_refuses_each_option_outside_its_range(any_file, args, option, expected):
    code, out = invoke(trainer, ["eval", "--data", any_file, "--checkpoint", any_file, *args])
    assert code == 2, out
    assert f"Invalid value for '{option}'" in out and f"expected {expected}" in out


def test_trainer_eval_accepts_an_infinite_max_depth():
    rng = train_config.RANGES["max_depth"]
    assert _Ranged(rng).convert("inf", None, None) == INF


@pytest.mark.torch
@pytest.mark.parametrize("kwargs, message", [
    ({"max_samples": 0}, r"limit: expected an integer in \[1, inf\), got 0"),
    ({"max_depth": NAN}, r"max_depth: expected a number in \(0, inf\], got nan"),
    ({"num_workers": -1}, r"num_workers: expected an integer in \[0, 1024\], got -1"),
    ({"resize": (255, 256)}, r"resize: expected \[H, W\] in multiples of 32"),
])
def test_evaluate_checkpoint_checks_its_arguments_before_reading(tmp_path, kwargs, message):
    from trainer.evaluate import evaluate_checkpoint

    with pytest.raises(ConfigError, match=message):
        evaluate_checkpoint(tmp_path / "none.zarr", tmp_path / "none.pt", **kwargs)


@pytest.mark.torch
@pytest.mark.parametrize("content, message", [
    ('{"momentum": NaN}', "momentum: expected a finite number in [0, 1), got nan"),
    ('{"mu": NaN}', "mu: expected a finite number in [0, inf), got nan"),
    ('{"lam": Infinity}', "lam: expected a finite number in [0, inf), got inf"),
    ('{"momentum": -0.5}', "momentum: expected a finite number in [0, 1), got -0.5"),
    ('{"weight_decay": -1e-4}', "weight_decay: expected a finite number in [0, 1]"),
    ('{"seed": -3}', "seed: expected an integer in [0, 9223372036854775807], got -3"),
    ('{"psi": -4.0}', "psi: expected a finite number in [0, inf), got -4.0"),
    ('{"lr_gamma": -0.1}', "lr_gamma: expected a finite number in (0, 1], got -0.1"),
    ('{"charbonnier_eps": -0.001}', "charbonnier_eps: expected a finite number in (0, 1]"),
    ('{"lr_milestones": [0]}', "lr_milestones: expected an integer in [1, inf), got 0"),
])
def test_trainer_fit_refuses_a_config_value_outside_its_range(tmp_path, any_file, content,
                                                              message):
    cfg = tmp_path / "run.json"
    cfg.write_text(content)
    code, out = invoke(trainer, ["fit", "--data", any_file, "--run-dir", str(tmp_path / "run"),
                                 "--config", str(cfg)])
    assert code == 1, out
    assert out.strip().splitlines() == [f"Error: {message}"] or \
        out.strip().splitlines()[-1].startswith(f"Error: {message}"), out
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, option, expected", [
    (["--coc-to-sigma", "1e308"], "--coc-to-sigma", "a finite number in (0, 100], got 1e+308"),
    (["--coc-to-sigma", "nan"], "--coc-to-sigma", "a finite number in (0, 100], got nan"),
    (["--seed", "-1"], "--seed", "an integer in [0, 9223372036854775807], got -1"),
    (["--shard-size", "1000000000000"], "--shard-size", "an integer in [1, 4096]"),
    (["--shard-size", "1e12"], "--shard-size", "an integer in [1, 4096], got '1e12'"),
    (["--limit", "0"], "--limit", "an integer in [1, inf), got 0"),
    (["--jobs", "0"], "--jobs", "an integer in [1, 1024], got 0"),
    (["--resize", "100000x100000"], "--resize", "HxW in pixels from 8 to 16384"),
])
def test_synth_refuses_each_option_outside_its_range(tmp_path, args, option, expected):
    out_dir = tmp_path / "out.zarr"
    code, out = invoke(defocuskit, ["synth", "--source", "samples", "--output", str(out_dir),
                                    *args])
    assert code == 2, out
    assert f"Invalid value for '{option}'" in out and f"expected {expected}" in out
    assert list(tmp_path.iterdir()) == []


def test_preview_refuses_a_non_positive_sample_count(tmp_path):
    code, out = invoke(defocuskit, ["preview", str(tmp_path), "-n", "0", "-o",
                                    str(tmp_path / "p.png")])
    assert code == 2 and "Invalid value for '-n': expected an integer in [1, inf)" in out


@pytest.mark.parametrize("content, message", [
    ({"seed": -1}, "seed: expected an integer in [0, 9223372036854775807], got -1"),
    ({"coc_to_sigma": INF}, "coc_to_sigma: expected a finite number in (0, 100], got inf"),
    ({"shard_size": 0}, "shard_size: expected an integer in [1, 4096], got 0"),
])
def test_synth_refuses_a_config_value_outside_its_range(tmp_path, content, message):
    cfg = tmp_path / "synth.json"
    cfg.write_text(json.dumps({"source": "samples", "output": str(tmp_path / "o.zarr"),
                               **content}))
    code, out = invoke(defocuskit, ["synth", "--config", str(cfg)])
    assert code == 1 and out.strip().splitlines() == [f"Error: {message}"], out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth.json"]


@pytest.mark.parametrize("spec", ["fixed:1e308", "fixed:inf", "fixed:nan", "stack:1,1e7"])
def test_synth_refuses_a_focus_distance_beyond_float32_range(tmp_path, spec):
    code, out = invoke(defocuskit, ["synth", "--source", "samples", "--output",
                                    str(tmp_path / "o.zarr"), "--focus", spec])
    assert code == 1, out
    assert "distances must be in (0, 1e+06] metres" in out and "Traceback" not in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, options, message", [
    ("procedural", {"height": 100_000}, r"height must be an integer in \[16, 8192\]"),
    ("procedural", {"n_train": -1}, r"n_train must be an integer in \[0, "),
    ("make3d", {"max_depth": INF}, "max_depth must be a finite number > 0 metres, got inf"),
    ("idfd", {"depth_range_m": NAN}, "depth_range_m must be a finite number > 0 metres"),
    ("idfd", {"depth_scale": INF}, "depth_scale must be a finite number > 0 metres per code"),
    ("folder", {"test_fraction": NAN}, r"test_fraction must be in \[0, 1\], got nan"),
])
def test_reader_options_outside_their_range_are_refused(tmp_path, name, options, message):
    from defocuskit.errors import DefocusKitError
    from defocuskit.sources import get_source

    path = "-" if name == "procedural" else tmp_path
    with pytest.raises(DefocusKitError, match=message):
        get_source(name, path, **options)


def test_the_docs_list_every_trainer_range():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "trainer.md").read_text()
    missing = [k for k, v in train_config.RANGES.items() if f"| `{k}` | {v} |" not in text]
    assert missing == []
