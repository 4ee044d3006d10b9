"""The run plots follow the run's heads and method: which panels, titles and axis labels
(checked on the matplotlib figure, not only on the PNG)."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from trainer.plots import loss_curves_figure, plot_loss_curves, val_panel_figure


def _history(*metrics: str, epochs: int = 3) -> list[dict]:
    """Rows as fit logs them; PSNR and SSIM vary in the 6th decimal (offset notation)."""
    rows = []
    for e in range(1, epochs + 1):
        row = {"epoch": e, "lr": 0.01, "train_total": 1.0 / e, "train_images_per_s": 5.0}
        values = {"rmse": 0.5 / e, "abs_rel": 0.2 / e, "delta1": 0.5 + 0.1 * e,
                  "psnr": 30.000001 + 1e-6 * e, "ssim": 0.916250 + 1e-6 * e,
                  "defocus_mae": 2.0 / e}
        row.update({f"val_{k}": values[k] for k in metrics})
        rows.append(row)
    return rows


def _titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_supervised_depth_aif_run_has_depth_error_relative_and_aif_panels():
    fig = loss_curves_figure(_history("rmse", "abs_rel", "delta1", "psnr", "ssim"),
                             monitor="val_rmse")
    assert _titles(fig) == ["training loss terms (epoch means)",
                            "validation depth error (chooses best.pt)",
                            "validation depth: relative error and accuracy",
                            "validation all-in-focus"]
    labels = {ax.get_title(): ax.get_ylabel() for ax in fig.axes if ax.get_title()}
    assert labels["validation depth error (chooses best.pt)"] == "RMSE [m]"
    assert labels["validation depth: relative error and accuracy"] == "unitless"
    assert labels["validation all-in-focus"] == "PSNR [dB]"
    rel = next(ax for ax in fig.axes if ax.get_title().startswith("validation depth:"))
    assert [ln.get_label() for ln in rel.lines] == ["abs_rel", "delta1"]  # no metres here
    assert "SSIM (unitless)" in [ax.get_ylabel() for ax in fig.axes]


def test_self_supervised_run_has_no_depth_panel_and_plots_the_defocus_mae():
    fig = loss_curves_figure(_history("defocus_mae", "psnr", "ssim"),
                             monitor="val_defocus_mae")
    titles = _titles(fig)
    assert not any("depth" in t for t in titles)
    assert "validation defocus map (sigma) (chooses best.pt)" in titles
    ax = next(a for a in fig.axes if a.get_title().startswith("validation defocus"))
    assert ax.get_ylabel() == "MAE [px]"
    assert [ln.get_label() for ln in ax.lines] == ["defocus_mae"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [2.0, 1.0, 2 / 3])


def test_a_run_without_validation_plots_only_the_training_terms(tmp_path):
    fig = loss_curves_figure(_history(), monitor="train_total")
    assert _titles(fig) == ["training loss terms (epoch means) (chooses best.pt)"]
    out = plot_loss_curves(_history(), tmp_path / "c.png", monitor="train_total")
    assert out.stat().st_size > 0


def test_psnr_and_ssim_ticks_are_plain_numbers_without_an_offset():
    fig = loss_curves_figure(_history("psnr", "ssim"))
    FigureCanvasAgg(fig).draw()
    for label in ("PSNR [dB]", "SSIM (unitless)"):
        ax = next(a for a in fig.axes if a.get_ylabel() == label)
        assert ax.yaxis.get_offset_text().get_text() == "", label
        ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert ticks and all("e" not in t.lower() for t in ticks), ticks


def _first(*heads: str, truths=("depth", "aif", "defocus")) -> dict:
    """A validation batch of 2: the model's predictions and the labels the batch carries."""
    shapes = {"depth": 1, "aif": 3, "defocus": 1}
    g = torch.Generator().manual_seed(0)
    first = {"input": torch.rand(2, 3, 16, 16, generator=g)}
    for h in heads:
        first[f"pred_{h}"] = 1 + torch.rand(2, shapes[h], 16, 16, generator=g)
    for h in truths:
        first[f"true_{h}"] = 1 + torch.rand(2, shapes[h], 16, 16, generator=g)
    return first


def test_val_panel_of_a_defocus_head_shows_predicted_and_true_sigma_in_pixels():
    fig = val_panel_figure(_first("depth", "aif", "defocus"))
    assert _titles(fig) == ["input", "predicted depth", "true depth", "predicted AiF",
                            "true AiF", "predicted sigma", "true sigma"]
    bars = [ax.get_ylabel() for ax in fig.axes if not ax.get_title() and ax.get_ylabel()]
    assert bars.count("sigma [px]") == 4 and bars.count("depth [m]") == 4  # 2 rows x 2


def test_val_panel_of_a_self_supervised_run_shows_no_depth_it_never_used():
    fig = val_panel_figure(_first("aif", "defocus"))
    assert _titles(fig) == ["input", "predicted AiF", "true AiF", "predicted sigma",
                            "true sigma"]
    assert not any("depth" in ax.get_ylabel() for ax in fig.axes)
