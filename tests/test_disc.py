"""Disc PSF: the fast kernels against plain references, the threshold, the PSF itself."""

import numpy as np
import pytest
from naive import disc_reference, disc_weights, naive_disc_gather, naive_disc_scatter

from defocuskit.blur import MODES, render
from defocuskit.blur.psf import disc_kernel, disc_radius, support_radius

RNG = np.random.default_rng(11)
IMG = RNG.random((13, 17, 3), dtype=np.float32)
# sigma 0.25 is radius 0.5, the threshold: below it a pixel is not blurred at all
AROUND_THRESHOLD = np.array([0.0, 0.1, 0.2, 0.24, 0.25, 0.26, 0.3, 0.45], np.float32)


def _random_sigma(shape, hi):
    sigma = RNG.uniform(0, hi, shape).astype(np.float32)
    sigma[1, :AROUND_THRESHOLD.size] = AROUND_THRESHOLD
    sigma[-2, -AROUND_THRESHOLD.size:] = AROUND_THRESHOLD
    return sigma


@pytest.mark.parametrize("hi", [0.6, 3.0])
def test_disc_gather_matches_naive_on_random_sigma(hi):
    sigma = _random_sigma(IMG.shape[:2], hi)
    np.testing.assert_allclose(render(IMG, sigma, psf="disc", mode="gather"),
                               naive_disc_gather(IMG, sigma), atol=2e-6)


@pytest.mark.parametrize("hi", [0.6, 3.0])
def test_disc_scatter_matches_naive_on_random_sigma(hi):
    sigma = _random_sigma(IMG.shape[:2], hi)
    np.testing.assert_allclose(render(IMG, sigma, mode="scatter", psf="disc"),
                               naive_disc_scatter(IMG, sigma), atol=2e-6)


@pytest.mark.parametrize("mode", ["gather", "scatter"])
def test_disc_matches_naive_when_the_disc_is_wider_than_the_image(mode):
    # radius up to 16 px on a 9 x 11 image: the reflections fold several times
    img = IMG[:9, :11]
    sigma = _random_sigma((9, 11), 8.0)
    naive = naive_disc_gather if mode == "gather" else naive_disc_scatter
    np.testing.assert_allclose(render(img, sigma, mode=mode, psf="disc"), naive(img, sigma),
                               atol=2e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("s", [0.2, 0.25, 0.3, 1.1, 2.7])
def test_constant_sigma_matches_correlation_with_the_disc(mode, s):
    sigma = np.full(IMG.shape[:2], s, np.float32)
    out = render(IMG, sigma, mode=mode, psf="disc", depth=np.full(IMG.shape[:2], 5.0))
    np.testing.assert_allclose(out, disc_reference(IMG, s), atol=2e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("s", [0.0, 0.1, 0.24])
def test_disc_below_half_a_pixel_is_no_blur(mode, s):
    sigma = np.full(IMG.shape[:2], s, np.float32)
    out = render(IMG, sigma, mode=mode, psf="disc", depth=np.full(IMG.shape[:2], 5.0))
    np.testing.assert_array_equal(out, IMG)


def test_disc_scatter_kernel_row_interleave_is_exact_for_any_count():
    from defocuskit.blur import _jit
    from defocuskit.blur._disc_kernels import (
        DISC_NORM_SIGNATURE,
        DISC_SCATTER_SIGNATURE,
        disc_norm_rows,
        disc_scatter_rows,
    )

    _jit.compile_kernel(disc_norm_rows, DISC_NORM_SIGNATURE)
    _jit.compile_kernel(disc_scatter_rows, DISC_SCATTER_SIGNATURE)
    sigma = _random_sigma(IMG.shape[:2], 2.5)
    h, w = sigma.shape
    pad = disc_radius(sigma.max())
    src = np.ascontiguousarray(np.pad(IMG.transpose(2, 0, 1), ((0, 0), (pad, pad), (pad, pad)),
                                      mode="reflect"))
    sig = np.pad(sigma, pad, mode="reflect")
    inv = np.empty(sig.shape, np.float64)
    _jit.run_threads(disc_norm_rows, 1, sig, inv)
    sums = []
    for n in (1, 2, 3):
        acc, diff = np.zeros((h, w, 4)), np.zeros((h, w + 1, 4))
        _jit.run_threads(disc_scatter_rows, n, src, sig, inv, np.int64(pad), acc, diff)
        sums.append(acc + np.cumsum(diff, axis=1)[:, :w])
    np.testing.assert_allclose(sums[1], sums[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sums[2], sums[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("s", [0.1, 0.25, 0.3, 0.7, 1.0, 2.45, 6.0])
def test_disc_kernel_is_the_normalised_anti_aliased_disc(s):
    ker = disc_kernel(s)
    ref, half = disc_weights(s)
    ref = ref / ref.sum()
    R = disc_radius(s)
    assert ker.shape == (2 * R + 1, 2 * R + 1)
    assert half >= R and np.all(ref[: half - R] == 0)  # the support is all of the disc
    np.testing.assert_allclose(ker, ref[half - R: half + R + 1, half - R: half + R + 1],
                               atol=1e-7)
    assert support_radius(s, "disc") == R <= support_radius(s, "gaussian")


@pytest.mark.parametrize("s", [4.0, 8.0, 16.0])
def test_disc_has_the_gaussians_second_moment(s):
    # a uniform disc of radius r = 2 sigma has a per-axis variance r^2 / 4 = sigma^2;
    # the one-pixel anti-aliased rim adds a little
    ker = disc_kernel(s).astype(np.float64)
    R = ker.shape[0] // 2
    dx = np.arange(-R, R + 1)
    var = float((ker.sum(axis=0) * dx**2).sum())
    assert abs(var / s**2 - 1) < 0.02
