"""What each render mode does at an occlusion edge: ``docs/figures/occlusion_edge.png``.

A near plane (left, 1 m) in front of a far plane (right, 4 m), the edge a vertical line
between columns ``EDGE - 1`` and ``EDGE``. Two cases, sigma set directly (pixels):

(a) focus on the far plane: the near plane is blurred (sigma ``S``), the far one sharp.
    Physically, a point of the far plane near the edge is partly hidden from the lens
    aperture by the near plane, and the near plane's blurred light reaches it: the image
    is ``G * (F m) + (1 - G * m) B`` (``m`` the near plane's mask, ``G`` the PSF), which
    for flat colours is the 1-D Gaussian convolution of the step on both sides of the
    edge. The foreground's blur spills about sigma pixels over the sharp background.
(b) focus on the near plane: the far plane is blurred. Every ray through a sharp
    foreground pixel ends on the foreground, so those pixels are unchanged; a background
    pixel's cone passes beside the foreground, so it sees background only (the blurred
    background, including what the foreground hides). The edge stays a hard step.

The profiles are of a flat step (foreground 1, background 0: the value is the fraction of
foreground light); the image crops are of a textured version of the same planes, with the
two-plane composite above (hidden background known) as "expected". The table of spill,
bleed and leak widths it prints is the one in ``docs/camera_model.md``.

Usage: ``.venv/bin/python docs/make_occlusion_figure.py`` (a few seconds).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from defocuskit import render  # noqa: E402
from defocuskit.blur import MODES  # noqa: E402

OUT = Path(__file__).resolve().parent / "figures" / "occlusion_edge.png"
H, W, EDGE = 48, 96, 48  # near plane: columns < EDGE
S = 4.0  # sigma of the blurred plane, pixels
NEAR_M, FAR_M = 1.0, 4.0
ONE_SIGMA = 0.15866  # Phi(-1): a Gaussian-blurred step's value one sigma past its edge
COLOURS = {"gather": "tab:blue", "scatter": "tab:orange", "layered": "tab:green"}


def gaussian_1d(sigma):
    """The engine's truncated Gaussian: taps at -ceil(3 sigma)..ceil(3 sigma), sum 1."""
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return k / k.sum()


def blur_2d(img, sigma):
    """Separable Gaussian blur of an (H, W, C) image with reflect-101 borders (numpy)."""
    k = gaussian_1d(sigma)
    r = k.size // 2
    p = np.pad(img, ((r, r), (r, r), (0, 0)), mode="reflect")
    p = sum(k[i] * p[i:i + img.shape[0]] for i in range(k.size))
    return sum(k[i] * p[:, i:i + img.shape[1]] for i in range(k.size))


def planes(textured):
    """(foreground image, background image, near-plane mask, depth): the background image
    continues behind the foreground (what a two-plane composite needs, not the renderers)."""
    yy, xx = np.mgrid[0:H, 0:W]
    if textured:
        fg = np.where(((yy // 6) % 2)[..., None] == 0, [0.95, 0.55, 0.15], [0.98, 0.95, 0.85])
        bg = np.where((((yy // 8) + (xx // 8)) % 2)[..., None] == 0, [0.1, 0.2, 0.5],
                      [0.45, 0.7, 0.95])
    else:
        fg, bg = np.ones((H, W, 3)), np.zeros((H, W, 3))
    near = xx < EDGE
    depth = np.where(near, NEAR_M, FAR_M)
    return fg.astype(np.float32), bg.astype(np.float32), near, depth


def case(focus, sigma, textured):
    """The AiF, the expected image and every mode's render for one focus case."""
    fg, bg, near, depth = planes(textured)
    m = near[..., None].astype(np.float32)
    aif = np.where(m > 0, fg, bg).astype(np.float32)
    if focus == "far":
        sig = np.where(near, sigma, 0.0).astype(np.float32)
        expected = blur_2d(fg * m, sigma) + (1 - blur_2d(m, sigma)) * bg
        focus_m = FAR_M
    else:
        sig = np.where(near, 0.0, sigma).astype(np.float32)
        expected = m * fg + (1 - m) * blur_2d(bg, sigma)
        focus_m = NEAR_M
    outs = {mode: render(aif, sig, mode=mode, depth=depth, focus_distance=focus_m)
            for mode in MODES}
    return aif, expected, outs


def extent(values):
    """How far (pixels from the edge) ``values`` (pixel centres 0.5, 1.5, ... from the edge)
    stay at or above ONE_SIGMA, interpolated to the crossing; 0 if the first is below."""
    d = np.arange(values.size) + 0.5
    above = np.nonzero(values >= ONE_SIGMA)[0]
    if above.size == 0:
        return 0.0
    i = above[-1]
    if i + 1 == values.size:
        return float(d[i])
    return float(d[i] + (values[i] - ONE_SIGMA) / (values[i] - values[i + 1]))


def measure(sigma):
    """Per mode: the numbers of the docs' table, from the flat step's middle row."""
    rows = {}
    for focus in ("far", "near"):
        _, expected, outs = case(focus, sigma, textured=False)
        exp_row = expected[H // 2, :, 0]
        for mode, out in outs.items():
            row = out[H // 2, :, 0].astype(np.float64)
            fg_side, bg_side = row[:EDGE][::-1], row[EDGE:]  # from the edge outwards
            r = rows.setdefault(mode, {})
            r[focus, "err"] = float(np.abs(row - exp_row).max())
            if focus == "far":  # foreground fraction over the background; inside the fg
                r["spill_px"] = extent(bg_side)
                r["spill_first"] = float(bg_side[0])
                r["fg_side_err"] = float(np.abs(row - exp_row)[:EDGE].max())
            else:  # background over the sharp foreground; foreground into the background
                r["bleed"] = float((1 - fg_side).max())
                r["bleed_px"] = extent(1 - fg_side)
                r["leak"] = float(bg_side.max())
                r["leak_px"] = extent(bg_side)
        if focus == "far":
            rows["expected"] = {"spill_px": extent(exp_row[EDGE:]),
                                "spill_first": float(exp_row[EDGE])}
    return rows


def table(sigmas=(2.0, 4.0, 8.0)):
    lines = ["| σ | mode | (a) spill past the edge, px (first pixel) | (a) max error inside "
             "the foreground | (b) bleed over the sharp foreground, px (max) | (b) leak into "
             "the background, px (max) |", "|---|---|---|---|---|---|"]
    for s in sigmas:
        rows = measure(s)
        e = rows["expected"]
        lines.append(f"| {s:g} | expected | {e['spill_px']:.2f} ({e['spill_first']:.2f}) | 0 "
                     "| 0 | 0 |")
        for mode in MODES:
            r = rows[mode]
            lines.append(f"| | {mode} | {r['spill_px']:.2f} ({r['spill_first']:.2f}) | "
                         f"{r['fg_side_err']:.2f} | {r['bleed_px']:.2f} ({r['bleed']:.2f}) | "
                         f"{r['leak_px']:.2f} ({r['leak']:.2f}) |")
    return "\n".join(lines)


def main():
    fig = plt.figure(figsize=(15, 7.2))
    grid = fig.add_gridspec(2, 6, width_ratios=[2.6, 1, 1, 1, 1, 1])
    x = np.arange(W) - EDGE + 0.5  # pixel centres, from the edge
    lo, hi = EDGE - 16, EDGE + 16
    titles = {"far": f"(a) focus far: foreground blurred (σ = {S:g} px), background sharp",
              "near": f"(b) focus near: foreground sharp, background blurred (σ = {S:g} px)"}
    for row, focus in enumerate(("far", "near")):
        _, expected, outs = case(focus, S, textured=False)
        ax = fig.add_subplot(grid[row, 0])
        ax.axvspan(0, S, color="0.9", label="σ past the edge")
        ax.plot(x, expected[H // 2, :, 0], "k--", lw=2.5, label="expected")
        for mode, out in outs.items():
            ax.plot(x, out[H // 2, :, 0], ".-", color=COLOURS[mode], label=mode, lw=1.2)
        ax.axvline(0, color="0.5", lw=0.8)
        ax.set_xlim(-14, 14)
        ax.set_xlabel("pixels from the edge (near plane left, far plane right)")
        ax.set_ylabel("foreground fraction")
        ax.set_title(titles[focus], fontsize=10)
        ax.legend(fontsize=8, loc="upper right" if focus == "far" else "center right")
        aif, expected, outs = case(focus, S, textured=True)
        crops = [("all-in-focus", aif), ("expected", expected)] + list(outs.items())
        for col, (name, im) in enumerate(crops, start=1):
            ax = fig.add_subplot(grid[row, col])
            ax.imshow(np.clip(im[:, lo:hi], 0, 1), interpolation="nearest")
            ax.axvline(EDGE - lo - 0.5, color="w", lw=0.6, ls=":")
            ax.set_title(name, fontsize=10)
            ax.axis("off")
    fig.suptitle("An occlusion edge, near plane (1 m) left of a far plane (4 m): what each "
                 "render mode does (profiles: flat planes, middle row; crops: textured)")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=80)
    print(f"wrote {OUT}")
    print(table())


if __name__ == "__main__":
    main()
