"""Deconvolution on the Middlebury Motorcycle pair: accuracy of both methods and their speed.

The sharp left view is blurred (``gather``, the per-pixel model both methods invert, and
``layered``, the occlusion-aware mode datasets use) with the thin-lens sigma of its real
depth: the ``2hded`` camera focused at 3 m with its f-number set so that the largest sigma is
``--sigma-max`` px. Written to JSON: PSNR against the sharp image of the blurred input, the
per-pixel and the levels deconvolution (pixels >= 24 px from the image border), the same
within 5 px of a depth edge (a log-depth step > 0.05 between neighbours) and elsewhere, the
levels-vs-per-pixel PSNR, the timings, their ratio and the CPU.

    python benchmarks/bench_deconvolve.py --output benchmarks/results/deconvolve.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numba
import numpy as np

from defocuskit import deconvolve, render
from defocuskit.presets import get_preset
from defocuskit.sources import get_source
from defocuskit.synth import fill_invalid_depth

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_machine.py
from _machine import cpu_model  # noqa: E402

BORDER = 24  # pixels left out of every figure (the border conventions differ there)


def scene(sigma_max: float):
    """``(sharp uint8, depth m, sigma px, f_number)`` of the Motorcycle at ``sigma_max``."""
    s = get_source("middlebury", None).read("test", 0)
    depth = fill_invalid_depth(s.depth.astype(np.float64))
    cam = get_preset("2hded").make(image_width=depth.shape[1],
                                   rng=np.random.default_rng(0)).with_focus(3.0)
    cam = cam.with_f_number(cam.f_number * cam.sigma_px(depth).max() / sigma_max)
    return s.aif, depth, cam.sigma_px(depth).astype(np.float32), cam.f_number


def edge_mask(depth: np.ndarray, radius: int = 5) -> np.ndarray:
    """Pixels within ``radius`` px of a depth edge (log-depth step > 0.05)."""
    logd = np.log(depth)
    jump = np.zeros(depth.shape, bool)
    jump[:, 1:] |= np.abs(np.diff(logd, axis=1)) > 0.05
    jump[1:] |= np.abs(np.diff(logd, axis=0)) > 0.05
    k = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(jump.astype(np.uint8), k) > 0


def psnr(x: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> float:
    return float(-10.0 * np.log10(np.mean((x - ref)[mask] ** 2)))


def figures(out: np.ndarray, sharp: np.ndarray, inner, near) -> dict:
    return {"psnr_db": psnr(out, sharp, inner), "psnr_edge_db": psnr(out, sharp, inner & near),
            "psnr_non_edge_db": psnr(out, sharp, inner & ~near)}


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, default=Path("benchmarks/results/deconvolve.json"))
    ap.add_argument("--sigma-max", type=float, default=8.0)
    ap.add_argument("--psf", default="gaussian", choices=["gaussian", "disc"])
    args = ap.parse_args()
    aif, depth, sigma, f_number = scene(args.sigma_max)
    sharp = aif.astype(np.float32) / 255.0
    near = edge_mask(depth)
    inner = np.zeros(near.shape, bool)
    inner[BORDER:-BORDER, BORDER:-BORDER] = True
    deconvolve(np.zeros((8, 8, 3), np.float32), np.ones((8, 8), np.float32),
               method="per-pixel", psf=args.psf)  # JIT compile outside the timings
    result = {"cpu": cpu_model(), "threads": numba.get_num_threads(), "scene": {
        "image": "Middlebury 2014 Motorcycle (scikit-image)", "shape": list(sigma.shape),
        "camera": "2hded", "focus_m": 3.0, "f_number": f_number, "psf": args.psf,
        "sigma_max_px": float(sigma.max()), "sigma_median_px": float(np.median(sigma)),
        "edge_fraction": float(near[inner].mean()), "border_px": BORDER}, "modes": {}}
    for mode in ("gather", "layered"):
        blurred = render(sharp, sigma, mode=mode, psf=args.psf,
                         depth=depth if mode == "layered" else None)
        blurred = np.rint(blurred * 255.0).clip(0, 255).astype(np.float32) / 255.0  # 8-bit
        row = {"blurred": figures(blurred, sharp, inner, near)}
        levels, t_lev = timed(lambda b=blurred: deconvolve(b, sigma, psf=args.psf))
        row["levels"] = figures(levels, sharp, inner, near) | {"seconds": t_lev}
        if mode == "gather":  # the per-pixel reference once (minutes)
            pp, t_pp = timed(lambda b=blurred: deconvolve(b, sigma, psf=args.psf,
                                                          method="per-pixel"))
            row["per_pixel"] = figures(pp, sharp, inner, near) | {"seconds": t_pp}
            row["levels_vs_per_pixel_psnr_db"] = psnr(levels, pp, inner)
            row["speed_ratio_levels_over_per_pixel"] = t_pp / t_lev
        result["modes"][mode] = row
        print(mode, json.dumps(row, indent=1))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
