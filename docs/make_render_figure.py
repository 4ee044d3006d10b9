"""Make the engine's figures for ``docs/camera_model.md`` (a few seconds; no downloads).

* ``docs/figures/render_modes.png``: one scene in every render mode, sigma, differences;
* ``docs/figures/psf_shapes.png``: the Gaussian and the disc PSF of the same sigma, their
  profiles, and the scene (with point highlights on the wall) rendered with each.

Usage: ``.venv/bin/python docs/make_render_figure.py``.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from defocuskit.blur import MODES, PSFS, render  # noqa: E402
from defocuskit.camera.presets import get_preset  # noqa: E402

OUT = Path(__file__).resolve().parent / "figures" / "render_modes.png"
OUT_PSF = OUT.with_name("psf_shapes.png")


def scene(h=240, w=320, highlights=False):
    """Checkerboard wall at 6 m, a striped card at 0.9 m, a dotted card in focus at 2 m.

    ``highlights`` darkens the wall and puts small points on it, eight times brighter than
    white (lamps, specular glints; float images may exceed 1): out of focus, each takes the
    PSF's shape.
    """
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.float32)
    img[...] = (((yy // 16) + (xx // 16)) % 2)[..., None] * [0.9, 0.8, 0.5] + 0.05
    if highlights:
        img *= 0.25
        for y, x in [(30, 40), (30, 160), (25, 280), (215, 60), (220, 170), (215, 300)]:
            img[y - 1:y + 2, x - 1:x + 2] = [8.0, 7.6, 6.4]
    depth = np.full((h, w), 6.0)
    near = (yy > 60) & (yy < 200) & (xx > 30) & (xx < 130)
    img[near] = np.where(((xx[near] // 6) % 2)[:, None] == 0, [0.9, 0.1, 0.1], [1, 1, 1])
    depth[near] = 0.9
    mid = (yy - 120) ** 2 + (xx - 230) ** 2 < 55**2
    img[mid] = np.where((((yy[mid] // 8) + (xx[mid] // 8)) % 2)[:, None] == 0,
                        [0.1, 0.3, 0.9], [0.95, 0.95, 0.2])
    depth[mid] = 2.0
    cam = get_preset("2hded").make(image_width=w, rng=np.random.default_rng(0)).with_focus(2.0)
    return img.astype(np.float32), depth, cam.sigma_px(depth).astype(np.float32)


def psf_figure():
    """Gaussian vs disc: the PSFs (rendered from a single bright pixel) and a scene."""
    s = 4.0
    n = 33
    impulse = np.zeros((n, n, 3), np.float32)
    impulse[n // 2, n // 2] = 1.0
    flat = np.full((n, n), s, np.float32)
    psfs = {p: render(impulse, flat, psf=p, mode="gather")[..., 0] for p in PSFS}
    img, depth, sigma = scene(highlights=True)
    outs = {p: render(img, sigma, mode="gather", psf=p) for p in PSFS}
    fig, axes = plt.subplots(2, 3, figsize=(12, 7))
    vmax = max(float(k.max()) for k in psfs.values())
    for ax, p in zip(axes[0, :2], PSFS, strict=True):
        ax.imshow(psfs[p], cmap="magma", vmin=0, vmax=vmax)
        label = f"σ = {s:g} px" if p == "gaussian" else f"radius 2σ = {2 * s:g} px"
        ax.set_title(f"{p} PSF, {label}", fontsize=10)
        ax.axis("off")
    ax = axes[0, 2]
    x = np.arange(n) - n // 2
    for p in PSFS:
        ax.plot(x, psfs[p][n // 2], marker=".", label=p)
    ax.set_xlabel("offset from the centre (px)")
    ax.set_title("profile through the centre (each sums to 1 in 2-D)", fontsize=10)
    ax.legend()
    for ax, p in zip(axes[1, :2], PSFS, strict=True):
        ax.imshow(np.clip(outs[p], 0, 1))
        ax.set_title(f"gather, psf={p!r}", fontsize=10)
        ax.axis("off")
    axes[1, 2].imshow(np.clip(np.abs(outs["gaussian"] - outs["disc"]) * 4, 0, 1))
    axes[1, 2].set_title("|gaussian − disc| × 4", fontsize=10)
    axes[1, 2].axis("off")
    fig.suptitle(f"One σ map (wall {sigma[0, 0]:.1f} px, near card {sigma.max():.1f} px), two "
                 "PSF shapes: out-of-focus highlights become discs or soft blobs")
    fig.tight_layout(h_pad=2.5)
    fig.savefig(OUT_PSF, dpi=80)
    print(f"wrote {OUT_PSF}")


def main():
    img, depth, sigma = scene()
    outs = {m: render(img, sigma, mode=m, depth=depth, focus_distance=2.0) for m in MODES}
    panels = [("all-in-focus", img), (f"sigma (px), max {sigma.max():.1f}", sigma)]
    panels += [(m, outs[m]) for m in MODES]
    panels += [("|gather - scatter| x4", np.abs(outs["gather"] - outs["scatter"]) * 4),
               ("|gather - layered| x4", np.abs(outs["gather"] - outs["layered"]) * 4)]
    fig, axes = plt.subplots(2, 4, figsize=(14, 5.6))
    for ax, (title, im) in zip(axes.flat, panels, strict=False):
        if im.ndim == 2:
            fig.colorbar(ax.imshow(im, cmap="viridis"), ax=ax, fraction=0.035)
        else:
            ax.imshow(np.clip(im, 0, 1))
        ax.set_title(title, fontsize=10)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("2HDED:NET camera (f = 70 mm, D = 44.8 mm), focus 2 m: wall 6 m, card 0.9 m")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=90)
    print(f"wrote {OUT}")
    psf_figure()


if __name__ == "__main__":
    main()
