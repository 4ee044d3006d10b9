"""The diffraction floor: sigma_d = 0.42 lambda N / pitch, in quadrature with defocus."""

import numpy as np
import pytest

from defocuskit import Camera, RenderSettings, draw_camera
from defocuskit.camera.focus import sample_rng
from defocuskit.errors import ConfigError
from defocuskit.pipeline.config import SynthConfig


def test_floor_formula_and_quadrature():
    cam = Camera(focal_length=0.05, f_number=8.0, focus_distance=2.0, pixel_pitch=2e-6,
                 diffraction_nm=550.0)
    floor = 0.42 * 550e-9 * 8.0 / 2e-6  # 0.924 px
    assert cam.diffraction_sigma_px == pytest.approx(floor, rel=1e-12)
    assert float(cam.sigma_px(2.0)) == pytest.approx(floor, rel=1e-12)  # in focus
    plain = Camera(focal_length=0.05, f_number=8.0, focus_distance=2.0, pixel_pitch=2e-6)
    depth = np.array([0.8, 1.5, 3.0, 9.0])
    np.testing.assert_allclose(cam.sigma_px(depth), np.sqrt(plain.sigma_px(depth) ** 2
                                                            + floor ** 2), rtol=1e-12)
    assert float(plain.sigma_px(2.0)) == 0.0  # off by default
    with pytest.raises(ConfigError):
        Camera(focal_length=0.05, f_number=8.0, focus_distance=2.0, pixel_pitch=2e-6,
               diffraction_nm=-1.0)


def test_off_unless_asked_and_recorded():
    depth = np.full((8, 8), 3.0)
    off = RenderSettings("2hded", focus="fixed:2")
    assert off.origin["diffraction"] == {"value": 0.0, "from": "fallback"}
    assert draw_camera(depth, off, sample_rng(0, "train", 0)).diffraction_nm == 0.0
    on = RenderSettings("2hded", focus="fixed:2", diffraction=550.0)
    assert on.origin["diffraction"] == {"value": 550.0, "from": "user"}
    cam = draw_camera(depth, on, sample_rng(0, "train", 0))
    assert cam.diffraction_nm == 550.0 and float(cam.sigma_px(2.0)) > 0


def test_config_and_content_key(tmp_path):
    cfg = SynthConfig(source="samples", input="-", output=str(tmp_path / "d.zarr"),
                      diffraction=550.0)
    assert cfg.content_key()["diffraction"] == 550.0
    assert "diffraction" not in SynthConfig(source="samples", input="-",
                                            output=str(tmp_path / "d.zarr")).content_key()
    with pytest.raises(ConfigError):
        SynthConfig(source="samples", input="-", output=str(tmp_path / "d.zarr"),
                    diffraction=-5.0)
