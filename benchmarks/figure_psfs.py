"""The PSF and dual-pixel figure of docs/camera_model.md: docs/figures/psf_options.png.

Top row: the kernels at sigma = 3 px (CoC 12 px) of the Gaussian, the disc, polygon:6,
polygon:5,18 and the example bank (samples/psf_bank_example.npz, its stored CoC 12
kernel), as the engine applies them. Bottom row: a
dual-pixel pair of the sample scene room_00 (gather, 2hded camera focused at 2.5 m, sigma
scaled to at most 6 px), its left and right views and their difference (red: left
brighter). Usage::

    python benchmarks/figure_psfs.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from defocuskit import render  # noqa: E402
from defocuskit.blur.table import build_table  # noqa: E402
from defocuskit.psf_spec import parse_psf  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "figures" / "psf_options.png"
BANK = ROOT / "samples" / "psf_bank_example.npz"


def kernel(psf: str, sigma: float) -> np.ndarray:
    s = np.array([sigma], np.float32)
    t = build_table(parse_psf(psf), s)
    lo, hi, f = t.lookup(s)
    return ((1 - f[0]) * t.kernels[lo[0]] + f[0] * t.kernels[hi[0]])[..., 0]


def main() -> None:
    fig, ax = plt.subplots(2, 5, figsize=(15, 6.4))
    names = ["gaussian", "disc", "polygon:6", "polygon:5,18", f"bank:{BANK}"]
    shown = [kernel(p, 3.0) for p in names]
    S = max(k.shape[0] for k in shown)
    for a, name, k in zip(ax[0], names, shown, strict=True):
        pad = (S - k.shape[0]) // 2
        a.imshow(np.pad(k, pad), cmap="magma")
        a.set_title(("bank (example)" if name.startswith("bank") else name) + ", sigma 3 px")
        a.axis("off")
    rgb = cv2.imread(str(ROOT / "samples/scenes/room_00_rgb.png"))[..., ::-1]
    depth = cv2.imread(str(ROOT / "samples/scenes/room_00_depth.png"),
                       cv2.IMREAD_UNCHANGED).astype(np.float64) / 1000.0
    depth[depth <= 0] = np.nan
    depth = np.where(np.isfinite(depth), depth, np.nanmedian(depth))
    focus = 2.5
    sigma = np.abs(depth - focus) / depth
    sigma = (6.0 * sigma / sigma.max()).astype(np.float32)
    img = rgb.astype(np.float32) / 255.0
    out = render(img, sigma, mode="gather", psf="polygon:6", depth=depth,
                 focus_distance=focus, dual_pixel=True)
    diff = (out.left - out.right).mean(axis=2)
    lim = float(np.abs(diff).max())
    panels = [(img, "all-in-focus"), (np.clip(out.defocused, 0, 1), "full aperture (polygon:6)"),
              (np.clip(2 * out.left, 0, 1), "left view (x2 light)"),
              (np.clip(2 * out.right, 0, 1), "right view (x2 light)")]
    for a, (im, title) in zip(ax[1][:4], panels, strict=True):
        a.imshow(im)
        a.set_title(title)
        a.axis("off")
    ax[1, 4].imshow(diff, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax[1, 4].set_title(f"left - right (focus {focus} m)")
    ax[1, 4].axis("off")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=80)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
