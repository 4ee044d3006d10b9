"""trainer.resize: depth resizing never mixes invalid pixels in; images resample sanely."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.resize import MIN_VALID_WEIGHT, resize_depth, resize_image

NYU = (427, 561)


pytestmark = pytest.mark.usefixtures("one_thread")


def with_holes(shape, rng):
    """A valid-depth mask with a large invalid band, a block and scattered pixels."""
    valid = np.ones(shape, bool)
    valid[:, int(shape[1] * 0.6):] = False
    valid[40:90, 20:120] = False
    valid[rng.random(shape) < 0.05] = False
    return valid


@pytest.mark.parametrize("size", [(256, 256), (128, 96), (600, 700)])
def test_constant_valid_depth_stays_exact(size):
    depth = np.full(NYU, 3.7, np.float32)
    depth[~with_holes(NYU, np.random.default_rng(0))] = np.nan
    out = resize_depth(depth, size)
    assert out.shape == size and out.dtype == np.float32
    finite = out[np.isfinite(out)]
    assert finite.size > 0.3 * out.size
    assert np.all(finite == np.float32(3.7))


@pytest.mark.parametrize("size", [(256, 256), (600, 700)])
def test_no_invalid_value_leaks_in(size):
    # valid depth in [4, 6]; whatever an invalid pixel "holds" (NaN here, 0 or 100 in a
    # naive fill) must not reach the output, so every output stays inside [4, 6] ...
    rng = np.random.default_rng(1)
    valid = with_holes(NYU, rng)
    depth = rng.uniform(4.0, 6.0, NYU).astype(np.float32)
    depth[~valid] = np.nan
    out = resize_depth(depth, size)
    finite = out[np.isfinite(out)]
    assert finite.min() >= 4.0 and finite.max() <= 6.0
    # ... and equals the mean over the valid pixels alone, whatever the invalid fill is
    for fill in (0.0, 100.0):
        filled = np.where(valid, depth, fill).astype(np.float64)
        planes = torch.from_numpy(np.stack([filled * valid, valid.astype(np.float64)]))
        num, den = torch.nn.functional.interpolate(
            planes[None], size=size, mode="bilinear", antialias=True, align_corners=False
        )[0].numpy()
        ref = np.where(den >= MIN_VALID_WEIGHT, num / np.maximum(den, 1e-300), np.nan)
        np.testing.assert_allclose(out, ref.astype(np.float32), rtol=1e-6, equal_nan=True)


def test_fully_invalid_regions_stay_invalid():
    depth = np.full(NYU, 2.0, np.float32)
    depth[:, 280:] = np.nan  # the right half
    out = resize_depth(depth, (256, 256))
    assert np.isnan(out[:, 135:]).all()  # well inside the invalid half
    assert np.isfinite(out[:, :120]).all()
    assert np.all(out[np.isfinite(out)] == 2.0)


def test_same_size_is_returned_unchanged():
    depth = np.random.default_rng(2).uniform(1, 2, (64, 96)).astype(np.float32)
    assert np.array_equal(resize_depth(depth, (64, 96)), depth)
    image = np.random.default_rng(2).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    assert np.array_equal(resize_image(image, (64, 96)), image)


def test_image_resize_keeps_flat_regions_and_dtype():
    image = np.zeros(NYU + (3,), np.uint8)
    image[:, :, 0] = 200
    image[:, 300:, 1] = 255
    out = resize_image(image, (256, 256))
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    assert np.all(out[..., 0] == 200)
    assert np.all(out[:, :130, 1] == 0) and np.all(out[:, 145:, 1] == 255)
    edge = out[0, 130:145, 1]
    assert np.all(np.diff(edge.astype(int)) >= 0)  # a monotone ramp across the edge


def test_bad_size_raises():
    with pytest.raises(ValueError, match="positive"):
        resize_depth(np.ones((8, 8), np.float32), (0, 4))
