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
from defocuskit import draw_camera, render_sample
from defocuskit.errors import ConfigError
from defocuskit.presets import get_preset
from defocuskit.store import open_dataset, write_arrays
from trainer.checkpoint import load_checkpoint
from trainer.config import TrainConfig
from trainer.fit import fit
from trainer.onthefly import OnTheFlyDataset, resolve_render_settings

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
    from defocuskit.blur import layered, levels  # levels: the spacing rule
    from trainer.checkpoint import CheckpointError

    cfg = tiny_cfg(epochs=2)
    assert resolve_render_settings(open_dataset(tiny_scenes).attrs).mode == "layered"
    fit(tiny_scenes, tmp_path / "r", dataclasses.replace(cfg, epochs=1), log=quiet)
    before = load_checkpoint(tmp_path / "r" / "last.pt")
    assert before["render_levels"] == layered.level_rule() == {"max_step_px": 0.5,
                                                               "rel_step": 0.4}
    monkeypatch.setattr(levels, "MAX_LEVEL_REL_STEP", 0.0)  # the uniform rule of before
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


# ------------------------------------------------------------------ crop = synth's crop
@pytest.mark.parametrize("mode", ["gather", "layered"])
def test_loader_crop_equals_the_crop_of_the_whole_frame_render(tmp_path, mode):
    """The loader renders its crop with the recipe's window (tests/test_recipe.py checks
    the recipe): each item's input equals the same crop of the whole frame rendered with
    the item's camera, to the last bit; holes of NaN and 0 depth included."""
    rng = np.random.default_rng(5)
    scenes = _scenes(2, 64, 96, rng)
    scenes["depth"][:, 20:26, 30:40] = np.nan
    scenes["depth"][:, 40:44, 50:96] = 0.0
    path = tmp_path / "holes.zarr"
    write_arrays(path, {"train": scenes}, attrs=SCENE_ATTRS)
    settings = resolve_render_settings(SCENE_ATTRS, mode=mode, focus="fixed:1.5")
    ds = OnTheFlyDataset(path, "train", settings=settings, crop=32, hflip=False,
                         heads=("depth", "aif", "defocus"))
    for k in range(len(ds)):
        item = ds[k]
        i = ds.indices[k]
        top, left = ds._window(ds._aug_rng(i))
        depth, aif = scenes["depth"][i], scenes["aif"][i]
        camera = draw_camera(depth, settings, ds.render_rng(i))
        whole = render_sample(aif, depth, camera, settings)
        cut = (slice(top, top + 32), slice(left, left + 32))
        np.testing.assert_array_equal(item["defocused"].permute(1, 2, 0).numpy(),
                                      whole["defocused"][cut])
        np.testing.assert_array_equal(item["sigma"][0].numpy(), whole["sigma"][cut])


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
                                     "--render-mode", "scene-only", "--limit", "3",
                                     "--camera", "2hded", "--focus", "uniform"],
                   catch_exceptions=False)
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
