"""Shared preparation: resize (image and depth), crops and the depth-unit check."""

from __future__ import annotations

import numpy as np
import pytest

from defocuskit.errors import ConfigError, SourceError
from defocuskit.prepare import (
    center_crop,
    check_depth_units,
    crop_sample,
    resize_depth_masked,
    resize_depth_nearest,
    resize_image,
    resize_sample,
)
from defocuskit.sources.base import Sample


def _sample(h=8, w=12, defocused=False) -> Sample:
    r, c = np.mgrid[0:h, 0:w]
    aif = np.stack([r * 10, c * 10, r + c], -1).astype(np.uint8)
    depth = (1.0 + r + 0.1 * c).astype(np.float32)
    return Sample("s", aif, depth, defocused=255 - aif if defocused else None, meta={"k": 1})


def test_nearest_depth_integer_upsampling_repeats_rows_and_columns():
    d = np.arange(12, dtype=np.float32).reshape(3, 4)
    d[1, 2] = np.nan
    out = resize_depth_nearest(d, (9, 8))
    np.testing.assert_array_equal(out, np.repeat(np.repeat(d, 3, axis=0), 2, axis=1))


def test_nearest_depth_downsampling_takes_the_centre_pixel():
    d = np.arange(64, dtype=np.float32).reshape(8, 8)
    # factor 4: output pixel i covers source 4i..4i+3, centre 4i+2
    np.testing.assert_array_equal(resize_depth_nearest(d, (2, 2)), d[2::4, 2::4])


def test_masked_depth_ignores_invalid_pixels():
    d = np.full((8, 8), 3.0, np.float32)
    d[0:2, 0:2] = np.nan           # a quarter of the first 4x4 block
    d[4:8, 4:8] = np.nan           # a whole block
    out = resize_depth_masked(d, (2, 2))
    np.testing.assert_allclose(out[0, 0], 3.0, rtol=1e-6)   # 12 valid of 16: averaged, no NaN
    assert np.isnan(out[1, 1])
    np.testing.assert_allclose(out[[0, 1], [1, 0]], 3.0, rtol=1e-6)
    # a step edge averages to the mean of the valid values in the footprint
    e = np.zeros((4, 4), np.float32) + np.array([1, 1, 5, np.nan], np.float32)
    np.testing.assert_allclose(resize_depth_masked(e, (1, 1)), [[7 / 3]], rtol=1e-6)


def test_area_shrink_is_the_block_mean():
    rng = np.random.default_rng(0)
    img = rng.random((8, 12, 3)).astype(np.float32)
    out = resize_image(img, (4, 6))
    ref = img.reshape(4, 2, 6, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_resize_sample_resizes_everything_and_records_it():
    s = _sample(defocused=True)
    out = resize_sample(s, (4, 6))
    assert out.aif.shape == (4, 6, 3) and out.aif.dtype == np.uint8
    assert out.defocused.shape == (4, 6, 3)
    assert out.depth.shape == (4, 6) and out.depth.dtype == np.float32
    np.testing.assert_array_equal(out.depth, s.depth[1::2, 1::2])
    assert out.meta == {"k": 1, "resized_from": [8, 12]} and s.meta == {"k": 1}
    up = resize_sample(s, (16, 24), depth_interp="masked")
    assert up.aif.shape == (16, 24, 3) and np.isfinite(up.depth).all()
    assert resize_sample(s, (8, 12)) is s
    with pytest.raises(ConfigError, match="depth interpolation"):
        resize_sample(s, (4, 6), depth_interp="cubic")
    with pytest.raises(ConfigError, match="size"):
        resize_sample(s, (4,))


def test_crops():
    s = _sample(defocused=True)
    c = center_crop(s, (5, 7))          # margins 3 rows -> top 1; 5 cols -> left 2
    np.testing.assert_array_equal(c.aif, s.aif[1:6, 2:9])
    np.testing.assert_array_equal(c.depth, s.depth[1:6, 2:9])
    np.testing.assert_array_equal(c.defocused, s.defocused[1:6, 2:9])
    assert c.meta["crop"] == [1, 6, 2, 9]
    k = crop_sample(s, 2, 3, 4, 5)
    np.testing.assert_array_equal(k.depth, s.depth[2:6, 3:8])
    with pytest.raises(ConfigError, match="does not fit"):
        crop_sample(s, 6, 0, 4, 4)
    with pytest.raises(ConfigError, match="larger"):
        center_crop(s, (9, 4))


def test_check_depth_units():
    metres = np.full((10, 10), 2.5, np.float32)
    check_depth_units(metres, "ok")
    check_depth_units(np.full((4, 4), np.nan, np.float32), "all invalid")
    mm = metres * 1000
    mm[0] = np.nan
    with pytest.raises(SourceError, match=r"frame 7.*2500.*millimetres"):
        check_depth_units(mm, "frame 7")
    far = np.full((4, 4), 150.0, np.float32)        # plausible outdoor metres
    check_depth_units(far, "far")
    with pytest.raises(SourceError):
        check_depth_units(far, "far", max_median_m=100)
