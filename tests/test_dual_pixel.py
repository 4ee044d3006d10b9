"""Dual-pixel views (--dual-pixel): the two half-aperture images."""

import numpy as np
import pytest

from defocuskit import RenderSettings, render
from defocuskit.errors import ConfigError


def _centroid_x(img):
    lum = img.sum(axis=2)
    return float((np.arange(img.shape[1])[None, :] * lum).sum() / lum.sum())


@pytest.mark.parametrize("psf", ["gaussian", "disc", "polygon:6", "polygon:5,20"])
@pytest.mark.parametrize("mode", ["gather", "scatter"])
def test_views_sum_to_the_full_render(psf, mode):
    rng = np.random.default_rng(3)
    img = rng.random((40, 56, 3)).astype(np.float32)
    depth = np.tile(np.linspace(0.8, 5.0, 56), (40, 1))
    sigma = (2.0 * np.abs(depth - 2.0) / depth).astype(np.float32) * 2
    out = render(img, sigma, mode=mode, psf=psf, depth=depth, focus_distance=2.0,
                 dual_pixel=True)
    np.testing.assert_allclose(out.left + out.right, out.defocused, atol=1e-5)
    # the full image is the kernel table's render of the whole PSF
    whole = render(img, sigma, mode=mode, psf=psf if psf.startswith("polygon") else psf,
                   depth=depth, focus_distance=2.0)
    if psf.startswith("polygon"):
        np.testing.assert_allclose(out.defocused, whole, atol=1e-5)
    else:  # closed-form kernels against their table: interpolation only
        assert 10 * np.log10(1 / np.mean((out.defocused - whole) ** 2)) > 45


@pytest.mark.parametrize("psf", ["gaussian", "disc", "polygon:6"])
def test_disparity_flips_across_the_focal_plane(psf):
    img = np.zeros((41, 41, 3), np.float32)
    img[20, 20] = 1.0
    sigma = np.full((41, 41), 3.0, np.float32)
    shifts = []
    for depth in (4.0, 1.0):  # behind and in front of the focus at 2 m
        out = render(img, sigma, mode="scatter", psf=psf,
                     depth=np.full((41, 41), depth), focus_distance=2.0, dual_pixel=True)
        shifts.append(_centroid_x(out.left) - _centroid_x(out.right))
    assert shifts[0] < -1.0 and shifts[1] > 1.0
    assert abs(shifts[0] + shifts[1]) < 1e-4  # mirrored


def test_in_focus_views_are_half_the_image():
    img = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    out = render(img, np.zeros((16, 16), np.float32), mode="gather",
                 depth=np.full((16, 16), 2.0), focus_distance=2.0, dual_pixel=True)
    np.testing.assert_allclose(out.left, img / 2, atol=1e-7)
    np.testing.assert_allclose(out.right, img / 2, atol=1e-7)


def test_refusals():
    img = np.zeros((8, 8, 3), np.float32)
    sig = np.ones((8, 8), np.float32)
    with pytest.raises(ConfigError, match="depth= and focus_distance="):
        render(img, sig, mode="gather", dual_pixel=True)
    with pytest.raises(ConfigError, match="'gather' or 'scatter'"):
        render(img, sig, mode="layered", depth=np.ones((8, 8)), dual_pixel=True)
    for kw in ({"noise": {"gain": 0.01}}, {"linear_light": True}):
        with pytest.raises(ConfigError, match="noise or"):
            RenderSettings(camera="2hded", focus="fixed:2", mode="gather", dual_pixel=True, **kw)
    with pytest.raises(ConfigError, match="gather or scatter"):
        RenderSettings(camera="2hded", focus="fixed:2", mode="layered", dual_pixel=True)
