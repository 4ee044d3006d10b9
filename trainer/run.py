"""A ``trainer fit`` run before its first step, and its resume.

The process group, the seeds, the loss of the method, the model, loaders, optimiser and
schedule (:func:`build_run`, gathered in a :class:`Run`), and :func:`restore` from
``last.pt``. The datasets come from :mod:`trainer.datasets`; the loop itself is
:mod:`trainer.fit`.
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

from defocuskit.dataset.store import open_dataset
from defocuskit.errors import ConfigError
from trainer.checkpoint import CheckpointError, check_model_name, load_checkpoint, set_rng_state
from trainer.config import TrainConfig
from trainer.data import DefocusDataset
from trainer.datasets import build_datasets
from trainer.device import pin_memory
from trainer.evaluate import resolve_device
from trainer.losses import LossConfig, TwoHeadedLoss
from trainer.models import get_spec
from trainer.onthefly import render_levels
from trainer.selfsup import SelfSupervisedConfig, SelfSupervisedLoss

__all__ = ["Run", "build_run", "build_criterion", "make_optimizer", "restore", "setup_processes",
           "dist_env", "epoch_seed", "seed_everything", "seed_worker"]


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


def build_criterion(cfg: TrainConfig, coc_model: str | None, data, coc_offset_px=0.0):
    """The loss of ``cfg.method``: the supervised multi-head loss or the self-supervised one
    (:mod:`trainer.selfsup`); the consistency term takes the dataset's CoC model."""
    if cfg.method == "self-supervised":
        return SelfSupervisedLoss(SelfSupervisedConfig(
            charbonnier_eps=cfg.charbonnier_eps, sigma_max=cfg.sigma_max,
            anchor_weight=cfg.selfsup_anchor, anchor_window=cfg.selfsup_anchor_window))
    if cfg.consistency > 0 and coc_model not in ("exact", "paper"):
        raise ConfigError(f"consistency: dataset {data} records no camera coc_model ('exact' "
                          f"or 'paper') in its root attributes, got {coc_model!r}")
    return TwoHeadedLoss(LossConfig(mu=cfg.mu, charbonnier_eps=cfg.charbonnier_eps,
                                    psi=cfg.psi, lam=cfg.lam, defocus_loss=cfg.defocus_loss,
                                    defocus_weight=cfg.defocus_weight,
                                    consistency=cfg.consistency,
                                    coc_model=coc_model or "exact",
                                    coc_offset_px=coc_offset_px,
                                    consistency_norm=cfg.consistency_norm, loss=cfg.loss,
                                    mddnet_lambdas=tuple(cfg.mddnet_lambdas)))


@dataclasses.dataclass
class Run:
    """What a training run carries from one epoch to the next."""

    cfg: TrainConfig
    run_dir: Path
    device: torch.device
    rank: int
    world: int
    model: torch.nn.Module
    model_cfg: object  # the model's config (trainer.models: ModelSpec.make_config)
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
    spec = get_spec(cfg.model_name)
    if not fresh:  # before the model is built: its config may be another model's
        _check_resumed_model(run_dir / "last.pt", cfg.model_name)
    model_cfg = spec.make_config(cfg.heads, spec.config_overrides(
        {**_data_overrides(spec, data, cfg), **cfg.model}, cfg.input_range))
    model = spec.build(model_cfg)
    encoder_init = None  # pretrained weights: a fresh run loads them, a resumed one has its own
    if cfg.encoder_weights is not None and fresh:
        encoder_init = spec.load_encoder_weights(model, cfg.encoder_weights)
    cuda = device.type == "cuda"
    # None: the fast CUDA settings on CUDA only; True / False: honoured on any device
    channels_last = cuda if cfg.channels_last is None else cfg.channels_last
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory)

    cfg, train_ds, val_ds, val_max_depth = build_datasets(data, cfg)
    criterion = (spec.make_criterion(cfg, model_cfg) if spec.make_criterion is not None
                 else build_criterion(cfg, train_ds.coc_model, data, train_ds.coc_offset_px))
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
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.lr_milestones),
                                                     gamma=cfg.lr_gamma)
    return Run(cfg=cfg, run_dir=run_dir, device=device, rank=rank, world=world, model=model,
                model_cfg=model_cfg, optimizer=optimizer, scheduler=scheduler,
                criterion=criterion, train_ds=train_ds, train_loader=train_loader,
                sampler=sampler, generator=gen, val_loader=val_loader,
                val_max_depth=val_max_depth, amp=cuda if cfg.amp is None else cfg.amp,
                channels_last=channels_last, monitor=_monitor(cfg),
                encoder_init=encoder_init)


def _data_overrides(spec, data, cfg: TrainConfig) -> dict:
    """The model settings the spec takes from the training split (none for most models)."""
    if spec.data_overrides is None:
        return {}
    reader = open_dataset(data)
    if cfg.train_split not in reader.splits:
        return {}  # build_datasets names the missing split
    return spec.data_overrides(reader, cfg.train_split)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD with ``momentum`` (the 2HDED:NET paper's) or Adam with its default betas
    (MDDNet's), at ``lr`` with ``weight_decay``."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)


def _monitor(cfg: TrainConfig) -> str:
    """The history column ``best.pt`` follows."""
    if cfg.val_split is None:
        return "train_total"
    if "depth" in cfg.heads:
        return "val_rmse"
    return "val_defocus_mae" if "defocus" in cfg.heads else "val_psnr"


def _check_resumed_model(last_path: Path, model_name: str) -> None:
    """Refuse to resume a checkpoint of another model (read lazily: no weights loaded)."""
    if not last_path.is_file():
        return  # restore() says what is missing
    try:
        ckpt = torch.load(last_path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 (restore() reports an unreadable file)
        return
    if isinstance(ckpt, dict):
        check_model_name(ckpt, model_name, f"--resume: {last_path}")


def restore(run: Run, last_path: Path) -> None:
    """Continue from ``last.pt``: weights, optimiser, schedule, counters, history, RNG."""
    ckpt = load_checkpoint(last_path)  # on the CPU; load_state_dict moves it
    if "optimizer" not in ckpt:
        raise CheckpointError(f"--resume: {last_path} holds weights only (a best.pt or an "
                              "export), not the optimiser state a run continues from")
    check_model_name(ckpt, run.cfg.model_name, f"--resume: {last_path}")
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
