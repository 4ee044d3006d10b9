"""What each render mode does at an occlusion edge (the claims of docs/camera_model.md).

A near plane (columns < EDGE, 1 m) in front of a far plane (4 m), flat colours F and B.
The expectations are computed here with NumPy: ``phi``, the 1-D convolution of the
foreground's step with the engine's truncated Gaussian, is the physically expected
foreground fraction when the foreground is blurred over a sharp background (focus far);
with the foreground sharp and the background blurred (focus near) the expected image is
the unchanged step. Every image is constant along the rows, so a 2-D normalised Gaussian
average reduces to the 1-D one exactly.
"""

import numpy as np
import pytest

from defocuskit import render

H, W, EDGE = 16, 64, 32
NEAR_M, FAR_M = 1.0, 4.0
F = np.array([0.9, 0.7, 0.2], np.float32)  # foreground colour
B = np.array([0.1, 0.3, 0.6], np.float32)  # background colour (channel 2: darker foreground)
ONE_SIGMA = 0.15866  # Phi(-1): a blurred step's foreground fraction one sigma past its edge


def phi(sigma):
    """Foreground fraction of the step blurred by the truncated Gaussian (taps at
    -ceil(3 sigma)..ceil(3 sigma), normalised), edge-padded, per column."""
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    step = np.r_[np.ones(EDGE + r), np.zeros(W - EDGE + r)]
    return np.convolve(step, k / k.sum(), mode="valid")


def edge_render(mode, focus, sigma, psf="gaussian"):
    """The foreground fraction per column, checked equal on every row and channel."""
    near = np.arange(W) < EDGE
    aif = np.broadcast_to(np.where(near[:, None], F, B), (H, W, 3)).astype(np.float32)
    depth = np.broadcast_to(np.where(near, NEAR_M, FAR_M), (H, W)).astype(np.float64)
    blurred = near if focus == "far" else ~near
    sig = np.broadcast_to(np.where(blurred, sigma, 0.0), (H, W)).astype(np.float32)
    out = render(aif, sig, mode=mode, psf=psf, depth=depth,
                 focus_distance=FAR_M if focus == "far" else NEAR_M)
    frac = (out - B) / (F - B)
    np.testing.assert_allclose(frac, np.broadcast_to(frac[:1, :, :1], frac.shape), atol=1e-5)
    return frac[0, :, 0].astype(np.float64)


# ------------------------------------------------------- (a) focus far: foreground blurred
@pytest.mark.parametrize("sigma", [3.0, 4.0])
def test_layered_spreads_the_blurred_foreground_over_the_sharp_background(sigma):
    frac, p = edge_render("layered", "far", sigma), phi(sigma)
    r = int(np.ceil(3 * sigma))
    # past the edge: the expected blurred step (measured error < 1e-6; bound 1e-4), except
    # the last pixel the PSF reaches (see the next test)
    np.testing.assert_allclose(frac[EDGE:EDGE + r - 1], p[EDGE:EDGE + r - 1], atol=1e-4)
    np.testing.assert_allclose(frac[EDGE + r - 1:], p[EDGE + r - 1:], atol=3e-3)
    # the spill is about sigma wide: pixel centres 0.5 .. sigma - 0.5 px past the edge hold
    # at least Phi(-1) of the foreground, the next ones less
    assert np.count_nonzero(frac[EDGE:] >= ONE_SIGMA) == int(sigma)
    # inside the foreground the edge falls more steeply than expected: the hidden
    # background is filled only partly, so the division by coverage favours the
    # foreground; measured at most 0.10 (sigma 3 and 4), bound 0.12, never darker
    inside = frac[:EDGE] - p[:EDGE]
    assert inside.min() > -1e-4 and 0.05 < inside.max() < 0.12


@pytest.mark.parametrize("sigma", [3.0, 4.0])
def test_layered_last_pixel_of_the_spill(sigma):
    # each layer is blurred on its bounding box grown one pixel past the support: grown by
    # ceil(3 sigma) alone, the box's reflect-101 border mirrored the layer's outermost
    # pixel into the last pixel's window (0.00296 measured where 0.00148 is right, sigma 3)
    r = int(np.ceil(3 * sigma))
    frac, p = edge_render("layered", "far", sigma), phi(sigma)
    for k in range(r - 3, r + 2):  # the spill's last pixels, and the first one past it
        np.testing.assert_allclose(frac[EDGE + k], p[EDGE + k], atol=1e-4)


@pytest.mark.parametrize("sigma", [3.0, 4.0])
def test_gather_keeps_a_hard_outline_around_the_blurred_foreground(sigma):
    frac, p = edge_render("gather", "far", sigma), phi(sigma)
    # the sharp background pixels average only themselves: no spill at all
    np.testing.assert_allclose(frac[EDGE:], 0.0, atol=1e-6)
    # the foreground pixels average the all-in-focus image with their sigma: exactly the
    # expected values inside the foreground, so the profile jumps from phi to 0 at the edge
    np.testing.assert_allclose(frac[:EDGE], p[:EDGE], atol=1e-4)
    assert frac[EDGE - 1] > 0.4


@pytest.mark.parametrize("sigma", [3.0, 4.0])
def test_scatter_spreads_the_foreground_but_keeps_it_flat_inside(sigma):
    frac, p = edge_render("scatter", "far", sigma), phi(sigma)
    # a background pixel receives phi of the foreground's weight and 1 (its own, sigma 0),
    # so its foreground fraction is phi / (phi + 1): about sigma wide but weaker
    np.testing.assert_allclose(frac[EDGE:], p[EDGE:] / (p[EDGE:] + 1), atol=1e-4)
    assert frac[EDGE + int(sigma) - 1] > 0.1
    # sharp background pixels send nothing: the foreground stays full up to the edge
    np.testing.assert_allclose(frac[:EDGE], 1.0, atol=1e-6)


# ------------------------------------------------------- (b) focus near: background blurred
@pytest.mark.parametrize("sigma", [3.0, 4.0])
def test_layered_keeps_the_sharp_foreground_and_a_clean_background(sigma):
    frac = edge_render("layered", "near", sigma)
    # expected: the unchanged step (sharp foreground pixels exact to float32 rounding)
    np.testing.assert_allclose(frac[:EDGE], 1.0, atol=1e-6)
    np.testing.assert_allclose(frac[EDGE:], 0.0, atol=1e-6)


@pytest.mark.parametrize("sigma", [3.0, 4.0])
def test_gather_keeps_the_sharp_foreground_but_leaks_it_into_the_background(sigma):
    frac, p = edge_render("gather", "near", sigma), phi(sigma)
    np.testing.assert_allclose(frac[:EDGE], 1.0, atol=1e-6)
    # a blurred background pixel averages its window, foreground included: the leak is
    # the blurred step itself, about sigma wide (expected: none)
    np.testing.assert_allclose(frac[EDGE:], p[EDGE:], atol=1e-4)
    assert np.count_nonzero(frac[EDGE:] >= ONE_SIGMA) == int(sigma)


@pytest.mark.parametrize("sigma", [3.0, 4.0])
def test_scatter_bleeds_the_blurred_background_over_the_sharp_foreground(sigma):
    frac, p = edge_render("scatter", "near", sigma), phi(sigma)
    # a foreground pixel receives 1 - phi of the background's weight and 1 of its own
    bg = 1.0 - p[:EDGE]
    np.testing.assert_allclose(frac[:EDGE], 1.0 / (1.0 + bg), atol=1e-4)
    assert 1.0 - frac[EDGE - 1] > 0.25  # the sharp edge pixel is a quarter background
    np.testing.assert_allclose(frac[EDGE:], 0.0, atol=1e-6)


# ------------------------------------------------------- the disc PSF: the same behaviour
def test_disc_psf_shows_the_same_edge_behaviour():
    s = 3.0  # disc radius 6 px
    far = {m: edge_render(m, "far", s, psf="disc") for m in ("gather", "scatter", "layered")}
    near = {m: edge_render(m, "near", s, psf="disc") for m in ("gather", "scatter", "layered")}
    np.testing.assert_allclose(far["gather"][EDGE:], 0.0, atol=1e-6)  # hard outline
    for m in ("scatter", "layered"):  # spill over the background, up to the disc's radius
        assert far[m][EDGE + 4] > 0.02 and np.all(far[m][EDGE + 2 * int(s) + 1:] < 1e-6)
    for m in ("gather", "layered"):  # sharp foreground unchanged
        np.testing.assert_allclose(near[m][:EDGE], 1.0, atol=1e-6)
    assert 1.0 - near["scatter"][EDGE - 1] > 0.2  # background over the sharp foreground
    assert near["gather"][EDGE] > 0.2  # foreground leaked into the blurred background
    np.testing.assert_allclose(near["layered"][EDGE:], 0.0, atol=1e-6)
