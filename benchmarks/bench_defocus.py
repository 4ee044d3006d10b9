"""Benchmark of the differentiable blur (trainer.defocus.reblur) beside the Numba gather.

Rows: forward and forward + backward of ``reblur`` at 256² batch 4 (σ max 8 px) and at
512² batch 1 (σ max 16 and 32 px), with peak memory (CUDA: ``max_memory_allocated``; CPU:
the process's peak RSS growth, a coarse figure), and, in the same run, the Numba engine's
exact gather forward on the same frames (the reference ``reblur`` is checked against).
Inputs: crops of the real Middlebury Motorcycle pair (scikit-image) with a thin-lens σ map
(focus 3 m) scaled to the row's σ max. Writes ``benchmarks/results/bench_defocus.json``.
Usage::

    .venv/bin/python benchmarks/bench_defocus.py [--device cpu|cuda] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from defocuskit import render
from defocuskit.camera.optics import Camera
from defocuskit.sources import get_source
from trainer.defocus import reblur, sigma_levels

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_machine.py
from _machine import cpu_model  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "bench_defocus.json"


def frames(size: int, batch: int, sigma_max: float):
    """``batch`` crops of ``size``² of the Motorcycle pair (resized up where needed)."""
    import cv2

    src = get_source("middlebury", None)
    s = src.read(src.splits()[0], 0)
    d = np.where(np.isfinite(s.depth), s.depth, np.nanmax(s.depth)).astype(np.float32)
    cam = Camera(focal_length=0.05, f_number=1.4, focus_distance=3.0, pixel_pitch=6e-6)
    sig = cam.sigma_px(d).astype(np.float32)
    sig *= np.float32(sigma_max / sig.max())
    img = s.aif.astype(np.float32) / 255
    if min(img.shape[:2]) < size:
        f = size / min(img.shape[:2])
        img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_LINEAR)
        sig = cv2.resize(sig, None, fx=f, fy=f, interpolation=cv2.INTER_LINEAR) * f
        sig = np.minimum(sig, sigma_max)
    h, w = sig.shape
    out_i, out_s = [], []
    for b in range(batch):
        y = (h - size) * b // max(batch - 1, 1)
        x = (w - size) * (batch - 1 - b) // max(batch - 1, 1)
        out_i.append(img[y:y + size, x:x + size])
        out_s.append(sig[y:y + size, x:x + size])
    return np.stack(out_i), np.stack(out_s)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_reblur(imgs, sigs, device, repeats):
    a = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous().to(device)
    s = torch.from_numpy(sigs)[:, None].contiguous().to(device)
    fwd, both = [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            reblur(a, s)
        _sync(device)
        fwd.append(time.perf_counter() - t0)
        ar, sr = a.clone().requires_grad_(True), s.clone().requires_grad_(True)
        _sync(device)
        t0 = time.perf_counter()
        reblur(ar, sr).square().mean().backward()
        _sync(device)
        both.append(time.perf_counter() - t0)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    return float(np.median(fwd)), float(np.median(both)), float(peak)


def time_gather(imgs, sigs, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for img, sig in zip(imgs, sigs, strict=True):
            render(img, sig, mode="gather")
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rows", default="256x4@8,512x1@16,512x1@32",
                    help="SIZExBATCH@SIGMAMAX, comma-separated")
    args = ap.parse_args()
    device = torch.device(args.device)
    # compile first
    render(np.zeros((8, 8, 3), np.float32), np.ones((8, 8), np.float32), mode="gather")
    rows = []
    for spec in args.rows.split(","):
        size_batch, smax = spec.split("@")
        size, batch = (int(v) for v in size_batch.split("x"))
        imgs, sigs = frames(size, batch, float(smax))
        fwd, both, peak = time_reblur(imgs, sigs, device, args.repeats)
        gather = time_gather(imgs, sigs, args.repeats)
        row = {"size": size, "batch": batch, "sigma_max": float(smax),
               "levels": len(sigma_levels(float(smax))), "reblur_forward_s": round(fwd, 4),
               "reblur_forward_backward_s": round(both, 4),
               "peak_memory_mib": round(peak, 1), "numba_gather_forward_s": round(gather, 4),
               "forward_backward_over_gather": round(both / gather, 2)}
        rows.append(row)
        print(json.dumps(row))
    result = {"device": str(device), "cpu": cpu_model(), "torch_threads": torch.get_num_threads(),
              "cuda": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
              "torch": torch.__version__, "load_average": os.getloadavg(), "rows": rows}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    out = OUT if device.type == "cpu" else OUT.with_name(f"bench_defocus_{device.type}.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
