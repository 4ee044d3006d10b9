"""The layered mode's separable Gaussian kernel against a plain NumPy reference.

The reference pads with ``np.pad(mode="reflect")`` (NumPy's "reflect" is OpenCV's
REFLECT_101: the edge pixel is not repeated) and sums the shifted copies with the truncated
Gaussian weights written out here; it is applied to the image, not taken from the kernel.
"""

import math

import numpy as np
import pytest

from defocuskit.blur import layered
from defocuskit.blur._layered_kernels import BLUR_LANES


def reference_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Truncated (|d| <= ceil(3 sigma)), normalised, separable Gaussian, reflect-101."""
    r = math.ceil(3 * sigma)
    d = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-d * d / (2 * sigma * sigma))
    g /= g.sum()
    x = img.astype(np.float64)
    h, w = x.shape[:2]
    for axis, n in ((0, h), (1, w)):
        pad = [(0, 0)] * 3
        pad[axis] = (r, r)
        p = x
        while p.shape[axis] < n + 2 * r:  # reflect more than once for boxes thinner than r
            need = (n + 2 * r - p.shape[axis]) // 2
            step = [(0, 0)] * 3
            step[axis] = (min(need, p.shape[axis] - 1), min(need, p.shape[axis] - 1))
            if p.shape[axis] == 1:  # a single row or column reflects onto itself
                step[axis] = (r, r)
                p = np.pad(p, step, mode="edge")
                break
            p = np.pad(p, step, mode="reflect")
        x = sum(g[k] * np.take(p, np.arange(k, k + n), axis=axis) for k in range(2 * r + 1))
    return x


def run_kernel(img: np.ndarray, sigma: float, threads: int = 1) -> np.ndarray:
    h, w = img.shape[:2]
    r = math.ceil(3 * sigma)
    src = np.full(h * w * 4 + BLUR_LANES, np.nan, np.float32)  # slack: never read into output
    src[:h * w * 4] = img.reshape(-1)
    tmp = np.full_like(src, np.nan)
    rows = np.full((threads, 4 * (w + 2 * r) + BLUR_LANES), np.nan, np.float32)
    out = np.full(h * w * 4, np.nan, np.float32)
    layered.gaussian_blur_flat(src, h, w, sigma, tmp, rows, out)
    return out.reshape(h, w, 4)


# boxes of one pixel, odd widths (a partial last lane group), radii up to 24; boxes thinner
# than the radius (tiny images) are compared with OpenCV below
CASES = [(shape, sigma) for shape in [(48, 64), (37, 53), (5, 300), (1, 40), (30, 1), (3, 3)]
         for sigma in [0.4, 1.0, 2.7, 8.0]
         if min(shape) == 1 or math.ceil(3 * sigma) < min(shape)]


@pytest.mark.parametrize(("shape", "sigma"), CASES)
def test_blur_matches_the_reference(shape, sigma):
    rng = np.random.default_rng(abs(hash((shape, sigma))) % 2**32)
    img = rng.random(shape + (4,), dtype=np.float32)
    ref = reference_blur(img, sigma)
    np.testing.assert_allclose(run_kernel(img, sigma), ref, atol=2e-6)
    np.testing.assert_array_equal(run_kernel(img, sigma, threads=3), run_kernel(img, sigma))


def test_blur_keeps_a_constant_and_moves_nothing():
    img = np.full((20, 70, 4), 0.25, np.float32)
    np.testing.assert_allclose(run_kernel(img, 3.0), 0.25, rtol=1e-6)
    imp = np.zeros((41, 41, 4), np.float32)
    imp[20, 20] = 1.0
    out = run_kernel(imp, 2.0).astype(np.float64)
    yy, xx = np.mgrid[-20:21, -20:21]
    assert out[..., 0].sum() == pytest.approx(1.0, abs=1e-6)
    assert (out[..., 0] * yy).sum() == pytest.approx(0.0, abs=1e-6)
    d = np.arange(-6, 7.0)
    g = np.exp(-d * d / 8.0)
    truncated_variance = (d * d * g).sum() / g.sum()  # sigma^2 = 4, cut at |d| <= 6
    assert (out[..., 0] * xx * xx).sum() == pytest.approx(truncated_variance, rel=1e-5)


@pytest.mark.parametrize("sigma", [3.0, 6.5])
def test_layered_render_equal_with_either_gaussian(monkeypatch, sigma):
    """The whole layered render with every level on cv2.GaussianBlur (the earlier engine)
    and with the engine's kernel from r = 7 on agree to float32 rounding."""
    rng = np.random.default_rng(1)
    img = rng.random((60, 90, 3), dtype=np.float32)
    yy, xx = np.mgrid[0:60, 0:90]
    depth = np.where((xx - 45) ** 2 + (yy - 30) ** 2 < 300, 1.0, 2.0 + xx / 30.0)
    s = (sigma * np.abs(1 - 2.0 / depth) / np.abs(1 - 2.0 / depth).max()).astype(np.float32)
    ours = layered.blur_layered(img, s, depth, focus_distance=2.0)
    monkeypatch.setattr(layered, "CV2_MAX_RADIUS", 10**6)
    cv = layered.blur_layered(img, s, depth, focus_distance=2.0)
    assert np.abs(ours - cv).max() < 2e-6
    assert np.abs(ours - img).max() > 0.05  # it did blur


@pytest.mark.parametrize("shape", [(3, 40), (2, 9), (7, 5)])
def test_thin_boxes_reflect_repeatedly_as_opencv_does(shape):
    import cv2

    img = np.random.default_rng(2).random(shape + (4,), dtype=np.float32)
    ref = cv2.GaussianBlur(img, (49, 49), 8.0, sigmaY=8.0, borderType=cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(run_kernel(img, 8.0), ref, atol=2e-6)


@pytest.mark.parametrize("sigma", [1.0, 2.7, 8.0])
@pytest.mark.parametrize("pattern", ["scattered", "blocks", "one pixel", "empty"])
def test_sparse_layers_skip_only_zeros(pattern, sigma):
    """A layer is mostly zeros: the passes skip all-zero rows and stretches; the result must
    stay the reference's (scattered pixels, separate blocks, a lone pixel, nothing)."""
    rng = np.random.default_rng(3)
    img = rng.random((70, 150, 4), dtype=np.float32)
    if pattern == "scattered":
        img[rng.random((70, 150)) > 0.05] = 0.0
    elif pattern == "blocks":
        keep = np.zeros((70, 150), bool)
        keep[5:12, 3:20] = keep[40:42, 100:149] = keep[60:70, 60:61] = True
        img[~keep] = 0.0
    else:
        img[:] = 0.0
        if pattern == "one pixel":
            img[35, 77] = (0.5, 0.25, 1.0, 1.0)
    ref = reference_blur(img, sigma)
    out = run_kernel(img, sigma)
    np.testing.assert_allclose(out, ref, atol=2e-6)
    assert (out[ref == 0.0] == 0.0).all()  # skipped outputs are written as zeros


def test_synth_warm_up_compiles_every_layered_kernel():
    """synth and the on-the-fly loader compile the kernels once before starting workers
    (:func:`defocuskit.recipe.warm_up`): its warm-up frame must use
    every layered kernel (long supports, and the fill in front of the focus plane), or each
    worker compiles the rest on its first real sample. Checked in a fresh process."""
    import subprocess
    import sys

    code = ("from defocuskit.recipe import RenderSettings, warm_up; "
            "from defocuskit.blur import _layered_kernels as K; "
            "warm_up(RenderSettings('2hded', focus='histogram', mode='layered')); "
            "print(sorted(n for n in ('blur_columns', 'blur_rows', 'needed_groups', "
            "'extract_layer', 'composite_over', 'fill_hidden', 'level_boxes', 'unpremultiply') "
            "if not getattr(K, n).signatures))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]", res.stdout


def _edge(sigma_near, sigma_far, focus):
    """Near plane (1 m, left half) in front of a far plane (4 m): image, sigma, depth."""
    near = np.arange(64) < 32
    img = np.broadcast_to(np.where(near[:, None], [0.9, 0.7, 0.2], [0.1, 0.3, 0.6]),
                          (16, 64, 3)).astype(np.float32)
    depth = np.broadcast_to(np.where(near, 1.0, 4.0), (16, 64)).astype(np.float64)
    sig = np.broadcast_to(np.where(near, sigma_near, sigma_far), (16, 64)).astype(np.float32)
    return img, sig, depth, focus


@pytest.mark.parametrize(("sigma_near", "sigma_far", "focus"),
                         [(3.0, 0.0, 4.0), (4.0, 0.0, 4.0), (0.0, 3.0, 1.0), (0.0, 4.0, 1.0)])
def test_slabs_keep_occlusion_between_slabs(sigma_near, sigma_far, focus):
    """Planes in different slabs (2 px wide) are composited as before: the same image."""
    img, sig, depth, focus = _edge(sigma_near, sigma_far, focus)
    ref = layered.blur_layered(img, sig, depth, focus_distance=focus)
    out = layered.blur_layered(img, sig, depth, focus_distance=focus, slab_px=2.0)
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_slabs_do_not_occlude_within_a_slab():
    """The documented trade-off: a sharp foreground in front of a background blurred by less
    than the slab width is summed with it, so the background bleeds over the foreground
    (as scatter does) where every-level compositing keeps the foreground clean."""
    img, sig, depth, focus = _edge(0.0, 1.5, 1.0)
    fg = np.array([0.9, 0.7, 0.2], np.float32)
    ref = layered.blur_layered(img, sig, depth, focus_distance=focus)
    out = layered.blur_layered(img, sig, depth, focus_distance=focus, slab_px=2.0)
    np.testing.assert_allclose(ref[:, :32], np.broadcast_to(fg, (16, 32, 3)), atol=1e-6)
    assert np.abs(out[:, 31] - fg).max() > 0.05  # the last foreground column is mixed


def test_slabs_bring_a_slanted_plane_closer_to_the_no_occlusion_blur():
    """On a textured plane slanted away from the camera (no occlusion: gather is right
    there), every-level compositing lets each band hide part of the next; slabs cut it
    less often (benchmarks/layered_levels.py)."""
    from defocuskit.blur import render

    rng = np.random.default_rng(0)
    tex = rng.random((30, 40, 3)).astype(np.float32)
    img = np.ascontiguousarray(np.repeat(np.repeat(tex, 4, 0), 4, 1))
    depth = np.broadcast_to(3.0 + 4.0 * np.arange(160) / 160, (120, 160)).copy()
    sig = (6.0 * (1 - 2.0 / depth) / (1 - 2.0 / 7.0)).astype(np.float32)
    ref = render(img, sig, mode="gather")[8:-8, 8:-8]
    # at uniform 0.5 px levels, where a band per level is cut most often
    err = {w: np.abs(layered.blur_layered(img, sig, depth, focus_distance=2.0, slab_px=w,
                                          rel_step=0.0)[8:-8, 8:-8] - ref).mean()
           for w in (None, 2.0)}
    assert err[2.0] < 0.6 * err[None]


def test_slab_width_must_be_positive():
    img, sig, depth, focus = _edge(3.0, 0.0, 4.0)
    with pytest.raises(ValueError, match="slab_px"):
        layered.blur_layered(img, sig, depth, focus_distance=focus, slab_px=0.0)


@pytest.mark.parametrize("lo, hi", [(-8.3, 7.9), (0.0, 5.0), (-0.3, 0.0), (-1.2, 31.7)])
@pytest.mark.parametrize("rel", [0.1, 0.25, 0.35, layered.MAX_LEVEL_REL_STEP])
def test_relative_level_spacing_obeys_its_rule(lo, hi, rel):
    lev = layered.sigma_levels(lo, hi, rel_step=rel)
    assert lev[0] == pytest.approx(lo) and lev[-1] == pytest.approx(hi) and 0.0 in lev
    assert np.all(np.diff(lev) > 0)
    # each step at most max(0.5, rel |level|), |level| the nearer end's distance from 0
    # (the steps grow away from focus)
    near = np.minimum(np.abs(lev[:-1]), np.abs(lev[1:]))
    assert np.all(np.diff(lev) <= np.maximum(0.5, rel * near) + 1e-9)
    # fewer levels than uniform steps wherever the range reaches past 0.5 / rel
    uniform = layered.sigma_levels(lo, hi, rel_step=0.0)
    assert lev.size <= uniform.size
    if max(-lo, hi) > 3 * 0.5 / rel:
        assert lev.size < uniform.size


def test_default_level_spacing_is_relative_and_zero_is_uniform():
    """The default is the relative rule (0.5 px near focus, 40 % of the level beyond 1.25
    px); ``rel_step=0`` is the uniform rule: ceil(|end| / 0.5) equal steps each side."""
    assert layered.MAX_LEVEL_REL_STEP == 0.4
    assert layered.level_rule() == {"max_step_px": 0.5, "rel_step": 0.4}
    assert np.array_equal(layered.sigma_levels(-8.3, 7.9),
                          layered.sigma_levels(-8.3, 7.9, rel_step=0.4))
    uniform = layered.sigma_levels(-8.3, 7.9, rel_step=0.0)
    np.testing.assert_allclose(uniform, np.concatenate([np.linspace(-8.3, 0.0, 18)[:-1],
                                                        np.linspace(0.0, 7.9, 17)]))
    # the relative levels: steps of 0.5 px while the level is below 1.25 px, then 40 % of
    # the level, until 7.9 is passed; then all scaled so that the last one is 7.9
    greedy = np.array([0.0, 0.5, 1.0, 1.5, 2.1, 2.94, 4.116, 5.7624, 8.06736])
    np.testing.assert_allclose(layered.sigma_levels(0.0, 7.9), greedy * 7.9 / greedy[-1])
    img = np.random.default_rng(4).random((40, 50, 3), dtype=np.float32)
    depth = np.linspace(1.0, 6.0, 50)[None].repeat(40, 0)
    sigma = np.abs(4.0 * (1 - 2.0 / depth)).astype(np.float32)
    a = layered.blur_layered(img, sigma, depth, focus_distance=2.0)
    assert np.array_equal(a, layered.blur_layered(img, sigma, depth, focus_distance=2.0,
                                                  rel_step=0.4))
    assert not np.array_equal(a, layered.blur_layered(img, sigma, depth, focus_distance=2.0,
                                                      rel_step=0.0))
    # every level rule keeps a constant image constant (normalised)
    flat = np.full_like(img, 0.42)
    for q in (0.0, 0.25, 0.4):
        out = layered.blur_layered(flat, sigma, depth, focus_distance=2.0, rel_step=q)
        np.testing.assert_allclose(out, 0.42, atol=2e-6)
