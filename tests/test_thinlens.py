"""trainer.thinlens against the thin lens worked out from first principles.

The reference here does not use the CoC formula of the module under test: it places the
sensor where the lens equation 1/f = 1/x + 1/v images the focus distance S, images each
object at its own v, and takes the blur circle from similar triangles (the light cone of
aperture D converging to v, cut by the sensor at v_S): c = D * |v_S - v| / v.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from defocuskit.errors import ConfigError  # noqa: E402
from trainer.thinlens import CAMERA_KEYS, sigma_px_from_depth  # noqa: E402


def _image_distance(f: float, x: float) -> float:
    return 1.0 / (1.0 / f - 1.0 / x)  # lens equation, object at x > f


def _coc_m_similar_triangles(f: float, n: float, s: float, x: float) -> float:
    aperture = f / n
    v, v_s = _image_distance(f, x), _image_distance(f, s)
    return aperture * abs(v_s - v) / v


def _camera(**kw) -> dict:
    cam = dict(focal_length=0.05, f_number=2.0, focus_distance=2.0, pixel_pitch=1e-5,
               coc_to_sigma=0.25) | kw
    return {k: torch.tensor([cam[k]], dtype=torch.float64) for k in CAMERA_KEYS}


def _sigma(depths, camera, **kw) -> np.ndarray:
    d = torch.tensor(depths, dtype=torch.float64).reshape(1, 1, 1, -1)
    return sigma_px_from_depth(d, camera, **kw).numpy().ravel()


def test_a_worked_example():
    """f 50 mm, f/2 (D 25 mm), focus 2 m, object at 4 m: image distances 51.282 mm (focus)
    and 50.633 mm, so c = 25 mm * 0.6494 mm / 50.633 mm = 0.32051 mm; 10 um pixels: 32.051
    px; sigma = CoC / 4 = 8.0128 px."""
    assert _coc_m_similar_triangles(0.05, 2.0, 2.0, 4.0) == pytest.approx(3.2051e-4, rel=1e-4)
    (sigma,) = _sigma([4.0], _camera())
    assert sigma == pytest.approx(8.0128, abs=1e-4)


@pytest.mark.parametrize("f, n, s", [(0.05, 2.0, 2.0), (0.07, 1.4, 0.9), (0.015, 2.8, 4.0),
                                     (0.085, 8.0, 10.0)])
def test_exact_coc_is_the_lens_equation_and_similar_triangles(f, n, s):
    depths = [f * 1.5, 0.5 * s, 0.99 * s, s, 1.01 * s, 2 * s, 37.0, 1e4]
    pitch, k = 6e-6, 0.3
    ours = _sigma(depths, _camera(focal_length=f, f_number=n, focus_distance=s,
                                  pixel_pitch=pitch, coc_to_sigma=k))
    ref = [k * _coc_m_similar_triangles(f, n, s, x) / pitch for x in depths]
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)
    assert ours[3] == 0.0  # the focus distance is sharp


def test_far_limit_and_monotonic_sides():
    """Far away the CoC tends to D f / (S - f); it falls towards S from both sides."""
    f, n, s, pitch = 0.05, 2.0, 2.0, 1e-5
    depths = np.array([0.3, 0.6, 1.0, 1.5, 1.9, 2.0, 2.1, 3.0, 10.0, 100.0, 1e6])
    ours = _sigma(depths, _camera())
    limit = 0.25 * (f / n) * f / (s - f) / pitch
    assert ours[-1] == pytest.approx(limit, rel=1e-5)
    near, far = ours[:6], ours[5:]
    assert np.all(np.diff(near) < 0) and np.all(np.diff(far) > 0)


def test_paper_model_is_f_over_s_times_aperture():
    """2HDED:NET's eq. 8 takes f / S for f / (S - f): smaller by exactly (S - f) / S."""
    depths = [0.7, 1.3, 3.0, 9.0]
    exact = _sigma(depths, _camera())
    paper = _sigma(depths, _camera(), coc_model="paper")
    np.testing.assert_allclose(paper, exact * (2.0 - 0.05) / 2.0, rtol=1e-12)


def test_sharp_below_offset():
    """SYNDOF's rule: sigma = k * max(CoC - 1 px, 0)."""
    f, n, s, pitch = 0.05, 2.0, 2.0, 1e-5
    depths = [1.9, 1.99, 2.5, 4.0]
    coc_px = np.array([_coc_m_similar_triangles(f, n, s, x) / pitch for x in depths])
    ours = _sigma(depths, _camera(), coc_offset_px=1.0)
    np.testing.assert_allclose(ours, 0.25 * np.maximum(coc_px - 1.0, 0.0), rtol=1e-9,
                               atol=1e-12)
    assert ours[1] == 0.0 and coc_px[1] < 1.0  # 1 cm before focus: under a pixel, sharp


def test_one_camera_per_sample():
    cams = {k: torch.cat([_camera()[k], _camera(focus_distance=4.0, f_number=4.0)[k]])
            for k in CAMERA_KEYS}
    depth = torch.full((2, 1, 1, 1), 3.0, dtype=torch.float64)
    ours = sigma_px_from_depth(depth, cams).numpy().ravel()
    ref = [0.25 * _coc_m_similar_triangles(0.05, n, s, 3.0) / 1e-5 for n, s in
           [(2.0, 2.0), (4.0, 4.0)]]
    np.testing.assert_allclose(ours, ref, rtol=1e-9)
    with pytest.raises(ConfigError, match="one per sample"):
        sigma_px_from_depth(torch.ones((3, 1, 1, 1), dtype=torch.float64), cams)


def test_gradient_is_the_derivative_of_the_closed_form():
    """d sigma / dx = k / pitch * D f / (S - f) * S / x^2 * sign(x - S)."""
    x = torch.tensor([[[[1.0, 4.0]]]], dtype=torch.float64, requires_grad=True)
    sigma_px_from_depth(x, _camera()).sum().backward()
    scale = 0.25 / 1e-5 * (0.05 / 2.0) * 0.05 / (2.0 - 0.05)
    expected = [scale * 2.0 / 1.0 * -1.0, scale * 2.0 / 16.0]
    np.testing.assert_allclose(x.grad.numpy().ravel(), expected, rtol=1e-12)
    assert math.isfinite(float(x.grad.abs().max()))
