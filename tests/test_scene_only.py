"""Scene-only datasets (`defocuskit synth --render-mode scene-only`): AiF and depth only."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli.defocuskit_cmd import main
from defocuskit.dataset.store import mark_complete
from defocuskit.store import open_dataset, write_arrays


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    out = tmp_path_factory.mktemp("scene_only") / "scenes.zarr"
    res = run("synth", "--source", "samples", "--output", out, "--render-mode", "scene-only",
              "--shard-size", 4, "--camera", "2hded", "--focus", "uniform", "--limit", 5)
    assert res.exit_code == 0, res.output
    return out


def test_synth_scene_only_stores_the_scene_only(scenes):
    ds = open_dataset(scenes)
    assert ds.attrs["render_mode"] == "scene-only"
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
    res = run("synth", "--source", "samples", "--output", scenes, "--render-mode", "scene-only",
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


def _older_spelling(path):
    """Rewrite a dataset's root attributes as older versions wrote them: ``engine_mode``,
    and ``mode`` with ``"none"`` in the stored config and content key."""
    import zarr

    g = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    a = dict(g.attrs)
    a["engine_mode"] = "none"
    del a["render_mode"]
    for key in ("config", "content_key"):
        d = dict(a[key])
        d["mode"] = "none"
        del d["render_mode"]
        a[key] = d
    g.attrs.put(a)
    mark_complete(path)  # consolidated metadata and manifest as a run ends with


def test_a_dataset_with_the_older_mode_names_opens_and_resumes(tmp_path):
    from defocuskit.dataset.summary import render_mode_of, summarize

    out = tmp_path / "old.zarr"
    args = ["synth", "--source", "samples", "--output", out, "--shard-size", 4,
            "--camera", "2hded", "--focus", "uniform", "--limit", 2, "--split", "test"]
    # the older option name and value, hidden from --help but accepted
    assert run(*args, "--mode", "none").exit_code == 0
    assert open_dataset(out).attrs["render_mode"] == "scene-only"
    assert "--mode " not in run("synth", "--help").output
    _older_spelling(out)
    attrs = open_dataset(out).attrs
    assert "render_mode" not in attrs and render_mode_of(attrs) == "scene-only"
    assert summarize(out)["render_mode"] == "scene-only"
    res = run(*args, "--render-mode", "scene-only", "--resume")
    assert res.exit_code == 0 and "already complete" in res.output, res.output
    res = run(*args, "--render-mode", "gather", "--resume")  # another config: refused
    assert res.exit_code == 1 and "another configuration" in res.output, res.output


def test_render_mode_and_its_older_name_together_are_refused(tmp_path):
    res = run("synth", "--source", "samples", "--output", tmp_path / "x.zarr",
              "--render-mode", "gather", "--mode", "gather")
    assert res.exit_code == 2 and "not both" in res.output
    assert not (tmp_path / "x.zarr").exists()


def test_a_config_file_with_the_older_mode_key_is_read(tmp_path):
    from defocuskit.pipeline.config import resolve_synth_config

    path = tmp_path / "c.json"
    path.write_text(json.dumps({"source": "samples", "output": "o.zarr", "input": "-",
                                "mode": "none"}))
    assert resolve_synth_config(config_file=path).render_mode == "scene-only"
    # an option given on the command line wins over the file's older key
    cfg = resolve_synth_config(config_file=path, overrides={"render_mode": "gather"})
    assert cfg.render_mode == "gather"
