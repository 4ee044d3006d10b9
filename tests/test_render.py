"""Render engine: fast kernels against plain references and closed-form cases."""

import math

import numpy as np
import pytest
from naive import gaussian_reference, naive_gather, naive_scatter

from defocuskit.blur import MODES, PSFS, SIGMA_MAX_PX, SensorNoise, render
from defocuskit.errors import ConfigError

RNG = np.random.default_rng(7)
IMG = RNG.random((21, 37, 3), dtype=np.float32)  # odd sizes: exercise the lane tails


def _r(img, sigma, mode, **kw):
    depth = np.full(img.shape[:2], 5.0)  # layered: everything behind the focus plane
    return render(img, sigma, mode=mode, depth=depth if mode == "layered" else None, **kw)


@pytest.mark.parametrize("psf", PSFS)
@pytest.mark.parametrize("mode", MODES)
def test_zero_sigma_is_identity(mode, psf):
    zero = np.zeros(IMG.shape[:2], np.float32)
    np.testing.assert_array_equal(_r(IMG, zero, mode, psf=psf), IMG)
    u8 = (IMG * 255).astype(np.uint8)
    np.testing.assert_array_equal(_r(u8, zero, mode, psf=psf), u8)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("s", [0.6, 2.3])
def test_constant_sigma_matches_separable_gaussian(mode, s):
    sigma = np.full(IMG.shape[:2], s, np.float32)
    np.testing.assert_allclose(_r(IMG, sigma, mode), gaussian_reference(IMG, s), atol=2e-5)


@pytest.mark.parametrize("psf", PSFS)
@pytest.mark.parametrize("mode", MODES)
def test_constant_image_stays_constant(mode, psf):
    img = np.full((30, 40, 3), 0.37, np.float32)
    sigma = RNG.uniform(0, 6, (30, 40)).astype(np.float32)
    depth = RNG.uniform(0.5, 8, (30, 40))
    out = render(img, sigma, mode=mode, psf=psf, depth=depth, focus_distance=2.0)
    np.testing.assert_allclose(out, 0.37, atol=2e-6)


def test_gather_matches_naive_on_random_sigma():
    sigma = RNG.uniform(0, 3, IMG.shape[:2]).astype(np.float32)
    sigma[3, 5] = 0.0
    sigma[4, 6] = 0.05  # tiny sigma: weights underflow cleanly
    np.testing.assert_allclose(render(IMG, sigma, mode="gather"), naive_gather(IMG, sigma),
                               atol=2e-6)


def test_scatter_matches_naive_on_random_sigma():
    img, sigma = IMG[:13, :17], RNG.uniform(0, 2.5, (13, 17)).astype(np.float32)
    np.testing.assert_allclose(render(img, sigma, mode="scatter"), naive_scatter(img, sigma),
                               atol=2e-6)


@pytest.mark.parametrize("psf", PSFS)
@pytest.mark.parametrize("mode", ["gather", "scatter"])
def test_threads_do_not_change_the_result(mode, psf):
    sigma = RNG.uniform(0, 3, IMG.shape[:2]).astype(np.float32)
    np.testing.assert_allclose(render(IMG, sigma, mode=mode, psf=psf, threads=1),
                               render(IMG, sigma, mode=mode, psf=psf, threads=2), atol=1e-6)


def _two_planes(front_sigma, back_sigma, front_val, back_val, size=40, half=12):
    """A square (rows/cols half..size-half) at 1 m in front of a background at 6 m."""
    img = np.full((size, size, 3), back_val, np.float32)
    depth = np.full((size, size), 6.0)
    sigma = np.full((size, size), back_sigma, np.float32)
    sl = slice(half, size - half)
    img[sl, sl], depth[sl, sl], sigma[sl, sl] = front_val, 1.0, front_sigma
    return img, sigma, depth, sl


@pytest.mark.parametrize("psf", PSFS)
@pytest.mark.parametrize("mode", MODES)
def test_in_focus_plane_is_unchanged(mode, psf):
    img, sigma, depth, sl = _two_planes(0.0, 3.0, 0.0, 0.0)
    img[sl, sl] = RNG.random(img[sl, sl].shape)  # textured sharp foreground
    out = render(img, sigma, mode=mode, psf=psf, depth=depth, focus_distance=1.0)
    # scatter: blurred neighbours legitimately reach 9 px (disc: 6 px) into the sharp square
    inner = slice(sl.start + 10, sl.stop - 10) if mode == "scatter" else sl
    np.testing.assert_allclose(out[inner, inner], img[inner, inner], atol=1e-6)


def test_layered_blurred_foreground_spreads_over_background():
    img, sigma, depth, sl = _two_planes(3.0, 0.0, 1.0, 0.0)
    out = render(img, sigma, mode="layered", depth=depth, focus_distance=6.0)
    ring = out[sl.start - 3, 20, 0]  # 3 px outside the square, on the sharp background
    assert 0.05 < ring < 0.5
    assert out[0, 0, 0] == 0.0  # far from the square the background is untouched


def test_layered_sharp_foreground_not_smeared_and_no_halo():
    img, sigma, depth, sl = _two_planes(0.0, 4.0, 1.0, 0.2)
    out = render(img, sigma, mode="layered", depth=depth, focus_distance=1.0)
    np.testing.assert_allclose(out[sl, sl], 1.0, atol=1e-6)  # edges of the square included
    # the blurred background is made of background only: no white halo leaks into it,
    # whereas gather (each pixel's own window) lets the bright square bleed out
    assert np.abs(out[sl.start - 2, 20] - 0.2).max() < 1e-5
    assert render(img, sigma, mode="gather")[sl.start - 2, 20, 0] > 0.3


def test_layered_fills_background_hidden_by_blurred_foreground():
    img, sigma, depth, sl = _two_planes(3.0, 0.0, 0.0, 1.0)
    out = render(img, sigma, mode="layered", depth=depth, focus_distance=6.0)
    # a lens gives 1 - alpha: alpha the square's mask blurred by the truncated Gaussian
    r = math.ceil(3 * 3.0)
    w = np.exp(-np.arange(-r, r + 1) ** 2 / (2 * 3.0**2))
    profile = np.convolve(np.isin(np.arange(40), np.arange(40)[sl]), w / w.sum(), "same")
    ideal = 1.0 - profile * profile[20]  # column 20 is the square's middle
    # outside the square the background is exact, up to its last spilled pixel
    np.testing.assert_allclose(out[:sl.start, 20, 0], ideal[:sl.start], atol=1e-5)
    # inside the edge the hidden background is filled (unfilled it would be 0, the black
    # foreground alone); partly, so at most 0.1 of the step darker than the lens
    inside = out[sl.start, 20, 0]
    assert ideal[sl.start] - 0.1 <= inside <= ideal[sl.start] + 1e-6


def test_layered_estimates_the_focus_when_not_given():
    img, sigma, depth, sl = _two_planes(3.0, 0.0, 1.0, 0.0)
    np.testing.assert_allclose(render(img, sigma, mode="layered", depth=depth),
                               render(img, sigma, mode="layered", depth=depth,
                                      focus_distance=6.0))


@pytest.mark.parametrize("psf", PSFS)
@pytest.mark.parametrize("mode", MODES)
def test_uint8_and_float32_paths_agree(mode, psf):
    u8 = (IMG * 255).astype(np.uint8)
    sigma = RNG.uniform(0, 3, IMG.shape[:2]).astype(np.float32)
    a = _r(u8, sigma, mode, psf=psf).astype(np.float32)
    b = _r(u8.astype(np.float32) / 255, sigma, mode, psf=psf) * 255
    assert np.abs(a - b).max() <= 0.5 + 1e-3


def test_nan_sigma_is_no_blur_and_large_sigma_is_clamped():
    sigma = np.full(IMG.shape[:2], np.nan, np.float32)
    np.testing.assert_array_equal(render(IMG, sigma, mode="gather"), IMG)
    img = IMG[:8, :8]
    big = render(img, np.full((8, 8), 1e6, np.float32), mode="gather")
    np.testing.assert_allclose(big, render(img, np.full((8, 8), SIGMA_MAX_PX, np.float32),
                                           mode="gather"))


def test_linear_light_blurs_in_linear_space():
    img = np.zeros((9, 40, 3), np.float32)
    img[:, 20:] = 1.0
    s = np.full((9, 40), 20.0, np.float32)  # wide blur: the edge column gets ~half the light
    mid_lin = render(img, s, linear_light=True, mode="gather")[4, 20, 0]
    mid_srgb = render(img, s, mode="gather")[4, 20, 0]
    # 50 % linear light encodes to sRGB 0.735; blurring the encoded values stays near 0.5
    assert abs(mid_srgb - 0.5) < 0.06
    assert abs(mid_lin - 0.735) < 0.05
    np.testing.assert_allclose(render(np.full((8, 8, 3), 0.3, np.float32), s[:8, :8],
                                      linear_light=True, mode="gather"), 0.3, atol=1e-5)


def test_noise_is_seeded_and_has_the_model_variance():
    img = np.full((200, 200, 3), 0.5, np.float32)
    s = np.zeros((200, 200), np.float32)
    noise = SensorNoise(gain=0.01, read_sigma=0.02)
    a = render(img, s, noise=noise, seed=3, mode="gather")
    np.testing.assert_array_equal(a, render(img, s, noise={"gain": 0.01, "read_sigma": 0.02},
                                            seed=3, mode="gather"))
    assert not np.array_equal(a, render(img, s, noise=noise, seed=4, mode="gather"))
    assert abs(a.var() - (0.01 * 0.5 + 0.02**2)) < 3e-4
    assert abs(a.mean() - 0.5) < 2e-3
    np.testing.assert_array_equal(render(img, s, mode="gather"), img)  # off by default


@pytest.mark.parametrize("kwargs, match", [
    ({"aif": np.zeros((4, 4), np.float32)}, "shape"),
    ({"aif": np.zeros((4, 4, 3), np.float64)}, "dtype"),
    ({"sigma_px": np.zeros((4, 5), np.float32)}, "shape"),
    ({"sigma_px": np.full((4, 4), -1.0, np.float32)}, ">= 0"),
    ({"mode": "bokeh"}, "mode"),
    ({"psf": "box"}, "psf"),
    ({"mode": "layered"}, "depth"),
    ({"noise": {"gain": 0.1}}, "seed"),
])
def test_bad_input_raises_clear_errors(kwargs, match):
    args = {"aif": np.zeros((4, 4, 3), np.float32), "sigma_px": np.zeros((4, 4), np.float32)}
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        render(args.pop("aif"), args.pop("sigma_px"), **args)
    with pytest.raises(ValueError):  # also a ValueError, for numpy-minded callers
        render(np.zeros((4, 4, 3), np.float32), np.full((4, 4), -1.0, np.float32))


@pytest.mark.parametrize("shape, pad, extra", [((21, 37), 5, 11), ((9, 16), 8, 0), ((1, 7), 0, 1),
                                               ((30, 40), 3, 8)])
def test_fast_planar_padding_matches_numpy_reflect(shape, pad, extra):
    from defocuskit.blur._common import pad_planar
    from defocuskit.blur.gather import pad_planar_fast

    img = RNG.random(shape + (3,), dtype=np.float32)
    np.testing.assert_array_equal(pad_planar_fast(img, pad, extra), pad_planar(img, pad, extra))
    bottom = pad_planar_fast(img, pad, extra, extra_bottom=1)
    ref = np.pad(img.transpose(2, 0, 1), ((0, 0), (pad, pad + 1), (pad, pad + extra)),
                 mode="reflect")
    np.testing.assert_array_equal(bottom, ref)


def test_scatter_kernel_row_interleave_is_exact_for_any_count():
    # 1 and 2 interleaves have their own fast paths; 3 takes the general one
    img, sigma = IMG[:13, :17], RNG.uniform(0, 2.5, (13, 17)).astype(np.float32)
    accs = _scatter_accumulators(img, sigma)
    np.testing.assert_allclose(accs[1], accs[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(accs[2], accs[0], rtol=1e-6, atol=1e-7)


def test_gather_matches_naive_with_mixed_radii_in_one_lane_group():
    # one lane group (16 px) mixing sigma 0, tiny, small and the group maximum
    img = RNG.random((9, 40, 3), dtype=np.float32)
    sigma = np.tile(np.array([0, 0.05, 0.3, 2.9, 1.1, 0, 0.7, 2.0], np.float32), (9, 5))
    np.testing.assert_allclose(render(img, sigma, mode="gather"), naive_gather(img, sigma),
                               atol=2e-6)


def test_scatter_runs_of_equal_sigma_match_naive():
    # runs of equal sigma along a row take the separable path (from RUN_MIN sources on),
    # shorter ones the grouped path (GROUP sources at a time): runs of every length 1-9 and
    # RUN_MIN - 1 .. RUN_MIN + 1, sigma 0 runs, runs crossing the borders, tiny sigma
    from defocuskit.blur._scatter_kernels import GROUP, RUN_MIN

    assert GROUP < 9 < RUN_MIN - 1
    levels = np.array([0.0, 2.2, 0.9, 0.05, 1.6, 2.2, 0.0, 0.4, 1.3, 1.9, 0.6, 2.4],
                      np.float32)
    lengths = np.r_[np.arange(1, 10), RUN_MIN - 1, RUN_MIN, RUN_MIN + 1]
    row = np.repeat(levels, lengths)
    img = RNG.random((11, row.size, 3), dtype=np.float32)
    sigma = np.tile(row, (11, 1))
    sigma[4] = row[::-1]
    sigma[7, 10:30] = 1.1
    sigma[8, 3:3 + RUN_MIN] = 0.8  # a run that starts in the middle of a group
    ref = naive_scatter(img, sigma)
    for threads in (1, 2, 3):
        np.testing.assert_allclose(render(img, sigma, mode="scatter", threads=threads), ref,
                                   atol=2e-6)


def test_scatter_kernel_runs_are_exact_for_any_interleave():
    from defocuskit.blur._scatter_kernels import RUN_MIN

    img = RNG.random((13, 3 * RUN_MIN, 3), dtype=np.float32)
    sigma = np.repeat(RNG.uniform(0, 2.5, (13, 3)).astype(np.float32), RUN_MIN, axis=1)
    sigma[:, RUN_MIN:RUN_MIN + 3] = 0.7  # a short run: the grouped path
    accs = _scatter_accumulators(img, sigma)
    np.testing.assert_allclose(accs[1], accs[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(accs[2], accs[0], rtol=1e-6, atol=1e-7)


def test_scatter_kernel_result_does_not_depend_on_the_accumulator_layout():
    # the wrapper hands the kernel 32-byte aligned rows (speed only): a misaligned view and
    # wider rows must receive the very same sums in the first 4 W floats of each row
    from defocuskit.blur import _jit
    from defocuskit.blur._common import aligned_zeros
    from defocuskit.blur._scatter_kernels import (
        ACC_SLACK,
        SCATTER_SIGNATURE,
        acc_columns,
        scatter_rows,
    )

    _jit.compile_kernel(scatter_rows, SCATTER_SIGNATURE, simd="slp")
    h, w = 17, 45  # odd width: 4 W + ACC_SLACK is not a multiple of 8
    assert acc_columns(w) % 8 == 0 and acc_columns(w) >= 4 * w + ACC_SLACK
    img = RNG.random((h, w, 3), dtype=np.float32)
    sigma = RNG.uniform(0, 3.0, (h, w)).astype(np.float32)
    sigma[5, 3:30] = 1.7  # a run: the separable path
    pad = int(np.ceil(3 * sigma.max()))
    src = np.ascontiguousarray(np.pad(img.transpose(2, 0, 1), ((0, 0), (pad, pad), (pad, pad)),
                                      mode="reflect"))
    sig = np.pad(sigma, pad, mode="reflect")
    with np.errstate(divide="ignore"):
        alpha = np.exp(np.float32(-0.5) / sig**2).astype(np.float32)
    aligned = aligned_zeros((h, acc_columns(w)))
    assert aligned.ctypes.data % 64 == 0 and not aligned.any()
    shifted = aligned_zeros((h * (4 * w + ACC_SLACK) + 1,))[1:].reshape(h, 4 * w + ACC_SLACK)
    assert shifted.ctypes.data % 64 == 4
    wide = np.zeros((h, 4 * w + 40), np.float32)
    for acc in (aligned, shifted, wide):
        _jit.run_threads(scatter_rows, 2, src, sig, alpha, np.int64(pad), acc)
    np.testing.assert_array_equal(shifted[:, :4 * w], aligned[:, :4 * w])
    np.testing.assert_array_equal(wide[:, :4 * w], aligned[:, :4 * w])
    ref = naive_scatter(img, sigma)
    np.testing.assert_allclose(aligned[:, :4 * w].reshape(h, w, 4)[..., :3]
                               / aligned[:, 3:4 * w:4][..., None], ref, atol=2e-6)


def _scatter_accumulators(img, sigma):
    """Raw RGBW accumulators of the scatter kernel with 1, 2 and 3 row interleaves."""
    from defocuskit.blur import _jit
    from defocuskit.blur._scatter_kernels import ACC_SLACK, SCATTER_SIGNATURE, scatter_rows

    _jit.compile_kernel(scatter_rows, SCATTER_SIGNATURE, simd="slp")
    h, w = sigma.shape
    pad = int(np.ceil(3 * sigma.max()))
    src = np.pad(img.transpose(2, 0, 1), ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    sig = np.pad(sigma, pad, mode="reflect")
    with np.errstate(divide="ignore"):
        alpha = np.exp(np.float32(-0.5) / sig**2).astype(np.float32)
    accs = []
    for n in (1, 2, 3):
        acc = np.zeros((h, 4 * w + ACC_SLACK), np.float32)  # numpy's alignment: any
        _jit.run_threads(scatter_rows, n, np.ascontiguousarray(src), sig, alpha, np.int64(pad),
                         acc)
        accs.append(acc)
    return accs


@pytest.mark.parametrize("threads", [1, 2])
def test_gather_matches_naive_up_to_the_largest_sigma(threads):
    img = RNG.random((6, 40, 3), dtype=np.float32)  # 40 px: two full lane groups and a tail
    sigma = RNG.uniform(0, SIGMA_MAX_PX, (6, 40)).astype(np.float32)
    sigma[0, :6] = [0.0, 0.05, 0.3, 8.0, SIGMA_MAX_PX, 1e6]  # 1e6 is clamped to SIGMA_MAX_PX
    ref = naive_gather(img, np.minimum(sigma, SIGMA_MAX_PX))
    np.testing.assert_allclose(render(img, sigma, threads=threads, mode="gather"), ref, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2])
def test_scatter_matches_naive_up_to_the_largest_sigma(threads):
    img = RNG.random((5, 9, 3), dtype=np.float32)
    sigma = RNG.uniform(0, SIGMA_MAX_PX, (5, 9)).astype(np.float32)
    sigma[2, 2:7] = 17.5  # a run of equal sigma: the separable path
    sigma[0, :3] = [0.0, 0.05, SIGMA_MAX_PX]
    np.testing.assert_allclose(render(img, sigma, mode="scatter", threads=threads),
                               naive_scatter(img, sigma), atol=1e-5)


def test_kernel_compiles_leave_numba_vectoriser_flags_alone():
    from numba.core import config

    from defocuskit.blur import _jit

    class FakeKernel:  # records the flags its compile runs under
        def __init__(self, fail=False):
            self.signatures, self.seen, self.fail = [], None, fail

        def compile(self, signature):
            self.seen = (config.SLP_VECTORIZE, config.LOOP_VECTORIZE)
            if self.fail:
                raise RuntimeError("compile failed")
            self.signatures.append(signature)

        def disable_compile(self):
            pass

    def flags():
        return config.SLP_VECTORIZE, config.LOOP_VECTORIZE

    before = flags()
    for simd, simd_flags in _jit.SIMD_FLAGS.items():
        k = FakeKernel()
        _jit.compile_kernel(k, "void()", simd=simd)
        assert k.seen == simd_flags or _jit.JIT_DISABLED
        assert flags() == before
    with pytest.raises(RuntimeError, match="compile failed"), _jit._vectoriser("slp"):
        FakeKernel(fail=True).compile("void()")
    assert flags() == before
    for mode in MODES:  # the real kernels (compiled now or earlier in this process)
        for psf in PSFS:
            _r(IMG, np.ones(IMG.shape[:2], np.float32), mode, psf=psf)
    assert flags() == before


def test_run_threads_runs_every_share_and_reraises_errors():
    from defocuskit.blur._jit import run_threads

    def share(t, n, seen, fail_at):
        seen[t] = n
        if t == fail_at:
            raise ValueError(f"share {t} failed")

    seen = np.zeros(3, np.int64)
    run_threads(share, 3, seen, -1)
    np.testing.assert_array_equal(seen, 3)
    with pytest.raises(ValueError, match="share 2 failed"):
        run_threads(share, 3, np.zeros(3, np.int64), 2)


def test_scatter_groups_mixing_wide_and_off_image_sources():
    # one wide source beside the border, sigma 0 elsewhere: its reflected copies share
    # groups with sigma-0 sources in the padding whose PSF misses the image entirely
    # (their lanes must stay zero; a stale lane once leaked ~2e-4 into the sums)
    img = RNG.random((5, 9, 3), dtype=np.float32)
    for y, x in ((0, 1), (3, 6), (4, 2)):
        sigma = np.zeros((5, 9), np.float32)
        sigma[y, x] = 31.9
        sigma[0, 0] = 31.99
        np.testing.assert_allclose(render(img, sigma, mode="scatter"), naive_scatter(img, sigma),
                                   atol=5e-6)


def test_default_mode_is_synth_fallback_and_needs_depth():
    """One default: render() composites in layers, as synth does where a preset names no
    mode; without depth it says which mode needs none."""
    from defocuskit.presets import FALLBACK_MODE

    assert FALLBACK_MODE == "layered"
    img = RNG.random((12, 16, 3), dtype=np.float32)
    sigma = np.where(np.arange(16) < 8, 0.0, 2.5).astype(np.float32)[None].repeat(12, 0)
    depth = np.where(np.arange(16) < 8, 1.0, 6.0)[None].repeat(12, 0)
    np.testing.assert_array_equal(
        render(img, sigma, depth=depth, focus_distance=1.0),
        render(img, sigma, mode=FALLBACK_MODE, depth=depth, focus_distance=1.0))
    assert not np.allclose(render(img, sigma, depth=depth, focus_distance=1.0),
                           render(img, sigma, mode="gather"), atol=1e-3)
    with pytest.raises(ConfigError, match=r"'layered' \(the default\) needs depth=.*'gather'"):
        render(img, sigma)
