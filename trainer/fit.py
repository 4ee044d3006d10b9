"""The training loop of ``trainer fit`` (single process, or DDP under ``torchrun``).

Under torchrun the process group comes from the environment (gloo on the CPU, nccl on
CUDA), each rank reads its share of an epoch through a DistributedSampler and only rank 0
validates and writes files. The shuffle of epoch ``e`` is seeded by ``(seed, e)`` and the
crop / flip of a sample by ``(seed, e, index)``, so resuming from ``last.pt`` replays the
remaining epochs exactly (bitwise on the CPU). Run-directory files: see docs/trainer.md.
What a run is built from: the datasets, :mod:`trainer.datasets`; the loss, model,
optimiser and resume, :mod:`trainer.run`.
"""

from __future__ import annotations

import csv
import math
import time
import warnings
from pathlib import Path

import torch
import torch.distributed as dist

from defocuskit.errors import DefocusKitError
from trainer.camera_input import model_forward
from trainer.checkpoint import (
    rng_state,
    save_checkpoint,
)
from trainer.config import TrainConfig, save_config
from trainer.data import to_device_batch
from trainer.evaluate import autocast_for, evaluate
from trainer.onthefly import render_levels
from trainer.plots import plot_loss_curves, plot_val_panel
from trainer.progress import DEFAULT_EVERY_S, Progress, Ticker, format_duration
from trainer.run import (
    Run,
    build_run,
    epoch_seed,
    restore,
    seed_everything,
    seed_worker,
    setup_processes,
)
from trainer.rundir import check_run_dir, clear_earlier_run, record_run_files

__all__ = ["fit", "DivergedError", "seed_everything", "seed_worker", "epoch_seed"]

# steps between the checks that the loss is finite on CUDA (each check waits for the GPU);
# on the CPU every step is checked, before the optimiser step
FINITE_CHECK_EVERY = 16


class DivergedError(DefocusKitError):
    """A loss term was not finite: training stopped there, nothing of that epoch was saved
    (the run directory keeps its last good checkpoint)."""


def _check_finite(pending: list[torch.Tensor], keys: list[str], last_step: int) -> None:
    """Raise DivergedError naming the first step and term of ``pending`` (the stacked loss
    terms of the steps up to ``last_step``) that is not finite."""
    values = torch.stack(pending).cpu()
    finite = torch.isfinite(values)
    if bool(finite.all()):
        return
    row = int((~finite).any(dim=1).nonzero()[0])
    bad = [k for k, ok in zip(keys, finite[row].tolist(), strict=True) if not ok]
    term = next((k for k in bad if k != "total"), bad[0])
    step = last_step - len(pending) + 1 + row
    raise DivergedError(f"training stopped at step {step}: the loss term {term!r} is "
                        f"{float(values[row, keys.index(term)])}")


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
        # TensorBoard (heavy, optional): only with --tensorboard
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


def _train_epoch(model, loader, criterion, optimizer, *, device, amp, channels_last, step,
                 max_steps, progress: Progress, state: dict):
    """One pass over ``loader``; returns (term sums, batches, images, step, stopped).

    ``state`` is kept current (``sums``, ``n_batches``, ``n_images``, ``step``) for the
    plain progress line that ``progress`` may build."""
    model.train()
    sums: dict[str, torch.Tensor] = {}
    n_batches = n_images = 0
    stopped = False
    state.update(sums=sums, n_batches=0, n_images=0, step=step)
    every = 1 if device.type == "cpu" else FINITE_CHECK_EVERY
    pending: list[torch.Tensor] = []  # the terms of the steps not yet checked (on device)
    for batch in loader:
        b = to_device_batch(batch, device, channels_last=channels_last)
        with autocast_for(device, amp):
            pred = model_forward(model, b["defocused"], b)
        # the loss runs in float32 outside autocast (SSIM's convolution would be bf16)
        loss, terms = criterion({k: v.float() for k, v in pred.items()}, b)
        keys = sorted(terms)
        pending.append(torch.stack([terms[k].detach().float() for k in keys]))
        if len(pending) >= every:  # stop before a non-finite step changes the weights
            _check_finite(pending, keys, step + 1)
            pending.clear()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for k, v in terms.items():  # stays on the device: no sync per step
            sums[k] = sums.get(k, 0) + v.float()
        n_batches += 1
        n_images += b["defocused"].shape[0]
        step += 1
        state.update(n_batches=n_batches, n_images=n_images, step=step)
        state.setdefault("t_first", time.perf_counter())  # the ETA leaves the first step out
        if progress.bar is not None and n_batches % 5 == 1:
            progress.set_postfix(loss=f"{float(terms['total']):.4f}")
        progress.update(1)
        if max_steps is not None and step >= max_steps:
            stopped = True
            break
    progress.close()
    if pending:
        _check_finite(pending, keys, step)
    return sums, n_batches, n_images, step, stopped


def fit(data, run_dir, config: TrainConfig | None = None, *, resume: bool = False,
        overwrite: bool = False, log=print, progress_every: float = DEFAULT_EVERY_S) -> dict:
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
    progress_every : float
        With ``config.progress`` and no terminal on stderr: seconds between plain progress
        lines there (epoch, step / total, loss, images/s, ETA; and of validation). On a
        terminal a tqdm bar is shown instead (see :mod:`trainer.progress`).

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
    ticker = Ticker(progress_every)  # one pace for every loop of the run
    rank, world, device = setup_processes(cfg)
    main = rank == 0
    earlier = check_run_dir(run_dir, resume=resume, overwrite=overwrite) if main else []
    run = build_run(data, run_dir, cfg, device=device, rank=rank, world=world,
                     fresh=not resume)
    if resume:
        restore(run, run_dir / "last.pt")
    if main:  # after every check above, so a refused run leaves nothing behind
        clear_earlier_run(run_dir, earlier)
        save_config(run.cfg, run_dir)
        record_run_files(run_dir, "config.json")
        if run.encoder_init is not None and not resume:
            e = run.encoder_init
            log(f"encoder: {e['tensors']} {e.get('source', 'pretrained')} tensors from "
                f"{e['path']} (sha256 {e['sha256'][:12]})")
    train_model = _wrap_for_training(run)
    tb = _tensorboard(run_dir) if (run.cfg.tensorboard and main) else None
    budget_left = run.cfg.max_steps is None or run.step < run.cfg.max_steps
    for epoch in range(run.start_epoch, run.cfg.epochs if budget_left else run.start_epoch):
        try:
            row, completed, stopped = _train_one_epoch(run, train_model, epoch, ticker)
        except DivergedError as exc:
            if tb is not None:
                tb.close()
            raise DivergedError(f"{exc} (epoch {epoch + 1}); {_kept(run)}; lower --lr "
                                f"(now {run.cfg.lr:g}) or check the data") from None
        _validate(run, row, completed, stopped, ticker)
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


def _kept(run: Run) -> str:
    """What the run directory holds after a stop: its last good checkpoint, if any."""
    if not run.history or not (run.run_dir / "last.pt").is_file():
        return f"no checkpoint was written to {run.run_dir}"
    row = run.history[-1]
    return (f"{run.run_dir / 'last.pt'} (epoch {row['epoch']}, step {row['step']}) is the "
            "last good checkpoint and was kept")


def _wrap_for_training(run: Run):
    """The module the training step calls: DDP across ranks, ``torch.compile`` if asked."""
    train_model = run.model
    if run.world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            run.model, device_ids=[run.device.index] if run.device.type == "cuda" else None)
    if run.cfg.compile:
        train_model = torch.compile(train_model)
    return train_model


def _train_one_epoch(run: Run, train_model, epoch: int,
                     ticker: Ticker) -> tuple[dict, int, bool]:
    """Train epoch ``epoch``; return its history row, the number of completed epochs
    (``epoch`` itself if ``max_steps`` stopped it part-way) and whether it stopped."""
    cfg = run.cfg
    run.train_ds.set_epoch(epoch)
    run.generator.manual_seed(epoch_seed(cfg.seed, epoch))
    if run.sampler is not None:
        run.sampler.set_epoch(epoch)
    lr = run.optimizer.param_groups[0]["lr"]
    t0 = time.perf_counter()
    state: dict = {}
    # every step still to come in this run, for the ETA: this epoch and the later ones
    total = run.step + (cfg.epochs - epoch) * len(run.train_loader)
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    progress = Progress(len(run.train_loader), f"epoch {epoch + 1}/{cfg.epochs}", unit="step",
                        enabled=cfg.progress and run.main, ticker=ticker,
                        line=lambda p: _train_line(epoch, cfg.epochs, total, state, t0,
                                                   run.world))
    sums, n_batches, n_images, run.step, stopped = _train_epoch(
        train_model, run.train_loader, run.criterion, run.optimizer, device=run.device,
        amp=run.amp, channels_last=run.channels_last, step=run.step, max_steps=cfg.max_steps,
        progress=progress, state=state)
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


def _train_line(epoch: int, epochs: int, total: int, state: dict, t0: float,
                world: int) -> str:
    """The plain progress line of a training epoch (built only when one is due)."""
    n = max(state["n_batches"], 1)
    elapsed = max(time.perf_counter() - t0, 1e-9)
    loss = state["sums"].get("total")
    loss_text = f"loss {float(loss) / n:.4g}  " if loss is not None else ""
    # the first step of an epoch also starts the workers and warms up (compiled kernels,
    # allocations): the ETA uses the pace of the steps after it, and waits for one
    after = state["n_batches"] - 1
    if after < 1 or "t_first" not in state:
        eta_text = "estimating"
    else:
        pace = (time.perf_counter() - state["t_first"]) / after
        eta_text = format_duration((total - state["step"]) * pace)
    return (f"epoch {epoch + 1}/{epochs}  step {state['step']}/{total}  {loss_text}"
            f"{state['n_images'] * world / elapsed:.2f} img/s  ETA {eta_text}")


def _validate(run: Run, row: dict, completed: int, stopped: bool, ticker: Ticker) -> None:
    """Validate when due (every ``val_every`` epochs, the last one, a stop); add to ``row``."""
    due = completed % run.cfg.val_every == 0 or completed == run.cfg.epochs or stopped
    if run.val_loader is None or not due:
        return
    with Progress(len(run.val_loader.dataset), f"validate epoch {row['epoch']}",
                  enabled=run.cfg.progress and run.main, ticker=ticker) as progress:
        res = evaluate(run.model, run.val_loader, device=run.device, amp=run.amp,
                       channels_last=run.channels_last, max_depth=run.val_max_depth,
                       clip=run.cfg.clip_depth, keep_first=run.cfg.plots, progress=progress)
    run.first = res.pop("_first", run.first)
    res.pop("blind_zone", None)  # per-bin lists: trainer eval --json reports them
    row.update({f"val_{k}": v for k, v in res.items()})
    run.model.train()


def _save_epoch(run: Run, completed: int) -> None:
    """best.pt (if the monitored value improved), then last.pt, then log.csv (rank 0)."""
    value = run.history[-1].get(run.monitor)
    improved = value is not None and _is_better(float(value), run.best,
                                                run.monitor == "val_psnr")
    if improved:
        run.best = float(value)
    state = {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
             "scheduler": run.scheduler.state_dict(), "epoch": completed,
             "step": run.step, "best": run.best, "monitor": run.monitor,
             "model_name": run.cfg.model_name, "model_config": run.model_cfg.to_dict(),
             "train_config": run.cfg.to_dict(),
             "history": run.history, "rng": rng_state(),
             "encoder_init": run.encoder_init,
             "render_levels": render_levels(run.rendered_mode),
             "dataset_identity": run.train_ds.dataset_identity}
    # best.pt first: a kill between the two writes then leaves last.pt one epoch behind,
    # which --resume redoes, instead of a stale best.pt that nothing fixes.
    # best.pt is for eval/predict: no optimiser, scheduler or RNG state.
    if improved and run.cfg.save in ("both", "best"):
        save_checkpoint(run.run_dir / "best.pt", {k: v for k, v in state.items()
                                                  if k not in _RESUME_ONLY})
    if run.cfg.save in ("both", "last"):
        save_checkpoint(run.run_dir / "last.pt", state)
    _write_csv(run.history, run.run_dir / "log.csv")
    record_run_files(run.run_dir, "log.csv")


def _report_epoch(run: Run, row: dict, epoch: int, tb, log) -> None:
    if tb is not None:
        for k, v in row.items():
            if k != "epoch" and isinstance(v, float):
                tb.add_scalar(k, v, epoch + 1)
    shown = [f"{k}={row[k]:.4g}" for k in ("train_total", "val_rmse", "val_psnr",
                                             "val_defocus_mae") if k in row]
    log(f"epoch {epoch + 1}/{run.cfg.epochs}  step {run.step}  lr {row['lr']:.3g}  "
        + "  ".join(shown) + f"  {row['train_images_per_s']:.2f} img/s")


def _finish(run: Run, tb) -> None:
    """Plots (rank 0), TensorBoard closed, the process group left."""
    if run.main and run.cfg.plots and run.history:
        plot_loss_curves(run.history, run.run_dir / "loss_curves.png", monitor=run.monitor)
        record_run_files(run.run_dir, "loss_curves.png")
        if run.first is not None:
            plot_val_panel(run.first, run.run_dir / "val_panel.png")
            record_run_files(run.run_dir, "val_panel.png")
    if tb is not None:
        tb.close()
    if run.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
