"""``trainer fit`` options that must not be silently accepted: the on-the-fly rendering
options on a run that reads stored inputs, and a method's default heads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _helpers import TINY, tiny_split
from click.testing import CliRunner

from cli.trainer_cmd import trainer
from defocuskit.errors import ConfigError
from defocuskit.store import write_arrays
from trainer.config import TrainConfig, resolve_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A tiny dataset with a stored defocused input (train 4, 64 x 64) and a tiny model."""
    root = tmp_path_factory.mktemp("options")
    write_arrays(root / "tiny.zarr", {"train": tiny_split(np.random.default_rng(0), 4)})
    cfg = root / "tiny.toml"
    cfg.write_text("num_workers = 0\nplots = false\nsigma_max = 8.0\n[model]\n"
                   + "".join(f"{k} = {json.dumps(v)}\n" for k, v in TINY.items()))
    return root / "tiny.zarr", cfg


def _fit(stored, run_dir, *args):
    data, cfg = stored
    return CliRunner().invoke(trainer, [
        "fit", "--data", str(data), "--run-dir", str(run_dir), "--config", str(cfg),
        "--epochs", "1", "--max-steps", "1", "--batch-size", "2", "--crop", "32",
        "--device", "cpu", "--val-split", "none", "--no-progress", *args])


@pytest.mark.torch
@pytest.mark.parametrize("args, named", [
    (["--camera", "d3net-nyu"], "--camera"),
    (["--focus", "uniform"], "--focus"),
    (["--render-mode", "scatter"], "--render-mode"),
    (["--psf", "disc", "--camera", "2hded"], "--camera, --psf"),
])
def test_on_the_fly_options_without_on_the_fly_are_refused_and_write_nothing(
        stored, tmp_path, args, named):
    res = _fit(stored, tmp_path / "run", *args)
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    assert f"{named}: apply only on the fly" in res.output and "--on-the-fly" in res.output
    assert not (tmp_path / "run" / "config.json").exists()


@pytest.mark.torch
@pytest.mark.parametrize("args, message", [
    (["--camera", "nonsense"], "unknown camera preset 'nonsense'"),
    (["--focus", "fixed:-3"], "distances must be in (0, 1e+06] metres"),
    (["--camera", "nonsense", "--on-the-fly"], "unknown camera preset 'nonsense'"),
    (["--focus", "fixed:-3", "--on-the-fly"], "distances must be in (0, 1e+06] metres"),
])
def test_on_the_fly_options_are_validated_whenever_given(stored, tmp_path, args, message):
    res = _fit(stored, tmp_path / "run", *args)
    assert res.exit_code == 1 and message in res.output, res.output
    assert not (tmp_path / "run").exists()


@pytest.mark.torch
def test_a_config_file_with_a_bad_render_mode_or_psf_is_refused():
    for key, value in (("render_mode", "fast"), ("psf", "box")):
        with pytest.raises(ConfigError, match=rf"{key}: expected one of .*got '{value}'"):
            TrainConfig(**{key: value})


@pytest.mark.torch
def test_a_run_on_stored_inputs_records_no_camera_or_focus(stored, tmp_path):
    res = _fit(stored, tmp_path / "run")
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert not saved["on_the_fly"]
    assert [saved[k] for k in ("camera", "focus", "render_mode", "psf")] == [None] * 4


@pytest.mark.torch
def test_self_supervised_alone_brings_its_default_heads(stored, tmp_path):
    res = _fit(stored, tmp_path / "run", "--method", "self-supervised")
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["method"] == "self-supervised" and saved["heads"] == ["aif", "defocus"]


@pytest.mark.torch
def test_explicit_heads_that_contradict_the_method_stay_an_error(stored, tmp_path):
    res = _fit(stored, tmp_path / "run", "--method", "self-supervised", "--heads", "depth,aif")
    assert res.exit_code == 1 and "method self-supervised" in res.output, res.output
    assert "got ['depth', 'aif']" in res.output


@pytest.mark.torch
def test_method_default_heads_yield_to_a_config_file(tmp_path):
    assert resolve_config(overrides={"method": "self-supervised"}).heads == ("aif", "defocus")
    assert resolve_config(overrides={"method": "supervised"}).heads == ("depth", "aif")
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"heads": ["defocus"]}))
    cfg = resolve_config(config_file=path, overrides={"method": "self-supervised"})
    assert cfg.heads == ("defocus",)


NO_TORCH = "import sys; sys.modules['torch'] = None; from cli.trainer_cmd import main; main()"


@pytest.mark.parametrize("command", ["fit", "eval"])
def test_without_torch_the_trainer_says_in_one_line_to_install_the_train_extra(command,
                                                                               tmp_path):
    repo = Path(__file__).resolve().parents[1]
    args = {"fit": ["fit", "--data", ".", "--run-dir", str(tmp_path / "r")],
            "eval": ["eval", "--data", ".", "--checkpoint", "pyproject.toml"]}[command]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    res = subprocess.run([sys.executable, "-c", NO_TORCH, *args], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "[train]" in lines[0] and "PyTorch" in lines[0], res.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.torch
def test_defocus_dataset_takes_the_command_lines_comma_string(stored):
    from trainer.data import DefocusDataset

    as_text = DefocusDataset(stored[0], "train", heads="depth,aif", crop=None)
    as_tuple = DefocusDataset(stored[0], "train", heads=("depth", "aif"), crop=None)
    assert as_text.heads == as_tuple.heads == ("depth", "aif")
    a, b = as_text[0], as_tuple[0]
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)
    assert DefocusDataset(stored[0], "train", heads=" aif ", crop=None).heads == ("aif",)


@pytest.mark.torch
@pytest.mark.parametrize("heads", ["d", "depth,,aif", "depth,depth", "", ["sigma"]])
def test_defocus_dataset_refuses_unknown_heads_in_one_clear_message(stored, heads):
    from trainer.data import DefocusDataset

    with pytest.raises(ConfigError, match=r"heads: expected a non-empty subset of depth, aif, "
                                          r"defocus .*'depth,aif'"):
        DefocusDataset(stored[0], "train", heads=heads)
