"""Make ``docs/figures/render_modes.png``: one scene in every render mode, sigma, differences.

Usage: ``.venv/bin/python docs/make_render_figure.py`` (a few seconds; no downloads).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from defocuskit.blur import MODES, render  # noqa: E402
from defocuskit.optics import get_preset  # noqa: E402

OUT = Path(__file__).resolve().parent / "figures" / "render_modes.png"


def scene(h=240, w=320):
    """Checkerboard wall at 6 m, a striped card at 0.9 m, a dotted card in focus at 2 m."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.float32)
    img[...] = (((yy // 16) + (xx // 16)) % 2)[..., None] * [0.9, 0.8, 0.5] + 0.05
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


if __name__ == "__main__":
    main()
