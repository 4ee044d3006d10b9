"""Run plots: the loss curves and a validation panel (matplotlib figures written to files;
no pyplot, so no process-wide backend is chosen or changed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_loss_curves", "plot_val_panel", "depth_colormap", "colormap_with_scale_bar",
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


def plot_loss_curves(history: list[dict], path) -> Path:
    """Plot the loss terms, the validation depth metrics and PSNR / SSIM against the epoch.

    Parameters
    ----------
    history : list of dict
        One dict per epoch with ``epoch`` and float columns (the CSV log's rows):
        ``train_<term>`` and ``val_<metric>``.
    path : path-like
        Output PNG.
    """
    train_keys = [k for k in history[0] if k.startswith("train_") and not k.endswith("_per_s")]
    fig = _figure(figsize=(15, 4))
    axes = fig.subplots(1, 3)
    epochs = [row["epoch"] for row in history]
    for k in train_keys:
        y = np.array([row.get(k, np.nan) for row in history], dtype=float)
        axes[0].plot(epochs, y, marker=".", label=k[len("train_"):])
    if all(np.all(np.array([r.get(k, 1.0) for r in history], float) > 0) for k in train_keys):
        axes[0].set_yscale("log")
    axes[0].set(title="training loss terms (epoch means)", xlabel="epoch")
    for k in ("rmse", "abs_rel", "log10", "delta1", "delta2", "delta3"):
        series = _val_series(history, f"val_{k}")
        if series:
            axes[1].plot(*series, marker="o", label=k)
    axes[1].set(title="validation depth (rmse in m)", xlabel="epoch")
    series = _val_series(history, "val_psnr")
    if series:
        axes[2].plot(*series, marker="o", color="C0", label="psnr (dB)")
        axes[2].set_ylabel("PSNR, dB")
    series = _val_series(history, "val_ssim")
    if series:
        twin = axes[2].twinx()
        twin.plot(*series, marker="s", color="C1", label="ssim")
        twin.set_ylabel("SSIM")
        twin.legend(fontsize=7, loc="lower right")
    axes[2].set(title="validation all-in-focus", xlabel="epoch")
    for ax in axes:
        if ax.lines:
            ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)


def depth_colormap(depth: np.ndarray, *, vmin=None, vmax=None, cmap="turbo") -> np.ndarray:
    """(H, W) float metres -> (H, W, 3) uint8 RGB; NaN / invalid pixels are black."""
    import matplotlib

    d = np.asarray(depth, dtype=np.float64)
    finite = np.isfinite(d)
    if vmin is None:
        vmin = float(d[finite].min()) if finite.any() else 0.0
    if vmax is None:
        vmax = float(d[finite].max()) if finite.any() else 1.0
    scaled = np.clip((d - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    rgb = matplotlib.colormaps[cmap](np.where(finite, scaled, 0))[..., :3]
    rgb[~finite] = 0
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
                            cmap: str = "turbo") -> np.ndarray:
    """A colour-mapped map with its colour bar: what ``trainer predict`` writes for viewing.

    Parameters
    ----------
    values : (H, W) float ndarray
        Depth in metres, sigma in pixels, ...; NaN is black.
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


def plot_val_panel(first: dict, path, *, max_rows: int = 3) -> Path:
    """Rows of: input, predicted depth, true depth, predicted AiF, true AiF.

    Parameters
    ----------
    first : dict
        ``input`` (B, 3, H, W) float [0, 1]; optional ``pred_depth`` / ``true_depth``
        (B, 1, H, W) metres and ``pred_aif`` / ``true_aif`` (B, 3, H, W) [0, 1] tensors.
    """
    cols = [c for c in ("input", "pred_depth", "true_depth", "pred_aif", "true_aif")
            if c in first]
    n = min(max_rows, first["input"].shape[0])
    fig = _figure(figsize=(2.6 * len(cols), 2.2 * n))
    axes = fig.subplots(n, len(cols), squeeze=False)
    for r in range(n):
        true_d = first.get("true_depth")
        rng = None
        if true_d is not None and np.isfinite(true_d[r].numpy()).any():
            t = true_d[r, 0].numpy()
            rng = (float(np.nanmin(t)), float(np.nanmax(t)))
        for c, name in enumerate(cols):
            img = first[name][r].float().numpy()
            if "depth" in name:
                vmin, vmax = rng if rng else (float(np.nanmin(img)), float(np.nanmax(img)))
                shown = depth_colormap(img[0], vmin=vmin, vmax=vmax)
                from matplotlib.cm import ScalarMappable
                from matplotlib.colors import Normalize

                fig.colorbar(ScalarMappable(Normalize(vmin, vmax), cmap="turbo"),
                             ax=axes[r, c], shrink=0.8, label="depth [m]")
            else:
                shown = np.clip(img.transpose(1, 2, 0), 0, 1)
            axes[r, c].imshow(shown)
            axes[r, c].set_axis_off()
            if r == 0:
                axes[r, c].set_title(name.replace("_", " "), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)
