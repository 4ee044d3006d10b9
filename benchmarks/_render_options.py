"""Speed of the render options beside the plain Gaussian gather (``bench_render.py
--options``): the Middlebury Motorcycle at 640x480, sigma max 8 px (``_scenes``), one
thread, each call timed by the wall clock, rounds interleaved so the machine's load hits
every option alike; the figure is the median over the rounds and its ratio to the plain
Gaussian gather of the same rounds.

The diffraction floor changes sigma only (``hypot(sigma, 0.42 lambda N / pitch)``): it is
timed as the Gaussian gather of the widened sigma (550 nm, f/8, 5 um pixels: 0.37 px).
Chromatic aberration is timed with a sigma per channel of 1.15, 1 and 0.85 times the
scene's (R, G, B), in gather and in layered (beside the plain layered render).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from defocuskit import render

BANK = Path(__file__).parents[1] / "samples" / "psf_bank_example.npz"
FLOOR_PX = 0.42 * 550e-9 * 8.0 / 5e-6


def cases(img, sigma, depth, focus):
    """name -> a call rendering the scene with that option (all gather unless named)."""
    kw = dict(depth=depth, focus_distance=focus, threads=1)
    widened = np.hypot(sigma, FLOOR_PX).astype(np.float32)
    u8 = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    per_channel = np.stack([sigma * 1.15, sigma, sigma * 0.85], axis=-1).astype(np.float32)
    fds = (focus, focus, focus)
    return {
        "gaussian gather (baseline)": lambda: render(img, sigma, mode="gather", **kw),
        "disc gather": lambda: render(img, sigma, mode="gather", psf="disc", **kw),
        "polygon:6 gather": lambda: render(img, sigma, mode="gather", psf="polygon:6", **kw),
        "polygon:6 scatter": lambda: render(img, sigma, mode="scatter", psf="polygon:6", **kw),
        "bank (example) gather": lambda: render(img, sigma, mode="gather", psf=f"bank:{BANK}",
                                                **kw),
        "dual-pixel gaussian gather": lambda: render(img, sigma, mode="gather",
                                                     dual_pixel=True, **kw),
        "diffraction floor gather": lambda: render(img, widened, mode="gather", **kw),
        "jpeg 90 gather (uint8)": lambda: render(u8, sigma, mode="gather", jpeg=90, **kw),
        "chromatic gaussian gather": lambda: render(img, per_channel, mode="gather", depth=depth,
                                                    focus_distance=fds, threads=1),
        "gaussian layered": lambda: render(img, sigma, mode="layered", **kw),
        "chromatic gaussian layered": lambda: render(img, per_channel, mode="layered",
                                                     depth=depth, focus_distance=fds, threads=1),
    }


def bench_options(scene, repeats: int) -> dict:
    """Median seconds and ratio to the baseline of every option (see the module doc)."""
    calls = cases(*scene)
    for call in calls.values():  # compile and build the tables once
        call()
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            t = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t)
    base = float(np.median(times["gaussian gather (baseline)"]))
    return {k: {"seconds": float(np.median(v)), "ratio": float(np.median(v)) / base}
            for k, v in times.items()}
