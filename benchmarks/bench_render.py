"""Benchmark of the render modes: Mpix/s per core at 640x480, sigma max 2, 8 and 16 px.

Also times, in the same run, a plain gather written the obvious way (Numba, one ``exp``
per tap) as the baseline, and the cold start of a fresh process (import + first frame).
Writes ``benchmarks/results/bench_render.json``. Usage::

    .venv/bin/python benchmarks/bench_render.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit

from defocuskit.optics import get_preset
from defocuskit.render import MODES, render

OUT = Path(__file__).resolve().parent / "results" / "bench_render.json"
H, W = 480, 640


def scene(sigma_max: float):
    """Textured image, stepped depth 0.7-10 m (focus 2 m), sigma scaled to ``sigma_max`` px."""
    rng = np.random.default_rng(0)
    img = rng.random((H, W, 3), dtype=np.float32)
    xx = np.arange(W)[None, :].repeat(H, 0)
    depth = 0.7 + 9.3 * np.floor(xx / W * 8) / 7  # eight vertical steps
    depth[100:300, 120:300] = 1.0  # a near box and a far box
    depth[250:420, 400:560] = 6.0
    cam = get_preset("2hded").make(image_width=W, rng=rng).with_focus(2.0)
    sigma = cam.sigma_px(depth)
    return img, (sigma * sigma_max / sigma.max()).astype(np.float32), depth


@njit(cache=False, parallel=False)
def plain_gather(img, sigma, out):
    """The textbook gather: one exp per tap, clamped borders (baseline only)."""
    h, w = sigma.shape
    for y in range(h):
        for x in range(w):
            s = sigma[y, x]
            r = int(math.ceil(3.0 * s))
            a0 = a1 = a2 = tot = 0.0
            for dy in range(-r, r + 1):
                yy = min(max(y + dy, 0), h - 1)
                for dx in range(-r, r + 1):
                    xx = min(max(x + dx, 0), w - 1)
                    wgt = math.exp(-(dx * dx + dy * dy) / (2.0 * s * s)) if s > 0 else 1.0
                    a0 += wgt * img[yy, xx, 0]
                    a1 += wgt * img[yy, xx, 1]
                    a2 += wgt * img[yy, xx, 2]
                    tot += wgt
            out[y, x, 0] = a0 / tot
            out[y, x, 1] = a1 / tot
            out[y, x, 2] = a2 / tot


def timeit(fn, repeats: int) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def cold_start() -> float:
    code = ("import time; t = time.perf_counter(); import numpy as np; "
            "from defocuskit.render import render; "
            "render(np.zeros((480, 640, 3), np.uint8), np.full((480, 640), 4, np.float32)); "
            "print(time.perf_counter() - t)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(res.stdout.strip())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="sigma max 8 only")
    args = ap.parse_args(argv)
    rows = []
    smaxes = (8.0,) if args.quick else (2.0, 8.0, 16.0)
    for smax in smaxes:
        img, sigma, depth = scene(smax)
        out = np.empty_like(img)
        base = timeit(lambda img=img, sigma=sigma, out=out: plain_gather(img, sigma, out),
                      max(1, args.repeats // 3))
        rows.append({"mode": "plain-gather", "sigma_max": smax, "threads": 1, "seconds": base})
        for mode in MODES:
            for threads in (1, 2):
                t = timeit(lambda img=img, sigma=sigma, depth=depth, mode=mode, threads=threads:
                           render(img, sigma, mode=mode, depth=depth, threads=threads,
                                  focus_distance=2.0), args.repeats)
                rows.append({"mode": mode, "sigma_max": smax, "threads": threads, "seconds": t})
    for r in rows:
        mpix = H * W / r["seconds"] / 1e6
        r["mpix_per_s_per_core"] = mpix / r["threads"]
        base = next(b for b in rows if b["mode"] == "plain-gather" and
                    b["sigma_max"] == r["sigma_max"])
        r["speedup_vs_plain"] = base["seconds"] / r["seconds"]
    cold = [cold_start() for _ in range(2)]
    print(f"{'mode':<14}{'sigma max':>10}{'threads':>8}{'ms':>9}{'Mpix/s/core':>13}{'x plain':>9}")
    for r in rows:
        print(f"{r['mode']:<14}{r['sigma_max']:>10.0f}{r['threads']:>8}"
              f"{1000 * r['seconds']:>9.1f}{r['mpix_per_s_per_core']:>13.2f}"
              f"{r['speedup_vs_plain']:>9.1f}")
    print(f"cold start (fresh process: import + first 640x480 frame): "
          f"{', '.join(f'{c:.2f} s' for c in cold)}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "image": [H, W], "rows": rows, "cold_start_s": cold,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "numba": numba.__version__,
                    "numpy": np.__version__},
        "command": "python benchmarks/bench_render.py",
    }, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
