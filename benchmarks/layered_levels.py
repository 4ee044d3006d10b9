"""How the layered mode's result and speed depend on its level spacing.

The layered mode cuts the scene into sigma levels at most ``max_step`` px apart and
composites them "over" each other. A continuous surface is cut into bands; each band's
blurred coverage is below 1 near its edges, so "over" lets a nearer band of the *same*
surface hide part of the band behind it, which no lens does (a plane does not occlude
itself). The more levels, the more cuts inside one blur window, the larger this error;
the fewer levels, the coarser sigma is quantised. This script measures both on:

* ``plane``: a textured plane slanted from 3 to 7 m, focus 2 m (sigma 2.8-6 px), no
  occlusion at all: there gather and scatter agree (they differ only in whose sigma
  weighs a tap) and are the reference;
* ``through-focus``: the same kind of plane slanted from 1.2 to 4.2 m through the 2 m
  focus plane (sigma 0-3 px, in front and behind; no occlusion), where the levels near
  sigma 0 matter most;
* ``motorcycle``: the real Middlebury Motorcycle of ``bench_render.py`` at sigma max 8
  (real depth varies from pixel to pixel and has occlusion edges; gather and scatter
  differ there, so both differences are given).

For each uniform ``max_step`` (``rel_step=0``) it reports the mean and 99th percentile
of |layered - gather| and |layered - scatter| (in 1/255 of the image range, 8 px border
excluded), the number of levels and the time against the gather's (one thread, OpenCV
too); then the same errors for the experimental slab compositing
(``blur_layered(slab_px=W)``: levels summed within slabs W px of sigma wide, only slabs
composited) at the default levels; then errors and time for the relative spacing
(``blur_layered(rel_step=q)``: steps up to ``max(0.5, q |level|)``, so fewer levels far
from focus; the default is q = 0.4, q = 0 the uniform 0.5 px rule). Writes
``benchmarks/results/layered_levels.json``. Usage::

    .venv/bin/python benchmarks/layered_levels.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from defocuskit.blur import render

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_render  # noqa: E402
from _machine import cpu_model  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "layered_levels.json"
STEPS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
SLABS = (1.0, 2.0, 4.0)
RELS = (0.1, 0.25, 0.35, 0.4, 0.5)  # blur_layered(rel_step=...): steps <= max(0.5, rel |level|)


def plane_scene():
    """A 4-px random texture on a plane slanted from 3 to 7 m; focus 2 m, sigma <= 6 px."""
    rng = np.random.default_rng(0)
    h, w = 240, 320
    tex = rng.random((h // 4, w // 4, 3)).astype(np.float32)
    img = np.ascontiguousarray(np.repeat(np.repeat(tex, 4, 0), 4, 1))
    depth = np.broadcast_to(3.0 + 4.0 * np.arange(w) / w, (h, w)).copy()
    sigma = (6.0 * (1 - 2.0 / depth) / (1 - 2.0 / 7.0)).astype(np.float32)
    return img, sigma, depth, 2.0


def through_focus_scene():
    """A 4-px random texture on a plane slanted from 1.2 to 4.2 m; focus 2 m, sigma <= 3 px
    (in front of the focus plane on the left, behind it on the right)."""
    rng = np.random.default_rng(1)
    h, w = 240, 320
    tex = rng.random((h // 4, w // 4, 3)).astype(np.float32)
    img = np.ascontiguousarray(np.repeat(np.repeat(tex, 4, 0), 4, 1))
    depth = np.broadcast_to(1.2 + 3.0 * np.arange(w) / w, (h, w)).copy()
    s = np.abs(1.0 - 2.0 / depth)
    return img, (3.0 * s / s.max()).astype(np.float32), depth, 2.0


def study(img, sigma, depth, focus) -> dict:
    from defocuskit.blur.layered import sigma_levels

    c = (slice(8, -8), slice(8, -8))
    refs = {"gather": render(img, sigma, mode="gather"),
            "scatter": render(img, sigma, mode="scatter")}
    front = depth < focus
    signed = np.where(front, -sigma, sigma)
    from defocuskit.blur.layered import blur_layered

    def row_of(out, **key):
        row = dict(key)
        for name, ref in refs.items():
            e = np.abs(out - ref)[c] * 255.0
            row[f"mean_vs_{name}"] = float(e.mean())
            row[f"p99_vs_{name}"] = float(np.quantile(e, 0.99))
        return row

    def timed(**kw):  # one thread, OpenCV too; median thread CPU time of 5, after a warm-up
        ts = []
        for _ in range(6):
            t0 = time.thread_time()
            out = blur_layered(img, sigma, depth, focus_distance=focus, threads=1, **kw)
            ts.append(time.thread_time() - t0)
        return out, float(np.median(ts[1:]))

    tg = []
    for _ in range(6):
        t0 = time.thread_time()
        render(img, sigma, mode="gather", threads=1)
        tg.append(time.thread_time() - t0)
    t_gather = float(np.median(tg[1:]))
    rows = []
    for step in STEPS:  # uniform steps (rel_step 0)
        out, secs = timed(max_step=step, rel_step=0.0)
        rows.append(row_of(out, max_step_px=step, seconds=secs, over_gather=secs / t_gather,
                           levels=int(sigma_levels(float(signed.min()), float(signed.max()),
                                                   max_step=step, rel_step=0.0).size)))
    slabs = [row_of(blur_layered(img, sigma, depth, focus_distance=focus, slab_px=w),
                    slab_px=w) for w in SLABS]
    relative = []
    for rel in (0.0, *RELS):
        out, secs = timed(rel_step=rel)
        relative.append(row_of(out, rel_step=rel, seconds=secs, over_gather=secs / t_gather,
                               levels=int(sigma_levels(float(signed.min()), float(signed.max()),
                                                       rel_step=rel).size)))
    e = np.abs(refs["gather"] - refs["scatter"])[c] * 255.0
    return {"gather_vs_scatter_mean": float(e.mean()), "rows": rows, "slabs": slabs,
            "relative": relative}


def main() -> None:
    import cv2

    cv2.setNumThreads(1)  # the layered mode's short blurs: one thread, as the timed gather
    res = {"plane": study(*plane_scene()), "through-focus": study(*through_focus_scene()),
           "motorcycle": study(*bench_render.realistic_scene("motorcycle", 8.0))}
    for name, r in res.items():
        print(f"{name}: |gather - scatter| mean {r['gather_vs_scatter_mean']:.2f}/255")
        print(f"  {'max_step':>8} {'levels':>6} {'mean vs gather':>15} {'p99':>6} "
              f"{'mean vs scatter':>16} {'p99':>6} {'x gather':>9}")
        for row in r["rows"]:
            print(f"  {row['max_step_px']:>8g} {row['levels']:>6d} {row['mean_vs_gather']:>15.2f} "
                  f"{row['p99_vs_gather']:>6.1f} {row['mean_vs_scatter']:>16.2f} "
                  f"{row['p99_vs_scatter']:>6.1f} {row['over_gather']:>9.2f}")
        for row in r["slabs"]:
            print(f"  slabs {row['slab_px']:g} px (default levels): mean vs gather "
                  f"{row['mean_vs_gather']:.2f} (p99 {row['p99_vs_gather']:.1f}), vs scatter "
                  f"{row['mean_vs_scatter']:.2f}")
        for row in r["relative"]:
            print(f"  rel_step {row['rel_step']:g}: {row['levels']} levels, mean vs "
                  f"gather {row['mean_vs_gather']:.2f} (p99 {row['p99_vs_gather']:.1f}), "
                  f"{1000 * row['seconds']:.1f} ms = {row['over_gather']:.2f}x gather")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"results": res, "cpu": cpu_model(simd=True),
                               "command": "python benchmarks/layered_levels.py"}, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
