"""Training throughput of 2HDED:NET and of the data loader, at 256 x 256.

Measures, for each batch size:

* ``train``: images/s of forward + backward + SGD step on device-resident inputs (the
  model alone), fp32; on CUDA also bf16 autocast + channels_last (and ``--compile``);
* ``loader``: samples/s of :class:`trainer.data.DefocusDataset` (random 256 crops + flip
  from a Zarr dataset of NYU-sized 427 x 561 frames) through a DataLoader;
* ``end_to_end`` (CUDA, or ``--e2e`` on the CPU): images/s of the real loop, loader
  feeding the fastest configuration, so "does the loader keep up" is measured, not guessed.

Writes ``benchmarks/results/bench_train.json``. On 2 CPU cores the defaults take a few
minutes; pass ``--steps``/``--batch-sizes`` to shorten.

Usage::

    python benchmarks/bench_train.py                      # CPU figures
    python benchmarks/bench_train.py --device cuda --workers 8 --compile
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _machine import cpu_model
from torch.utils.data import DataLoader

from defocuskit.dataset.store import write_arrays
from trainer.data import DefocusDataset, to_device_batch
from trainer.losses import TwoHeadedLoss
from trainer.model import ModelConfig, TwoHeadedNet, count_parameters

__all__ = ["bench_train_step", "bench_loader", "bench_end_to_end", "main"]

RESULTS = Path(__file__).resolve().parent / "results"
NYU_FRAME = (427, 561)  # NYU-v2 valid-area crop (rows, cols)
PAPER_SAMPLES = 500 * 795  # the paper's whole NYU schedule, samples


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _make_model(device, channels_last: bool, compile_: bool):
    model = TwoHeadedNet(ModelConfig()).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=2e-4, momentum=0.9)
    step_model = torch.compile(model) if compile_ else model
    return model, step_model, opt


def _step(step_model, opt, loss_fn, batch, amp, device):
    ctx = (torch.autocast("cuda", dtype=torch.bfloat16) if amp and device.type == "cuda"
           else torch.autocast("cpu", enabled=False))
    with ctx:
        pred = step_model(batch["defocused"])
    loss, _ = loss_fn({k: v.float() for k, v in pred.items()}, batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def bench_train_step(batch_size: int, *, device, amp=False, channels_last=False,
                     compile_=False, steps=3, warmup=1, size=256) -> dict:
    """Images/s of forward + backward + step on synthetic inputs already on ``device``."""
    torch.manual_seed(0)
    model, step_model, opt = _make_model(device, channels_last, compile_)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    batch = {"defocused": torch.rand(batch_size, 3, size, size, device=device),
             "aif": torch.rand(batch_size, 3, size, size, device=device),
             "depth": 1 + 9 * torch.rand(batch_size, 1, size, size, device=device)}
    batch = {k: v.contiguous(memory_format=fmt) for k, v in batch.items()}
    loss_fn = TwoHeadedLoss()
    model.train()
    for _ in range(warmup):
        _step(step_model, opt, loss_fn, batch, amp, device)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        _step(step_model, opt, loss_fn, batch, amp, device)
    _sync(device)
    dt = time.perf_counter() - t0
    out = {"batch_size": batch_size, "amp_bf16": amp, "channels_last": channels_last,
           "compile": compile_, "steps": steps, "seconds": dt,
           "images_per_s": batch_size * steps / dt}
    if device.type == "cuda":
        out["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        torch.cuda.reset_peak_memory_stats(device)
    return out


def _dataset(root: Path, n: int) -> Path:
    """A Zarr dataset of ``n`` NYU-sized frames with smooth (compressible) content."""
    path = root / "bench.zarr"
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    h, w = NYU_FRAME
    yy, xx = np.mgrid[0:h, 0:w]
    aif = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        base = 127 + 60 * np.sin(xx / (9 + i) + i) * np.cos(yy / 13.0)
        noise = rng.normal(0, 12, (h, w, 3))
        aif[i] = np.clip(base[..., None] + noise, 0, 255).astype(np.uint8)
    depth = np.broadcast_to(1 + 9 * yy / h, (n, h, w)).astype(np.float32)
    write_arrays(path, {"train": {"aif": aif, "defocused": aif, "depth": depth,
                                  "sigma": np.ones((n, h, w), np.float32)}}, shard_size=16)
    return path


def bench_loader(path, batch_size: int, *, workers: int, batches: int, size=256) -> dict:
    """Samples/s of the training DataLoader (crop + flip, uint8 collate, no model)."""
    ds = DefocusDataset(path, "train", crop=size, seed=0)
    dl = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                    drop_last=True, persistent_workers=workers > 0)
    it, seen = iter(dl), 0
    next(it)  # start-up (worker spawn, store open) is not throughput
    t0 = time.perf_counter()
    for _ in range(batches):
        try:
            b = next(it)
        except StopIteration:
            it = iter(dl)
            b = next(it)
        seen += b["defocused"].shape[0]
    dt = time.perf_counter() - t0
    return {"batch_size": batch_size, "workers": workers, "samples": seen, "seconds": dt,
            "samples_per_s": seen / dt}


def bench_end_to_end(path, batch_size: int, *, device, workers: int, steps: int, amp: bool,
                     channels_last: bool, compile_=False, size=256) -> dict:
    """Images/s of the real loop: DataLoader -> device -> float -> forward/backward/step."""
    torch.manual_seed(0)
    model, step_model, opt = _make_model(device, channels_last, compile_)
    ds = DefocusDataset(path, "train", crop=size, seed=0)
    dl = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                    drop_last=True, pin_memory=device.type == "cuda",
                    persistent_workers=workers > 0)
    loss_fn = TwoHeadedLoss()
    model.train()

    def batches():
        while True:
            yield from dl

    gen = batches()
    for _ in range(2):  # warm-up: workers, kernels, compilation
        _step(step_model, opt, loss_fn, to_device_batch(next(gen), device,
                                                        channels_last=channels_last), amp, device)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        b = to_device_batch(next(gen), device, channels_last=channels_last)
        _step(step_model, opt, loss_fn, b, amp, device)
    _sync(device)
    dt = time.perf_counter() - t0
    return {"batch_size": batch_size, "workers": workers, "amp_bf16": amp,
            "channels_last": channels_last, "compile": compile_, "steps": steps,
            "seconds": dt, "images_per_s": batch_size * steps / dt}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-sizes", default="4,16")
    p.add_argument("--steps", type=int, default=None, help="timed steps (CPU 2, CUDA 30)")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--loader-batches", type=int, default=None)
    p.add_argument("--compile", action="store_true", help="also time torch.compile (CUDA)")
    p.add_argument("--e2e", action="store_true", help="end-to-end loop also on the CPU")
    p.add_argument("--samples", type=int, default=64, help="frames in the bench dataset")
    p.add_argument("--out", default=str(RESULTS / "bench_train.json"))
    a = p.parse_args(argv)
    device = torch.device(a.device if a.device != "auto" else
                          ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    steps = a.steps or (30 if cuda else 2)
    sizes = [int(s) for s in a.batch_sizes.split(",")]
    info = {"device": torch.cuda.get_device_name(device) if cuda else platform.processor()
            or platform.machine(), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "load_average_before": list(os.getloadavg()),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "input": [256, 256],
            "parameters": count_parameters(TwoHeadedNet(ModelConfig()))}
    res = {"info": info, "train": [], "loader": [], "end_to_end": []}
    variants = [(False, False, False)]
    if cuda:
        variants.append((True, True, False))
        if a.compile:
            variants.append((True, True, True))
    for bs in sizes:
        for amp, cl, comp in variants:
            r = bench_train_step(bs, device=device, amp=amp, channels_last=cl, compile_=comp,
                                 steps=steps)
            res["train"].append(r)
            print(f"train  bs={bs:3d} bf16={amp!s:5} cl={cl!s:5} compile={comp!s:5} "
                  f"{r['images_per_s']:8.2f} img/s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = _dataset(Path(tmp), a.samples)
        for bs in sizes:
            for w in sorted({0, a.workers}):
                nb = a.loader_batches or max(4, 64 // bs)
                r = bench_loader(path, bs, workers=w, batches=nb)
                res["loader"].append(r)
                print(f"loader bs={bs:3d} workers={w:2d} {r['samples_per_s']:8.1f} samples/s",
                      flush=True)
        if cuda or a.e2e:
            amp, cl, comp = variants[-1]
            for bs in sizes:
                r = bench_end_to_end(path, bs, device=device, workers=a.workers, steps=steps,
                                     amp=amp, channels_last=cl, compile_=comp)
                best = max(t["images_per_s"] for t in res["train"] if t["batch_size"] == bs)
                r["loader_keeps_up"] = r["images_per_s"] >= 0.95 * best
                r["paper_schedule_minutes"] = PAPER_SAMPLES / r["images_per_s"] / 60
                res["end_to_end"].append(r)
                print(f"e2e    bs={bs:3d} workers={a.workers} {r['images_per_s']:8.2f} img/s "
                      f"(model alone {best:.2f}); paper schedule "
                      f"{r['paper_schedule_minutes']:.0f} min", flush=True)
    info["load_average_after"] = list(os.getloadavg())
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}")
    return res


if __name__ == "__main__":
    main()
