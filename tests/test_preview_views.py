"""`defocuskit preview` of a dual-pixel dataset: the left and right views beside the image."""

import numpy as np

from defocuskit.dataset.preview import preview_figure
from defocuskit.dataset.summary import stat_indices
from defocuskit.pipeline.config import SynthConfig
from defocuskit.pipeline.synth import run_synth
from defocuskit.store import open_dataset


def test_preview_draws_the_dual_pixel_pair(tmp_path):
    out = tmp_path / "dp.zarr"
    run_synth(SynthConfig(source="samples", input="-", output=str(out), limit=2,
                          splits=["train"], mode="gather", dual_pixel=True))
    sp = open_dataset(out)["train"]
    fig = preview_figure(out, n=2)
    labels = [ax.get_label() for ax in fig.axes]
    assert labels.count("left:0") == 2 and labels.count("right:0") == 2  # one pair per row
    rows = [ax for ax in fig.axes if ax.get_label() in ("left:0", "right:0")]
    usable = np.asarray(sp.usable_indices())
    shown = [int(i) for i in usable[stat_indices(usable.size, 2)]]  # the rows, as preview
    for n, ax in enumerate(rows):
        side = ax.get_label().split(":")[0]
        assert ax.get_title() == f"dual-pixel {side} view"
        stored = sp.read(shown[n // 2],
                         names=(f"defocused_{side}",))[f"defocused_{side}"]
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), stored)
    # the two views differ (the disparity), and neither is the full image
    left, right = (np.asarray(ax.images[0].get_array()) for ax in rows[:2])
    assert np.abs(left.astype(int) - right).max() > 0


def test_preview_without_views_has_no_pair(tmp_path):
    out = tmp_path / "plain.zarr"
    run_synth(SynthConfig(source="samples", input="-", output=str(out), limit=1,
                          splits=["train"], mode="gather"))
    labels = [ax.get_label() for ax in preview_figure(out, n=1).axes]
    assert "left:0" not in labels and "right:0" not in labels and "defocused:0" in labels
