"""Scene-only datasets (`defocuskit synth --mode none`): AiF and depth, nothing rendered."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli.defocuskit_cmd import main
from defocuskit.store import open_dataset, write_arrays


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    out = tmp_path_factory.mktemp("scene_only") / "scenes.zarr"
    res = run("synth", "--source", "samples", "--output", out, "--mode", "none",
              "--shard-size", 4, "--camera", "2hded", "--focus", "uniform", "--limit", 5)
    assert res.exit_code == 0, res.output
    return out


def test_synth_mode_none_stores_the_scene_only(scenes):
    ds = open_dataset(scenes)
    assert ds.attrs["engine_mode"] == "none"
    assert ds.attrs["camera"]["preset"] == "2hded" and ds.attrs["focus_policy"] == "uniform"
    for name in ds.splits:
        sp = ds[name]
        arrays = sorted(k for k in sp._g.array_keys() if not k.startswith("_"))
        assert arrays == ["aif", "depth", "source_index"], arrays
        assert sp.focal_stack == 0
        d = sp.read(0, names=("aif", "depth"))
        assert d["aif"].dtype == np.uint8 and np.isfinite(d["depth"]).all()


def test_inspect_and_preview_a_scene_only_dataset(scenes, tmp_path):
    res = run("inspect", scenes, "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert all(s["scene_only"] for s in info["splits"].values())
    assert "sigma_px" not in info["splits"]["train"]
    assert "scene only" in run("inspect", scenes).output
    res = run("preview", scenes, "-n", 2, "--output", tmp_path / "p.png")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "p.png").stat().st_size > 0


def test_resume_of_a_scene_only_dataset_changes_nothing(scenes):
    before = open_dataset(scenes)["train"].read(1, names=("aif", "depth"))
    res = run("synth", "--source", "samples", "--output", scenes, "--mode", "none",
              "--shard-size", 4, "--camera", "2hded", "--focus", "uniform", "--limit", 5,
              "--resume")
    assert res.exit_code == 0, res.output
    assert "already complete" in res.output
    after = open_dataset(scenes)["train"].read(1, names=("aif", "depth"))
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_write_arrays_without_defocused_makes_a_scene_only_split(tmp_path):
    aif = np.zeros((2, 16, 16, 3), np.uint8)
    write_arrays(tmp_path / "s.zarr", {"train": {"aif": aif,
                                                 "depth": np.ones((2, 16, 16), np.float32)}})
    sp = open_dataset(tmp_path / "s.zarr")["train"]
    assert not sp.has("defocused") and not sp.has("sigma") and not sp.has("focal_length")
