"""The render options through the recipe and synth: polygon / bank PSFs, dual-pixel views,
JPEG; provenance, summary and preview."""

from pathlib import Path

import numpy as np
import pytest

from defocuskit import RenderSettings, draw_camera, render, render_sample
from defocuskit.camera.focus import sample_rng
from defocuskit.dataset.summary import format_summary, summarize
from defocuskit.pipeline.config import SynthConfig
from defocuskit.pipeline.shard import sample_arrays
from defocuskit.pipeline.synth import run_synth
from defocuskit.sources import Sample
from defocuskit.store import open_dataset

BANK = Path(__file__).parents[1] / "samples" / "psf_bank_example.npz"


def _frame():
    rng = np.random.default_rng(5)
    rows, cols = np.mgrid[0:64, 0:80]
    depth = (0.8 + 3.0 * cols / 80 + 0.3 * np.sin(rows / 5)).astype(np.float32)
    depth[10:14, 30:36] = np.nan
    return rng.integers(0, 256, (64, 80, 3), dtype=np.uint8), depth


@pytest.mark.parametrize(("mode", "psf", "dual"), [
    ("gather", "polygon:5,10", False), ("scatter", f"bank:{BANK}", False),
    ("gather", "gaussian", True), ("scatter", "polygon:6", True)])
def test_window_equals_the_crop_of_synth_render(mode, psf, dual):
    aif, depth = _frame()
    settings = RenderSettings("2hded", focus="fixed:1.5", mode=mode, psf=psf, dual_pixel=dual)
    stored = sample_arrays(Sample("s", aif, depth), settings, 7, "train", 3, threads=1)
    camera = draw_camera(depth, settings, sample_rng(7, "train", 3))
    names = ("defocused", "defocused_left", "defocused_right") if dual else ("defocused",)
    assert set(names) <= set(stored)
    for top, left in ((0, 0), (20, 30), (40, 56)):
        r = render_sample(aif, depth, camera, settings, window=(top, left, 24, 24), threads=1)
        cut = (slice(top, top + 24), slice(left, left + 24))
        for k in names:
            np.testing.assert_array_equal(r[k], stored[k][cut])
        assert r["margin"] < 64


def test_stored_views_are_at_the_full_exposure():
    aif, depth = _frame()
    settings = RenderSettings("2hded", focus="fixed:1.5", mode="gather", dual_pixel=True)
    r = sample_arrays(Sample("s", aif, depth), settings, 0, "train", 0, threads=1)
    mean = (r["defocused_left"].astype(np.int16) + r["defocused_right"]) / 2.0
    assert np.abs(mean - r["defocused"]).max() <= 1.0


def test_jpeg_round_trip():
    import cv2

    aif, depth = _frame()
    sig = np.full(depth.shape, 1.0, np.float32)
    plain = render(aif, sig, mode="gather")
    q90 = render(aif, sig, mode="gather", jpeg=90)
    np.testing.assert_array_equal(q90, render(aif, sig, mode="gather", jpeg=90))  # repeatable
    ok, buf = cv2.imencode(".jpg", plain[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    np.testing.assert_array_equal(q90, cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    err = [np.abs(render(aif, sig, mode="gather", jpeg=q).astype(int) - plain).mean()
           for q in (20, 60, 95)]
    assert err[0] > err[1] > err[2] > 0
    with pytest.raises(ValueError, match="1..100"):
        render(aif, sig, mode="gather", jpeg=0)


def test_synth_records_and_shows_the_options(tmp_path):
    out = tmp_path / "opts.zarr"
    cfg = SynthConfig(source="samples", input="-", output=str(out), limit=1,
                      splits=["train"], mode="gather", psf="polygon:6,15", dual_pixel=True,
                      jpeg=85, diffraction=550.0)
    run_synth(cfg)
    ds = open_dataset(out)
    assert ds.attrs["psf_detail"] == {"name": "polygon:6,15", "kind": "polygon", "blades": 6,
                                      "rotation_deg": 15.0}
    assert ds.attrs["dual_pixel"] is True and ds.attrs["jpeg"]["quality"] == 85
    row = ds["train"].read(0, names=("defocused", "defocused_left", "defocused_right"))
    assert row["defocused_left"].shape == row["defocused"].shape
    text = format_summary(summarize(out))
    assert "6-blade polygon rotated 15 deg" in text and "quality 85" in text
    assert "dual-pixel" in text and "diffraction at 550 nm" in text
    from defocuskit.dataset.preview import _caption, preview_dataset

    caption = _caption(ds.attrs, ds["train"])
    assert "6-blade polygon, 15 deg" in caption and "dual-pixel" in caption
    assert "quality 85" in caption and "diffraction 550 nm" in caption
    preview_dataset(str(out), output=str(tmp_path / "p.png"), n=1)
    assert (tmp_path / "p.png").stat().st_size > 0
    # on-the-fly rendering takes the same options from the dataset (the trainer: torch)
    pytest.importorskip("torch")
    from trainer.onthefly import resolve_render_settings

    otf = resolve_render_settings(dict(ds.attrs))
    assert (otf.psf, otf.dual_pixel, otf.jpeg, otf.diffraction) == ("polygon:6,15", True, 85,
                                                                    550.0)


def test_content_key_leaves_out_the_options_when_off(tmp_path):
    plain = SynthConfig(source="samples", input="-", output=str(tmp_path / "a.zarr"))
    assert "dual_pixel" not in plain.content_key() and "jpeg" not in plain.content_key()
    on = SynthConfig(source="samples", input="-", output=str(tmp_path / "a.zarr"),
                     mode="gather", dual_pixel=True, jpeg=90)
    assert on.content_key()["dual_pixel"] is True and on.content_key()["jpeg"] == 90
