"""On-the-fly defocus in the loader (trainer.onthefly): determinism, resume, crop margin,
scene-only datasets through the CLI, and clear errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch.utils.data import DataLoader

from cli.defocuskit_cmd import main as defocuskit_main
from cli.trainer_cmd import trainer as trainer_main
from defocuskit.errors import ConfigError
from defocuskit.presets import get_preset
from defocuskit.store import open_dataset, write_arrays
from trainer.checkpoint import load_checkpoint
from trainer.config import TrainConfig
from trainer.fit import fit
from trainer.onthefly import (
    OnTheFlyDataset,
    RenderSettings,
    draw_camera,
    margin_px,
    render_window,
    resolve_render_settings,
)

TINY = {"growth_rate": 4, "block_config": [1, 1, 1, 1], "num_init_features": 8}
SCENE_ATTRS = {"engine_mode": "none", "camera": {"preset": "2hded"}, "focus_policy": "uniform",
               "psf": "gaussian", "config": {}}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _scenes(n, h, w, rng):
    aif = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    rows, cols = np.mgrid[0:h, 0:w]
    depth = np.stack([0.8 + 4.0 * (rows + cols) / (h + w) + 0.5 * (i % 3)
                      for i in range(n)]).astype(np.float32)
    return {"aif": aif, "depth": depth}


@pytest.fixture(scope="module")
def tiny_scenes(tmp_path_factory):
    """A scene-only dataset written directly: train 6, test 2, 64 x 96, camera 2hded."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("otf") / "scenes.zarr"
    write_arrays(path, {"train": _scenes(6, 64, 96, rng), "test": _scenes(2, 64, 96, rng)},
                 attrs=SCENE_ATTRS, shard_size=4)
    return path


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=2, lr=0.01, crop=32, val_split=None, plots=False,
                num_workers=0, progress=False, model=dict(TINY), on_the_fly=True)
    return TrainConfig(**{**base, **kw})


def quiet(_msg):
    pass


# ------------------------------------------------------------------ determinism
def _batches(ds, workers, epoch):
    ds.set_epoch(epoch)
    gen = torch.Generator().manual_seed(epoch)
    loader = DataLoader(ds, batch_size=3, shuffle=True, generator=gen, num_workers=workers)
    return list(loader)


def test_batches_are_identical_whatever_the_worker_count(tiny_scenes):
    settings = resolve_render_settings(open_dataset(tiny_scenes).attrs)
    ds = OnTheFlyDataset(tiny_scenes, "train", settings=settings, crop=32, seed=3,
                         heads=("depth", "aif", "defocus"),
                         arrays=("aif", "depth", "sigma", "focus_distance"))
    ref = {e: _batches(ds, 0, e) for e in (0, 1)}
    for workers in (1, 2):
        for e in (0, 1):
            got = _batches(ds, workers, e)
            assert len(got) == len(ref[e])
            for a, b in zip(ref[e], got, strict=True):
                assert a.keys() == b.keys()
                for k in a:
                    assert torch.equal(a[k], b[k]) or (
                        a[k].is_floating_point() and torch.equal(a[k].nan_to_num(-1),
                                                                 b[k].nan_to_num(-1))), k
    # a fresh camera and focus every epoch: the same sample differs between epochs
    ds.set_epoch(0)
    x0 = ds[0]
    ds.set_epoch(1)
    x1 = ds[0]
    assert float(x0["focus_distance"]) != float(x1["focus_distance"])


def test_fixed_draw_does_not_depend_on_the_epoch(tiny_scenes):
    settings = resolve_render_settings(open_dataset(tiny_scenes).attrs)
    ds = OnTheFlyDataset(tiny_scenes, "test", settings=settings, fixed=True, render_seed=5,
                         crop=None, hflip=False)
    a = ds[1]
    ds.set_epoch(7)
    b = ds[1]
    assert torch.equal(a["defocused"], b["defocused"])
    assert a["defocused"].shape == (3, 64, 96)
    other = OnTheFlyDataset(tiny_scenes, "test", settings=settings, fixed=True,
                            render_seed=6, crop=None, hflip=False)
    assert not torch.equal(a["defocused"], other[1]["defocused"])


# ------------------------------------------------------------------ resume
def test_resume_equals_uninterrupted_run(tmp_path, tiny_scenes):
    cfg = tiny_cfg(epochs=3, lr_milestones=(1,), num_workers=1)
    fit(tiny_scenes, tmp_path / "a", cfg, log=quiet)
    fit(tiny_scenes, tmp_path / "b", dataclasses.replace(cfg, epochs=1), log=quiet)
    fit(tiny_scenes, tmp_path / "b", cfg, resume=True, log=quiet)
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert (a["epoch"], a["step"]) == (b["epoch"], b["step"]) == (3, 9)
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k

    def untimed(h):
        return [{k: v for k, v in r.items() if not k.endswith("per_s")} for r in h]

    assert untimed(a["history"]) == untimed(b["history"])


def test_resume_under_another_layered_level_rule_is_refused(tmp_path, tiny_scenes, monkeypatch):
    from defocuskit.blur import layered
    from trainer.checkpoint import CheckpointError

    cfg = tiny_cfg(epochs=2)
    assert resolve_render_settings(open_dataset(tiny_scenes).attrs).mode == "layered"
    fit(tiny_scenes, tmp_path / "r", dataclasses.replace(cfg, epochs=1), log=quiet)
    before = load_checkpoint(tmp_path / "r" / "last.pt")
    assert before["render_levels"] == layered.level_rule() == {"max_step_px": 0.5,
                                                               "rel_step": 0.4}
    monkeypatch.setattr(layered, "MAX_LEVEL_REL_STEP", 0.0)  # the uniform rule of before
    with pytest.raises(CheckpointError, match="sigma levels"):
        fit(tiny_scenes, tmp_path / "r", cfg, resume=True, log=quiet)
    after = load_checkpoint(tmp_path / "r" / "last.pt")  # a refused resume changes nothing
    assert after["epoch"] == before["epoch"] == 1
    monkeypatch.undo()
    fit(tiny_scenes, tmp_path / "r", cfg, resume=True, log=quiet)
    assert load_checkpoint(tmp_path / "r" / "last.pt")["epoch"] == 2
    gather = dataclasses.replace(cfg, epochs=1, render_mode="gather")
    fit(tiny_scenes, tmp_path / "g", gather, log=quiet)
    assert load_checkpoint(tmp_path / "g" / "last.pt")["render_levels"] is None


def test_a_run_that_only_reads_records_no_level_rule(tmp_path, samples_dataset):
    # render_mode is only used when the loaders render: a run on stored inputs refuses it
    cfg = tiny_cfg(epochs=1, on_the_fly=False, render_mode="layered")
    with pytest.raises(ConfigError, match="--render-mode: apply only on the fly"):
        fit(samples_dataset, tmp_path / "s", cfg, log=quiet)
    fit(samples_dataset, tmp_path / "s", dataclasses.replace(cfg, render_mode=None), log=quiet)
    assert load_checkpoint(tmp_path / "s" / "last.pt")["render_levels"] is None


def test_validation_renders_a_fixed_recorded_draw(tmp_path, tiny_scenes):
    cfg = tiny_cfg(epochs=2, val_split="test", heads=("depth",))
    fit(tiny_scenes, tmp_path / "r", cfg, log=quiet)
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["render_seed"] == cfg.seed and saved["render_stream"] == 0xF1ED
    # a scene-only dataset's render mode: its camera preset's (the 2HDED:NET source's)
    preset_mode = get_preset("2hded").mode
    assert preset_mode == "layered"
    assert (saved["camera"], saved["focus"], saved["render_mode"], saved["psf"]) == (
        "2hded", "uniform", preset_mode, "gaussian")
    ckpt = load_checkpoint(tmp_path / "r" / "last.pt")
    assert all(np.isfinite(r["val_rmse"]) for r in ckpt["history"])


# ------------------------------------------------------------------ crop margin
@pytest.fixture(scope="module")
def scene():
    """One textured 96 x 128 scene, 0.6 to 6 m, with a camera of strong blur (sigma up to
    about 7 px) focused at 1.5 m."""
    rng = np.random.default_rng(1)
    aif = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    rows, cols = np.mgrid[0:96, 0:128]
    depth = (0.6 + 5.4 * cols / 127 + 0.3 * np.sin(rows / 7)).astype(np.float32)
    settings = RenderSettings(camera="2hded", focus="fixed:1.5")
    camera = draw_camera(depth, settings, np.random.default_rng(0))
    return aif, depth, camera


@pytest.mark.parametrize("mode,psf", [("gather", "gaussian"), ("gather", "disc"),
                                      ("scatter", "gaussian"), ("scatter", "disc")])
def test_crop_render_equals_whole_frame_render_then_crop(scene, mode, psf):
    aif, depth, camera = scene
    settings = RenderSettings(camera="2hded", focus="fixed:1.5", mode=mode, psf=psf)
    m = margin_px(camera, depth)
    assert 6 <= m < 48  # strong blur, and a margin smaller than the frame
    whole = render_window(aif, depth, camera, (0, 0, 96, 128), settings)["defocused"]
    # inside, touching the top-left corner, touching the right border
    for top, left in ((40, 50), (0, 0), (10, 96)):
        crop = render_window(aif, depth, camera, (top, left, 32, 32), settings)
        assert crop["margin"] == m
        # exact: every crop pixel sees the same sources as in the whole frame
        np.testing.assert_array_equal(crop["defocused"],
                                      whole[top:top + 32, left:left + 32])


def test_crop_without_margin_would_differ(scene):
    """The check above has teeth: the blur really reaches across the crop border."""
    from defocuskit import render

    aif, depth, camera = scene
    settings = RenderSettings(camera="2hded", focus="fixed:1.5")
    whole = render_window(aif, depth, camera, (0, 0, 96, 128), settings)["defocused"]
    d = depth[40:72, 50:82]
    bare = render(np.ascontiguousarray(aif[40:72, 50:82]),
                  camera.sigma_px(d).astype(np.float32), threads=1, mode="gather")
    assert np.abs(bare.astype(int) - whole[40:72, 50:82]).max() > 5


def test_layered_crop_is_close_to_the_whole_frame(scene):
    """Layered picks its sigma levels from the window's sigma range, so a crop agrees with
    the whole frame only closely. On this worst case (uniform noise texture, sigma up to 7
    px) measured: mean |difference| 0.82 grey levels, largest 7, with both the uniform and
    the relative level rule; required: mean <= 1.2, largest <= 10 (of 255)."""
    aif, depth, camera = scene
    settings = RenderSettings(camera="2hded", focus="fixed:1.5", mode="layered")
    whole = render_window(aif, depth, camera, (0, 0, 96, 128), settings)["defocused"]
    crop = render_window(aif, depth, camera, (40, 50, 32, 32), settings)["defocused"]
    diff = np.abs(crop.astype(int) - whole[40:72, 50:82])
    assert diff.mean() <= 1.2 and diff.max() <= 10, (diff.mean(), diff.max())


# ------------------------------------------------------------------ errors
def test_on_the_fly_without_camera_or_focus_is_a_clear_error(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "bare.zarr"
    write_arrays(path, {"train": _scenes(4, 64, 64, rng)}, attrs={"engine_mode": "none"})
    with pytest.raises(ConfigError, match=r"--camera PRESET and --focus POLICY"):
        fit(path, tmp_path / "run", tiny_cfg(), log=quiet)
    with pytest.raises(ConfigError, match=r"--focus POLICY"):
        fit(path, tmp_path / "run", tiny_cfg(camera="2hded"), log=quiet)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_scene_only_dataset_without_on_the_fly_is_refused(tmp_path, tiny_scenes):
    with pytest.raises(ConfigError, match="--on-the-fly"):
        fit(tiny_scenes, tmp_path / "run", tiny_cfg(on_the_fly=False), log=quiet)


def test_scene_only_render_mode_falls_back_to_layered():
    """The dataset's mode, else its camera preset's, else layered (the preset names none)."""
    attrs = dict(SCENE_ATTRS, camera={"preset": "idfd-nikon"})
    assert get_preset("idfd-nikon").mode is None
    assert resolve_render_settings(attrs).mode == "layered"
    custom = {"preset": "focal_mm=50,f_number=2.8,pitch_um=5.6"}  # a camera without mode
    assert resolve_render_settings(dict(SCENE_ATTRS, camera=custom)).mode == "layered"
    assert resolve_render_settings(dict(attrs, camera={"preset": "mddnet"})).mode == "scatter"
    assert resolve_render_settings(dict(attrs, engine_mode="gather")).mode == "gather"
    assert resolve_render_settings(attrs, mode="scatter").mode == "scatter"


def test_focal_stack_policy_is_refused():
    with pytest.raises(ConfigError, match="focal stack"):
        resolve_render_settings(SCENE_ATTRS, focus="stack:3")


# ------------------------------------------------------------------ the CLI, end to end
def test_cli_synth_none_inspect_fit_on_the_fly_eval(tmp_path):
    data = tmp_path / "scenes.zarr"
    r = CliRunner()
    res = r.invoke(defocuskit_main, ["synth", "--source", "samples", "--output", str(data),
                                     "--mode", "none", "--limit", "3", "--camera", "2hded",
                                     "--focus", "uniform"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    res = r.invoke(defocuskit_main, ["inspect", str(data)], catch_exceptions=False)
    assert res.exit_code == 0 and "scene only" in res.output
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"model": TINY, "plots": False, "progress": False,
                               "val_split": "test"}))
    run = tmp_path / "run"
    res = r.invoke(trainer_main, ["fit", "--data", str(data), "--run-dir", str(run),
                                  "--config", str(cfg), "--on-the-fly", "--render-mode",
                                  "gather", "--psf", "disc", "--epochs", "1", "--batch-size",
                                  "2", "--crop", "64", "--workers", "0", "--device", "cpu",
                                  "--heads", "depth,aif"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    saved = json.loads((run / "config.json").read_text())
    assert saved["on_the_fly"] and saved["psf"] == "disc" and saved["focus"] == "uniform"
    res = r.invoke(trainer_main, ["eval", "--data", str(data), "--checkpoint",
                                  str(run / "last.pt"), "--json", "--device", "cpu"],
                   catch_exceptions=False)
    assert res.exit_code == 0, res.output
    first = json.loads(res.output)
    again = json.loads(r.invoke(trainer_main, ["eval", "--data", str(data), "--checkpoint",
                                               str(run / "last.pt"), "--json", "--device",
                                               "cpu"]).output)
    assert first["n_images"] == 2 and first["rmse"] == again["rmse"]  # a fixed draw
