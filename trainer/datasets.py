"""The datasets of a ``trainer fit`` run: training and validation splits, the validation
holdout, and the on-the-fly rendering settings resolved once against the dataset."""

from __future__ import annotations

import dataclasses
import warnings

from defocuskit.dataset.store import open_dataset
from defocuskit.errors import ConfigError
from trainer.camera_input import scored_arrays
from trainer.config import TrainConfig
from trainer.data import DefocusDataset, holdout_indices, required_arrays
from trainer.metrics import benchmark_max_depth
from trainer.onthefly import OnTheFlyDataset, resolve_render_settings, warm_up
from trainer.selfsup import reblur_mismatch

__all__ = ["RENDER_OPTIONS", "build_datasets"]


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
    if cfg.method == "self-supervised":
        _warn_reblur_mismatch(reader.attrs, settings if cfg.on_the_fly else None)
    # training reads only what the loss uses: no depth or sigma for self-supervision
    camera_input = bool(cfg.model.get("camera_input", False))
    train_arrays = required_arrays(cfg.heads, method=cfg.method,
                                   camera=cfg.consistency > 0 or camera_input)
    train_kw = dict(heads=cfg.heads, arrays=train_arrays[1:],
                    crop=None if cfg.resize else cfg.crop, resize=cfg.resize,
                    hflip=cfg.hflip, seed=cfg.seed, stack_index=cfg.stack_index,
                    indices=train_idx)
    if cfg.on_the_fly:
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
            scene_only = not reader[val_name].has("defocused")
            val_kw["arrays"] = scored_arrays(
                cfg.heads, lambda a: scene_only or reader[val_name].has(a))
        if reader[val_name].has("defocused"):  # stored defocus: fixed and comparable
            val_ds = DefocusDataset(data, val_name, **val_kw)
        else:  # scene-only: a fixed draw per sample, the same every epoch
            val_ds = OnTheFlyDataset(data, val_name, settings=settings, fixed=True,
                                     render_seed=cfg.render_seed,
                                     render_stream=cfg.render_stream, **val_kw)
    max_depth = cfg.max_depth if cfg.max_depth is not None else benchmark_max_depth(reader.attrs)
    return cfg, train_ds, val_ds, max_depth


def _warn_reblur_mismatch(attrs: dict, settings) -> None:
    """Warn (one line) when the training input is rendered otherwise than the
    self-supervised loss re-blurs: ``settings`` for an on-the-fly run, else the dataset's."""
    if settings is not None:
        mode, psf, linear = settings.mode, settings.psf, settings.linear_light
    else:
        synth_cfg = attrs.get("config") if isinstance(attrs.get("config"), dict) else {}
        mode, psf = attrs.get("engine_mode"), attrs.get("psf")
        linear = bool(synth_cfg.get("linear_light", False))
    msg = reblur_mismatch(mode, psf, linear)
    if msg:
        warnings.warn(msg, stacklevel=3)


def _render_settings(reader, data, cfg: TrainConfig, named_val):
    """``(cfg, settings)``: the rendering of an on-the-fly run or of a scene-only validation
    split, resolved against the dataset (and recorded in ``cfg``), or ``(cfg, None)``."""
    if not cfg.on_the_fly and not reader[cfg.train_split].has("defocused"):
        raise ConfigError(f"dataset {data}: split {cfg.train_split!r} is scene-only (synth "
                          "--render-mode scene-only) and stores no defocused input; train "
                          "with --on-the-fly (docs/trainer.md, 'On-the-fly defocus')")
    val_scene_only = named_val is not None and not reader[named_val].has("defocused")
    if not (cfg.on_the_fly or val_scene_only):
        _refuse_unused_render_options(cfg, data)
        return cfg, None
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
