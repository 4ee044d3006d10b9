"""On-the-fly loader throughput: samples/s per worker at 256² crops, for each mode and PSF.

Makes a scene-only dataset (``synth --render-mode scene-only``) of procedural indoor scenes
at NYU's frame size (480×640, depth about 0.7-9.6 m), then times
:class:`trainer.onthefly.OnTheFlyDataset` items (read AiF and depth, draw a camera and a
focus, render the margin-padded 256² crop, cut, flip, convert) in this process, one Numba
thread: the rate of one DataLoader worker. From it, the workers needed for 220 samples/s
(the GPU's training rate, docs/benchmarks.md), and the rate measured through a DataLoader
with 2 workers on this machine. Writes ``benchmarks/results/bench_onthefly.json``.

    python benchmarks/bench_onthefly.py                  # 16 frames, 24 samples per case
    python benchmarks/bench_onthefly.py --samples 48     # steadier figures
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_machine.py
from _machine import cpu_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
GPU_TARGET = 220.0  # samples/s the GPU trains at (batch 4, 256² crops): the loader's target
CASES = [(m, p) for m in ("gather", "scatter", "layered") for p in ("gaussian", "disc")]


def make_scenes(path: Path, frames: int, camera: str, focus: str) -> None:
    from defocuskit.pipeline.config import SynthConfig
    from defocuskit.pipeline.synth import run_synth

    cfg = SynthConfig(source="procedural", input="-", output=str(path), render_mode="scene-only",
                      camera=camera, focus=focus, splits=["train"], limit=frames,
                      source_options={"height": 480, "width": 640, "n_train": frames,
                                      "n_test": 1})
    run_synth(cfg, progress=False)


def per_worker_rate(ds, n: int) -> dict:
    """Items per second in this process (the rate of one worker), and what they held."""
    ds.set_epoch(0)
    ds[0]  # first read: opens the store, loads kernels
    margins, sigmas = [], []
    t0 = time.perf_counter()
    for k in range(n):
        item = ds[k % len(ds)]
        sigmas.append(float(np.nanmean(item["sigma"].numpy())))
    dt = time.perf_counter() - t0
    # the margins of the same draws, outside the timing
    from defocuskit import draw_camera
    from defocuskit.recipe import fill_invalid_depth, window_margin

    for k in range(n):
        i = ds.indices[k % len(ds)]
        depth = ds._read("depth", i)
        camera = draw_camera(depth, ds.settings, ds.render_rng(i))
        margins.append(window_margin(camera, fill_invalid_depth(depth), ds.settings))
    return {"samples_per_s": n / dt, "ms_per_sample": 1e3 * dt / n,
            "mean_sigma_px": float(np.mean(sigmas)), "mean_margin_px": float(np.mean(margins)),
            "max_margin_px": int(np.max(margins))}


def loader_rate(ds, workers: int, n_batches: int, batch_size: int = 4) -> float:
    import torch
    from torch.utils.data import DataLoader

    ds.set_epoch(1)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(1), persistent_workers=False)
    it = iter(loader)
    next(it)  # worker start-up is not part of the steady rate
    t0 = time.perf_counter()
    got = 0
    for _ in range(n_batches):
        try:
            got += next(it)["defocused"].shape[0]
        except StopIteration:
            it = iter(loader)
            got += next(it)["defocused"].shape[0]
    return got / (time.perf_counter() - t0)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16, help="scenes in the dataset")
    ap.add_argument("--samples", type=int, default=24, help="timed samples per case")
    ap.add_argument("--batches", type=int, default=12, help="timed batches of 4, 2 workers")
    ap.add_argument("--camera", default="2hded")
    ap.add_argument("--focus", default="histogram")
    ap.add_argument("--output", default=str(RESULTS / "bench_onthefly.json"))
    args = ap.parse_args(argv)

    import torch

    from defocuskit.dataset.store import open_dataset
    from trainer.onthefly import OnTheFlyDataset, resolve_render_settings, warm_up

    torch.set_num_threads(1)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "scenes.zarr"
        t0 = time.perf_counter()
        make_scenes(data, args.frames, args.camera, args.focus)
        print(f"scene-only dataset: {args.frames} frames of 480x640 in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
        attrs = open_dataset(data).attrs
        rows = []
        for mode, psf in CASES:
            settings = resolve_render_settings(attrs, mode=mode, psf=psf)
            warm_up(settings)
            ds = OnTheFlyDataset(data, "train", settings=settings, crop=256, seed=0,
                                 heads=("depth", "aif", "defocus"),
                                 arrays=("aif", "depth", "sigma"))
            row = {"mode": mode, "psf": psf, **per_worker_rate(ds, args.samples)}
            row["workers_for_target"] = math.ceil(GPU_TARGET / row["samples_per_s"])
            row["loader_2_workers_samples_per_s"] = loader_rate(ds, 2, args.batches)
            rows.append(row)
            print(f"{mode:>8} {psf:>8}: {row['samples_per_s']:6.1f} samples/s per worker "
                  f"({row['ms_per_sample']:.1f} ms), margin {row['mean_margin_px']:.0f} px, "
                  f"{row['workers_for_target']} workers for {GPU_TARGET:.0f}/s; 2 workers: "
                  f"{row['loader_2_workers_samples_per_s']:.1f} samples/s", file=sys.stderr)
    result = {
        "benchmark": "bench_onthefly", "crop": 256, "frame": [480, 640],
        "source": "procedural", "frames": args.frames, "samples_per_case": args.samples,
        "camera": args.camera, "focus": args.focus, "gpu_target_samples_per_s": GPU_TARGET,
        "cpu": cpu_model(), "cores": os.cpu_count(),
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "python": sys.version.split()[0], "torch_threads": 1, "numba_threads_per_worker": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
