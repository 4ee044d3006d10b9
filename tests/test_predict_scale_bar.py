"""The colour bar beside `trainer predict`'s colour-mapped depth and sigma PNGs; the raw
outputs (16-bit depth PNG, sigma .npy) stay as they were."""

from __future__ import annotations

import json

import cv2
import matplotlib
import numpy as np
import pytest
import torch
from _helpers import TINY, tiny_split
from click.testing import CliRunner

from cli.trainer_cmd import trainer
from defocuskit.store import write_arrays
from trainer.checkpoint import build_model, load_checkpoint
from trainer.plots import (
    SCALE_BAR_MIN_HEIGHT_PX,
    SCALE_BAR_WIDTH_PX,
    colormap_with_scale_bar,
    depth_colormap,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def turbo(fraction) -> np.ndarray:
    """matplotlib's turbo at ``fraction`` in [0, 1], as 8-bit RGB."""
    return np.rint(np.asarray(matplotlib.colormaps["turbo"](fraction))[..., :3] * 255)


def bar_column(img: np.ndarray, width: int) -> tuple[np.ndarray, int, int]:
    """The middle column of the colour bar and its first and last coloured rows."""
    strip = img[:, width:].astype(int)
    coloured = (strip.max(axis=2) - strip.min(axis=2)) > 40  # not white, grey or black
    col = int(np.argmax(coloured.sum(axis=0)))  # the column crossing the whole bar
    rows = np.flatnonzero(coloured[:, col])
    return strip[:, col], int(rows[0]), int(rows[-1])


@pytest.mark.parametrize("shape", [(50, 70), (200, 90), (1, 3)])
def test_the_map_is_kept_pixel_for_pixel_beside_its_bar(shape):
    values = np.random.default_rng(1).uniform(0.7, 6.0, shape)
    img = colormap_with_scale_bar(values, label="depth [m]")
    h, w = shape
    assert img.shape == (max(h, SCALE_BAR_MIN_HEIGHT_PX), w + SCALE_BAR_WIDTH_PX, 3)
    assert img.dtype == np.uint8
    np.testing.assert_array_equal(img[:h, :w], depth_colormap(values))
    if h < SCALE_BAR_MIN_HEIGHT_PX:
        assert (img[h:, :w] == 255).all()  # white below a short map


def test_the_bar_runs_from_the_minimum_at_the_bottom_to_the_maximum_at_the_top():
    values = np.linspace(2.0, 8.0, 120 * 80).reshape(120, 80)
    img = colormap_with_scale_bar(values, label="depth [m]")
    col, top, bottom = bar_column(img, 80)
    assert bottom - top > 100  # the bar spans most of the 160 px
    # inside the bar, row r shows the colour of fraction (bottom - r) / (bottom - top)
    for frac in (0.1, 0.3, 0.5, 0.7, 0.9):
        r = int(round(bottom - frac * (bottom - top)))
        assert np.abs(col[r] - turbo(frac)).max() <= 40, frac  # a row's share of the ramp
    assert np.abs(col[bottom - 1] - turbo(0.0)).max() <= 40
    assert np.abs(col[top + 1] - turbo(1.0)).max() <= 40


def test_sigma_scale_starts_at_zero_and_a_constant_map_is_drawn():
    sigma = np.full((40, 40), 3.0)
    img = colormap_with_scale_bar(sigma, label="sigma [px]", vmin=0.0)
    # 3 px is the top of a 0..3 scale: the map is turbo(1)
    np.testing.assert_array_equal(img[:40, :40], np.broadcast_to(
        turbo(1.0).astype(np.uint8), (40, 40, 3)))
    flat = colormap_with_scale_bar(np.full((40, 40), 2.5), label="depth [m]")
    assert flat.shape == (160, 140, 3)  # vmin == vmax: still one bar, no error
    with pytest.raises(ValueError, match=r"expected an \(H, W\) map, got shape \(2, 3, 4\)"):
        colormap_with_scale_bar(np.zeros((2, 3, 4)), label="x")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny depth + aif + defocus model, one step on a tiny dataset."""
    root = tmp_path_factory.mktemp("scale_bar")
    rng = np.random.default_rng(0)
    split = tiny_split(rng, 4)
    split["sigma"] = np.abs(split["depth"] - 2.0).astype(np.float32)
    write_arrays(root / "d.zarr", {"train": split})
    cfg = root / "c.toml"
    cfg.write_text("[model]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in TINY.items()))
    res = CliRunner().invoke(trainer, [
        "fit", "--data", str(root / "d.zarr"), "--run-dir", str(root / "run"), "--config",
        str(cfg), "--epochs", "1", "--batch-size", "2", "--crop", "32", "--val-split", "none",
        "--heads", "depth,aif,defocus", "--workers", "0", "--device", "cpu", "--no-progress"])
    assert res.exit_code == 0, res.output
    return root / "run" / "last.pt"


def test_predict_writes_bars_and_keeps_the_raw_outputs(checkpoint, tmp_path):
    rgb = np.random.default_rng(2).integers(0, 256, (45, 60, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "p.png"), rgb[..., ::-1])
    res = CliRunner().invoke(trainer, ["predict", "--checkpoint", str(checkpoint), "--output",
                                       str(tmp_path / "out"), "--device", "cpu",
                                       str(tmp_path / "p.png")])
    assert res.exit_code == 0, res.output
    model = build_model(load_checkpoint(checkpoint)).eval()
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        pred = model(torch.nn.functional.pad(x, (0, 4, 0, 19), mode="reflect"))
    depth = pred["depth"][0, 0, :45, :60].numpy()
    sigma = pred["defocus"][0, 0, :45, :60].numpy()
    out = tmp_path / "out"
    raw = cv2.imread(str(out / "p_depth.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == (45, 60)  # unchanged: millimetres
    expected = np.where(depth > 0, np.clip(np.rint(depth * 1000), 1, 65535), 0)
    assert np.abs(raw.astype(np.int64) - expected).max() <= 1
    npy = np.load(out / "p_sigma.npy")
    assert npy.dtype == np.float32 and npy.shape == (45, 60)
    np.testing.assert_allclose(npy, sigma, atol=1e-5)
    for name, values, vmin in (("p_depth_color.png", depth, None),
                               ("p_sigma_color.png", sigma, 0.0)):
        img = cv2.imread(str(out / name))[..., ::-1]
        assert img.shape == (160, 60 + SCALE_BAR_WIDTH_PX, 3), name
        ref = depth_colormap(values, vmin=vmin)
        # float32 CPU results of two runs of the same model: one colour level at most
        assert np.abs(img[:45, :60].astype(int) - ref).max() <= 1, name
        col, top, bottom = bar_column(img, 60)
        assert bottom - top > 100, name
