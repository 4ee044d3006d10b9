"""`defocuskit preview` of a focal stack: every image of the stack (or one, --stack-index)
with its focus distance, and the note on sensor noise and linear light."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from click.testing import CliRunner

from cli.defocuskit_cmd import main
from defocuskit.errors import ConfigError
from defocuskit.preview import preview_figure
from defocuskit.store import open_dataset

TINY_SCENES = ["--source", "procedural", "--option", "n_train=2", "--option", "n_test=1",
               "--option", "height=32", "--option", "width=48", "--render-mode", "gather",
               "--no-progress"]


def _synth(out, *args):
    r = CliRunner().invoke(main, ["synth", *TINY_SCENES, "--output", str(out), *args])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def noisy_stack(tmp_path_factory):
    out = tmp_path_factory.mktemp("preview_stack") / "noisy.zarr"
    return _synth(out, "--focus", "stack:3", "--noise", "gain=0.01", "--linear-light")


@pytest.fixture(scope="module")
def plain_stack(tmp_path_factory):
    return _synth(tmp_path_factory.mktemp("preview_stack") / "plain.zarr", "--focus", "stack:3")


def _rows(fig) -> dict[int, list]:
    """The labelled panels of each grid row, left to right."""
    rows = defaultdict(list)
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if spec is not None and ax.get_label():  # colour bars have no subplot spec
            rows[spec.rowspan.start].append((spec.colspan.start, ax))
    return {r: [ax for _, ax in sorted(cells, key=lambda c: c[0])] for r, cells in rows.items()}


def _labels(axes) -> list[str]:
    return [ax.get_label() for ax in axes if ax.axison]


def test_every_image_of_the_stack_has_its_own_column(noisy_stack):
    sp = open_dataset(noisy_stack)["train"]
    focus = np.asarray(sp.array("focus_distance")[:], dtype=np.float64)  # (2, 3)
    defocused = np.asarray(sp.array("defocused")[:])  # (2, 3, 32, 48, 3)
    sigma = np.asarray(sp.array("sigma")[:])
    assert focus.shape == (2, 3) and len(np.unique(np.round(focus[0], 2))) == 3
    rows = _rows(preview_figure(noisy_stack, split="train", n=2))
    assert sorted(rows) == [0, 1, 2, 3, 4]  # 2 rows per sample, then the summary row
    for s in range(2):
        top, bottom = rows[2 * s], rows[2 * s + 1]
        assert _labels(top) == ["aif", "defocused:0", "defocused:1", "defocused:2"]
        assert _labels(bottom) == ["depth", "sigma:0", "sigma:1", "sigma:2"]
        for k in range(3):
            panel = top[1 + k]
            np.testing.assert_array_equal(panel.images[0].get_array(), defocused[s, k])
            assert f"focus {focus[s, k]:.2f} m" in panel.get_title()
            assert f"stack[{k}] of 3" in panel.get_title()
            np.testing.assert_array_equal(bottom[1 + k].images[0].get_array(), sigma[s, k])
            assert f"focus {focus[s, k]:.2f} m" in bottom[1 + k].get_title()
        # one colour scale for the sigma maps of a stack, from 0 to the stack's maximum
        for k in range(3):
            lo, hi = bottom[1 + k].images[0].get_clim()
            assert (lo, hi) == (0.0, pytest.approx(float(np.nanmax(sigma[s]))))
    assert _labels(rows[4]) == ["hist", "coc"]  # the caption panel has no axes drawn
    assert rows[4][2].get_label() == "caption" and "3 images per sample" in \
        rows[4][2].texts[0].get_text()


def test_stack_index_shows_that_image_only(noisy_stack):
    sp = open_dataset(noisy_stack)["train"]
    focus = np.asarray(sp.array("focus_distance")[:], dtype=np.float64)
    defocused = np.asarray(sp.array("defocused")[:])
    rows = _rows(preview_figure(noisy_stack, split="train", n=2, stack_index=1))
    assert sorted(rows) == [0, 1, 2]  # one row per sample, then the summary row
    for s in range(2):
        assert _labels(rows[s]) == ["aif", "defocused:1", "depth", "sigma:1"]
        np.testing.assert_array_equal(rows[s][1].images[0].get_array(), defocused[s, 1])
        assert f"focus {focus[s, 1]:.2f} m (stack[1] of 3)" in rows[s][1].get_title()
    # the CoC panel draws the camera of image 1: its focus distances are marked
    marks = sorted(line.get_xdata()[0] for line in rows[2][1].lines
                   if line.get_linestyle() == ":")
    assert marks == pytest.approx(sorted(focus[:, 1]), rel=1e-6)


def test_noise_and_linear_light_are_noted(noisy_stack, plain_stack):
    noisy = preview_figure(noisy_stack, n=1).get_suptitle()
    assert "sensor noise added after the blur (Poisson-Gaussian, gain 0.01, read sigma " \
           "0.002)" in noisy
    assert "blurred in linear light" in noisy
    plain = preview_figure(plain_stack, n=1).get_suptitle()
    assert "no sensor noise" in plain and "not in linear light" in plain
    assert "added" not in plain


def test_bad_stack_index_is_one_clear_error(noisy_stack, tmp_path):
    with pytest.raises(ConfigError, match=r"--stack-index 3: the focal stacks of split "
                                          r"'train' hold 3 images \(0\.\.2\)"):
        preview_figure(noisy_stack, split="train", stack_index=3)
    single = _synth(tmp_path / "single.zarr", "--focus", "uniform", "--split", "test")
    with pytest.raises(ConfigError, match=r"--stack-index 0: split 'test' of .* is not a "
                                          r"focal stack"):
        preview_figure(single, stack_index=0)
    rows = _rows(preview_figure(single, n=1))
    assert _labels(rows[0]) == ["aif", "defocused:0", "depth", "sigma:0"]  # unchanged layout


def test_cli_preview_of_a_stack(noisy_stack, tmp_path):
    runner = CliRunner()
    for extra in ([], ["--stack-index", "2"]):
        png = tmp_path / f"p{len(extra)}.png"
        r = runner.invoke(main, ["preview", str(noisy_stack), "-n", "1", "--output", str(png),
                                 *extra])
        assert r.exit_code == 0 and png.is_file(), r.output
    r = runner.invoke(main, ["preview", str(noisy_stack), "--stack-index", "7", "--output",
                             str(tmp_path / "x.png")])
    assert r.exit_code == 1 and "hold 3 images (0..2)" in r.output
    assert r.output.count("\n") == 1 and not (tmp_path / "x.png").exists()
    r = runner.invoke(main, ["preview", str(noisy_stack), "--stack-index", "-1", "--output",
                             str(tmp_path / "y.png")])
    assert r.exit_code == 2


def test_coc_curves_of_several_samples_are_named(tmp_path):
    """One CoC curve per shown sample: the legend names the sample of each (as the image
    rows are titled), so a reader can tell which curve belongs to which row."""
    out = _synth(tmp_path / "plain.zarr")
    sp = open_dataset(out)["train"]
    fig = preview_figure(out, split="train", n=2)
    coc = next(ax for ax in fig.axes if ax.get_label() == "coc")
    names = [t.get_text() for t in coc.get_legend().get_texts()]
    titles = [ax.get_title() for ax in fig.axes if ax.get_label() == "aif"]
    assert len(names) == 2 == len(sp) and names[0] != names[1]
    assert all(any(t.startswith(f"{n}:") for t in titles) for n in names)
