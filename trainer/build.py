"""Everything a ``trainer fit`` run needs before its first step, and the resume.

The process group, the seeds, the datasets (the validation holdout, the on-the-fly
rendering settings), the loss of the method, the model, loaders, optimiser and schedule
(:func:`build_run`, gathered in a :class:`Run`), and :func:`restore` from ``last.pt``.
The loop itself is :mod:`trainer.fit`.
"""

from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from defocuskit.errors import ConfigError
from defocuskit.store import open_dataset
from trainer.checkpoint import CheckpointError, load_checkpoint, set_rng_state
from trainer.config import TrainConfig
from trainer.data import DefocusDataset, holdout_indices, required_arrays
from trainer.device import pin_memory
from trainer.evaluate import resolve_device
from trainer.losses import LossConfig, TwoHeadedLoss
from trainer.metrics import benchmark_max_depth
from trainer.model import ModelConfig, TwoHeadedNet
from trainer.onthefly import render_levels
from trainer.pretrained import load_encoder_weights

__all__ = ["Run", "build_run", "build_datasets", "build_criterion", "restore",
           "setup_processes", "dist_env", "epoch_seed", "seed_everything", "seed_worker"]


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


def dist_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the torchrun environment; (0, 1, 0) without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    return int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0"))


def build_datasets(data, cfg: TrainConfig):
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
            other = " (or holdout, none)" if opt == "val_split" else ""
            raise ConfigError(f"{opt} {split!r}: dataset {data} has splits {reader.splits}; "
                              f"choose one with --{opt.replace('_', '-')}{other}")
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
    camera_input = bool(cfg.model.get("camera_input", False))
    train_arrays = required_arrays(cfg.heads, method=cfg.method,
                                   camera=cfg.consistency > 0 or camera_input)
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
        if camera_input:
            from trainer.camera_input import scored_arrays

            scene_only = not reader[val_name].has("defocused")
            val_kw["arrays"] = scored_arrays(
                cfg.heads, lambda a: scene_only or reader[val_name].has(a))
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
        _refuse_unused_render_options(cfg, data)
        return cfg, None
    from trainer.onthefly import resolve_render_settings, warm_up

    settings = resolve_render_settings(reader.attrs, camera=cfg.camera, focus=cfg.focus,
                                       mode=cfg.render_mode, psf=cfg.psf, data=data)
    warm_up(settings)  # compiled once here; forked workers inherit the kernels
    cfg = dataclasses.replace(
        cfg, camera=settings.camera, focus=settings.focus, render_mode=settings.mode,
        psf=settings.psf, render_seed=cfg.seed if cfg.render_seed is None else cfg.render_seed)
    return cfg, settings


RENDER_OPTIONS = (("camera", "--camera"), ("focus", "--focus"),
                  ("render_mode", "--render-mode"), ("psf", "--psf"))


def _refuse_unused_render_options(cfg: TrainConfig, data) -> None:
    """A run that renders nothing refuses the rendering options, which it would ignore."""
    given = [opt for name, opt in RENDER_OPTIONS if getattr(cfg, name) is not None]
    if given:
        raise ConfigError(f"{', '.join(given)}: apply only on the fly; this run reads the "
                          f"stored defocused input of {data}: add --on-the-fly to render "
                          f"with them, or drop them")


def build_criterion(cfg: TrainConfig, coc_model: str | None, data, coc_offset_px=0.0):
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


@dataclasses.dataclass
class Run:
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

    @property
    def rendered_mode(self) -> str | None:
        """The engine mode the loaders render with (on the fly, or a scene-only validation
        split), None when they only read stored inputs."""
        for ds in (self.train_ds, getattr(self.val_loader, "dataset", None)):
            settings = getattr(ds, "settings", None)
            if settings is not None:
                return settings.mode
        return None


def setup_processes(cfg: TrainConfig) -> tuple[int, int, torch.device]:
    """Join the torchrun process group if there is one; return (rank, world, device)."""
    rank, world, local_rank = dist_env()
    if world > 1 and not dist.is_initialized():
        cuda = torch.cuda.is_available() and cfg.device != "cpu"
        dist.init_process_group("nccl" if cuda else "gloo")
    device = resolve_device(cfg.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return rank, world, device


def build_run(data, run_dir: Path, cfg: TrainConfig, *, device, rank: int, world: int,
               fresh: bool) -> Run:
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

    cfg, train_ds, val_ds, val_max_depth = build_datasets(data, cfg)
    criterion = build_criterion(cfg, train_ds.coc_model, data, train_ds.coc_offset_px)
    gen = torch.Generator()
    sampler = (DistributedSampler(train_ds, num_replicas=world, rank=rank, shuffle=True,
                                  seed=cfg.seed) if world > 1 else None)
    loader_kw = dict(num_workers=cfg.num_workers, pin_memory=pin_memory(device),
                     worker_init_fn=seed_worker, persistent_workers=False)
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
    return Run(cfg=cfg, run_dir=run_dir, device=device, rank=rank, world=world, model=model,
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


def restore(run: Run, last_path: Path) -> None:
    """Continue from ``last.pt``: weights, optimiser, schedule, counters, history, RNG."""
    ckpt = load_checkpoint(last_path)  # on the CPU; load_state_dict moves it
    if "optimizer" not in ckpt:
        raise CheckpointError(f"--resume: {last_path} holds weights only (a best.pt or an "
                              "export), not the optimiser state a run continues from")
    if ckpt["model_config"] != run.model_cfg.to_dict():
        raise CheckpointError(f"--resume: {last_path} holds model {ckpt['model_config']}, "
                              f"the config asks for {run.model_cfg.to_dict()}")
    levels, now = ckpt.get("render_levels"), render_levels(run.rendered_mode)
    if levels is not None and now is not None and levels != now:
        raise CheckpointError(f"--resume: {last_path} was rendered (layered, on the fly) with "
                              f"sigma levels {levels}, this version's rule is {now}; the rest "
                              "of the run would render differently. Start a new run (or use "
                              "the version that made this one)")
    _check_same_dataset(ckpt, run.train_ds, last_path)
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    run.start_epoch, run.step, run.best = int(ckpt["epoch"]), int(ckpt["step"]), ckpt["best"]
    # a run stopped inside an epoch logged a partial row that the resumed run redoes
    run.history = [r for r in ckpt.get("history", []) if r["epoch"] <= run.start_epoch]
    set_rng_state(ckpt["rng"])
    run.encoder_init = ckpt.get("encoder_init")


def _check_same_dataset(ckpt: dict, train_ds, last_path: Path) -> None:
    """A resumed run continues on the dataset it started on: the identity (manifest hash)
    recorded in ``last.pt`` must be the dataset's. A checkpoint without one (written
    before identities were recorded, or trained on a dataset without a manifest) is not
    checked."""
    then, now = ckpt.get("dataset_identity"), train_ds.dataset_identity
    if then is None or then == now:
        return
    data = train_ds.path
    what = ("has no manifest (identity unknown)" if now is None
            else f"is another one (identity {now})")
    raise CheckpointError(f"--resume: {last_path} was trained on the dataset with identity "
                          f"{then}; {data} {what}. Resume with the run's own dataset, or "
                          "start a new run (another --run-dir, or --overwrite)")
