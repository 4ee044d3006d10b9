"""The `defocuskit` command line through click's CliRunner and as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.defocuskit_cmd import main
from defocuskit.store import open_dataset

REPO = Path(__file__).resolve().parents[1]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_version_and_listings():
    from defocuskit import __version__

    r = run("--version")
    assert r.exit_code == 0 and __version__ in r.output
    r = run("sources")
    for name in ("samples", "middlebury", "nyu", "make3d", "idfd", "folder"):
        assert name in r.output
    assert "unavailable" not in r.output
    r = run("cameras")
    assert r.exit_code == 0
    for name in ("2hded", "d3net-nyu", "syndof", "idfd-nikon"):
        assert name in r.output


def test_synth_preview_inspect_end_to_end(tmp_path):
    out = tmp_path / "s.zarr"
    r = run("synth", "--source", "samples", "--input", REPO / "samples", "--output", out,
            "--split", "test", "--shard-size", "1", "--seed", "4", "--no-progress")
    assert r.exit_code == 0, r.output
    assert "wrote 2 samples in 2 shards" in r.output and "samples/s" in r.output
    png = tmp_path / "p.png"
    r = run("preview", out, "-n", "2", "--output", png)
    assert r.exit_code == 0, r.output
    import matplotlib.image as mpimg

    img = mpimg.imread(png)
    assert img.shape[0] > 400 and img.shape[1] > 800
    assert img[..., :3].std() > 0.05  # a real picture, not a blank canvas
    r = run("inspect", out, "--json")
    info = json.loads(r.output)
    sp = info["splits"]["test"]
    assert info["complete"] and sp["n"] == 2 and sp["image_shape"] == [256, 320]
    depth = np.asarray(open_dataset(out)["test"].array("depth")[:])
    assert sp["depth_m"]["max"] == pytest.approx(float(np.nanmax(depth)))
    assert sp["arrays"]["sigma"]["dtype"] == "float32"
    r = run("inspect", out)
    assert r.exit_code == 0 and "complete  yes" in r.output and "sigma" in r.output


def test_config_file_and_overrides(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'source = "samples"\ninput = "{REPO / "samples"}"\n'
                   f'output = "{tmp_path / "c.zarr"}"\nseed = 11\nsplits = ["test"]\n'
                   'focus = "fixed:2.0"\n')
    r = run("synth", "--config", cfg, "--seed", "12", "--no-progress")
    assert r.exit_code == 0, r.output
    ds = open_dataset(tmp_path / "c.zarr")
    assert ds.attrs["seed"] == 12
    np.testing.assert_allclose(ds["test"].array("focus_distance")[:], 2.0)
    bad = tmp_path / "bad.json"
    bad.write_text('{"source": "samples", "input": "x", "output": "y", "sede": 1}')
    r = run("synth", "--config", bad)
    assert r.exit_code == 1
    assert "unknown option(s) ['sede']" in r.output and "known options" in r.output


@pytest.mark.parametrize("args, message", [
    (["--source", "nope", "--input", ".", "--output", "o.zarr"], "unknown source 'nope'"),
    (["--source", "samples", "--input", "missing-dir", "--output", "o.zarr"], "does not exist"),
    (["--source", "samples", "--input", "samples", "--output", "o.zarr", "--resize", "big"],
     "expected HxW"),
    (["--source", "samples", "--input", "samples", "--output", "o.zarr", "--camera", "zzz"],
     "zzz"),
    (["--source", "samples", "--input", "samples", "--output", "o.zarr", "--noise", "bogus=1"],
     "noise"),
    (["--source", "samples", "--input", "samples", "--output", "o.zarr", "--resume",
      "--overwrite"], "exclude each other"),
])
def test_bad_input_gives_one_clear_line(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(REPO)
    args = [a if a != "o.zarr" else str(tmp_path / "o.zarr") for a in args]
    r = run("synth", *args)
    assert r.exit_code != 0
    assert message in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "o.zarr").exists()  # refused before anything was written


def test_incomplete_dataset_inspect_exit_code_and_preview_error(tmp_path):
    from defocuskit.store import SplitSpec, create_dataset

    out = tmp_path / "inc.zarr"
    create_dataset(out, {"train": SplitSpec(n=2, height=4, width=4, sample_ids=("a", "b"))},
                   attrs={}, shard_size=1)
    r = run("inspect", out)
    assert r.exit_code == 2 and "NO" in r.output
    # the advice: the same command with --resume, or --overwrite if the input changed
    assert "same synth command with --resume" in r.output and "--overwrite" in r.output
    r = run("preview", out, "--output", tmp_path / "x.png")
    assert r.exit_code == 1 and "incomplete" in r.output


def test_console_script_runs_as_a_process():
    exe = Path(sys.executable).with_name("defocuskit")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cli.defocuskit_cmd"]
    r = subprocess.run([*cmd, "synth", "--help"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and "Example" in r.stdout


def test_every_command_has_an_example_and_is_documented():
    doc = (REPO / "docs" / "cli.md").read_text()
    for name, cmd in main.commands.items():
        r = run(name, "--help")
        assert r.exit_code == 0 and "Example" in r.output, name
        assert f"defocuskit {name}" in doc, f"docs/cli.md does not document {name}"
        for param in cmd.params:
            for opt in param.opts:
                if opt.startswith("--") and name == "synth":
                    assert opt in doc, f"docs/cli.md does not mention synth {opt}"


def test_synth_camera_help_names_every_camera_key():
    """``--camera``'s help lists the keys of a camera table in prose; this keeps that list
    complete when a key is added to :class:`~defocuskit.camera_table.CameraTable`."""
    from defocuskit.camera_table import TABLE_KEYS

    opt = next(p for p in main.commands["synth"].params if "--camera" in p.opts)
    missing = [k for k in TABLE_KEYS if k != "preset" and k not in opt.help]
    assert not missing, f"synth --camera help does not name {missing}"
