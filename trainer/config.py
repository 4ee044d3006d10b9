"""Training configuration: one dataclass, named presets, a config file and CLI overrides.

Resolution order (later wins): the preset (``paper`` unless named) -> the config file
(JSON or TOML, a flat table of :class:`TrainConfig` fields, optionally with ``preset``) ->
command-line overrides. Unknown keys and wrong types raise :class:`ConfigError` naming the
key, what was expected and what came. The resolved config is written to the run directory
as ``config.json`` so every run can be repeated.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from defocuskit.camera.focus import make_focus_policy
from defocuskit.camera.presets import get_preset
from defocuskit.errors import ConfigError
from defocuskit.typed import Range, check_fields, check_ranges, load_config_file
from trainer.models import DEFAULT_MODEL, INPUT_RANGES, MODELS, get_spec

__all__ = ["TrainConfig", "PRESETS", "RANGES", "resolve_config", "resolve_run_config",
           "load_config_file", "save_config", "imagenet_note", "IMAGENET_NOTE"]

METHODS = ("supervised", "self-supervised")
OPTIMIZERS = ("sgd", "adam")
MAX_FRAME = 8192  # pixels per side of a crop or resized frame
MAX_SEED = 2**63 - 1

# The valid range of every number of TrainConfig (items of a list one by one). NaN is
# never valid; inf only for max_depth (no depth limit). `trainer fit` options use the same.
RANGES: dict[str, Range] = {
    "epochs": Range(1, None, integer=True),
    "batch_size": Range(1, 4096, integer=True),
    "lr": Range(0, 10, lo_open=True),
    "momentum": Range(0, 1, hi_open=True),
    "weight_decay": Range(0, 1),
    "lr_milestones": Range(1, None, integer=True),
    "lr_gamma": Range(0, 1, lo_open=True),
    "max_steps": Range(1, None, integer=True),
    "crop": Range(32, MAX_FRAME, integer=True),
    "resize": Range(32, MAX_FRAME, integer=True),
    "val_fraction": Range(0, 1, lo_open=True, hi_open=True),
    "val_indices": Range(0, None, integer=True),
    "val_every": Range(1, None, integer=True),
    "val_max_samples": Range(1, None, integer=True),
    "stack_index": Range(0, None, integer=True),
    "num_workers": Range(0, 1024, integer=True),
    "render_seed": Range(0, MAX_SEED, integer=True),
    "render_stream": Range(0, MAX_SEED, integer=True),
    "seed": Range(0, MAX_SEED, integer=True),
    "mu": Range(0, None),
    "charbonnier_eps": Range(0, 1, lo_open=True),
    "psi": Range(0, None),
    "lam": Range(0, None),
    "defocus_weight": Range(0, None),
    "consistency": Range(0, None),
    "mddnet_lambdas": Range(0, None),
    "sigma_max": Range(0, 32, lo_open=True),
    "selfsup_anchor": Range(0, None),
    "selfsup_anchor_window": Range(1, 63, integer=True),
    "max_depth": Range(0, None, lo_open=True, inf_ok=True),
}
SAVE_CHOICES = ("both", "best", "last")  # which checkpoints a run keeps


@dataclass
class TrainConfig:
    """Every knob of ``trainer fit``; the defaults are the paper's NYU schedule (000 §V)."""

    # --- schedule (paper: SGD, lr 2e-4, /10 after epoch 300 of 500, batch 4) ---
    epochs: int = 500  # passes over the training split
    batch_size: int = 4  # samples per optimiser step and per process (global = x world size)
    lr: float = 2e-4  # initial SGD learning rate
    momentum: float = 0.9  # SGD momentum: NOT stated by the paper; 0.9 is our assumption
    weight_decay: float = 0.0  # not stated by the paper either; off
    lr_milestones: tuple[int, ...] = (300,)  # epochs after which lr is multiplied by lr_gamma
    lr_gamma: float = 0.1  # the paper divides by 10
    max_steps: int | None = None  # stop after this many optimiser steps in total (smoke runs)
    # --- data (augmentation: random crop + horizontal flip only, nothing that alters blur) ---
    crop: int = 256  # square training crop, pixels; a multiple of 32 (unused with resize)
    resize: tuple[int, ...] | None = None  # [H, W] (or [N]: N x N): the official protocol,
    # whole frames resized for training and evaluation instead of crops; multiples of 32
    hflip: bool = True  # horizontal flip with p = 0.5
    train_split: str = "train"  # the split trained on (a flat `folder` dataset: "all")
    # "holdout": validate on val_fraction of train_split, held out of training (the test
    # split is never touched by fit); a split name: that whole split; None / "none": no
    # validation (best.pt tracks the training loss)
    val_split: str | None = "holdout"
    val_fraction: float = 0.05  # share of train_split held out (>= 1 sample), "holdout" only
    val_indices: tuple[int, ...] | None = None  # the held-out samples; None: drawn from seed
    val_every: int = 1  # validate every N epochs (and always after the last one)
    val_max_samples: int | None = None  # cap the validation set (None: the whole split)
    stack_index: int | None = None  # image K of a focal stack (0..K-1), with its sigma and
    # camera values, for training and validation; None: refuse stacks; a non-stack: refused
    num_workers: int = 2  # DataLoader worker processes (0: load in the main process)
    # --- on-the-fly defocus (docs/trainer.md, "On-the-fly defocus"): each worker renders the
    # input of every sample and epoch from the AiF and depth; None: what the dataset records
    on_the_fly: bool = False  # render the training input in the loader (fresh every epoch)
    camera: str | None = None  # camera preset (`defocuskit cameras`); None: the dataset's
    focus: str | None = None  # focus policy (fixed:M, uniform, histogram, syndof)
    render_mode: str | None = None  # gather | scatter | layered; None: the dataset's
    psf: str | None = None  # gaussian | disc; None: the dataset's
    render_seed: int | None = None  # fixed draws of a scene-only validation / eval split;
    # None: seed. Sample i of split s: default_rng([render_seed, render_stream, crc32(s), i])
    render_stream: int = 0xF1ED
    seed: int = 0  # seeds model init, shuffling and augmentation
    # --- model and loss (paper values) ---
    model_name: str = "2hded"  # the network (trainer.models.MODELS): 2hded, mddnet, anwar
    heads: tuple[str, ...] = ("depth", "aif")  # any of the model's: depth, aif, defocus
    model: dict = field(default_factory=dict)  # the model's config overrides (growth_rate, ...)
    input_range: str | None = None  # encoder input: "centred" 2x - 1 or "unit" x in [0, 1];
    # None: the model's own (2hded: centred, the official code); the AiF stays in [0, 1]
    encoder_weights: str | None = None  # pretrained encoder: a file (2hded: torchvision
    # densenet121, ImageNet) or a file or folder (mddnet: GLPN's NYU model)
    optimizer: str = "sgd"  # "sgd" (the paper's; momentum below) or "adam" (MDDNet's)
    mu: float = 0.001  # weight of the depth-gradient term
    charbonnier_eps: float = 1e-3  # Charbonnier epsilon
    psi: float = 4.0  # weight of (1 - SSIM) in the deblurring loss
    lam: float = 0.01  # weight of the deblurring loss against the depth loss
    # --- defocus-map head and the methods (docs/trainer.md, "Methods") ---
    method: str = "supervised"  # or "self-supervised" (thesis ch. 5: no depth/sigma labels)
    defocus_loss: str = "l1"  # "l1" or "l2" against the stored sigma map (supervised)
    defocus_weight: float = 1.0  # weight of the defocus-map loss (supervised)
    consistency: float = 0.0  # MDDNet's sigma_hat vs sigma_camera(d_hat) weight (depth+defocus)
    consistency_norm: str = "l1"  # "l1": mean |r|, "l2": mean r^2 (MDDNet eq. 5)
    loss: str = "2hded"  # depth / defocus terms: "2hded" or "mddnet" (SSIM + scale-inv. log)
    mddnet_lambdas: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)  # lambda1..4 of MDDNet eqs. 3-4
    sigma_max: float = 32.0  # self-supervised: top of the re-blur ladder, pixels (<= 32)
    selfsup_anchor: float = 0.0  # self-supervised: weight of the cost-volume anchor (0: thesis)
    selfsup_anchor_window: int = 7  # self-supervised: the anchor's aggregation box, odd pixels
    max_depth: float | None = None  # validation depth range, metres (gt beyond: not scored);
    # None: the dataset's benchmark range (NYU 10 m, Make3D 80 m), else unlimited
    clip_depth: bool = True  # clip predictions to (1 mm, max_depth] before the metrics
    # --- device and speed ---
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    amp: bool | None = None  # bf16 autocast; None: on CUDA only; true/false: on any device
    channels_last: bool | None = None  # NHWC memory format; None: on CUDA only
    compile: bool = False  # torch.compile the model
    # --- logging ---
    progress: bool = True  # tqdm bar (shown only on a TTY and on rank 0)
    tensorboard: bool = False  # also log to TensorBoard if the package is installed
    plots: bool = True  # loss_curves.png and val_panel.png at the end
    save: str = "both"  # checkpoints kept: "both", "best" (no resume) or "last" (no best.pt)

    def to_dict(self) -> dict:
        """Plain-JSON form (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "config") -> TrainConfig:
        """Build from plain data, checking keys and types (see :func:`resolve_config`)."""
        return dataclasses.replace(cls(), **_checked(d, source))

    def __post_init__(self) -> None:
        if isinstance(self.val_split, str) and self.val_split.lower() in ("", "none"):
            self.val_split = None  # "--val-split none" on the command line
        if self.resize is not None:
            if len(self.resize) not in (1, 2):
                raise ConfigError(f"resize: expected [H, W] (or [N]) in multiples of 32, got "
                                  f"{list(self.resize)}")
            self.resize = tuple(self.resize) * (2 if len(self.resize) == 1 else 1)
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction: expected a share in (0, 1), got "
                              f"{self.val_fraction}; use val_split 'none' for no validation")
        if not self.train_split.strip():
            raise ConfigError("train_split: expected a split name of the dataset, got ''")
        check_ranges(self, RANGES)
        if self.crop % 32:
            raise ConfigError(f"crop: expected a multiple of 32 in {RANGES['crop']}, got "
                              f"{self.crop}")
        if self.resize is not None and any(v % 32 for v in self.resize):
            raise ConfigError(f"resize: expected [H, W] (or [N]) in multiples of 32 in "
                              f"{RANGES['resize']}, got {list(self.resize)}")
        # BatchNorm needs more than one value per channel at the 1/32-scale bottleneck
        h, w = self.resize if self.resize is not None else (self.crop, self.crop)
        if self.batch_size * (h // 32) * (w // 32) < 2:
            raise ConfigError(f"batch_size {self.batch_size} with {h}x{w} frames leaves "
                              "BatchNorm one value per channel at the 1/32 bottleneck; use "
                              "batch_size >= 2 or frames of 64 px or more")
        _check_heads_and_method(self)
        _check_model_options(self)
        _check_render_options(self)
        if self.save not in SAVE_CHOICES:
            raise ConfigError(f"save: expected one of {list(SAVE_CHOICES)}, got {self.save!r}")


def _check_render_options(cfg: TrainConfig) -> None:
    """The on-the-fly rendering options, checked whenever given (on the fly or not)."""
    if cfg.camera is not None:
        get_preset(cfg.camera)
    if cfg.focus is not None:
        make_focus_policy(cfg.focus)
    if cfg.render_mode is not None or cfg.psf is not None:
        from defocuskit.blur import MODES, PSFS  # loads Numba: only when render options are given

        for name, value, known in (("render_mode", cfg.render_mode, MODES),
                                   ("psf", cfg.psf, PSFS)):
            if value is not None and value not in known:
                raise ConfigError(f"{name}: expected one of {list(known)}, got {value!r}")


def _check_model_options(cfg: TrainConfig) -> None:
    """``input_range`` is one of the model's, ``model`` does not set it a second time, and
    ``model.camera_input`` is on only for a model that takes the camera."""
    if cfg.input_range is not None and cfg.input_range not in INPUT_RANGES:
        raise ConfigError(f"input_range: expected one of {list(INPUT_RANGES)}, got "
                          f"{cfg.input_range!r}")
    get_spec(cfg.model_name).resolve_input_range(cfg.input_range)
    get_spec(cfg.model_name).check_camera_input(cfg.model)
    for key in ("heads", "input_range"):
        if key in cfg.model:
            raise ConfigError(f"model.{key}: set it with the top-level key {key!r} (option "
                              f"--{key.replace('_', '-')}), not inside 'model'")


def _check_heads_and_method(cfg: TrainConfig) -> None:
    """The model, its heads, the method and the loss options fit together."""
    get_spec(cfg.model_name).check_heads(cfg.heads)
    if cfg.method not in METHODS:
        raise ConfigError(f"method: expected one of {list(METHODS)}, got {cfg.method!r}")
    for name, known in (("defocus_loss", ("l1", "l2")), ("consistency_norm", ("l1", "l2")),
                        ("loss", ("2hded", "mddnet")), ("optimizer", OPTIMIZERS)):
        if getattr(cfg, name) not in known:
            raise ConfigError(f"{name}: expected one of {list(known)}, got "
                              f"{getattr(cfg, name)!r}")
    if len(cfg.mddnet_lambdas) != 4:
        raise ConfigError(f"mddnet_lambdas: expected 4 weights (lambda1..lambda4 of MDDNet "
                          f"eqs. 3-4), got {list(cfg.mddnet_lambdas)}")
    for name in ("defocus_weight", "consistency"):
        if not getattr(cfg, name) >= 0:
            raise ConfigError(f"{name}: expected >= 0, got {getattr(cfg, name)}")
    if not 0 < cfg.sigma_max <= 32:
        raise ConfigError(f"sigma_max: expected a value in (0, 32] pixels, got {cfg.sigma_max}")
    if cfg.consistency > 0 and not {"depth", "defocus"} <= set(cfg.heads):
        raise ConfigError(f"consistency {cfg.consistency}: ties the depth and defocus heads; "
                          f"heads {list(cfg.heads)} lack one (use --heads depth,defocus)")
    if cfg.selfsup_anchor_window % 2 == 0:
        raise ConfigError(f"selfsup_anchor_window: expected an odd number of pixels, got "
                          f"{cfg.selfsup_anchor_window}")
    if cfg.selfsup_anchor > 0 and cfg.method != "self-supervised":
        raise ConfigError(f"selfsup_anchor {cfg.selfsup_anchor}: the anchor is a term of the "
                          "self-supervised loss; use method self-supervised or set it to 0")
    if cfg.method == "self-supervised":
        if "defocus" not in cfg.heads or "depth" in cfg.heads:
            raise ConfigError(f"method self-supervised: trains the defocus head (and "
                              f"optionally the AiF head) without depth labels; expected "
                              f"heads defocus or aif,defocus, got {list(cfg.heads)}")
        h, w = cfg.resize if cfg.resize is not None else (cfg.crop, cfg.crop)
        if math.ceil(3 * cfg.sigma_max) >= min(h, w):
            raise ConfigError(f"sigma_max {cfg.sigma_max} px: the re-blur reflects a "
                              f"{math.ceil(3 * cfg.sigma_max)} px border, which needs "
                              f"training frames larger than that ({h}x{w}); lower sigma_max "
                              "or enlarge crop")


PRESETS: dict[str, dict[str, Any]] = {
    # the paper's schedule: every default above
    "paper": {},
    # a tiny CPU schedule for `make demo` and smoke tests: a few minutes on 2 cores
    "demo": {"epochs": 6, "batch_size": 2, "lr": 2e-3, "lr_milestones": [4], "crop": 128,
             "num_workers": 0, "val_every": 3},
    # MDDNet (seed 003 §5.1): Adam, lr 1e-4, batch 4, eqs. 3-6 with eq. 5's L2 norm. Not
    # stated there, assumed here (docs/trainer.md, "MDDNet"): a constant learning rate,
    # 25 epochs (GLPN's NYU schedule length), lambda1..lambda4 = 1, lambda5 = 0.1,
    # 256-pixel crops, Adam's default betas, no weight decay
    "mddnet": {"model_name": "mddnet", "heads": ["depth", "defocus"], "optimizer": "adam",
               "lr": 1e-4, "batch_size": 4, "epochs": 25, "lr_milestones": [],
               "loss": "mddnet", "mddnet_lambdas": [1.0, 1.0, 1.0, 1.0], "consistency": 0.1,
               "consistency_norm": "l2"},
    # Anwar et al. (seed 001 §4-5): SGD, lr 1e-2 divided by ten once after 15K of 25K
    # iterations of one image each (five epochs: after the third), the softmax loss of the
    # keypoint classes. Momentum and weight decay are not stated: the trainer's defaults
    "anwar": {"model_name": "anwar", "heads": ["depth"], "optimizer": "sgd", "lr": 1e-2,
              "batch_size": 1, "epochs": 5, "lr_milestones": [3]},
}

def _checked(d: dict, source: str) -> dict:
    return check_fields(TrainConfig, d, source)


def resolve_config(*, preset: str | None = None, config_file: str | Path | None = None,
                   overrides: dict | None = None) -> TrainConfig:
    """Preset, then config file, then overrides (``None`` values are ignored).

    Parameters
    ----------
    preset : str, optional
        A key of :data:`PRESETS`; default ``"paper"`` or the file's ``preset`` entry.
    config_file : path, optional
        JSON or TOML table of :class:`TrainConfig` fields.
    overrides : dict, optional
        Command-line values; entries that are ``None`` mean "not given".
    """
    file_opts = dict(load_config_file(config_file)) if config_file else {}
    if not isinstance(file_opts.get("preset", ""), str):
        raise ConfigError(f"config file {config_file}: 'preset' expected a string")
    file_preset = file_opts.pop("preset", None)
    cli = {k: v for k, v in (overrides or {}).items() if v is not None}
    name = preset or file_preset or _model_preset(cli, file_opts)
    if name not in PRESETS:
        raise ConfigError(f"preset {name!r}: unknown; choose one of {sorted(PRESETS)}")
    merged = dict(_checked(PRESETS[name], f"preset {name!r}"))
    merged.update(_checked(file_opts, f"config file {config_file}"))
    merged.update(_checked(cli, "command line"))
    return TrainConfig(**_with_method_heads(merged))


def _model_preset(cli: dict, file_opts: dict) -> str:
    """The default recipe of the model a run names (``paper`` when it names none)."""
    name = cli.get("model_name", file_opts.get("model_name", DEFAULT_MODEL))
    return get_spec(name).preset if isinstance(name, str) else "paper"


def _with_method_heads(merged: dict) -> dict:
    """``merged`` with the model's heads for its method where nothing named the heads
    (2HDED:NET: depth,aif supervised, aif,defocus self-supervised), and the model's input
    range where nothing named one."""
    method = merged.get("method", TrainConfig.method)
    model = merged.get("model_name", TrainConfig.model_name)
    if model not in MODELS:
        return merged
    if merged.get("input_range") is None:  # recorded: the range the run uses
        merged = {**merged, "input_range": get_spec(model).input_range}
    if "heads" in merged or method not in METHODS:
        return merged
    return {**merged, "heads": get_spec(model).method_heads(method)}


def resolve_run_config(run_dir, *, resume: bool = False, preset: str | None = None,
                       config_file: str | Path | None = None,
                       overrides: dict | None = None) -> TrainConfig:
    """The configuration of a ``trainer fit`` run, as the command line resolves it.

    A resumed run without ``--config`` or ``--preset`` continues with its own resolved
    ``RUN_DIR/config.json``; command-line overrides still apply on top. A config.json
    without ``input_range`` (a run made before the option) trained on [0, 1] inputs: it
    resumes with ``unit``.
    """
    saved = Path(run_dir) / "config.json"
    if resume and config_file is None and preset is None and saved.is_file():
        config_file = saved
        if "input_range" not in load_config_file(saved):
            overrides = {"input_range": "unit", **{k: v for k, v in (overrides or {}).items()
                                                   if v is not None}}
    return resolve_config(preset=preset, config_file=config_file, overrides=overrides)


# the one line a paper-preset run without ImageNet weights prints (docs/trainer.md,
# "ImageNet initialisation of the encoder", says how the file is made)
IMAGENET_NOTE = (
    "note: the published 2HDED:NET numbers used an ImageNet-initialised encoder; this run "
    "starts from random weights. Make the file where torchvision and internet are "
    "available: python -c \"import torch, torchvision; torch.save(torchvision.models."
    "densenet121(weights='IMAGENET1K_V1').state_dict(), 'densenet121.pth')\" and pass "
    "--encoder-weights densenet121.pth (docs/trainer.md, ImageNet initialisation)")


def imagenet_note(cfg: TrainConfig, *, preset: str | None = None,
                  config_file: str | Path | None = None, resume: bool = False) -> str | None:
    """:data:`IMAGENET_NOTE` for a fresh run of the ``paper`` preset (named, or the default)
    on the DenseNet-121 encoder without ``encoder_weights``; None otherwise."""
    if resume or cfg.encoder_weights is not None or cfg.model:
        return None
    if get_spec(cfg.model_name).preset != "paper":  # another network's recipe
        return None
    file_preset = load_config_file(config_file).get("preset") if config_file else None
    return IMAGENET_NOTE if (preset or file_preset or "paper") == "paper" else None


def save_config(config: TrainConfig, run_dir: str | Path) -> Path:
    """Write the resolved config as ``RUN_DIR/config.json`` and return its path."""
    path = Path(run_dir) / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    return path
