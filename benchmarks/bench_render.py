"""Benchmark of the render modes: Mpix/s per core at 640x480, sigma max 2, 8 and 16 px.

Times every mode with both PSF shapes (1 and 2 threads) and, in the same run:

* a plain gather written the obvious way (Numba, one ``exp`` per tap) as the baseline;
* the current gather and scatter kernels side by side with the frozen copies of the
  kernels they replaced (``benchmarks/baseline/`` of an older commit, read from git history by
  ``_kernel_pairs.load_baseline``: the hand-unrolled lane code): both run
  serially in the calling thread on the same prepared inputs, calls interleaved round by
  round so the machine's load hits both alike, timed by the thread's CPU time and by the
  wall clock; the outputs are compared (also on random sigma maps up to 32 px): the gather
  bit for bit, the scatter by its largest relative difference (its grouped path, which
  spreads GROUP adjacent sources together, sums in another order: rounding only);
* the cold compile of every engine kernel (a fresh process with an empty Numba cache);
* the cold start of a fresh process (import + first frame, kernels from the cache).

The scene is the engine notes' reference scene (at sigma max 8: mean sigma 2.5 px, ~396
taps per pixel); scatter is also timed on it plus tiny noise (no two equal neighbours: no
equal-sigma runs, every source through the grouped path). Times are medians of
``--repeats`` runs (the side-by-side comparisons: at least 9 interleaved rounds, more for
short calls, about a second's worth); the load average is recorded because the machine is
shared. The first
run compiles the frozen baseline kernels (about a minute and a half; cached afterwards).

Two realistic scenes beside the bands ("speed on real depth maps"), one thread,
every mode and PSF at sigma max 2, 8 and 16, plus the old-vs-new kernel comparison on them:

* ``room``: a procedural indoor room at 640x480 (``get_source("procedural", None, ...)``,
  train scene 0): floor, ceiling and side walls slanted (smooth depth), back wall and box
  fronts flat, exact occlusion edges; depth 1.0-8.5 m, focus 2 m;
* ``motorcycle``: the real Middlebury 2014 Motorcycle (2.1-5.0 m; NaN filled from the
  nearest valid pixel by ``synth.fill_invalid_depth``), centre-cropped to 4:3 and resized
  to 640x480 (image: area, depth: nearest, never a blend across an occlusion edge); focus 3 m.

Both use the ``2hded`` camera's thin-lens sigma, scaled to the sigma max (the scenes are
built in ``benchmarks/_scenes.py``). On them the layered mode is also timed against its
frozen copy (``benchmarks/baseline/layered.py`` from git history, every level through
``cv2.GaussianBlur``, uniform levels), against itself with uniform levels and against
the gather ``render()``,
interleaved, thread CPU time: its ratio to gather is that one. OpenCV is set to
one thread for the whole run, so that every "1 thread" figure is one thread.

Writes ``benchmarks/results/bench_render.json`` (``bench_render_realistic.json`` when the
bands scene is not among ``--scenes``). Usage::

    .venv/bin/python benchmarks/bench_render.py [--repeats 5] [--quick]
        [--scenes bands room motorcycle]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numba
import numpy as np
from numba import njit

from defocuskit.blur import MODES, PSFS, render
from defocuskit.blur._gather_kernels import LANES
from defocuskit.blur._scatter_kernels import (
    GROUP,
    RUN_MIN,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_machine.py, _scenes.py
from _kernel_pairs import (  # noqa: E402
    compare,
    compile_all,
    equality,
    kernel_pair,
    load_baseline,
    side_by_side,
    timeit,
)
from _machine import cpu_model  # noqa: E402
from _scenes import (  # noqa: E402, F401 - the scenes, also used through this module
    REALISTIC,
    H,
    W,
    realistic_base,
    realistic_scene,
    run_fraction,
    scene,
    scene_stats,
    without_runs,
)

OUT = Path(__file__).resolve().parent / "results" / "bench_render.json"
OUT_REALISTIC = OUT.with_name("bench_render_realistic.json")
SCENES = ("bands", "room", "motorcycle")


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


def old_vs_new(kernels, repeats: int, smaxes) -> tuple[list[dict], list[dict]]:
    """The current gather/scatter kernels against the frozen ones: speed and bitwise equality."""
    rows, checks = [], []
    rng = np.random.default_rng(5)
    for smax in (2.0, 8.0, 16.0, 32.0):  # random maps, odd sizes, up to the clamp
        img = rng.random((61, 83, 3), dtype=np.float32)
        sig = rng.uniform(0, smax, (61, 83)).astype(np.float32)
        sig[10:20, 5:40] = sig[10, 5]  # runs of equal sigma
        for mode in ("gather", "scatter"):
            a, b = kernel_pair(kernels, mode, img, sig)[2]()
            checks.append({"map": f"random 61x83, sigma < {smax:g}", "mode": mode,
                           **equality(a, b)})
    for smax in smaxes:
        img, sigma, _ = scene(smax)
        cases = [("gather", "bands", sigma), ("scatter", "bands", sigma),
                 ("scatter", "no runs", without_runs(sigma))]
        for mode, label, sig in cases:
            compare(kernels, mode, label, smax, img, sig, repeats, rows, checks)
    return rows, checks


def realistic(kernels, names, smaxes, repeats: int, sbs_repeats: int) -> dict:
    """Every mode and PSF on the realistic scenes (whole ``render()``, one thread), the
    gather and scatter kernels against the frozen ones on them, and the issue's ratios."""
    stats, rows, sbs, checks, lay = {}, [], [], [], []
    for name in names:
        for smax in smaxes:
            img, sigma, depth, focus = realistic_scene(name, smax)
            st = scene_stats(sigma)
            st.update(run_fraction=run_fraction(sigma), focus_m=focus,
                      depth_min_m=float(depth.min()), depth_max_m=float(depth.max()))
            stats[f"{name} {smax:g}"] = st
            for mode in MODES:
                for psf in PSFS:
                    t = timeit(lambda img=img, sigma=sigma, depth=depth, mode=mode, psf=psf,
                               focus=focus:
                               render(img, sigma, mode=mode, psf=psf, depth=depth, threads=1,
                                      focus_distance=focus), repeats)
                    rows.append({"scene": name, "mode": mode, "psf": psf, "sigma_max": smax,
                                 "threads": 1, "seconds": t,
                                 "mpix_per_s_per_core": H * W / t / 1e6})
            for mode, label, sig in (("gather", name, sigma), ("scatter", name, sigma),
                                     ("scatter", f"{name} no runs", without_runs(sigma))):
                compare(kernels, mode, label, smax, img, sig, sbs_repeats, sbs, checks)
            lay.append(layered_pair(name, smax, img, sigma, depth, focus, sbs_repeats))
    ratios = []
    for name in names:
        for smax in smaxes:
            def t(mode, psf="gaussian", name=name, smax=smax):
                return next(r["seconds"] for r in rows if r["scene"] == name and r["mode"] == mode
                            and r["psf"] == psf and r["sigma_max"] == smax)

            def k(mode, label, name=name, smax=smax):
                return next(r for r in sbs if r["scene"] == label and r["mode"] == mode
                            and r["sigma_max"] == smax)

            sc, pp = k("scatter", name), k("scatter", f"{name} no runs")
            ratios.append({
                "scene": name, "sigma_max": smax,
                "gather_mpix_per_s_per_core": H * W / t("gather") / 1e6,
                "scatter_old_over_new_kernel_cpu": 1.0 / sc["new_over_old_cpu_median"],
                "scatter_old_per_pixel_over_new_kernel_cpu":
                    pp["old"]["cpu_median_s"] / sc["new"]["cpu_median_s"],
                "scatter_render_over_gather_render": t("scatter") / t("gather"),
                "layered_over_gather": t("layered") / t("gather"),
                "layered_over_gather_disc": t("layered", "disc") / t("gather", "disc"),
            })
    goals = {}
    for r in ratios:
        if r["sigma_max"] != 8.0:
            continue
        # layered / gather: the interleaved thread-CPU-time ratio of layered_pair (whole
        # render() wall-clock medians, taken minutes apart, varied by up to 40 %)
        lay_over_gather = next(x["new_over_gather"] for x in lay if x["scene"] == r["scene"]
                               and x["sigma_max"] == 8.0)
        for key, val, op, tgt in (
                ("gather_mpix_per_s_per_core", r["gather_mpix_per_s_per_core"], ">=", 20.0),
                ("scatter_x_old_per_pixel_path", r["scatter_old_over_new_kernel_cpu"], ">=", 2.0),
                ("layered_over_gather", lay_over_gather, "<=", 3.0)):
            goals[f"{r['scene']}_{key}"] = {"value": val, "target": f"{op} {tgt:g}",
                                            "met": bool(val >= tgt if op == ">=" else val <= tgt)}
    return {"scenes": stats, "rows": rows, "old_vs_new_1_thread": sbs,
            "bitwise_equal_to_old": checks, "layered_old_vs_new_1_thread": lay,
            "ratios": ratios, "targets_sigma_max_8": goals}


def layered_pair(name, smax, img, sigma, depth, focus, repeats: int) -> dict:
    """The layered mode against the frozen copy (``benchmarks/baseline/layered.py``, from git
    history: every level through ``cv2.GaussianBlur``, uniform 0.5 px levels), against
    itself with those
    uniform levels (``rel_step=0``: the engine's changes alone) and against the gather
    ``render()``, all one thread (OpenCV set to one thread in ``main``) and interleaved;
    and the largest difference of the old and the uniform outputs (the current one also
    fixes the double-counted last pixel of each layer's spill)."""
    load_baseline()
    from baseline.layered import blur_layered as old_layered

    from defocuskit.blur.layered import blur_layered

    def old():
        return old_layered(img, sigma, depth, focus_distance=focus)

    def uniform():
        return blur_layered(img, sigma, depth, focus_distance=focus, threads=1, rel_step=0.0)

    def new():
        return blur_layered(img, sigma, depth, focus_distance=focus, threads=1)

    def gather():
        return render(img, sigma, mode="gather", threads=1)

    diff = float(np.abs(old() - uniform()).max())
    t = side_by_side({"old": old, "uniform": uniform, "new": new, "gather": gather}, repeats)
    cpu = {k: v["cpu_median_s"] for k, v in t.items()}
    return {"mode": "layered", "scene": name, "sigma_max": smax, **t,
            "old_over_uniform_cpu_median": cpu["old"] / cpu["uniform"],
            "uniform_over_new_cpu_median": cpu["uniform"] / cpu["new"],
            "old_over_new_cpu_median": cpu["old"] / cpu["new"],
            "new_over_gather": cpu["new"] / cpu["gather"], "max_abs_diff": diff}


def print_equality(checks: list[dict]) -> None:
    print("equal to the frozen kernels (bitwise; else the largest difference relative to the "
          "output's largest value): " + ", ".join(
              f"{c['mode']} on {c['map']}: "
              + ("bitwise" if c["bitwise_equal"] else f"{c['max_rel_diff']:.1e}")
              for c in checks))


def print_realistic(res: dict) -> None:
    for key, st in res["scenes"].items():
        print(f"scene {key}: depth {st['depth_min_m']:.2f}-{st['depth_max_m']:.2f} m, focus "
              f"{st['focus_m']:g} m, mean sigma {st['mean_sigma_px']:.2f} px, "
              f"{st['taps_per_pixel']:.0f} taps/pixel, {100 * st['run_fraction']:.1f} % of "
              f"pixels in equal-sigma runs >= {RUN_MIN}")
    print(f"{'scene':<12}{'mode':<9}{'psf':<10}{'sigma max':>10}{'ms':>9}{'Mpix/s/core':>13}")
    for r in res["rows"]:
        print(f"{r['scene']:<12}{r['mode']:<9}{r['psf']:<10}{r['sigma_max']:>10.0f}"
              f"{1000 * r['seconds']:>9.1f}{r['mpix_per_s_per_core']:>13.2f}")
    print("old vs new kernels on the realistic scenes, 1 thread, medians in ms (CPU / wall)")
    for r in res["old_vs_new_1_thread"]:
        o, n = r["old"], r["new"]
        print(f"  {r['mode']:<8}{r['scene']:<20}sigma max {r['sigma_max']:>4.0f}: "
              f"old {1000 * o['cpu_median_s']:7.1f} / {1000 * o['wall_median_s']:7.1f}   "
              f"new {1000 * n['cpu_median_s']:7.1f} / {1000 * n['wall_median_s']:7.1f}   "
              f"new/old {r['new_over_old_cpu_median']:.3f} / "
              f"{r['new_over_old_wall_median']:.3f}")
    print_equality(res["bitwise_equal_to_old"])
    print("layered: frozen (all levels cv2.GaussianBlur, uniform levels), current with "
          "uniform levels, current (default levels), gather render(); 1 thread, interleaved, "
          "thread CPU ms")
    for r in res["layered_old_vs_new_1_thread"]:
        ms = {k: 1000 * r[k]["cpu_median_s"] for k in ("old", "uniform", "new", "gather")}
        print(f"  layered {r['scene']:<12}sigma max {r['sigma_max']:>4.0f}: old {ms['old']:7.1f}"
              f"  uniform {ms['uniform']:7.1f}  new {ms['new']:7.1f}  gather {ms['gather']:6.1f}"
              f"  old/uniform {r['old_over_uniform_cpu_median']:.2f}x  uniform/new "
              f"{r['uniform_over_new_cpu_median']:.2f}x  new/gather {r['new_over_gather']:.2f}"
              f"  max |old - uniform| {r['max_abs_diff']:.1e}")
    for r in res["ratios"]:
        print(f"ratios {r['scene']} sigma max {r['sigma_max']:g}: gather "
              f"{r['gather_mpix_per_s_per_core']:.1f} Mpix/s/core; scatter old/new kernel "
              f"{r['scatter_old_over_new_kernel_cpu']:.2f}x, old per-pixel (no runs)/new "
              f"{r['scatter_old_per_pixel_over_new_kernel_cpu']:.2f}x; scatter/gather "
              f"{r['scatter_render_over_gather_render']:.2f}; layered/gather "
              f"{r['layered_over_gather']:.2f} (disc {r['layered_over_gather_disc']:.2f})")
    for k, v in res["targets_sigma_max_8"].items():
        print(f"target {k}: {v['value']:.2f} {v['target']} -> {'met' if v['met'] else 'NOT met'}")


def cold_start() -> float:
    code = ("import time; t = time.perf_counter(); import numpy as np; "
            "from defocuskit import render; "
            "render(np.zeros((480, 640, 3), np.uint8), np.full((480, 640), 4, np.float32), "
            "mode='gather'); "
            "print(time.perf_counter() - t)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(res.stdout.strip())


def cold_compile() -> dict:
    """Compile every engine kernel in a fresh process with an empty Numba cache.

    Returns wall and CPU seconds (the CPU time is what the compile costs on an idle
    machine; the wall time includes waiting for a shared machine's cores).
    """
    code = ("import time; t = time.perf_counter(); c = time.process_time(); "
            "import numpy as np; from defocuskit.blur import MODES, PSFS, render; "
            "img = np.zeros((16, 20, 3), np.float32); s = np.ones((16, 20), np.float32); "
            "[render(img, s, mode=m, psf=p, depth=np.ones((16, 20))) "
            "for m in MODES for p in PSFS]; "
            "print(time.perf_counter() - t, time.process_time() - c)")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env=env)
    wall, cpu = map(float, res.stdout.split())
    return {"wall_s": wall, "cpu_s": cpu}


def targets(rows: list[dict], cold: list[float], compile_s: dict, sbs: list[dict]) -> dict:
    """The issue's speed targets, judged at sigma max 8 (the reference scene) in this run."""
    def row(mode, threads, psf="gaussian"):
        return next(r for r in rows if r["mode"] == mode and r["sigma_max"] == 8.0
                    and r["threads"] == threads and r["psf"] == psf)

    g1, s1, l1 = row("gather", 1), row("scatter", 1), row("layered", 1)
    worst = {m: max(r["new_over_old_cpu_median"] for r in sbs if r["mode"] == m)
             for m in ("gather", "scatter")}
    checks = {
        "gather_mpix_per_s_per_core": (g1["mpix_per_s_per_core"], ">=", 10.0),
        "gather_x_plain": (g1["speedup_vs_plain"], ">=", 20.0),
        "scatter_mpix_per_s_per_core": (s1["mpix_per_s_per_core"], ">=", 5.0),
        "layered_time_over_gather": (l1["seconds"] / g1["seconds"], "<=", 3.0),
        "cold_start_s_median": (float(np.median(cold)), "<", 1.0),
        "cold_compile_all_kernels_cpu_s": (compile_s["cpu_s"], "<=", 15.0),
        "gather_new_over_old_worst": (worst["gather"], "<=", 1.10),
        "scatter_new_over_old_worst": (worst["scatter"], "<=", 1.10),
    }
    return {k: {"value": v, "target": f"{op} {t:g}",
                "met": bool(v >= t if op == ">=" else v <= t if op == "<=" else v < t)}
            for k, (v, op, t) in checks.items()}


def options_main(repeats: int) -> None:
    """``--options``: see ``_render_options``."""
    from _render_options import bench_options
    from _scenes import realistic_scene

    img, sigma, depth, focus = realistic_scene("motorcycle", 8.0)
    load_before = os.getloadavg()
    res = bench_options((img, sigma, depth, focus), max(repeats, 3))
    out = OUT.with_name("bench_render_options.json")
    for name, r in res.items():
        print(f"{name:30s} {r['seconds']:8.3f} s  x{r['ratio']:.2f}")
    out.write_text(json.dumps({
        "scene": "motorcycle 640x480, sigma max 8 px, 1 thread", "options": res,
        "command": "python benchmarks/bench_render.py --options"
                   + (f" --repeats {repeats}" if repeats != 5 else ""),
        "machine": {"cpu": cpu_model(simd=True), "cpus": os.cpu_count(),
                    "numba": numba.__version__},
        "load_average": {"before": load_before, "after": os.getloadavg()}}, indent=1) + "\n")
    print(f"wrote {out}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="sigma max 8 only")
    ap.add_argument("--scenes", nargs="+", choices=SCENES, default=list(SCENES),
                    help="scenes to run (default: all); without 'bands' only the realistic "
                         "scenes run, written to bench_render_realistic.json")
    ap.add_argument("--options", action="store_true",
                    help="only the render options (polygon, bank, dual-pixel, diffraction, "
                         "JPEG, chromatic) beside the Gaussian gather on the Motorcycle, "
                         "written to bench_render_options.json")
    args = ap.parse_args(argv)
    if args.options:
        return options_main(args.repeats)
    import cv2

    # OpenCV (the layered mode's short Gaussians, its disc and the frozen layered copy) has
    # its own thread pool: one thread, so that "1 thread" holds for every mode
    cv2.setNumThreads(1)
    load_before = os.getloadavg()
    smaxes = (8.0,) if args.quick else (2.0, 8.0, 16.0)
    names = [n for n in SCENES if n in args.scenes and n != "bands"]
    kernels = compile_all()
    real = realistic(kernels, names, smaxes, args.repeats, max(args.repeats, 9)) if names else {}
    command = ("python benchmarks/bench_render.py" + (" --quick" if args.quick else "")
               + ("" if set(args.scenes) == set(SCENES) else " --scenes " + " ".join(args.scenes))
               + (f" --repeats {args.repeats}" if args.repeats != 5 else ""))
    machine = {"cpu": cpu_model(simd=True), "cpus": os.cpu_count(), "platform": platform.platform(),
               "python": platform.python_version(), "numba": numba.__version__,
               "numpy": np.__version__}
    if "bands" not in args.scenes:
        load_after = os.getloadavg()
        print(f"CPU: {cpu_model(simd=True)}, {os.cpu_count()} logical CPUs; "
              f"numba {numba.__version__}")
        print_realistic(real)
        print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}")
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT_REALISTIC.write_text(json.dumps({
            "image": [H, W], "realistic": real,
            "load_average": {"before": load_before, "after": load_after},
            "scatter_group": GROUP, "scatter_run_min": RUN_MIN,
            "machine": machine, "command": command}, indent=2))
        print(f"wrote {OUT_REALISTIC}")
        return
    compile_s = cold_compile()
    rows, scenes = [], {}
    sbs, checks = old_vs_new(kernels, max(args.repeats, 9), smaxes)
    small = np.zeros((8, 8, 3), np.float32), np.ones((8, 8), np.float32), np.empty((8, 8, 3),
                                                                                   np.float32)
    for smax in smaxes:
        img, sigma, depth = scene(smax)
        scenes[f"{smax:g}"] = scene_stats(sigma)
        out = np.empty_like(img)
        # the slow baseline: compiled on a tiny image, then timed (median of a few runs)
        base = timeit(lambda img=img, sigma=sigma, out=out: plain_gather(img, sigma, out),
                      max(1, args.repeats // 3), warm=lambda: plain_gather(*small))
        rows.append({"mode": "plain-gather", "psf": "gaussian", "sigma_max": smax, "threads": 1,
                     "seconds": base})
        for mode in MODES:
            for psf in PSFS:
                for threads in (1, 2):
                    t = timeit(lambda img=img, sigma=sigma, depth=depth, mode=mode, psf=psf,
                               threads=threads:
                               render(img, sigma, mode=mode, psf=psf, depth=depth,
                                      threads=threads, focus_distance=2.0), args.repeats)
                    rows.append({"mode": mode, "psf": psf, "sigma_max": smax,
                                 "threads": threads, "seconds": t})
    for r in rows:
        mpix = H * W / r["seconds"] / 1e6
        r["mpix_per_s_per_core"] = mpix / r["threads"]
        base = next(b for b in rows if b["mode"] == "plain-gather" and
                    b["sigma_max"] == r["sigma_max"])
        r["speedup_vs_plain"] = base["seconds"] / r["seconds"]
    cold = [cold_start() for _ in range(3)]
    load_after = os.getloadavg()
    print(f"CPU: {cpu_model(simd=True)}, {os.cpu_count()} logical CPUs; LANES = {LANES}")
    for smax, st in scenes.items():
        print(f"scene sigma max {smax}: mean sigma {st['mean_sigma_px']:.2f} px, "
              f"{st['taps_per_pixel']:.0f} taps/pixel")
    print(f"{'mode':<14}{'psf':<10}{'sigma max':>10}{'threads':>8}{'ms':>9}{'Mpix/s/core':>13}"
          f"{'x plain':>9}")
    for r in rows:
        print(f"{r['mode']:<14}{r['psf']:<10}{r['sigma_max']:>10.0f}{r['threads']:>8}"
              f"{1000 * r['seconds']:>9.1f}{r['mpix_per_s_per_core']:>13.2f}"
              f"{r['speedup_vs_plain']:>9.1f}")
    print("side by side, 1 thread, interleaved, medians in ms (thread CPU time / wall): "
          "old = the frozen unrolled kernel")
    for r in sbs:
        o, n = r["old"], r["new"]
        print(f"  {r['mode']:<8}{r['scene']:<9}sigma max {r['sigma_max']:>4.0f}: "
              f"old {1000 * o['cpu_median_s']:7.1f} / {1000 * o['wall_median_s']:7.1f}   "
              f"new {1000 * n['cpu_median_s']:7.1f} / {1000 * n['wall_median_s']:7.1f}   "
              f"new/old {r['new_over_old_cpu_median']:.3f} / "
              f"{r['new_over_old_wall_median']:.3f}")
    print_equality(checks)
    print(f"cold compile of every kernel (empty Numba cache): {compile_s['wall_s']:.1f} s wall, "
          f"{compile_s['cpu_s']:.1f} s CPU")
    print(f"cold start (fresh process: import + first 640x480 frame): "
          f"{', '.join(f'{c:.2f} s' for c in cold)}")
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}")
    goals = targets(rows, cold, compile_s, sbs) if 8.0 in smaxes else {}
    for k, v in goals.items():
        print(f"target {k}: {v['value']:.2f} {v['target']} -> {'met' if v['met'] else 'NOT met'}")
    if real:
        print_realistic(real)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "image": [H, W], "scenes": scenes, "rows": rows, "old_vs_new_1_thread": sbs,
        "bitwise_equal_to_old": checks, "cold_compile": compile_s, "cold_start_s": cold,
        "targets_sigma_max_8": goals, "lanes": LANES, "scatter_group": GROUP,
        "scatter_run_min": RUN_MIN,
        "load_average": {"before": load_before, "after": load_after},
        "machine": machine, "command": command, "realistic": real,
    }, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
