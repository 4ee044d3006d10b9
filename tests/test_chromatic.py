"""Longitudinal chromatic aberration (--chromatic R,G,B): a sigma per colour channel."""

import math

import numpy as np
import pytest
from click.testing import CliRunner

from defocuskit import RenderSettings, draw_camera, render, render_sample
from defocuskit.camera.chromatic import (
    channel_focus_distances,
    chromatic_sigma_px,
    parse_chromatic,
)
from defocuskit.camera.focus import sample_rng
from defocuskit.camera.optics import Camera
from defocuskit.dataset.summary import format_summary, summarize
from defocuskit.errors import ConfigError
from defocuskit.pipeline.config import SynthConfig
from defocuskit.pipeline.shard import sample_arrays
from defocuskit.pipeline.synth import run_synth
from defocuskit.sources import Sample
from defocuskit.store import open_dataset
from tests.naive import naive_gather

OFFSETS = (0.12, 0.0, -0.08)  # mm


def _thin_lens_sigma(f, N, S, pitch, k, x, offset_mm):
    """The CoC of a lens of focal length f + offset whose sensor stays where f focuses S,
    from the image distances: ``D |v - v_x| / v_x`` (Gaussian lens law for both)."""
    D = f / N
    v = 1.0 / (1.0 / f - 1.0 / S)
    fc = f + offset_mm * 1e-3
    v_x = 1.0 / (1.0 / fc - 1.0 / x)
    return k * D * abs(v - v_x) / v_x / pitch


@pytest.mark.parametrize("offsets", [OFFSETS, (0.5, 0.0, -0.5), (0.0, 0.0, 0.0)])
def test_per_channel_sigma_follows_the_thin_lens(offsets):
    cam = Camera(focal_length=0.05, f_number=2.0, focus_distance=1.5, pixel_pitch=6e-6)
    depth = np.array([[0.6, 1.0, 1.5], [2.0, 4.0, 9.0]])
    got = chromatic_sigma_px(cam, depth, offsets)
    assert got.shape == (2, 3, 3)
    for c, off in enumerate(offsets):
        want = [_thin_lens_sigma(0.05, 2.0, 1.5, 6e-6, 0.25, x, off) for x in depth.ravel()]
        np.testing.assert_allclose(got[..., c].ravel(), want, rtol=1e-9, atol=1e-9)
    if offsets == (0.0, 0.0, 0.0):
        np.testing.assert_allclose(got[..., 1], cam.sigma_px(depth), rtol=1e-12)
    # each channel is sharp at its own focus distance (Gaussian lens law)
    for c, s_c in enumerate(channel_focus_distances(cam, offsets)):
        if math.isfinite(s_c):
            assert chromatic_sigma_px(cam, np.array([s_c]), offsets)[0, c] < 1e-9


def test_channel_beyond_infinity_and_invalid_depth():
    cam = Camera(focal_length=0.05, f_number=2.0, focus_distance=20.0, pixel_pitch=6e-6)
    fds = channel_focus_distances(cam, (0.3, 0.0, -0.3))
    assert math.isinf(fds[0]) and fds[1] == pytest.approx(20.0) and fds[2] < 20.0
    sig = chromatic_sigma_px(cam, np.array([np.nan, -1.0, 5.0]), (0.3, 0.0, -0.3))
    assert np.isnan(sig[:2]).all() and np.isfinite(sig[2]).all()
    want = _thin_lens_sigma(0.05, 2.0, 20.0, 6e-6, 0.25, 5.0, 0.3)
    assert sig[2, 0] == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("bad", ["1,2", "a,b,c", "0,0,9", "0,nan,0"])
def test_bad_offsets_refused(bad):
    with pytest.raises(ConfigError, match="three focal-length offsets"):
        parse_chromatic(bad)


def _scene():
    rng = np.random.default_rng(2)
    depth = np.tile(np.linspace(0.7, 4.0, 36), (28, 1))
    return rng.random((28, 36, 3)).astype(np.float32), depth


@pytest.mark.parametrize(("mode", "psf"), [("gather", "gaussian"), ("scatter", "disc"),
                                           ("layered", "gaussian"), ("layered", "disc"),
                                           ("gather", "polygon:6")])
def test_each_channel_is_the_render_with_its_sigma(mode, psf):
    img, depth = _scene()
    cam = Camera(focal_length=0.05, f_number=1.4, focus_distance=1.5, pixel_pitch=2e-5)
    sig = chromatic_sigma_px(cam, depth, (0.4, 0.0, -0.4)).astype(np.float32)
    fds = channel_focus_distances(cam, (0.4, 0.0, -0.4))
    out = render(img, sig, mode=mode, psf=psf, depth=depth, focus_distance=fds)
    assert not np.allclose(sig[..., 0], sig[..., 2])
    for c in range(3):
        one = render(img, sig[..., c], mode=mode, psf=psf, depth=depth, focus_distance=fds[c])
        np.testing.assert_array_equal(out[..., c], one[..., c])


def test_chromatic_gather_against_the_plain_reference():
    img, depth = _scene()
    img, depth = img[:12, :14], depth[:12, :14]
    sig = np.stack([np.full(depth.shape, s, np.float32) for s in (0.6, 1.1, 1.7)], axis=-1)
    sig[3:6, 4:9, 0] = 2.2
    out = render(img, sig, mode="gather")
    for c in range(3):
        np.testing.assert_allclose(out[..., c], naive_gather(img, sig[..., c])[..., c],
                                   atol=2e-5)


def test_render_refuses_a_bad_channel_axis():
    img, depth = _scene()
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, 3\)"):
        render(img, np.ones((28, 36, 2), np.float32), mode="gather")
    with pytest.raises(ValueError, match="per channel"):
        render(img, np.ones((28, 36, 3), np.float32), mode="layered", depth=depth,
               focus_distance=(1.0, 2.0))


@pytest.mark.parametrize("mode", ["gather", "layered"])
def test_recipe_sigma_and_windows(mode):
    rng = np.random.default_rng(1)
    aif = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    depth = np.tile(np.linspace(0.8, 5.0, 64), (48, 1)).astype(np.float32)
    depth[5:8, 5:9] = np.nan
    settings = RenderSettings("2hded", focus="fixed:1.5", mode=mode, chromatic="0.2,0,-0.2")
    stored = sample_arrays(Sample("s", aif, depth), settings, 4, "train", 0, threads=1)
    camera = draw_camera(depth, settings, sample_rng(4, "train", 0))
    want = chromatic_sigma_px(camera, depth, (0.2, 0.0, -0.2)).astype(np.float32)
    assert stored["sigma"].shape == (48, 64, 3)
    np.testing.assert_array_equal(stored["sigma"], want)  # NaN where the depth is invalid
    for top, left in ((0, 0), (20, 36)):
        r = render_sample(aif, depth, camera, settings, window=(top, left, 24, 24), threads=1)
        cut = (slice(top, top + 24), slice(left, left + 24))
        np.testing.assert_array_equal(r["defocused"], stored["defocused"][cut])
        np.testing.assert_array_equal(r["sigma"], stored["sigma"][cut])


def test_synth_stores_records_and_shows_it(tmp_path):
    out = tmp_path / "chroma.zarr"
    run_synth(SynthConfig(source="samples", input="-", output=str(out), limit=2,
                          splits=["train"], mode="gather", chromatic=list(OFFSETS)))
    ds = open_dataset(out)
    sp = ds["train"]
    assert sp.sigma_channels == 3 and sp.array("sigma").shape[-1] == 3
    assert ds.attrs["chromatic"]["offsets_mm"] == list(OFFSETS)
    assert "chromatic" in SynthConfig(source="samples", input="-", output="x.zarr",
                                      chromatic=list(OFFSETS)).content_key()
    text = format_summary(summarize(out))
    assert "chromatic focal-length offsets R/G/B +0.12/+0/-0.08 mm" in text
    assert "sigma R" in text and "sigma B" in text
    from defocuskit.dataset.preview import preview_figure
    from defocuskit.dataset.verify import verify_dataset

    assert verify_dataset(out) == []
    fig = preview_figure(out, n=1)
    axes = {ax.get_label(): ax for ax in fig.axes}
    assert "green channel" in axes["sigma:0"].get_title()
    np.testing.assert_array_equal(axes["sigma:0"].images[0].get_array().filled(np.nan),
                                  sp.read(0, names=("sigma",))["sigma"][..., 1])
    assert "chromatic R/G/B +0.12/+0/-0.08 mm" in axes["caption"].texts[0].get_text()
    pytest.importorskip("torch")  # the trainer's reader
    from trainer.data import DefocusDataset
    from trainer.onthefly import resolve_render_settings

    item = DefocusDataset(out, "train", heads=("defocus",))[0]
    np.testing.assert_array_equal(item["sigma"].numpy()[0], sp.read_array("sigma", 0)[..., 1])
    assert resolve_render_settings(dict(ds.attrs)).chromatic == OFFSETS


def test_cli_usage_error():
    from cli.defocuskit_cmd import synth

    res = CliRunner().invoke(synth, ["--source", "samples", "--output", "x.zarr",
                                     "--chromatic", "0.1,0"])
    assert res.exit_code == 2 and "three focal-length offsets" in res.output


def test_dual_pixel_views_per_channel():
    img, depth = _scene()
    fds = (1.5, 2.0, 2.5)
    sig = np.stack([3 * np.abs(depth - f) / depth for f in fds], axis=-1).astype(np.float32)
    out = render(img, sig, mode="gather", depth=depth, focus_distance=fds, dual_pixel=True)
    np.testing.assert_allclose(out.left + out.right, out.defocused, atol=1e-5)
    for c, f in enumerate(fds):
        one = render(img, sig[..., c], mode="gather", depth=depth, focus_distance=f,
                     dual_pixel=True)
        np.testing.assert_array_equal(out.left[..., c], one.left[..., c])
        np.testing.assert_array_equal(out.right[..., c], one.right[..., c])
