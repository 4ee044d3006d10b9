"""How fast can an exact gather be on this core? The FMA roofline of the realistic scenes.

The exact gather averages ``(2 ceil(3 sigma) + 1)^2`` taps per pixel and channel, one FMA
each, with each output pixel's own weights (no sharing between pixels: that is what makes
it exact). So a frame needs at least ``taps x 3`` float32 FMAs per pixel, and a core that
can do ``P`` float32 FMA lanes per second can never gather faster than ``P / (3 taps)``
pixels per second, whatever the code. This script measures ``P`` on this core (a Numba
loop of 12 independent 8-float FMA chains, compiled like the engine's kernels, single
thread) and, on the bands, room and Motorcycle scenes of ``bench_render.py`` at sigma
max 8, reports the gather's measured speed, the FMA rate that speed implies, its share of
``P``, the ceiling ``P / (3 taps)`` and the share of ``P`` that 20 Mpix/s would need.

Writes ``benchmarks/results/roofline.json``. Usage::

    .venv/bin/python benchmarks/roofline.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

from defocuskit.blur import render
from defocuskit.blur._jit import compile_kernel, stack_array

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model  # noqa: E402
from bench_render import realistic_scene, scene, scene_stats  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "roofline.json"
_NACC = 96  # 12 independent chains of 8 float32 lanes: enough to hide the FMA latency
GOAL_MPIX = 20.0


@njit(cache=False, fastmath={"contract"}, boundscheck=False, error_model="numpy")
def fma_chains(n, a, b, out):  # pragma: no cover - a benchmark kernel
    """``n`` rounds of ``acc = acc * a + b`` on 96 float32 lanes (converges: no overflow).

    12 accumulator vectors plus the two broadcast constants fit AVX2's 16 registers, so
    the loop is FMAs only (no loads).
    """
    acc = stack_array(_NACC, np.float32)
    for i in range(_NACC):
        acc[i] = out[i]
    for _ in range(n):
        for i in range(_NACC):
            acc[i] = acc[i] * a + b
    for i in range(_NACC):
        out[i] = acc[i]


def fma_peak(repeats: int) -> float:
    """Best of ``repeats`` timings: float32 FMA lanes per second, this thread."""
    compile_kernel(fma_chains, "void(int64, float32, float32, float32[::1])", simd="slp+loop")
    out = np.ones(_NACC, np.float32)
    n = 20_000_000
    best = float("inf")
    for _ in range(repeats):
        t0 = time.thread_time()
        fma_chains(n, np.float32(0.9999), np.float32(1e-4), out)
        best = min(best, time.thread_time() - t0)
    assert np.isfinite(out).all()
    return n * _NACC / best


def gather_speed(img, sigma, repeats: int) -> float:
    """Median thread-CPU seconds of one ``render(..., mode="gather", threads=1)``."""
    render(img, sigma, threads=1, mode="gather")
    ts = []
    for _ in range(repeats):
        t0 = time.thread_time()
        render(img, sigma, threads=1, mode="gather")
        ts.append(time.thread_time() - t0)
    return float(np.median(ts))


def cpu_ids() -> str:
    """``family F model M`` from /proc/cpuinfo (names the microarchitecture, e.g. 25/1 =
    AMD Zen 3), or an empty string."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return ""
    get = {ln.split(":", 1)[0].strip(): ln.split(":", 1)[1].strip() for ln in lines if ":" in ln}
    return f"family {get.get('cpu family', '?')} model {get.get('model', '?')}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    peak = fma_peak(args.repeats)
    rows = []
    scenes = [("bands", scene(8.0)[:2])]
    scenes += [(name, realistic_scene(name, 8.0)[:2]) for name in ("room", "motorcycle")]
    for name, (img, sigma) in scenes:
        taps = scene_stats(sigma)["taps_per_pixel"]
        secs = gather_speed(img, sigma, args.repeats)
        mpix = img.shape[0] * img.shape[1] / secs / 1e6
        demand = 3.0 * taps  # float32 FMA lanes per output pixel, at the least
        rows.append({
            "scene": name, "sigma_max": 8.0, "taps_per_pixel": taps,
            "gather_mpix_per_s": mpix,
            "gather_fma_lanes_per_s": mpix * 1e6 * demand,
            "share_of_peak": mpix * 1e6 * demand / peak,
            "ceiling_mpix_per_s": peak / demand / 1e6,
            f"share_of_peak_needed_for_{GOAL_MPIX:g}_mpix": GOAL_MPIX * 1e6 * demand / peak,
        })
    print(f"CPU: {cpu_model(simd=True)} {cpu_ids()}; measured float32 FMA peak "
          f"{peak / 1e9:.1f} G lanes/s (one thread)")
    print(f"{'scene':<12}{'taps/px':>9}{'gather Mpix/s':>15}{'% of peak':>11}"
          f"{'ceiling Mpix/s':>16}{f'% peak for {GOAL_MPIX:g}':>16}")
    for r in rows:
        print(f"{r['scene']:<12}{r['taps_per_pixel']:>9.0f}{r['gather_mpix_per_s']:>15.2f}"
              f"{100 * r['share_of_peak']:>11.0f}{r['ceiling_mpix_per_s']:>16.1f}"
              f"{100 * r[f'share_of_peak_needed_for_{GOAL_MPIX:g}_mpix']:>16.0f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "cpu": f"{cpu_model(simd=True)} {cpu_ids()}", "cpus": os.cpu_count(),
        "fma_peak_lanes_per_s": peak, "rows": rows, "load_average": os.getloadavg(),
        "command": "python benchmarks/roofline.py"
                   + (f" --repeats {args.repeats}" if args.repeats != 5 else ""),
    }, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
