"""The training loop of ``trainer fit`` (single process, or DDP under ``torchrun``).

Under torchrun the process group comes from the environment (gloo on the CPU, nccl on
CUDA), each rank reads its share of an epoch through a DistributedSampler and only rank 0
validates and writes files. The shuffle of epoch ``e`` is seeded by ``(seed, e)`` and the
crop / flip of a sample by ``(seed, e, index)``, so resuming from ``last.pt`` replays the
remaining epochs exactly (bitwise on the CPU). Run-directory files: see docs/trainer.md.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from defocuskit.errors import ConfigError
from defocuskit.store import open_dataset
from trainer.checkpoint import (
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from trainer.config import TrainConfig, save_config
from trainer.data import DefocusDataset, holdout_indices, required_arrays, to_device_batch
from trainer.evaluate import autocast_for, evaluate, resolve_device
from trainer.losses import LossConfig, TwoHeadedLoss
from trainer.metrics import benchmark_max_depth
from trainer.model import ModelConfig, TwoHeadedNet
from trainer.pretrained import load_encoder_weights
from trainer.rundir import check_run_dir, clear_earlier_run

__all__ = ["fit", "seed_everything", "seed_worker", "epoch_seed"]


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of one epoch (a plain function of the run seed and the epoch)."""
    return int(np.random.SeedSequence([seed, epoch, 0x5EED]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed python, numpy's legacy global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (third-party code may use it)
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: derive python / numpy seeds from torch's worker seed."""
    s = torch.initial_seed() % 2**32
    random.seed(s)
    np.random.seed(s)  # noqa: NPY002


def _dist_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the torchrun environment; (0, 1, 0) without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    return int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0"))


def _write_csv(history: list[dict], path: Path) -> None:
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for row in history:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is not a dependency
        warnings.warn("tensorboard is not installed; logging to log.csv only", stacklevel=3)
        return None
    return SummaryWriter(str(run_dir / "tb"))


_RESUME_ONLY = ("optimizer", "scheduler", "rng")  # in last.pt only


def _is_better(value: float, best: float | None, maximise: bool) -> bool:
    if not math.isfinite(value):
        return False
    return best is None or (value > best if maximise else value < best)


def _build_datasets(data, cfg: TrainConfig):
    """The run's training and validation datasets (or None), and its validation depth range.

    With ``val_split = "holdout"`` the validation samples are ``cfg.val_indices`` of the
    training split (drawn by :func:`~trainer.data.holdout_indices` when not given) and
    training uses the rest, so no other split is opened. Returns ``(cfg, train_ds, val_ds,
    max_depth)`` where ``cfg`` records the held-out indices for config.json, and, when
    anything is rendered (``on_the_fly``, a scene-only validation split), the resolved
    camera, focus, render mode, PSF and fixed-draw seed (:mod:`trainer.onthefly`).
    """
    reader = open_dataset(data)
    holdout = cfg.val_split == "holdout"
    named_val = None if holdout else cfg.val_split
    for opt, split in (("train_split", cfg.train_split), ("val_split", named_val)):
        if split is not None and split not in reader.splits:
            raise ConfigError(f"{opt} {split!r}: dataset {data} has splits {reader.splits}")
    train_idx = val_idx = None
    if holdout:
        usable = reader[cfg.train_split].usable_indices()  # samples skipped by synth: never
        if cfg.val_indices is None:
            train_pos, val_pos = holdout_indices(len(usable), cfg.val_fraction, seed=cfg.seed)
            train_idx, val_idx = [usable[k] for k in train_pos], [usable[k] for k in val_pos]
        else:
            val_idx = sorted(set(cfg.val_indices))
            if not val_idx or not set(val_idx) <= set(usable) or len(val_idx) >= len(usable):
                raise ConfigError(f"val_indices: expected 1 to {len(usable) - 1} distinct "
                                  f"usable sample indices of split {cfg.train_split!r}, got "
                                  f"{val_idx[:8]}")
            train_idx = sorted(set(usable) - set(val_idx))
    cfg = dataclasses.replace(cfg, val_indices=tuple(val_idx) if holdout else None)
    cfg, settings = _render_settings(reader, data, cfg, named_val)
    # training reads only what the loss uses: no depth or sigma for self-supervision
    train_arrays = required_arrays(cfg.heads, method=cfg.method, camera=cfg.consistency > 0)
    train_kw = dict(heads=cfg.heads, arrays=train_arrays[1:],
                    crop=None if cfg.resize else cfg.crop, resize=cfg.resize,
                    hflip=cfg.hflip, seed=cfg.seed, stack_index=cfg.stack_index,
                    indices=train_idx)
    if cfg.on_the_fly:
        from trainer.onthefly import OnTheFlyDataset

        train_ds = OnTheFlyDataset(data, cfg.train_split, settings=settings, **train_kw)
    else:
        train_ds = DefocusDataset(data, cfg.train_split, **train_kw)
    val_ds = None
    if cfg.val_split is not None:
        val_name = cfg.train_split if holdout else cfg.val_split
        val_kw = dict(heads=cfg.heads, crop=None, resize=cfg.resize, hflip=False,
                      stack_index=cfg.stack_index, max_samples=cfg.val_max_samples,
                      indices=val_idx)
        if reader[val_name].has("defocused"):  # stored defocus: fixed and comparable
            val_ds = DefocusDataset(data, val_name, **val_kw)
        else:  # scene-only: a fixed draw per sample, the same every epoch
            from trainer.onthefly import OnTheFlyDataset

            val_ds = OnTheFlyDataset(data, val_name, settings=settings, fixed=True,
                                     render_seed=cfg.render_seed,
                                     render_stream=cfg.render_stream, **val_kw)
    max_depth = cfg.max_depth if cfg.max_depth is not None else benchmark_max_depth(reader.attrs)
    return cfg, train_ds, val_ds, max_depth


def _render_settings(reader, data, cfg: TrainConfig, named_val):
    """``(cfg, settings)``: the rendering of an on-the-fly run or of a scene-only validation
    split, resolved against the dataset (and recorded in ``cfg``), or ``(cfg, None)``."""
    if not cfg.on_the_fly and not reader[cfg.train_split].has("defocused"):
        raise ConfigError(f"dataset {data}: split {cfg.train_split!r} is scene-only (synth "
                          "--mode none) and stores no defocused input; train with "
                          "--on-the-fly (docs/trainer.md, 'On-the-fly defocus')")
    val_scene_only = named_val is not None and not reader[named_val].has("defocused")
    if not (cfg.on_the_fly or val_scene_only):
        return cfg, None
    from trainer.onthefly import resolve_render_settings, warm_up

    settings = resolve_render_settings(reader.attrs, camera=cfg.camera, focus=cfg.focus,
                                       mode=cfg.render_mode, psf=cfg.psf, data=data)
    warm_up(settings)  # compiled once here; forked workers inherit the kernels
    cfg = dataclasses.replace(
        cfg, camera=settings.camera, focus=settings.focus, render_mode=settings.mode,
        psf=settings.psf, render_seed=cfg.seed if cfg.render_seed is None else cfg.render_seed)
    return cfg, settings


def _build_criterion(cfg: TrainConfig, coc_model: str | None, data, coc_offset_px=0.0):
    """The loss of ``cfg.method``: the supervised multi-head loss or the self-supervised one
    (:mod:`trainer.selfsup`); the consistency term takes the dataset's CoC model."""
    if cfg.method == "self-supervised":
        from trainer.selfsup import SelfSupervisedConfig, SelfSupervisedLoss

        return SelfSupervisedLoss(SelfSupervisedConfig(charbonnier_eps=cfg.charbonnier_eps,
                                                       sigma_max=cfg.sigma_max))
    if cfg.consistency > 0 and coc_model not in ("exact", "paper"):
        raise ConfigError(f"consistency: dataset {data} records no camera coc_model ('exact' "
                          f"or 'paper') in its root attributes, got {coc_model!r}")
    return TwoHeadedLoss(LossConfig(mu=cfg.mu, charbonnier_eps=cfg.charbonnier_eps,
                                    psi=cfg.psi, lam=cfg.lam, defocus_loss=cfg.defocus_loss,
                                    defocus_weight=cfg.defocus_weight,
                                    consistency=cfg.consistency,
                                    coc_model=coc_model or "exact",
                                    coc_offset_px=coc_offset_px))


def _train_epoch(model, loader, criterion, optimizer, *, device, amp, channels_last, step,
                 max_steps, bar):
    """One pass over ``loader``; returns (term sums, batches, images, step, stopped)."""
    model.train()
    sums: dict[str, torch.Tensor] = {}
    n_batches = n_images = 0
    stopped = False
    for batch in bar:
        b = to_device_batch(batch, device, channels_last=channels_last)
        with autocast_for(device, amp):
            pred = model(b["defocused"])
        # the loss runs in float32 outside autocast (SSIM's convolution would be bf16)
        loss, terms = criterion({k: v.float() for k, v in pred.items()}, b)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for k, v in terms.items():  # stays on the device: no sync per step
            sums[k] = sums.get(k, 0) + v.float()
        n_batches += 1
        n_images += b["defocused"].shape[0]
        step += 1
        if not bar.disable and n_batches % 5 == 1:
            bar.set_postfix(loss=f"{float(terms['total']):.4f}")
        if max_steps is not None and step >= max_steps:
            stopped = True
            break
    bar.close()
    return sums, n_batches, n_images, step, stopped


def fit(data, run_dir, config: TrainConfig | None = None, *, resume: bool = False,
        overwrite: bool = False, log=print) -> dict:
    """Train 2HDED:NET on ``data`` and write the run to ``run_dir``.

    Parameters
    ----------
    data : str or path-like
        A dataset written by ``defocuskit synth``.
    run_dir : str or path-like
        Output directory; must not hold an earlier run's files unless ``resume`` or
        ``overwrite`` (which replaces those files only, see :mod:`trainer.rundir`).
    config : TrainConfig, optional
        Default: the paper's schedule.
    resume : bool
        Continue from ``run_dir/last.pt``; a refused resume changes nothing.
    overwrite : bool
        Replace an earlier run in ``run_dir`` (its files are removed only once every
        check has passed).
    log : callable
        Receives one summary line per epoch (rank 0 only).

    Returns
    -------
    dict
        ``epochs`` (completed), ``steps``, ``best`` (monitored value), ``monitor``,
        ``last`` (last history row), ``run_dir``.

    Raises
    ------
    ConfigError, SchemaError, CheckpointError
        Bad options, a dataset without the needed arrays, an existing or unusable run.
    """
    cfg = config or TrainConfig()
    run_dir = Path(run_dir)
    rank, world, device = _setup_processes(cfg)
    main = rank == 0
    earlier = check_run_dir(run_dir, resume=resume, overwrite=overwrite) if main else []
    run = _build_run(data, run_dir, cfg, device=device, rank=rank, world=world,
                     fresh=not resume)
    if resume:
        _restore(run, run_dir / "last.pt")
    if main:  # after every check above, so a refused run leaves nothing behind
        clear_earlier_run(run_dir, earlier)
        save_config(run.cfg, run_dir)
        if run.encoder_init is not None and not resume:
            e = run.encoder_init
            log(f"encoder: {e['tensors']} ImageNet tensors from {e['path']} "
                f"(sha256 {e['sha256'][:12]})")
    train_model = _wrap_for_training(run)
    tb = _tensorboard(run_dir) if (run.cfg.tensorboard and main) else None
    budget_left = run.cfg.max_steps is None or run.step < run.cfg.max_steps
    for epoch in range(run.start_epoch, run.cfg.epochs if budget_left else run.start_epoch):
        row, completed, stopped = _train_one_epoch(run, train_model, epoch)
        _validate(run, row, completed, stopped)
        run.history.append(row)
        if main:
            _save_epoch(run, completed)
            _report_epoch(run, row, epoch, tb, log)
        if world > 1:
            dist.barrier()  # rank 0 may have validated and written; keep the ranks in step
        if stopped:
            break
    _finish(run, tb)
    done = run.history[-1]["epoch"] if run.history else run.start_epoch
    return {"epochs": done, "steps": run.step, "best": run.best, "monitor": run.monitor,
            "last": run.history[-1] if run.history else {}, "run_dir": str(run_dir)}


@dataclasses.dataclass
class _Run:
    """What a training run carries from one epoch to the next."""

    cfg: TrainConfig
    run_dir: Path
    device: torch.device
    rank: int
    world: int
    model: torch.nn.Module
    model_cfg: ModelConfig
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    criterion: torch.nn.Module
    train_ds: DefocusDataset
    train_loader: DataLoader
    sampler: DistributedSampler | None
    generator: torch.Generator
    val_loader: DataLoader | None
    val_max_depth: float | None
    amp: bool
    channels_last: bool
    monitor: str
    encoder_init: dict | None = None
    start_epoch: int = 0
    step: int = 0
    best: float | None = None
    history: list = dataclasses.field(default_factory=list)
    first: dict | None = None  # the first validation sample, for the plot

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_processes(cfg: TrainConfig) -> tuple[int, int, torch.device]:
    """Join the torchrun process group if there is one; return (rank, world, device)."""
    rank, world, local_rank = _dist_env()
    if world > 1 and not dist.is_initialized():
        cuda = torch.cuda.is_available() and cfg.device != "cpu"
        dist.init_process_group("nccl" if cuda else "gloo")
    device = resolve_device(cfg.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return rank, world, device


def _build_run(data, run_dir: Path, cfg: TrainConfig, *, device, rank: int, world: int,
               fresh: bool) -> _Run:
    """Model, data, loaders, optimiser, schedule and loss of a run (nothing written yet)."""
    seed_everything(cfg.seed)
    model_cfg = ModelConfig(heads=cfg.heads, **cfg.model)
    model = TwoHeadedNet(model_cfg)
    encoder_init = None  # ImageNet weights: a fresh run loads them, a resumed one has its own
    if cfg.encoder_weights is not None and fresh:
        encoder_init = load_encoder_weights(model, cfg.encoder_weights)
    cuda = device.type == "cuda"
    # None: the fast CUDA settings on CUDA only; True / False: honoured on any device
    channels_last = cuda if cfg.channels_last is None else cfg.channels_last
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory)

    cfg, train_ds, val_ds, val_max_depth = _build_datasets(data, cfg)
    criterion = _build_criterion(cfg, train_ds.coc_model, data, train_ds.coc_offset_px)
    gen = torch.Generator()
    sampler = (DistributedSampler(train_ds, num_replicas=world, rank=rank, shuffle=True,
                                  seed=cfg.seed) if world > 1 else None)
    loader_kw = dict(num_workers=cfg.num_workers, pin_memory=cuda, worker_init_fn=seed_worker,
                     persistent_workers=False)
    per_rank = len(sampler) if sampler is not None else len(train_ds)
    # a trailing batch of one sample gives BatchNorm no batch statistics: drop it
    drop_last = per_rank % cfg.batch_size == 1 and per_rank > cfg.batch_size
    train_loader = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=sampler is None,
                              sampler=sampler, generator=gen, drop_last=drop_last, **loader_kw)
    val_loader = None
    if val_ds is not None and rank == 0:
        val_loader = DataLoader(val_ds, batch_size=1, shuffle=False, **loader_kw)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.lr_milestones),
                                                     gamma=cfg.lr_gamma)
    return _Run(cfg=cfg, run_dir=run_dir, device=device, rank=rank, world=world, model=model,
                model_cfg=model_cfg, optimizer=optimizer, scheduler=scheduler,
                criterion=criterion, train_ds=train_ds, train_loader=train_loader,
                sampler=sampler, generator=gen, val_loader=val_loader,
                val_max_depth=val_max_depth, amp=cuda if cfg.amp is None else cfg.amp,
                channels_last=channels_last, monitor=_monitor(cfg),
                encoder_init=encoder_init)


def _monitor(cfg: TrainConfig) -> str:
    """The history column ``best.pt`` follows."""
    if cfg.val_split is None:
        return "train_total"
    if "depth" in cfg.heads:
        return "val_rmse"
    return "val_defocus_mae" if "defocus" in cfg.heads else "val_psnr"


def _restore(run: _Run, last_path: Path) -> None:
    """Continue from ``last.pt``: weights, optimiser, schedule, counters, history, RNG."""
    ckpt = load_checkpoint(last_path)  # on the CPU; load_state_dict moves it
    if ckpt["model_config"] != run.model_cfg.to_dict():
        raise CheckpointError(f"--resume: {last_path} holds model {ckpt['model_config']}, "
                              f"the config asks for {run.model_cfg.to_dict()}")
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    run.start_epoch, run.step, run.best = int(ckpt["epoch"]), int(ckpt["step"]), ckpt["best"]
    # a run stopped inside an epoch logged a partial row that the resumed run redoes
    run.history = [r for r in ckpt.get("history", []) if r["epoch"] <= run.start_epoch]
    set_rng_state(ckpt["rng"])
    run.encoder_init = ckpt.get("encoder_init")


def _wrap_for_training(run: _Run):
    """The module the training step calls: DDP across ranks, ``torch.compile`` if asked."""
    train_model = run.model
    if run.world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            run.model, device_ids=[run.device.index] if run.device.type == "cuda" else None)
    if run.cfg.compile:
        train_model = torch.compile(train_model)
    return train_model


def _train_one_epoch(run: _Run, train_model, epoch: int) -> tuple[dict, int, bool]:
    """Train epoch ``epoch``; return its history row, the number of completed epochs
    (``epoch`` itself if ``max_steps`` stopped it part-way) and whether it stopped."""
    cfg = run.cfg
    run.train_ds.set_epoch(epoch)
    run.generator.manual_seed(epoch_seed(cfg.seed, epoch))
    if run.sampler is not None:
        run.sampler.set_epoch(epoch)
    lr = run.optimizer.param_groups[0]["lr"]
    show_bar = cfg.progress and run.main and sys.stderr.isatty()
    t0 = time.perf_counter()
    sums, n_batches, n_images, run.step, stopped = _train_epoch(
        train_model, run.train_loader, run.criterion, run.optimizer, device=run.device,
        amp=run.amp, channels_last=run.channels_last, step=run.step, max_steps=cfg.max_steps,
        bar=tqdm(run.train_loader, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                 disable=not show_bar, leave=False, dynamic_ncols=True))
    elapsed = time.perf_counter() - t0
    keys = sorted(sums)
    totals = torch.stack([sums[k] for k in keys] + [torch.tensor(float(n_batches),
                                                                 device=run.device)])
    if run.world > 1:
        dist.all_reduce(totals)
    row = {"epoch": epoch + 1, "step": run.step, "lr": lr}
    row.update({f"train_{k}": float(totals[i] / totals[-1]) for i, k in enumerate(keys)})
    row["train_images_per_s"] = n_images * run.world / max(elapsed, 1e-9)
    epoch_done = n_batches == len(run.train_loader)  # max_steps may stop it part-way
    if epoch_done:
        run.scheduler.step()
    return row, epoch + 1 if epoch_done else epoch, stopped


def _validate(run: _Run, row: dict, completed: int, stopped: bool) -> None:
    """Validate when due (every ``val_every`` epochs, the last one, a stop); add to ``row``."""
    due = completed % run.cfg.val_every == 0 or completed == run.cfg.epochs or stopped
    if run.val_loader is None or not due:
        return
    res = evaluate(run.model, run.val_loader, device=run.device, amp=run.amp,
                   channels_last=run.channels_last, max_depth=run.val_max_depth,
                   clip=run.cfg.clip_depth, keep_first=run.cfg.plots)
    run.first = res.pop("_first", run.first)
    row.update({f"val_{k}": v for k, v in res.items()})
    run.model.train()


def _save_epoch(run: _Run, completed: int) -> None:
    """best.pt (if the monitored value improved), then last.pt, then log.csv (rank 0)."""
    value = run.history[-1].get(run.monitor)
    improved = value is not None and _is_better(float(value), run.best,
                                                run.monitor == "val_psnr")
    if improved:
        run.best = float(value)
    state = {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
             "scheduler": run.scheduler.state_dict(), "epoch": completed,
             "step": run.step, "best": run.best, "monitor": run.monitor,
             "model_config": run.model_cfg.to_dict(), "train_config": run.cfg.to_dict(),
             "history": run.history, "rng": rng_state(),
             "encoder_init": run.encoder_init}
    # best.pt first: a kill between the two writes then leaves last.pt one epoch behind,
    # which --resume redoes, instead of a stale best.pt that nothing fixes.
    # best.pt is for eval/predict: no optimiser, scheduler or RNG state.
    if improved:
        save_checkpoint(run.run_dir / "best.pt", {k: v for k, v in state.items()
                                                  if k not in _RESUME_ONLY})
    save_checkpoint(run.run_dir / "last.pt", state)
    _write_csv(run.history, run.run_dir / "log.csv")


def _report_epoch(run: _Run, row: dict, epoch: int, tb, log) -> None:
    if tb is not None:
        for k, v in row.items():
            if k != "epoch" and isinstance(v, float):
                tb.add_scalar(k, v, epoch + 1)
    shown = [f"{k}={row[k]:.4g}" for k in ("train_total", "val_rmse", "val_psnr",
                                             "val_defocus_mae") if k in row]
    log(f"epoch {epoch + 1}/{run.cfg.epochs}  step {run.step}  lr {row['lr']:.3g}  "
        + "  ".join(shown) + f"  {row['train_images_per_s']:.2f} img/s")


def _finish(run: _Run, tb) -> None:
    """Plots (rank 0), TensorBoard closed, the process group left."""
    if run.main and run.cfg.plots and run.history:
        from trainer.plots import plot_loss_curves, plot_val_panel

        plot_loss_curves(run.history, run.run_dir / "loss_curves.png")
        if run.first is not None:
            plot_val_panel(run.first, run.run_dir / "val_panel.png")
    if tb is not None:
        tb.close()
    if run.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
