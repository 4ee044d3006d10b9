"""`defocuskit preview`: a PNG grid of samples with the sigma histogram and CoC curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defocuskit.errors import ConfigError, DataError
from defocuskit.store import open_dataset
from defocuskit.summary import stat_indices

__all__ = ["preview_dataset"]


def _camera_for(sp, i: int, coc_model: str):
    from defocuskit.optics import Camera

    def val(name):
        v = np.asarray(sp.array(name)[i], dtype=np.float64).ravel()
        return float(v[0])

    return Camera(focal_length=val("focal_length"), f_number=val("f_number"),
                  focus_distance=val("focus_distance"), pixel_pitch=val("pixel_pitch"),
                  coc_to_sigma=val("coc_to_sigma"), coc_model=coc_model)


def preview_dataset(path, output, *, split: str | None = None, n: int = 4) -> Path:
    """Write a preview PNG of ``n`` samples of ``split`` and return its path.

    Rows: one per sample (AiF, defocused, depth in metres, sigma in pixels, each with a
    colour bar), then the sigma histogram of the shown samples and each shown sample's
    circle of confusion (pixels) against depth, with its focus distance marked. A
    scene-only dataset (``synth --mode none``) shows AiF and depth only.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend, nothing to close

    if n < 1:
        raise ConfigError(f"-n must be >= 1, got {n}")
    ds = open_dataset(path)
    split = split or ds.splits[0]
    sp = ds[split]
    usable = np.asarray(sp.usable_indices())  # samples skipped by synth hold no data
    if usable.size == 0:
        raise DataError(f"dataset {path}: split {split!r} has no usable sample (all skipped)")
    idx = usable[stat_indices(usable.size, n)]
    has_sigma = sp.has("sigma")
    has_defocused = sp.has("defocused")  # absent in a scene-only dataset
    cols = 2 + has_defocused + has_sigma
    fig = Figure(figsize=(4.2 * cols, 3.3 * (len(idx) + (1 if has_sigma else 0))),
                     layout="constrained")
    rows = len(idx) + (1 if has_sigma else 0)
    axes = fig.subplots(rows, cols, squeeze=False)
    names = ("aif", *(("defocused",) if has_defocused else ()), "depth",
             *(("sigma",) if has_sigma else ()))
    depth_all, sigma_all = [], []
    for r, i in enumerate(idx):
        d = sp.read(int(i), names=names)
        sid = sp.sample_ids[i] if i < len(sp.sample_ids) else str(i)
        axes[r, 0].imshow(d["aif"])
        axes[r, 0].set_title(f"{sid}: all-in-focus", fontsize=9)
        if has_defocused:
            axes[r, 1].imshow(d["defocused"][0] if sp.focal_stack else d["defocused"])
            title = "defocused"
            if has_sigma:
                fd = np.asarray(sp.array("focus_distance")[int(i)]).ravel()[0]
                title += f" (focus {fd:.2f} m" + (", stack[0])" if sp.focal_stack else ")")
            axes[r, 1].set_title(title, fontsize=9)
        c = 1 + has_defocused
        im = axes[r, c].imshow(d["depth"], cmap="magma_r")
        fig.colorbar(im, ax=axes[r, c], label="depth [m]", shrink=0.85)
        axes[r, c].set_title("depth (NaN = invalid, white)"
                             + ("" if has_defocused else "; scene only"), fontsize=9)
        depth_all.append(d["depth"][np.isfinite(d["depth"])])
        if has_sigma:
            sig = d["sigma"][0] if sp.focal_stack else d["sigma"]
            im = axes[r, 3].imshow(sig, cmap="viridis")
            fig.colorbar(im, ax=axes[r, 3], label="sigma [px]", shrink=0.85)
            axes[r, 3].set_title("defocus map sigma", fontsize=9)
            sigma_all.append(sig[np.isfinite(sig)])
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    if has_sigma:
        ax_h, ax_c = axes[-1, 0], axes[-1, 1]
        ax_h.hist(np.concatenate(sigma_all), bins=60, color="tab:green")
        ax_h.set_xlabel("sigma [px]")
        ax_h.set_ylabel("pixels")
        ax_h.set_title("sigma histogram (shown samples)", fontsize=9)
        dep = np.concatenate(depth_all)
        lo, hi = (float(dep.min()), float(dep.max())) if dep.size else (0.5, 10.0)
        xs = np.linspace(max(lo * 0.8, 1e-2), hi * 1.1, 400)
        coc_model = (ds.attrs.get("camera") or {}).get("coc_model", "exact")
        for i in idx:
            cam = _camera_for(sp, int(i), coc_model)
            line, = ax_c.plot(xs, cam.coc_px(xs), lw=1.2)
            ax_c.axvline(cam.focus_distance, color=line.get_color(), ls=":", lw=0.8)
        ax_c.set_xlabel("depth [m]")
        ax_c.set_ylabel("CoC diameter [px]")
        ax_c.set_title(f"camera {(ds.attrs.get('camera') or {}).get('preset')}: CoC vs depth "
                       "(dotted: focus)", fontsize=9)
        ax_c.grid(alpha=0.3)
        for ax in axes[-1, 2:]:
            ax.axis("off")
        axes[-1, 2].text(0, 0.5, _caption(ds.attrs, split, len(sp)), fontsize=9,
                         va="center", family="monospace")
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    return out


def _caption(attrs: dict, split: str, n: int) -> str:
    cfg = attrs.get("config", {})
    return (f"split     {split} ({n} samples)\nsource    {cfg.get('source')}\n"
            f"camera    {cfg.get('camera')}\nfocus     {cfg.get('focus')}\n"
            f"mode      {cfg.get('mode')}\nseed      {cfg.get('seed')}\n"
            f"schema    v{attrs.get('schema_version')}")
