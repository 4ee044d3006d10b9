"""The PSF and the depth colours are visible after writing: ``inspect`` (text and --json)
and the preview name the PSF, the sigma panel of a disc says its radius is 2 sigma, and
depth uses the trainer's colour map with an invalid colour that map never takes."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest
from click.testing import CliRunner

from cli.defocuskit_cmd import main
from defocuskit.preview import DEPTH_CMAP, INVALID_RGB, preview_figure
from trainer.plots import depth_colormap

TINY = ["--source", "procedural", "--option", "n_train=2", "--option", "n_test=1",
        "--option", "height=32", "--option", "width=48", "--render-mode", "gather", "--no-progress"]


@pytest.fixture(scope="module", params=["gaussian", "disc"])
def dataset(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("psf") / f"{request.param}.zarr"
    r = CliRunner().invoke(main, ["synth", *TINY, "--output", str(out), "--psf", request.param])
    assert r.exit_code == 0, r.output
    return out, request.param


def _panel(fig, label: str):
    return next(ax for ax in fig.axes if ax.get_label() == label)


def test_inspect_names_the_psf_in_text_and_json(dataset):
    path, psf = dataset
    text = CliRunner().invoke(main, ["inspect", str(path)]).output
    line = next(ln for ln in text.splitlines() if ln.startswith("psf "))
    assert psf in line
    assert ("radius = 2 sigma" in line) == (psf == "disc")
    data = json.loads(CliRunner().invoke(main, ["inspect", str(path), "--json"]).output)
    assert data["psf"] == psf


def test_preview_caption_names_the_psf_and_the_sigma_panel_the_disc_radius(dataset):
    path, psf = dataset
    fig = preview_figure(path, split="train", n=1)
    caption = _panel(fig, "caption").texts[0].get_text()
    assert f"psf       {psf}" in caption
    title = _panel(fig, "sigma:0").get_title()
    assert ("disc radius 2 sigma" in title) == (psf == "disc")


def test_preview_depth_uses_turbo_with_a_grey_invalid_colour(dataset):
    fig = preview_figure(dataset[0], split="train", n=1)
    ax = _panel(fig, "depth")
    cmap = ax.images[0].get_cmap()
    assert DEPTH_CMAP == "turbo" and cmap.name.startswith("turbo")
    assert "grey = invalid" in ax.get_title()
    np.testing.assert_allclose(cmap.get_bad()[:3], INVALID_RGB)


def test_the_invalid_colour_is_far_from_every_colour_of_the_depth_map():
    ramp = matplotlib.colormaps[DEPTH_CMAP](np.linspace(0, 1, 1024))[:, :3]
    distance = np.linalg.norm(ramp - np.asarray(INVALID_RGB), axis=1)
    assert distance.min() > 0.25  # near or far depth never looks invalid
    shown = depth_colormap(np.array([[1.0, np.nan, 3.0]]))
    np.testing.assert_array_equal(shown[0, 1], np.round(np.asarray(INVALID_RGB) * 255))


def test_a_dataset_that_records_no_psf_says_so_in_words():
    from pathlib import Path

    golden = Path(__file__).parent / "data" / "golden_v2.zarr"  # written before psf existed
    fig = preview_figure(golden, split="train", n=1)
    assert "psf       not recorded" in _panel(fig, "caption").texts[0].get_text()
    text = CliRunner().invoke(main, ["inspect", str(golden)]).output
    assert "psf       not recorded" in text
