"""Thin-lens camera: hand-computed values, monotonicity, presets, config round trip."""

import json

import numpy as np
import pytest

from defocuskit.errors import ConfigError
from defocuskit.optics import Camera
from defocuskit.presets import get_preset, list_presets


def test_exact_and_paper_coc_match_hand_computed_values():
    # f = 70 mm, D = 44.8 mm, S = 2 m, x = 4 m, pitch = 36 mm / 640 px
    cam = Camera.from_aperture(focal_length=0.07, aperture_diameter=0.0448, focus_distance=2.0,
                               pixel_pitch=0.036 / 640)
    exact_m = 0.0448 * 0.07 / 1.93 * 0.5  # D f / (S - f) * |x - S| / x
    assert cam.coc_m(4.0) == pytest.approx(exact_m, rel=1e-12)
    assert cam.coc_px(4.0) == pytest.approx(exact_m * 640 / 0.036, rel=1e-12)
    assert cam.sigma_px(4.0) == pytest.approx(exact_m * 640 / 0.036 / 4, rel=1e-12)
    paper = Camera(**{**cam.to_config(), "coc_model": "paper"})
    assert paper.coc_m(4.0) == pytest.approx(0.07 / 2.0 * 0.0448 * 0.5, rel=1e-12)


def test_presets_reproduce_published_settings():
    rng = np.random.default_rng(0)
    c = get_preset("2hded").make(image_width=640, rng=rng)
    assert (c.focal_length, c.aperture_diameter) == pytest.approx((0.07, 0.0448))
    assert c.pixel_pitch == pytest.approx(0.036 / 640)
    assert c.coc_to_sigma == 0.25
    d3 = get_preset("d3net-nyu").make(image_width=561, rng=rng).with_focus(2.0)
    # 15 mm f/2.8, 5.6 um: object at 4 m -> (f/N) f/(S-f) |x-S|/x / pitch
    hand = (0.015 / 2.8) * 0.015 / (2.0 - 0.015) * 0.5 / 5.6e-6
    assert d3.coc_px(4.0) == pytest.approx(hand, rel=1e-12)
    nik = get_preset("idfd-nikon").make(image_width=640, rng=rng)
    assert (nik.focal_length, nik.f_number) == (0.014, 2.8)
    assert set(list_presets()) >= {"2hded", "d3net-nyu", "syndof", "idfd-nikon", "mddnet"}
    for p in list_presets().values():
        assert p.source and p.name in p.describe() and p.source in p.describe()


def test_syndof_is_random_and_adapts_to_29px_max_coc():
    p = get_preset("syndof")
    fs = {p.make(image_width=640, rng=np.random.default_rng(i)).focal_length for i in range(60)}
    assert fs == {0.05, 0.07, 0.085}
    depth = np.array([[0.8, 3.0], [np.nan, 9.0]])
    cam = p.adapt(p.make(image_width=640, rng=np.random.default_rng(1)).with_focus(2.0), depth)
    assert np.nanmax(cam.coc_px(depth)) == pytest.approx(29.0, rel=1e-9)
    fixed = get_preset("2hded").make(image_width=640, rng=None)
    assert get_preset("2hded").adapt(fixed, depth) is fixed


def test_coc_is_zero_in_focus_and_grows_away_from_it():
    cam = Camera(focal_length=0.05, f_number=2.0, focus_distance=3.0, pixel_pitch=6e-6)
    assert cam.coc_px(3.0) == 0.0
    near = cam.coc_px(np.linspace(0.3, 3.0, 200))
    far = cam.coc_px(np.linspace(3.0, 100.0, 200))
    assert np.all(np.diff(near) < 0) and np.all(np.diff(far) > 0)
    # far side tends to the thin-lens limit D f / (S - f)
    assert cam.coc_m(1e12) == pytest.approx(0.025 * 0.05 / 2.95, rel=1e-9)


def test_invalid_depth_gives_nan_and_shape_is_kept():
    cam = Camera(focal_length=0.05, f_number=2.0, focus_distance=3.0, pixel_pitch=6e-6)
    out = cam.sigma_px(np.array([[np.nan, np.inf], [-1.0, 0.0]]))
    assert out.shape == (2, 2) and np.isnan(out).all()


def test_config_round_trip_and_alternative_constructors():
    cam = Camera.from_sensor_width(focal_length=0.07, f_number=1.5625, focus_distance=2.5,
                                   sensor_width=0.036, image_width=320, coc_model="paper")
    cfg = json.loads(json.dumps(cam.to_config()))
    assert Camera.from_config(cfg) == cam
    assert cam.pixel_pitch == pytest.approx(0.036 / 320)
    assert cam.with_focus(4.0).focus_distance == 4.0 and cam.focus_distance == 2.5


@pytest.mark.parametrize("kwargs, match", [
    ({"focal_length": -0.05}, "focal_length"),
    ({"f_number": float("nan")}, "f_number"),
    ({"focus_distance": 0.01}, "larger than focal_length"),
    ({"coc_model": "approx"}, "coc_model"),
    ({"pixel_pitch": "5um"}, "pixel_pitch"),
])
def test_bad_camera_values_raise(kwargs, match):
    base = {"focal_length": 0.05, "f_number": 2.0, "focus_distance": 3.0, "pixel_pitch": 6e-6}
    with pytest.raises(ConfigError, match=match):
        Camera(**{**base, **kwargs})


def test_unknown_preset_and_config_key_are_reported():
    with pytest.raises(ConfigError, match="2hded.*d3net-nyu"):
        get_preset("canon")
    with pytest.raises(ConfigError, match="unknown keys"):
        Camera.from_config({"focal_length": 0.05, "aperture": 2})
