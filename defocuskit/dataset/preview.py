"""`defocuskit preview`: a PNG grid of samples with the sigma histogram and CoC curve.

One row per sample: AiF, defocused, depth, sigma. A focal-stack split shows every image
of each stack: two rows per sample, the AiF and the K defocused images (each titled with
its focus distance) above the depth and the K sigma maps; ``stack_index`` shows image K
of each stack in the one-row layout instead. The figure's title says how the defocused
images were made: with or without sensor noise, blurred in linear light or on the
sRGB-encoded values (from the dataset's recorded synth config), or real captures.

A dual-pixel dataset (``defocused_left`` / ``defocused_right``) shows the two views
beside the defocused image (one-row layout). A dataset with a sigma per colour channel
(``synth --chromatic``) shows the green channel's sigma map and histogram; the caption
gives the three focal-length offsets.

Every panel carries a label (``Axes.get_label()``): ``aif``, ``depth``,
``defocused:<k>``, ``left:<k>``, ``right:<k>`` and ``sigma:<k>`` (k: the stack image, 0
without a stack), ``hist``, ``coc``, ``caption``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defocuskit.camera.optics import Camera
from defocuskit.camera.table import camera_text
from defocuskit.dataset.store import open_dataset
from defocuskit.dataset.summary import diffraction_nm, stat_indices
from defocuskit.errors import ConfigError, DataError

__all__ = ["check_png_output", "preview_dataset", "preview_figure", "render_note", "DEPTH_CMAP",
           "INVALID_RGB", "cmap_with_invalid"]

SIGMA_SHOWN = 1  # the channel of a per-channel sigma that is drawn: green
DEPTH_CMAP = "turbo"  # the one depth colour map of the preview and the trainer's images
INVALID_RGB = (0.5, 0.5, 0.5)  # invalid (NaN) pixels: mid grey, a colour turbo never takes


def cmap_with_invalid(name: str = DEPTH_CMAP):
    """A matplotlib colour map (default: the depth one) drawing NaN in :data:`INVALID_RGB`."""
    import matplotlib  # matplotlib (heavy): only for a preview

    return matplotlib.colormaps[name].with_extremes(bad=INVALID_RGB)


def _camera_for(sp, i: int, coc_model: str, k: int = 0):
    def val(name):
        return float(np.asarray(sp.array(name)[i], dtype=np.float64).ravel()[k])

    return Camera(focal_length=val("focal_length"), f_number=val("f_number"),
                  focus_distance=val("focus_distance"), pixel_pitch=val("pixel_pitch"),
                  coc_to_sigma=val("coc_to_sigma"), coc_model=coc_model)


def render_note(attrs: dict, *, real_captures: bool = False) -> str:
    """How the defocused images of a dataset were made, in one line (from its attrs)."""
    if real_captures:
        return "defocused images: real captures, stored as recorded"
    cfg = attrs.get("config")
    if not isinstance(cfg, dict) or "linear_light" not in cfg:  # not written by synth
        return "defocused images: sensor noise and linear light not recorded in the dataset"
    noise = cfg.get("noise")
    if noise is None:
        noise_text = "no sensor noise"
    else:
        from defocuskit.blur.noise import SensorNoise  # loads Numba: only for a noise preview

        nz = SensorNoise.from_config(noise)
        noise_text = (f"sensor noise added after the blur (Poisson-Gaussian, gain {nz.gain:g}, "
                      f"read sigma {nz.read_sigma:g})")
    light = ("blurred in linear light (sRGB decoded, blurred, encoded)"
             if cfg.get("linear_light") else
             "blurred on the sRGB-encoded values (not in linear light)")
    return f"defocused images: {noise_text}; {light}"


def _check_stack_index(stack_index, sp, path) -> None:
    if stack_index is None:
        return
    if not sp.focal_stack or not sp.has("defocused"):
        raise ConfigError(f"--stack-index {stack_index}: split {sp.name!r} of {path} is not "
                          "a focal stack (one defocused image per sample); leave it out")
    if not 0 <= stack_index < sp.focal_stack:
        raise ConfigError(f"--stack-index {stack_index}: the focal stacks of split "
                          f"{sp.name!r} hold {sp.focal_stack} images (0..{sp.focal_stack - 1})")


def preview_figure(path, *, split: str | None = None, n: int = 4,
                   stack_index: int | None = None):
    """The preview of ``n`` samples of ``split`` as a matplotlib Figure (no pyplot).

    Parameters
    ----------
    path : path-like
        A complete dataset.
    split : str, optional
        Default: the first split.
    n : int
        Samples to show, evenly spread over the split (skipped samples left out).
    stack_index : int, optional
        A focal-stack split: show image K of each stack only (default: all of them).

    Raises
    ------
    ConfigError
        ``n`` < 1, or ``stack_index`` on a split that is not a stack or out of its range.
    DataError
        No usable sample, or damaged data.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend, nothing to close

    if n < 1:
        raise ConfigError(f"-n must be >= 1, got {n}")
    ds = open_dataset(path)
    split = split or ds.splits[0]
    sp = ds[split]
    _check_stack_index(stack_index, sp, path)
    usable = np.asarray(sp.usable_indices())  # samples skipped by synth hold no data
    if usable.size == 0:
        raise DataError(f"dataset {path}: split {split!r} has no usable sample (all skipped)")
    idx = [int(i) for i in usable[stat_indices(usable.size, n)]]
    has_sigma, has_defocused = sp.has("sigma"), sp.has("defocused")
    stack = sp.focal_stack if has_defocused else 0
    dual = has_defocused and sp.has("defocused_left") and sp.has("defocused_right")
    slices = list(range(stack)) if (stack and stack_index is None) else [stack_index or 0]
    whole_stack = stack > 0 and stack_index is None
    rows_per = 2 if whole_stack else 1
    cols = (max(1 + len(slices), 3) if whole_stack
            else 2 + has_defocused + 2 * (dual and not whole_stack) + has_sigma)
    rows = rows_per * len(idx) + has_sigma
    fig = Figure(figsize=((3.2 if whole_stack else 4.2) * cols, 3.0 * rows),
                 layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    panels = dict(fig=fig, sp=sp, slices=slices, stack=stack, psf=ds.attrs.get("psf"))
    depth_all, sigma_all = [], []
    for r, i in enumerate(idx):
        names = ("aif", "depth", *(("defocused",) if has_defocused else ()),
                 *(("defocused_left", "defocused_right") if dual and not whole_stack else ()),
                 *(("sigma",) if has_sigma else ()))
        d = sp.read(i, names=names)
        if has_sigma and sp.sigma_channels:  # per channel: the green one is shown
            d["sigma"] = d["sigma"][..., SIGMA_SHOWN]
        depth_all.append(d["depth"][np.isfinite(d["depth"])])
        if whole_stack:
            _stack_rows(axes[2 * r], axes[2 * r + 1], d, i, panels, sigma_all)
        else:
            _sample_row(axes[r], d, i, panels, dual, sigma_all)
    if has_sigma:
        _summary_row(axes[-1], ds, sp, idx, slices, depth_all, sigma_all)
    if has_defocused:
        fig.suptitle(render_note(ds.attrs, real_captures=not has_sigma), fontsize=10)
    return fig


def _stack_rows(row_a, row_b, d, i, panels, sigma_all) -> None:
    """Sample ``i`` of a focal stack on two rows: the AiF and every image of the stack,
    then the depth and every sigma map (on one scale)."""
    fig, sp, slices = panels["fig"], panels["sp"], panels["slices"]
    has_sigma = "sigma" in d
    _image(row_a[0], d["aif"], "aif", f"{_sid(sp, i)}: all-in-focus")
    _depth(fig, row_b[0], d["depth"], True)
    for c, k in enumerate(slices, start=1):
        _defocused(row_a[c], d["defocused"][k], i, k, panels)
        if has_sigma:
            sigma_all.append(_sigma(row_b[c], d["sigma"][k], i, k, panels))
    if has_sigma:  # one scale for the stack's sigma maps, so they compare
        vmax = max(float(np.nanmax(d["sigma"])), 1e-6)
        for ax in row_b[1:1 + len(slices)]:
            ax.images[0].set_clim(0.0, vmax)
        fig.colorbar(row_b[1].images[0], ax=list(row_b[1:1 + len(slices)]),
                     label="sigma [px]", shrink=0.85)
    used_b = 1 + (len(slices) if has_sigma else 0)
    for ax in (*row_a[1 + len(slices):], *row_b[used_b:]):
        ax.axis("off")


def _sample_row(row, d, i, panels, dual: bool, sigma_all) -> None:
    """Sample ``i`` on one row: AiF, defocused image (one of a stack), the dual-pixel
    views, depth and sigma map, each where the split has it."""
    fig, sp, slices, stack = panels["fig"], panels["sp"], panels["slices"], panels["stack"]
    has_defocused = "defocused" in d
    _image(row[0], d["aif"], "aif", f"{_sid(sp, i)}: all-in-focus")
    c = 1
    if has_defocused:
        k = slices[0]
        _defocused(row[1], d["defocused"][k] if stack else d["defocused"], i, k, panels)
        c = 2
        if dual:
            for side in ("left", "right"):
                view = d[f"defocused_{side}"]
                _image(row[c], view[k] if stack else view, f"{side}:{k}",
                       f"dual-pixel {side} view")
                c += 1
    _depth(fig, row[c], d["depth"], has_defocused)
    if "sigma" in d:
        sig = d["sigma"][slices[0]] if stack else d["sigma"]
        sigma_all.append(_sigma(row[c + 1], sig, i, slices[0], panels))
        fig.colorbar(row[c + 1].images[0], ax=row[c + 1], label="sigma [px]", shrink=0.85)


def preview_dataset(path, output, *, split: str | None = None, n: int = 4,
                    stack_index: int | None = None) -> Path:
    """Write :func:`preview_figure` to the PNG ``output`` and return its path.

    Raises
    ------
    ConfigError
        If ``output`` is not a ``.png`` file name, is a folder, or lies inside a Zarr
        store (a dataset is never written into); checked before anything is read.
    """
    out = check_png_output(output)
    fig = preview_figure(path, split=split, n=n, stack_index=stack_index)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    return out


def check_png_output(output) -> Path:
    """``output`` as a Path if it may receive a PNG figure, else one ConfigError line."""
    out = Path(output)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"preview output {str(out)!r}: expected a .png file name (the "
                          "figure is a PNG), e.g. preview.png")
    if out.is_dir():
        raise ConfigError(f"preview output {str(out)!r} is a folder; give a .png file name")
    for parent in out.resolve().parents:
        if (parent / "zarr.json").is_file():
            raise ConfigError(f"preview output {str(out)!r} lies inside the Zarr store "
                              f"{str(parent)!r}; write the figure outside the dataset")
    return out


def _sid(sp, i: int) -> str:
    return sp.sample_ids[i] if i < len(sp.sample_ids) else str(i)


def _image(ax, img, label: str, title: str, **kw):
    im = ax.imshow(img, **kw)
    ax.set_label(label)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def _focus_m(sp, i: int, k: int) -> float | None:
    if not sp.has("focus_distance"):
        return None
    return float(np.asarray(sp.array("focus_distance")[i], dtype=np.float64).ravel()[k])


def _defocused(ax, img, i: int, k: int, p: dict) -> None:
    fd = _focus_m(p["sp"], i, k)
    where = f"stack[{k}] of {p['stack']}" if p["stack"] else ""
    if fd is None:
        title = "defocused" + (f" ({where})" if where else "")
    else:
        title = f"defocused, focus {fd:.2f} m" + (f" ({where})" if where else "")
    _image(ax, img, f"defocused:{k}", title)


def _depth(fig, ax, depth, has_defocused: bool) -> None:
    im = _image(ax, depth, "depth", "depth (grey = invalid)"
                + ("" if has_defocused else "; scene only"), cmap=cmap_with_invalid())
    fig.colorbar(im, ax=ax, label="depth [m]", shrink=0.85)


def _sigma(ax, sig, i: int, k: int, p: dict) -> np.ndarray:
    fd = _focus_m(p["sp"], i, k)
    disc = ", disc radius 2 sigma" if p.get("psf") == "disc" else ""
    green = " (green channel)" if p["sp"].sigma_channels else ""
    _image(ax, sig, f"sigma:{k}", "defocus map sigma" + green + disc
           + (f", focus {fd:.2f} m" if p["stack"] and fd is not None else ""),
           cmap=cmap_with_invalid("viridis"))
    return sig[np.isfinite(sig)]


def _summary_row(row, ds, sp, idx, slices, depth_all, sigma_all) -> None:
    """The sigma histogram, the CoC curves (one per shown sample and image) and a caption."""
    ax_h, ax_c = row[0], row[1]
    ax_h.set_label("hist")
    ax_h.hist(np.concatenate(sigma_all), bins=60, color="tab:green")
    ax_h.set_xlabel("sigma [px]")
    ax_h.set_ylabel("pixels")
    ax_h.set_title("sigma histogram (shown images)", fontsize=9)
    dep = np.concatenate(depth_all)
    lo, hi = (float(dep.min()), float(dep.max())) if dep.size else (0.5, 10.0)
    xs = np.linspace(max(lo * 0.8, 1e-2), hi * 1.1, 400)
    camera = ds.attrs.get("camera") or {}
    coc_model = camera.get("coc_model", "exact")
    ax_c.set_label("coc")
    for s, i in enumerate(idx):
        for k in slices:
            cam = _camera_for(sp, i, coc_model, k if sp.focal_stack else 0)
            colour = f"C{k}" if len(slices) > 1 else f"C{s}"
            if len(slices) > 1:
                label = f"stack[{k}]" if s == 0 else None
            else:  # one curve per shown sample: say which row it belongs to
                label = _sid(sp, i)
            ax_c.plot(xs, cam.coc_px(xs), lw=1.2, color=colour, label=label)
            ax_c.axvline(cam.focus_distance, color=colour, ls=":", lw=0.8)
    if len(slices) > 1 or len(idx) > 1:
        ax_c.legend(fontsize=7)
    ax_c.set_xlabel("depth [m]")
    ax_c.set_ylabel("CoC diameter [px]")
    ax_c.set_title(f"camera {_camera_name(ds.attrs)}: CoC vs depth (dotted: focus)",
                   fontsize=9)
    ax_c.grid(alpha=0.3)
    for ax in row[2:]:
        ax.axis("off")
    row[2].set_label("caption")
    row[2].text(0, 0.5, _caption(ds.attrs, sp), fontsize=9, va="center", family="monospace")


def _camera_name(attrs: dict) -> str:
    """The camera of a dataset in one line: the recorded ``camera.preset`` (a preset's name,
    or a custom camera's text, :func:`~defocuskit.camera.table.camera_text`), else the
    config's camera written as that text."""
    recorded = (attrs.get("camera") or {}).get("preset")
    if isinstance(recorded, str):
        return recorded
    camera = (attrs.get("config") or {}).get("camera")
    if isinstance(camera, dict):
        try:
            return camera_text(camera)
        except ConfigError:  # a table this version does not accept: show it as written
            return ",".join(f"{k}={v}" for k, v in camera.items())
    return str(camera)


def _psf_text(attrs: dict) -> str:
    psf = attrs.get("psf")
    if psf is None:
        return "not recorded"
    detail = attrs.get("psf_detail") or {}
    if detail.get("kind") == "polygon":
        return f"{detail['blades']}-blade polygon, {detail['rotation_deg']:g} deg"
    if detail.get("kind") == "bank":
        b = detail.get("bank") or {}
        return f"bank ({b.get('n_kernels')} kernels, sha256 {str(b.get('sha256'))[:8]})"
    return f"{psf} (radius = 2 sigma)" if psf == "disc" else str(psf)


def _caption(attrs: dict, sp) -> str:
    cfg = attrs.get("config", {})
    stack = f"\nstack     {sp.focal_stack} images per sample" if sp.focal_stack else ""
    return (f"split     {sp.name} ({len(sp)} samples)\nsource    {cfg.get('source')}\n"
            f"camera    {_camera_name(attrs)}\nfocus     {cfg.get('focus')}\n"
            f"mode      {cfg.get('mode')}\npsf       {_psf_text(attrs)}\n"
            f"seed      {cfg.get('seed')}{stack}\n"
            + ("views     dual-pixel (left / right)\n" if attrs.get("dual_pixel") else "")
            + _chromatic_text(attrs)
            + (f"floor     diffraction {diffraction_nm(attrs):g} nm\n"
               if diffraction_nm(attrs) else "")
            + (f"jpeg      quality {attrs['jpeg'].get('quality')}\n" if attrs.get("jpeg")
               else "") +
            f"schema    v{attrs.get('schema_version')}")


def _chromatic_text(attrs: dict) -> str:
    chromatic = attrs.get("chromatic")
    if not chromatic:
        return ""
    off = "/".join(f"{v:+g}" for v in chromatic.get("offsets_mm", []))
    return f"chromatic R/G/B {off} mm\n          (sigma per channel; shown: G)\n"
