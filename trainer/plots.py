"""Run plots: the loss curves and a validation panel (matplotlib figures written to files;
no pyplot, so no process-wide backend is chosen or changed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defocuskit.dataset.preview import DEPTH_CMAP, INVALID_RGB

__all__ = ["plot_loss_curves", "plot_val_panel", "loss_curves_figure", "val_panel_figure",
           "depth_colormap", "colormap_with_scale_bar",
           "SCALE_BAR_WIDTH_PX", "SCALE_BAR_MIN_HEIGHT_PX"]

SCALE_BAR_WIDTH_PX = 100  # the colour bar panel beside a colour-mapped image
SCALE_BAR_MIN_HEIGHT_PX = 160  # shorter images get white rows below, for legible ticks


def _figure(**kwargs):
    from matplotlib.figure import Figure  # a plain Figure renders to files without pyplot

    return Figure(**kwargs)


def _val_series(history: list[dict], key: str):
    pts = [(row["epoch"], row[key]) for row in history
           if isinstance(row.get(key), int | float) and np.isfinite(row[key])]
    return tuple(zip(*pts, strict=True)) if pts else None


# the validation panels of the loss curves: (history keys, y label, title); a panel is drawn
# when the run logged any of its keys, so the panels follow the run's heads and method
_VAL_PANELS = (
    (("rmse",), "RMSE [m]", "validation depth error"),
    (("abs_rel", "log10", "delta1", "delta2", "delta3"), "unitless",
     "validation depth: relative error and accuracy"),
    (("defocus_mae",), "MAE [px]", "validation defocus map (sigma)"),
)


def _plain_ticks(ax) -> None:
    """Plain tick labels: no offset or scientific notation (e.g. ``1e-6+9.16e-1``)."""
    from matplotlib.ticker import ScalarFormatter  # matplotlib (heavy): only when plotting

    for axis in (ax.xaxis, ax.yaxis):
        fmt = axis.get_major_formatter()
        if isinstance(fmt, ScalarFormatter):
            fmt.set_useOffset(False)
            fmt.set_scientific(False)


def loss_curves_figure(history: list[dict], *, monitor: str | None = None):
    """The loss-curve figure: training loss terms, then one panel per validated quantity.

    Panels: the training loss terms (unitless); depth RMSE in metres; the unitless depth
    metrics (AbsRel, log10, the deltas); PSNR in dB with SSIM on a second axis; the defocus
    map's MAE in pixels. A validation panel appears only when the history has its metrics
    (its heads were trained and validated); the panel of ``monitor`` (the column that
    chooses ``best.pt``) says so in its title.
    """
    train_keys = [k for k in history[0] if k.startswith("train_") and not k.endswith("_per_s")]
    panels = [(keys, unit, title) for keys, unit, title in _VAL_PANELS
              if any(_val_series(history, f"val_{k}") for k in keys)]
    aif = _val_series(history, "val_psnr") or _val_series(history, "val_ssim")
    n = 1 + len(panels) + bool(aif)
    fig = _figure(figsize=(5 * n, 4))
    axes = list(fig.subplots(1, n, squeeze=False)[0])
    epochs = [row["epoch"] for row in history]
    for k in train_keys:
        y = np.array([row.get(k, np.nan) for row in history], dtype=float)
        axes[0].plot(epochs, y, marker=".", label=k[len("train_"):])
    if all(np.all(np.array([r.get(k, 1.0) for r in history], float) > 0) for k in train_keys):
        axes[0].set_yscale("log")
    axes[0].set(title="training loss terms (epoch means)", xlabel="epoch", ylabel="loss")
    chosen = " (chooses best.pt)"
    if monitor == "train_total":
        axes[0].set_title(axes[0].get_title() + chosen)
    for ax, (keys, unit, title) in zip(axes[1:], panels, strict=False):
        for k in keys:
            series = _val_series(history, f"val_{k}")
            if series:
                ax.plot(*series, marker="o", label=k)
        picked = monitor is not None and monitor[len("val_"):] in keys
        ax.set(title=title + (chosen if picked else ""), xlabel="epoch", ylabel=unit)
    if aif:
        _aif_panel(axes[-1], history, monitor == "val_psnr")
    for ax in axes:
        if ax.lines:
            ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3)
        _plain_ticks(ax)
    fig.tight_layout()
    return fig


def _aif_panel(ax, history: list[dict], picked: bool) -> None:
    """PSNR (dB) on the left axis, SSIM (unitless) on a twin axis at the right."""
    ax.set(title="validation all-in-focus" + (" (chooses best.pt)" if picked else ""),
           xlabel="epoch", ylabel="PSNR [dB]")
    series = _val_series(history, "val_psnr")
    if series:
        ax.plot(*series, marker="o", color="C0", label="psnr")
    series = _val_series(history, "val_ssim")
    if series:
        twin = ax.twinx()
        twin.plot(*series, marker="s", color="C1", label="ssim")
        twin.set_ylabel("SSIM (unitless)")
        twin.legend(fontsize=7, loc="lower right")
        _plain_ticks(twin)


def plot_loss_curves(history: list[dict], path, *, monitor: str | None = None) -> Path:
    """Write :func:`loss_curves_figure` as a PNG.

    Parameters
    ----------
    history : list of dict
        One dict per epoch with ``epoch`` and float columns (the CSV log's rows):
        ``train_<term>`` and ``val_<metric>``.
    path : path-like
        Output PNG.
    monitor : str, optional
        The history column that chooses ``best.pt`` (marked in its panel's title).
    """
    loss_curves_figure(history, monitor=monitor).savefig(path, dpi=100)
    return Path(path)


def depth_colormap(depth: np.ndarray, *, vmin=None, vmax=None,
                   cmap=DEPTH_CMAP) -> np.ndarray:
    """(H, W) float metres -> (H, W, 3) uint8 RGB; NaN / invalid pixels are
    :data:`~defocuskit.dataset.preview.INVALID_RGB` (mid grey, as in ``defocuskit preview``)."""
    import matplotlib  # matplotlib (heavy): only when plotting

    d = np.asarray(depth, dtype=np.float64)
    finite = np.isfinite(d)
    if vmin is None:
        vmin = float(d[finite].min()) if finite.any() else 0.0
    if vmax is None:
        vmax = float(d[finite].max()) if finite.any() else 1.0
    scaled = np.clip((d - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    rgb = matplotlib.colormaps[cmap](np.where(finite, scaled, 0))[..., :3]
    rgb[~finite] = INVALID_RGB
    return (rgb * 255 + 0.5).astype(np.uint8)


def _value_range(values: np.ndarray, vmin, vmax) -> tuple[float, float]:
    finite = np.isfinite(values)
    if vmin is None:
        vmin = float(values[finite].min()) if finite.any() else 0.0
    if vmax is None:
        vmax = float(values[finite].max()) if finite.any() else 1.0
    if not vmax > vmin:  # a constant map: a range the colour bar can draw
        vmax = vmin + max(abs(vmin) * 1e-3, 1e-6)
    return float(vmin), float(vmax)


def colormap_with_scale_bar(values: np.ndarray, *, label: str, vmin=None, vmax=None,
                            cmap: str = DEPTH_CMAP) -> np.ndarray:
    """A colour-mapped map with its colour bar: what ``trainer predict`` writes for viewing.

    Parameters
    ----------
    values : (H, W) float ndarray
        Depth in metres, sigma in pixels, ...; NaN is mid grey (``INVALID_RGB``).
    label : str
        The colour bar's label with the unit, e.g. ``"depth [m]"``.
    vmin, vmax : float, optional
        Ends of the colour scale (default: the finite minimum and maximum).
    cmap : str
        A matplotlib colour map name.

    Returns
    -------
    (max(H, SCALE_BAR_MIN_HEIGHT_PX), W + SCALE_BAR_WIDTH_PX, 3) uint8 ndarray, RGB
        The top-left H x W pixels are :func:`depth_colormap` of ``values`` over
        [vmin, vmax], pixel for pixel (not resampled); the colour bar with ticks in the
        unit of ``label`` is at the right; white elsewhere.
    """
    # matplotlib (heavy): only when plotting
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    d = np.asarray(values, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(f"colormap_with_scale_bar: expected an (H, W) map, got shape {d.shape}")
    vmin, vmax = _value_range(d, vmin, vmax)
    rgb = depth_colormap(d, vmin=vmin, vmax=vmax, cmap=cmap)
    h, w = d.shape
    height, width = max(h, SCALE_BAR_MIN_HEIGHT_PX), w + SCALE_BAR_WIDTH_PX
    dpi = 100
    # + 0.5 px: the canvas truncates inches x dpi to whole pixels
    fig = _figure(figsize=((width + 0.5) / dpi, (height + 0.5) / dpi), dpi=dpi,
                  facecolor="white")
    fig.figimage(rgb, xo=0, yo=height - h, origin="upper")  # one image pixel per pixel
    cax = fig.add_axes([(w + 10) / width, 8 / height, 14 / width, (height - 16) / height])
    bar = fig.colorbar(ScalarMappable(Normalize(vmin, vmax), cmap=cmap), cax=cax)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    out = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    if out.shape[:2] != (height, width):  # never seen; a clear failure beats a shifted map
        raise RuntimeError(f"colour bar figure rendered {out.shape[:2]}, expected "
                           f"{(height, width)}")
    return out


# per head: the panel's columns (key in ``first``, title) and, for a map, its colour bar label
_PANEL_HEADS = (
    ("depth", (("pred_depth", "predicted depth"), ("true_depth", "true depth")), "depth [m]"),
    ("aif", (("pred_aif", "predicted AiF"), ("true_aif", "true AiF")), None),
    ("defocus", (("pred_defocus", "predicted sigma"), ("true_defocus", "true sigma")),
     "sigma [px]"),
)


def _panel_columns(first: dict) -> list[tuple[str, str, str | None]]:
    """``(key, title, colour bar label)`` of each column: the input, then per head the
    prediction and, where the batch has it, the truth (heads: the ``pred_*`` keys)."""
    cols = [("input", "input", None)]
    for head, pair, label in _PANEL_HEADS:
        if f"pred_{head}" in first:
            cols += [(key, title, label) for key, title in pair if key in first]
    return cols


def val_panel_figure(first: dict, *, max_rows: int = 3):
    """Rows of: the input, then per head of the model its prediction and the truth.

    Parameters
    ----------
    first : dict
        ``input`` (B, 3, H, W) float [0, 1], and per head of the model ``pred_<head>``
        with, where the validation batch has it, ``true_<head>``: ``depth`` (B, 1, H, W)
        metres, ``aif`` (B, 3, H, W) [0, 1], ``defocus`` (B, 1, H, W) sigma in pixels.
        A ``true_*`` without its ``pred_*`` (a label the run does not train) is not shown.
    """
    cols = _panel_columns(first)
    n = min(max_rows, first["input"].shape[0])
    fig = _figure(figsize=(2.6 * len(cols), 2.2 * n))
    axes = fig.subplots(n, len(cols), squeeze=False)
    for r in range(n):
        for c, (name, title, label) in enumerate(cols):
            img = first[name][r].float().numpy()
            if label is not None:
                shown = _mapped(fig, axes[r, c], first, name, r, label)
            else:
                shown = np.clip(img.transpose(1, 2, 0), 0, 1)
            axes[r, c].imshow(shown)
            axes[r, c].set_axis_off()
            if r == 0:
                axes[r, c].set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _mapped(fig, ax, first: dict, name: str, r: int, label: str) -> np.ndarray:
    """Row ``r`` of map ``name`` colour-mapped over the truth's range (else its own), with
    a colour bar labelled ``label`` beside ``ax``."""
    from matplotlib.cm import ScalarMappable  # matplotlib (heavy): only when plotting
    from matplotlib.colors import Normalize

    img = first[name][r, 0].float().numpy()
    true = first.get("true_" + name.split("_", 1)[1])
    ref = true[r, 0].float().numpy() if true is not None else img
    if not np.isfinite(ref).any():
        ref = img
    vmin, vmax = _value_range(ref, None, None)
    fig.colorbar(ScalarMappable(Normalize(vmin, vmax), cmap=DEPTH_CMAP), ax=ax, shrink=0.8,
                 label=label)
    return depth_colormap(img, vmin=vmin, vmax=vmax)


def plot_val_panel(first: dict, path, *, max_rows: int = 3) -> Path:
    """Write :func:`val_panel_figure` as a PNG."""
    val_panel_figure(first, max_rows=max_rows).savefig(path, dpi=100)
    return Path(path)
