"""The render recipe (defocuskit.recipe): synth's render of a sample and a window of it agree
bit for bit, one invalid-depth rule, settings resolved once with their origin."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from defocuskit import RenderSettings, draw_camera, render_sample
from defocuskit.blur import render
from defocuskit.camera.focus import sample_rng
from defocuskit.errors import ConfigError, SourceError
from defocuskit.pipeline.shard import sample_arrays
from defocuskit.sources import Sample

MODES_PSFS = [(m, p) for m in ("gather", "scatter", "layered") for p in ("gaussian", "disc")]
CROP = 32
# crops inside, at each corner, and with holes of NaN and of zero depth just outside or
# across their border (see _frame)
WINDOWS = [(0, 0), (0, 96), (64, 96), (64, 0), (2, 18), (20, 40), (46, 70)]


def _frame():
    """A textured 96 x 128 frame, 0.7 to 4.5 m, focused at 1.5 m by the camera below (sigma
    up to about 7 px on both sides of the focus plane), with holes of NaN and of 0 depth
    near the crop borders: whose nearest valid pixel lies outside those crops."""
    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[0:96, 0:128]
    depth = (1.0 + 3.0 * cols / 128 + 0.5 * np.sin(rows / 7)).astype(np.float32)
    depth[(cols - 60) ** 2 + (rows - 50) ** 2 < 300] = 0.7  # a near disc: occlusion edges
    depth[:6, 14:22] = np.nan          # across the left border of the crop at (2, 18)
    depth[18:23, 36:44] = 0.0          # across the top-left corner of the crop at (20, 40)
    depth[44:47, 66:110] = np.nan      # just above the crop at (46, 70)
    depth[78:96, 60:72] = np.nan       # across a frame border and the crop at (64, 0)
    depth[90:, 118:] = -1.0            # a negative corner
    aif = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    return aif, depth


@pytest.fixture(scope="module")
def frame():
    return _frame()


@pytest.mark.parametrize(("mode", "psf"), MODES_PSFS)
def test_window_equals_the_same_crop_of_synth_render(frame, mode, psf):
    """What synth stores for a sample (pipeline.shard.sample_arrays) cropped, and the
    recipe's render of the window alone with the same draw: equal to the last bit."""
    aif, depth = frame
    settings = RenderSettings("2hded", focus="fixed:1.5", mode=mode, psf=psf)
    stored = sample_arrays(Sample("s", aif, depth), settings, 7, "train", 3, threads=1)
    camera = draw_camera(depth, settings, sample_rng(7, "train", 3))
    assert np.float32(camera.focus_distance) == stored["focus_distance"]
    margins = set()
    for top, left in WINDOWS:
        r = render_sample(aif, depth, camera, settings, window=(top, left, CROP, CROP),
                          threads=1)
        cut = (slice(top, top + CROP), slice(left, left + CROP))
        np.testing.assert_array_equal(r["defocused"], stored["defocused"][cut])
        np.testing.assert_array_equal(r["sigma"], stored["sigma"][cut])  # NaN where invalid
        margins.add(r["margin"])
    if (mode, psf) != ("layered", "disc"):  # that one renders the whole frame (recipe doc)
        assert max(margins) < 96  # a window, not the whole frame, was rendered


def test_layered_window_needs_the_frames_levels(frame):
    """The check above has teeth: a layered window cut into levels from its own sigma
    range (the window's statistics), or without the margin, differs from the frame."""
    aif, depth = frame
    settings = RenderSettings("2hded", focus="fixed:1.5", mode="layered")
    camera = draw_camera(depth, settings, np.random.default_rng(0))
    whole = render_sample(aif, depth, camera, settings, threads=1)["defocused"]
    top, left = 46, 70
    m = render_sample(aif, depth, camera, settings, window=(top, left, CROP, CROP))["margin"]
    y0, x0 = max(top - m, 0), max(left - m, 0)
    from defocuskit.recipe import fill_invalid_depth

    d = fill_invalid_depth(depth)[y0:top + CROP + m, x0:left + CROP + m]
    own = render(np.ascontiguousarray(aif[y0:top + CROP + m, x0:left + CROP + m]),
                 camera.sigma_px(d).astype(np.float32), mode="layered", depth=d,
                 focus_distance=camera.focus_distance, threads=1)
    own = own[top - y0:top - y0 + CROP, left - x0:left - x0 + CROP]
    assert np.abs(own.astype(int) - whole[top:top + CROP, left:left + CROP]).max() > 0


def test_gather_window_without_margin_would_differ(frame):
    aif, depth = frame
    settings = RenderSettings("2hded", focus="fixed:1.5", mode="gather")
    camera = draw_camera(depth, settings, np.random.default_rng(0))
    whole = render_sample(aif, depth, camera, settings)["defocused"]
    d = np.nan_to_num(depth[20:52, 40:72], nan=1.0)
    d[d <= 0] = 1.0
    bare = render(np.ascontiguousarray(aif[20:52, 40:72]), camera.sigma_px(d).astype(np.float32),
                  mode="gather")
    assert np.abs(bare.astype(int) - whole[20:52, 40:72]).max() > 5


def test_invalid_depth_is_nan_inf_and_not_positive():
    """Each invalid pixel renders as its nearest valid pixel and stores sigma NaN."""
    from defocuskit.recipe import fill_invalid_depth, valid_depth

    depth = np.array([[1.0, np.nan, 2.0, 0.0], [np.inf, 3.0, -1.0, 4.0]], np.float32)
    np.testing.assert_array_equal(valid_depth(depth), [[1, 0, 1, 0], [0, 1, 0, 1]])
    filled = fill_invalid_depth(depth)
    assert filled[0, 3] in (2.0, 4.0) and filled[1, 2] in (2.0, 3.0, 4.0)
    assert filled[1, 0] in (1.0, 3.0) and np.isfinite(filled).all()
    aif = np.full((2, 4, 3), 100, np.uint8)
    settings = RenderSettings("2hded", focus="fixed:2.0", mode="gather")
    camera = draw_camera(depth, settings, np.random.default_rng(0))
    sigma = render_sample(aif, depth, camera, settings)["sigma"]
    np.testing.assert_array_equal(np.isnan(sigma), ~valid_depth(depth))


@pytest.mark.parametrize("bad", [np.nan, 0.0, -2.0, np.inf])
def test_a_frame_without_valid_depth_is_an_error(bad):
    depth = np.full((8, 8), bad, np.float32)
    aif = np.zeros((8, 8, 3), np.uint8)
    settings = RenderSettings("2hded", focus="histogram", mode="gather")
    with pytest.raises(SourceError, match="no valid pixel"):
        draw_camera(depth, settings, np.random.default_rng(0))
    camera = draw_camera(np.ones((8, 8), np.float32), settings, np.random.default_rng(0))
    with pytest.raises(SourceError, match="no valid pixel"):
        render_sample(aif, depth, camera, settings)
    with pytest.raises(SourceError, match="no valid pixel"):
        sample_arrays(Sample("s", aif, depth), settings, 0, "train", 0, threads=1)


def test_settings_resolve_once_with_their_origin():
    s = RenderSettings("d3net-nyu", mode="gather", given_by={"mode": "dataset"})
    assert (s.focus, s.mode, s.coc_model) == ("fixed:2.0", "gather", "exact")
    assert s.origin["focus"] == {"value": "fixed:2.0", "from": "preset"}
    assert s.origin["mode"] == {"value": "gather", "from": "dataset"}
    assert s.preset.name == "d3net-nyu" and s.policy.k == 1
    custom = RenderSettings("focal_mm=50,f_number=2.8,pitch_um=5.6")
    assert custom.origin["focus"] == {"value": "histogram", "from": "fallback"}
    assert custom.origin["mode"] == {"value": "layered", "from": "fallback"}
    assert RenderSettings("2hded,mode=scatter").origin["mode"]["from"] == "camera"
    # workers receive it pickled: rebuilt from the values given, origin included
    back = pickle.loads(pickle.dumps(s))
    assert back == s and back.origin == s.origin and back.preset == s.preset


@pytest.mark.parametrize(("kw", "match"), [({"mode": "blur"}, "unknown render mode"),
                                          ({"psf": "box"}, "psf must be"),
                                          ({"focus": "sometimes"}, "unknown focus policy")])
def test_settings_refuse_unknown_values(kw, match):
    with pytest.raises(ConfigError, match=match):
        RenderSettings("2hded", **kw)
