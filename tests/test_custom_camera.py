"""A camera given by its parameters: thin-lens CoC and sigma against closed forms, equality
with the presets it copies, the command line and config-file tables end to end, provenance,
resume, on-the-fly training, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli.defocuskit_cmd import main
from defocuskit.camera_table import camera_table, camera_text
from defocuskit.config import SynthConfig, resolve_preset_settings, resolve_synth_config
from defocuskit.errors import ConfigError
from defocuskit.presets import get_preset
from defocuskit.store import open_dataset

TINY_SCENES = ["--option", "n_train=2", "--option", "n_test=1", "--option", "height=32",
               "--option", "width=48"]
DEPTHS = np.array([0.6, 1.0, 1.7, 2.0, 2.5, 4.0, 9.0])


def _thin_lens_sigma(x, *, f, n, s, pitch, k=0.25, paper=False):
    """sigma (px) = k * CoC / pitch, CoC = D f / (S - f) |x - S| / x (paper: f / S), D = f/N."""
    d = f / n
    scale = d * f / s if paper else d * f / (s - f)
    return k * scale * np.abs(x - s) / x / pitch


def _camera(spec, width=640, focus=2.0):
    return get_preset(spec).make(image_width=width, rng=np.random.default_rng(0)) \
        .with_focus(focus)


# -- the camera against a thin lens computed here -------------------------------------------
@pytest.mark.parametrize("spec, expect", [
    ("focal_mm=50,f_number=2.8,pitch_um=5.6", dict(f=0.05, n=2.8, pitch=5.6e-6)),
    ("focal_mm=50,aperture_mm=25,pitch_um=4", dict(f=0.05, n=2.0, pitch=4e-6)),
    # pitch = sensor width / image width (640 px)
    ("focal_mm=35,f_number=4,sensor_width_mm=23.5", dict(f=0.035, n=4.0, pitch=23.5e-3 / 640)),
    ("focal_mm=85,f_number=1.8,pitch_um=6,coc_to_sigma=0.5", dict(f=0.085, n=1.8, pitch=6e-6,
                                                                    k=0.5)),
    ("focal_mm=50,f_number=2,pitch_um=5,coc_model=paper", dict(f=0.05, n=2.0, pitch=5e-6,
                                                               paper=True)),
])
def test_sigma_of_a_custom_camera_is_the_thin_lens(spec, expect):
    cam = _camera(spec, focus=2.0)
    want = _thin_lens_sigma(DEPTHS, s=2.0, **expect)
    np.testing.assert_allclose(cam.sigma_px(DEPTHS), want, rtol=1e-12)
    assert cam.sigma_px(2.0) == 0.0


def test_sharp_below_offset_and_rounding_of_a_custom_camera():
    cam = _camera("focal_mm=50,f_number=2.8,pitch_um=5.6,coc_offset_px=1,coc_step_px=0.1")
    coc = _thin_lens_sigma(DEPTHS, f=0.05, n=2.8, s=2.0, pitch=5.6e-6, k=1.0)
    want = 0.25 * np.maximum(np.floor(coc * 10 + 0.5) / 10 - 1.0, 0.0)
    np.testing.assert_allclose(cam.sigma_px(DEPTHS), want, rtol=1e-12)


@pytest.mark.parametrize("preset, spec", [
    ("d3net-nyu", "focal_mm=15,f_number=2.8,pitch_um=5.6,coc_to_sigma=0.3"),
    ("2hded", "focal_mm=70,aperture_mm=44.8,sensor_width_mm=36"),
    ("idfd-nikon", "focal_mm=14,f_number=2.8,sensor_width_mm=36"),
])
def test_custom_camera_with_a_presets_parameters_gives_its_sigma(preset, spec):
    for width in (96, 640):
        depth = np.linspace(0.5, 8.0, 40)
        np.testing.assert_allclose(_camera(spec, width, 1.7).sigma_px(depth),
                                   _camera(preset, width, 1.7).sigma_px(depth), rtol=1e-12)


def test_preset_with_one_value_replaced():
    base, changed = _camera("2hded"), _camera("2hded,f_number=4")
    assert changed.f_number == 4.0
    assert (changed.focal_length, changed.pixel_pitch) == (base.focal_length, base.pixel_pitch)
    p = get_preset({"preset": "2hded", "f_number": 4})
    assert (p.focus, p.mode) == (get_preset("2hded").focus, get_preset("2hded").mode)
    # the rest of SYNDOF's sigma rule stays when only its slope is replaced
    cam = _camera("syndof,coc_to_sigma=0.5")
    assert (cam.coc_to_sigma, cam.coc_offset_px, cam.coc_step_px) == (0.5, 1.0, 0.1)
    # a randomised preset's draw is kept where nothing replaces it: SYNDOF's focal lengths
    drawn = {get_preset("syndof,pitch_um=9").make(image_width=64, rng=np.random.default_rng(i))
             .focal_length for i in range(40)}
    assert drawn == {0.05, 0.07, 0.085}


# -- one canonical form, whichever way it is written -----------------------------------------
def test_text_and_table_are_one_camera():
    text = "focal_mm=50,f_number=2.8,pitch_um=5.6"
    table = {"pitch_um": 5.6, "focal_mm": 50, "f_number": 2.8}
    assert camera_table(text) == camera_table(table) == {"focal_mm": 50.0, "f_number": 2.8,
                                                          "pitch_um": 5.6}
    assert camera_text(table) == text and camera_table(camera_text(table)) == camera_table(text)
    assert camera_table({"preset": "2hded"}) == "2hded" == camera_table("2hded")
    assert camera_table("d3net-nyu, f_number=2") == {"preset": "d3net-nyu", "f_number": 2.0}
    # a focal stack's comma-separated distances stay one value
    assert camera_table(text + ",focus=stack:1.5,3.0")["focus"] == "stack:1.5,3.0"
    a = SynthConfig(source="procedural", input="-", output="a", camera=text)
    b = SynthConfig(source="procedural", input="-", output="b", camera=table)
    assert a.content_key() == b.content_key()
    assert a.content_key() != SynthConfig(source="procedural", input="-", output="a",
                                          camera=text.replace("2.8", "4")).content_key()


def test_settings_say_where_each_value_came_from():
    cfg = SynthConfig(source="procedural", input="-", output="x",
                      camera={"focal_mm": 50, "f_number": 2.8, "pitch_um": 5.6,
                              "mode": "layered"})
    s = resolve_preset_settings(cfg)
    assert {k: v["from"] for k, v in s.items()} == {
        "focus": "fallback", "mode": "camera", "coc_model": "fallback", "sigma_rule": "fallback",
        "diffraction": "fallback"}
    assert s["mode"]["value"] == "layered" and s["sigma_rule"]["value"]["coc_to_sigma"] == 0.25
    s = resolve_preset_settings(SynthConfig(source="procedural", input="-", output="x",
                                            camera="d3net-nyu,coc_to_sigma=0.5", focus="uniform"))
    assert {k: v["from"] for k, v in s.items()} == {
        "focus": "user", "mode": "preset", "coc_model": "preset", "sigma_rule": "camera",
        "diffraction": "fallback"}


# -- bad tables: one ConfigError naming what is wrong ----------------------------------------
@pytest.mark.parametrize("spec, message", [
    ("focal_mm=50,pitch_um=5.6", r"needs f_number or aperture_mm"),
    ("focal_mm=50,f_number=2.8", r"needs pitch_um or sensor_width_mm"),
    ("f_number=2.8,pitch_um=5.6", r"needs focal_mm"),
    ("focal_mm=50,f_number=2.8,aperture_mm=20,pitch_um=5.6", r"one of f_number and aperture_mm"),
    ("2hded,pitch_um=5,sensor_width_mm=36", r"one of pitch_um and sensor_width_mm, not both"),
    ("focal_mm=50,f_number=0.3,pitch_um=5.6", r"f_number must be >= 0.5 and <= 128, got 0.3"),
    ("focal_mm=-50,f_number=2,pitch_um=5.6", r"focal_mm must be >= 1"),
    ("focal_mm=50,aperture_mm=200,pitch_um=5.6", r"is f/0.25; the f-number must be in"),
    ("focal_mm=50,f_number=2,pitch_um=5.6,coc_to_sigma=0", r"coc_to_sigma must be > 0"),
    ("focal_mm=fifty,f_number=2,pitch_um=5.6", r"'focal_mm' expected a number, got 'fifty'"),
    ("focal_mm=50,f_number=2,pitch_um=5.6,lens=zeiss",
     r"unknown option\(s\) \['lens'\]; known options: \['aperture_mm', 'coc_model'"),
    ("focal_mm=50,f_number=2,pitch_um=5.6,coc_model=approx", r"'coc_model' expected one of"),
    ("focal_mm=50,f_number=2,pitch_um=5.6,mode=blurry", r"'mode' expected one of"),
    ("focal_mm=50,f_number=2,pitch_um=5.6,focus=sometimes", r"camera: focus: unknown focus"),
    ("syndof,f_number=2", r"solves the f-number per sample"),
    ("2hded,syndof", r"two presets named"),
    ("nikon", r"unknown camera preset 'nikon'; known presets: 2hded"),
    ("nikon,f_number=2", r"unknown camera preset 'nikon'"),
])
def test_bad_camera_is_one_clear_error(spec, message):
    with pytest.raises(ConfigError, match=message) as info:
        SynthConfig(source="procedural", input="-", output="x", camera=spec)
    assert "\n" not in str(info.value)


def test_bad_camera_table_type_in_a_config_file(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"source": "procedural", "output": "o.zarr", "camera": 50}))
    with pytest.raises(ConfigError, match=r"'camera' expected a string or a table"):
        resolve_synth_config(config_file=f)


# -- end to end on tiny procedural scenes ----------------------------------------------------
def _synth(args, expect=0):
    r = CliRunner().invoke(main, ["synth", "--source", "procedural", *TINY_SCENES, *args])
    assert r.exit_code == expect, r.output
    return r


def test_cli_custom_camera_equal_to_a_preset_writes_the_same_dataset(tmp_path):
    common = ["--render-mode", "gather", "--focus", "uniform"]
    _synth(["--output", str(tmp_path / "p.zarr"), "--camera", "2hded", *common])
    _synth(["--output", str(tmp_path / "c.zarr"), "--camera", "focal_mm=70,aperture_mm=44.8",
            "--camera", "sensor_width_mm=36", *common])
    p, c = open_dataset(tmp_path / "p.zarr"), open_dataset(tmp_path / "c.zarr")
    for split in ("train", "test"):
        for name in ("sigma", "defocused", "focus_distance", "f_number", "pixel_pitch"):
            np.testing.assert_array_equal(np.asarray(c[split].array(name)[:]),
                                          np.asarray(p[split].array(name)[:]), err_msg=name)
    cam = c.attrs["camera"]
    assert cam["preset"] == "focal_mm=70,aperture_mm=44.8,sensor_width_mm=36"
    assert cam["parameters"] == {"focal_mm": 70.0, "aperture_mm": 44.8, "sensor_width_mm": 36.0}
    assert cam["source"].startswith("custom camera") and not cam["randomized"]
    assert c.attrs["config"]["camera"] == cam["parameters"]
    assert p.attrs["camera"]["parameters"] is None


def test_config_table_resume_and_inspect(tmp_path):
    out = tmp_path / "t.zarr"
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'source = "procedural"\noutput = "{out}"\n'
                   "source_options = {n_train = 2, n_test = 1, height = 32, width = 48}\n"
                   '[camera]\nfocal_mm = 50\nf_number = 2.8\npitch_um = 5.6\n'
                   'focus = "fixed:1.5"\nmode = "gather"\n')
    r = CliRunner()
    res = r.invoke(main, ["synth", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    ds = open_dataset(out)
    assert ds.attrs["settings"]["focus"] == {"value": "fixed:1.5", "from": "camera"}
    assert ds.attrs["render_mode"] == "gather"
    assert np.all(np.asarray(ds["train"].array("focal_length")[:]) == np.float32(0.05))
    assert np.all(np.asarray(ds["train"].array("f_number")[:]) == np.float32(2.8))
    assert np.all(np.asarray(ds["train"].array("focus_distance")[:]) == np.float32(1.5))
    # the same camera as text resumes; another f-number is refused
    same = r.invoke(main, ["synth", "--config", str(cfg), "--resume", "--camera",
                           "focal_mm=50,f_number=2.8,pitch_um=5.6,focus=fixed:1.5,mode=gather"])
    assert same.exit_code == 0 and "already complete" in same.output, same.output
    other = r.invoke(main, ["synth", "--config", str(cfg), "--resume", "--camera",
                            "focal_mm=50,f_number=4,pitch_um=5.6,focus=fixed:1.5,mode=gather"])
    assert other.exit_code == 1 and "another configuration" in other.output
    shown = r.invoke(main, ["inspect", str(out)])
    assert shown.exit_code == 0
    line = next(x for x in shown.output.splitlines() if x.startswith("camera"))
    assert "focal_mm=50,f_number=2.8,pitch_um=5.6" in line and "custom camera" in line
    as_json = json.loads(r.invoke(main, ["inspect", str(out), "--json"]).output)
    assert as_json["camera"]["parameters"]["pitch_um"] == 5.6


def test_json_config_with_a_preset_name_still_works(tmp_path):
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({"source": "procedural", "output": str(tmp_path / "j.zarr"),
                               "camera": "d3net-nyu", "mode": "none",
                               "source_options": {"n_train": 1, "n_test": 0, "height": 16,
                                                  "width": 16}}))
    res = CliRunner().invoke(main, ["synth", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert open_dataset(tmp_path / "j.zarr").attrs["camera"]["preset"] == "d3net-nyu"


@pytest.mark.parametrize("camera, message", [
    (["focal_mm=50"], "Error: camera: a camera without a preset needs f_number"),
    (["focal_mm=50,f_number=2,pitch_um=5,zoom=2"], "Error: camera: unknown option(s) ['zoom']"),
    (["2hded", "d3net-nyu"], "Error: camera '2hded,d3net-nyu': two presets named"),
    (["focal_mm=50,f_number=200,pitch_um=5"], "Error: camera: f_number must be >= 0.5"),
])
def test_cli_bad_camera_is_one_line_and_writes_nothing(tmp_path, camera, message):
    out = tmp_path / "o.zarr"
    args = [a for c in camera for a in ("--camera", c)]
    res = _synth(["--output", str(out), *args], expect=1)
    assert res.output.startswith(message) and res.output.count("\n") == 1, res.output
    assert not out.exists()


@pytest.mark.torch
def test_on_the_fly_training_reads_the_custom_camera(tmp_path):
    from cli.trainer_cmd import trainer
    from trainer.onthefly import draw_camera, resolve_render_settings

    data = tmp_path / "scenes.zarr"
    _synth(["--output", str(data), "--render-mode", "scene-only", "--focus", "uniform",
            "--camera", "focal_mm=50,f_number=2,pitch_um=20,coc_to_sigma=0.3"])
    attrs = open_dataset(data).attrs
    settings = resolve_render_settings(attrs)
    cam = draw_camera(np.full((32, 48), 3.0, np.float32), settings, np.random.default_rng(1))
    assert (cam.focal_length, cam.f_number, cam.pixel_pitch, cam.coc_to_sigma) == (
        0.05, 2.0, 20e-6, 0.3)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"model": {"growth_rate": 4, "block_config": [1, 1, 1, 1],
                                         "num_init_features": 8},
                               "plots": False, "progress": False, "val_split": "test"}))
    run = tmp_path / "run"
    res = CliRunner().invoke(trainer, [
        "fit", "--data", str(data), "--run-dir", str(run), "--config", str(cfg),
        "--on-the-fly", "--render-mode", "gather", "--epochs", "1", "--batch-size", "2",
        "--crop", "32", "--workers", "0", "--device", "cpu", "--heads", "depth,aif"])
    assert res.exit_code == 0, res.output
    saved = json.loads((run / "config.json").read_text())
    assert saved["camera"] == "focal_mm=50,f_number=2,pitch_um=20,coc_to_sigma=0.3"
