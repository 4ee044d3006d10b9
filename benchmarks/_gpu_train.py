"""The training measurements of ``benchmarks/gpu_check.py`` (items 1 and 2 of the GPU
checklist) and what every item shares; the others are in ``_gpu_checks.py``. Each item
function fills its record as it goes (so a failure part-way keeps the rows already
measured) and stops its loops at a deadline.

Every item drives the trainer's own code: :func:`trainer.run.build_run` (model, loss,
dataset, optimiser), ``trainer.fit._train_epoch`` (the training step: device copy,
autocast, loss, backward, SGD step), ``trainer.fit._wrap_for_training`` (torch.compile),
:func:`trainer.fit.fit` and :func:`trainer.evaluate.evaluate_checkpoint`,
:func:`trainer.defocus.reblur`; the CUDA-only calls go through :mod:`trainer.device`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, RandomSampler

from trainer import device as dev
from trainer.config import TrainConfig
from trainer.fit import _train_epoch, _wrap_for_training
from trainer.progress import Progress
from trainer.run import build_run, seed_worker

PAPER_SAMPLES = 500 * 795  # the paper's NYU schedule: 500 epochs of 795 samples
PAPER_EPOCHS = 500
PAPER_BATCH = 4
TARGET_MINUTES = 30.0  # the whole schedule on one GPU; 397,500 / 1800 s = 220 images/s

# (name, bf16 autocast, channels_last, torch.compile), most informative first
VARIANTS = (("fp32", False, False, False), ("bf16_cl", True, True, False),
            ("bf16_cl_compile", True, True, True))


class ItemTimeout(Exception):
    """An item ran past its share of the budget (raised by gpu_check's alarm); the rows
    of an item re-raise it instead of recording it as one row's failure."""


@dataclasses.dataclass
class Check:
    """What every item needs: the device, the sizes of this mode, the dataset."""

    device: torch.device
    tiny: bool
    work: Path
    frame: tuple[int, int]
    crop: int
    batches: tuple[int, ...]
    workers: int  # DataLoader workers of the training rows
    loader_workers: tuple[int, ...]
    loader_batches: int  # most timed batches of a loader row
    model: dict
    steps: int  # most timed steps of a row (the deadline may stop it sooner)
    warmup: int
    agree_steps: int
    eval_samples: int
    reblur_rows: tuple[tuple[int, int, float], ...]  # (size, batch, sigma max)
    n_train: int
    n_test: int
    data: Path | None = None
    results: dict = dataclasses.field(default_factory=dict)


def _deadline_stream(it, n: int, deadline: float):
    """At most ``n`` items of ``it``, none started after ``deadline`` (the first always)."""
    for k in range(n):
        if k and time.perf_counter() > deadline:
            return
        yield next(it)


def _config(check: Check, **kw) -> TrainConfig:
    base = dict(crop=check.crop, num_workers=0, val_split=None, progress=False, plots=False,
                device=str(check.device), model=dict(check.model), epochs=1)
    base.update(kw)
    return TrainConfig(**base)


def _build(check: Check, cfg: TrainConfig, name: str):
    if check.data is None:
        raise RuntimeError("no dataset: the dataset step failed")
    return build_run(check.data, check.work / name, cfg, device=check.device, rank=0,
                     world=1, fresh=True)


def _loader(run, workers: int, n_batches: int, batch: int | None = None) -> DataLoader:
    """The trainer's loader settings (batch, workers, pinning, worker seeding) with a
    sampler long enough that one iterator spans every timed step: the small synthesised
    split is only a few batches long, and each new epoch would restart the workers."""
    bs = batch or run.cfg.batch_size
    sampler = RandomSampler(run.train_ds, replacement=True, num_samples=bs * n_batches,
                            generator=torch.Generator().manual_seed(run.cfg.seed))
    return DataLoader(run.train_ds, batch_size=bs, sampler=sampler, num_workers=workers,
                      pin_memory=dev.pin_memory(run.device), worker_init_fn=seed_worker,
                      drop_last=True)


def _steps(run, model, batches) -> tuple[int, float, float]:
    """Train on ``batches`` with the trainer's step; (images, seconds, mean loss)."""
    dev.synchronize(run.device)
    t0 = time.perf_counter()
    sums, n_batches, n_images, _, _ = _train_epoch(
        model, batches, run.criterion, run.optimizer, device=run.device, amp=run.amp,
        channels_last=run.channels_last, step=0, max_steps=None,
        progress=Progress(None, "", enabled=False), state={})
    dev.synchronize(run.device)
    dt = time.perf_counter() - t0
    loss = float(sums["total"]) / max(n_batches, 1) if n_batches else math.nan
    return n_images, dt, loss


def train_row(check: Check, batch: int, variant: str, deadline: float) -> dict:
    """End-to-end (loader-fed) and model-only images/s of one batch size and variant."""
    _, amp, cl, comp = next(v for v in VARIANTS if v[0] == variant)
    row = {"batch_size": batch, "variant": variant, "amp_bf16": amp, "channels_last": cl,
           "compile": comp, "workers": check.workers}
    if comp and check.device.type != "cuda":
        row["skipped"] = ("torch.compile is timed on CUDA only: on the CPU its compilation "
                          "takes minutes (over 3 for the --tiny model on a 2-core VM)")
        return row
    cfg = _config(check, batch_size=batch, amp=amp, channels_last=cl, compile=comp,
                  num_workers=check.workers)
    if comp:
        torch._dynamo.reset()  # compile for this model and batch size alone
    run = _build(check, cfg, f"train_{batch}_{variant}")
    model = _wrap_for_training(run)
    it = iter(_loader(run, check.workers, check.warmup + check.steps + 1))
    t0 = time.perf_counter()
    _steps(run, model, _deadline_stream(it, check.warmup, math.inf))  # workers, compile
    row["warmup_s"] = time.perf_counter() - t0
    half = time.perf_counter() + (deadline - time.perf_counter()) / 2
    dev.reset_peak_memory(run.device)
    n, dt, loss = _steps(run, model, _deadline_stream(it, check.steps, half))
    row.update(e2e_steps=n // batch, e2e_seconds=dt, e2e_images_per_s=n / dt, loss=loss)
    fixed = next(it)  # the same batch over and over: the model's rate without the loader
    n, dt, _ = _steps(run, model, _deadline_stream(iter(lambda: fixed, None), check.steps,
                                                   deadline))
    row.update(model_steps=n // batch, model_seconds=dt, model_images_per_s=n / dt,
               peak_memory_gib=dev.peak_memory_gib(run.device))
    del it, model, run
    dev.release_memory(check.device)
    return row


def item_train(check: Check, rec: dict, deadline: float) -> None:
    """Item 1: images/s at the crop size for each batch and variant, peak memory."""
    plan = [(b, v[0]) for v in VARIANTS if not v[3] for b in check.batches]
    plan += [(b, v[0]) for v in VARIANTS if v[3] for b in check.batches]
    weights = [3 if "compile" in v and check.device.type == "cuda" else 1 for _, v in plan]
    rec["rows"] = rows = []
    for k, (batch, variant) in enumerate(plan):
        share = (deadline - time.perf_counter()) * weights[k] / sum(weights[k:])
        try:
            rows.append(train_row(check, batch, variant, time.perf_counter() + share))
        except ItemTimeout:
            raise
        except Exception as exc:  # one variant failing (a compile, a dtype) is a figure too
            rows.append({"batch_size": batch, "variant": variant,
                         "error": f"{type(exc).__name__}: {exc}"[:500]})
            dev.release_memory(check.device)
    done = [r for r in rows if "e2e_images_per_s" in r]
    rec["summary"] = [f"bs{r['batch_size']} {r['variant']}: " + (
        f"{r['e2e_images_per_s']:.1f} img/s e2e, {r['model_images_per_s']:.1f} model-only"
        + (f", {r['peak_memory_gib']:.2f} GiB" if r["peak_memory_gib"] else "")
        if r in done else f"skipped ({r['skipped'][:40]}...)" if "skipped" in r
        else f"FAILED {r['error'][:60]}") for r in rows]
    failed = [r for r in rows if "error" in r]
    if failed and not done:
        raise RuntimeError(f"every training row failed; first: {failed[0]['error']}")


def item_loader(check: Check, rec: dict, deadline: float) -> None:
    """Item 1: loader-only samples/s (and the first batch's wait) against the training."""
    rec["rows"] = rows = []
    best = {}
    for r in check.results.get("train", {}).get("rows", []):
        if "model_images_per_s" in r:
            best[r["batch_size"]] = max(best.get(r["batch_size"], 0), r["model_images_per_s"])
    plan = [(b, w) for b in check.batches for w in check.loader_workers]
    cfg = _config(check, batch_size=check.batches[0])
    run = _build(check, cfg, "loader")
    for k, (batch, workers) in enumerate(plan):
        share = (deadline - time.perf_counter()) / (len(plan) - k)
        loader = _loader(run, workers, check.loader_batches + 1, batch)
        t0 = time.perf_counter()
        it = iter(loader)
        next(it)  # the wait an epoch starts with: workers started, first batch made
        first = time.perf_counter() - t0
        t0, seen, stop = time.perf_counter(), 0, time.perf_counter() + share - first
        for b in _deadline_stream(it, check.loader_batches, stop):
            seen += b["defocused"].shape[0]
        dt = time.perf_counter() - t0
        row = {"batch_size": batch, "workers": workers, "first_batch_s": first,
               "samples": seen, "seconds": dt, "samples_per_s": seen / dt}
        if batch in best:
            row["training_images_per_s"] = best[batch]
            row["keeps_up"] = row["samples_per_s"] >= best[batch]
        rows.append(row)
        del it, loader
    rec["summary"] = [f"bs{r['batch_size']} {r['workers']} workers: {r['samples_per_s']:.0f} "
                      f"samples/s" + (f" (training {r['training_images_per_s']:.0f})"
                                      if "keeps_up" in r else "") for r in rows]


def item_projection(check: Check, rec: dict, deadline: float) -> None:
    """Item 2: the paper's schedule (397,500 samples) at the best end-to-end rate, plus the
    workers' restart at each of its 500 epochs (the trainer's loader does not keep them)."""
    rows = [r for r in check.results.get("train", {}).get("rows", [])
            if "e2e_images_per_s" in r]
    if not rows:
        raise RuntimeError("no training figure to project from (item train failed)")
    best = max(rows, key=lambda r: r["e2e_images_per_s"])
    rate = best["e2e_images_per_s"]
    minutes = PAPER_SAMPLES / rate / 60
    restart = [r["first_batch_s"] for r in check.results.get("loader", {}).get("rows", [])
               if r["workers"] == check.workers and r["batch_size"] == best["batch_size"]]
    rec.update(best_batch_size=best["batch_size"], best_variant=best["variant"],
               images_per_s=rate, samples=PAPER_SAMPLES, minutes=minutes,
               target_minutes=TARGET_MINUTES, target_images_per_s=PAPER_SAMPLES / 1800,
               meets_target=minutes <= TARGET_MINUTES)
    model_rate = max(r["model_images_per_s"] for r in rows)
    rec["model_only_minutes"] = PAPER_SAMPLES / model_rate / 60  # were the loader free
    paper = [r["e2e_images_per_s"] for r in rows if r["batch_size"] == PAPER_BATCH]
    if paper:  # the paper's batch size: the schedule as published, not just as fast
        rec["minutes_at_paper_batch"] = PAPER_SAMPLES / max(paper) / 60
    if restart:
        rec["epoch_restart_minutes"] = PAPER_EPOCHS * restart[0] / 60
    rec["summary"] = [f"{minutes:.1f} min at {rate:.1f} img/s (bs{best['batch_size']} "
                      f"{best['variant']}); target <= {TARGET_MINUTES:.0f} min",
                      f"model alone {rec['model_only_minutes']:.1f} min"
                      + (f"; worker restarts add {rec['epoch_restart_minutes']:.1f} min"
                         if restart else "")]
