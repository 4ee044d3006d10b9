"""Evaluation on whole frames: depth metrics over valid pixels, PSNR / SSIM of the AiF,
MSE / MAE of the defocus (sigma) map.

Each frame (as stored, or resized as a whole for a run trained with ``resize``) is padded
on the device to a multiple of 32 (reflection), predicted, and the prediction cropped
back, so every pixel of the frame is scored. Metrics are per image, then averaged over
images (see :class:`trainer.metrics.MetricAccumulator`); predictions are clipped to the
evaluated depth range first unless ``clip=False``. With ``make3d=True`` the depth metrics
are also reported over the Make3D ranges C1 (gt <= 70 m) and C2 (gt <= 80 m) with ``c1_`` /
``c2_`` prefixes.

A scene-only split (``synth --render-mode scene-only``) is rendered with a fixed draw per
sample (the run's camera, focus, render mode, PSF, ``render_seed`` and ``render_stream``, else the
dataset's; see :mod:`trainer.onthefly`), so its numbers are comparable across runs that
share those settings; a split with stored defocus is scored on it.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch.utils.data import DataLoader

from defocuskit.dataset.store import open_dataset
from defocuskit.errors import ConfigError, SchemaError
from trainer.blindzone import BlindZoneAccumulator
from trainer.camera_input import model_forward, scored_arrays, takes_camera
from trainer.checkpoint import build_model, load_checkpoint
from trainer.config import MAX_FRAME, RANGES
from trainer.data import DefocusDataset, crop_to, pad_to_multiple, to_device_batch
from trainer.device import pin_memory
from trainer.metrics import MAKE3D_RANGES, MetricAccumulator, benchmark_max_depth
from trainer.onthefly import FIXED_STREAM, OnTheFlyDataset, resolve_render_settings
from trainer.oracle import oracle_metrics
from trainer.progress import DEFAULT_EVERY_S, Progress, Ticker

__all__ = ["evaluate", "evaluate_checkpoint", "format_table", "resolve_device", "autocast_for",
           "AS_TRAINED"]

AS_TRAINED = "as-trained"  # evaluate_checkpoint(resize=...): the checkpoint's own protocol


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; other strings go to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"device {device!r}: expected 'auto', 'cpu', 'cuda' or "
                          "'cuda:N'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: CUDA is not available on this machine")
    return dev


def autocast_for(device: torch.device, amp: bool):
    """bf16 autocast on ``device`` (CUDA or CPU) when ``amp``; a no-op context otherwise."""
    if amp:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model, loader, *, device, amp: bool = False, channels_last: bool = False,
             max_depth: float | None = None, clip: bool = True, make3d: bool = False,
             keep_first: bool = False, progress=None) -> dict:
    """Score ``model`` on every full frame of ``loader``.

    Parameters
    ----------
    model : TwoHeadedNet
        Put in eval mode here (and left so).
    loader : iterable of batches from :class:`~trainer.data.DefocusDataset` (``crop=None``)
    device : torch.device
    max_depth : float, optional
        Upper end of the evaluated depth range of the main metrics, metres: gt beyond it
        is not scored.
    clip : bool
        Clip predicted depth to the evaluated range (of each metric set) first.
    make3d : bool
        Also compute the C1 / C2 range metrics.
    keep_first : bool
        Also return the first batch's inputs, predictions and targets (CPU float32) under
        ``"_first"`` for the validation panel.
    progress : trainer.progress.Progress, optional
        Told the number of images after each batch (the caller closes it).

    Returns
    -------
    dict
        The :data:`~trainer.metrics.DEPTH_KEYS` (``rmse``, ``abs_rel``, ``sq_rel``,
        ``rmse_log``, ``log10``, ``delta105``, ``delta115``, ``delta1..3``; depth head),
        ``edge_acc``, ``edge_comp`` (depth head, pixels), ``psnr``, ``ssim`` (AiF head),
        the :data:`~trainer.metrics.DEFOCUS_KEYS` (defocus head), ``n_images``; with
        ``make3d`` also ``c1_*`` and ``c2_*`` depth metrics; ``blind_zone``
        (:mod:`trainer.blindzone`) when the batches hold the depth and the focus distance.
    """
    model.eval()
    accs = {"": MetricAccumulator(max_depth=max_depth, clip=clip)}
    zone = BlindZoneAccumulator(max_depth=max_depth, clip=clip)
    if make3d:
        accs.update({f"{k}_": MetricAccumulator(max_depth=v, clip=clip, edges=False)
                     for k, v in MAKE3D_RANGES.items()})
    first = None
    for batch in loader:
        b = to_device_batch(batch, device, channels_last=channels_last)
        x, size = pad_to_multiple(b["defocused"])
        with autocast_for(device, amp):
            pred = model_forward(model, x, b)
        pred = {k: v.float() for k, v in crop_to(pred, size).items()}
        if "depth" in pred and "depth" in b and "focus_distance" in b:
            zone.update(pred["depth"], b["depth"], b["focus_distance"])
        for prefix, acc in accs.items():
            if not prefix:
                acc.update(pred, b)
            elif "depth" in pred:  # the Make3D ranges only concern depth
                acc.update({"depth": pred["depth"]}, b)
        if keep_first and first is None:
            first = {"input": b["defocused"].float().cpu(),
                     **{f"pred_{k}": v.cpu() for k, v in pred.items()},
                     **{f"true_{k}": b[k].float().cpu() for k in ("depth", "aif") if k in b},
                     **({"true_defocus": b["sigma"].float().cpu()} if "sigma" in b else {})}
        if progress is not None:
            progress.update(int(b["defocused"].shape[0]))
    out = {}
    for prefix, acc in accs.items():
        if prefix and not acc.n_images:
            continue
        res = acc.compute()
        if prefix:
            res = {f"{prefix}{k}": v for k, v in res.items() if k not in ("psnr", "ssim",
                                                                           "n_images")}
        out.update(res)
    if zone.count.sum():
        out["blind_zone"] = zone.compute()
    if first is not None:
        out["_first"] = first
    return out


def _check_eval_args(*, max_depth, resize, batch_size, num_workers, max_samples,
                     stack_index) -> None:
    """Refuse an argument of :func:`evaluate_checkpoint` outside its range (one line)."""
    RANGES["max_depth"].check("max_depth", max_depth)
    RANGES["batch_size"].check("batch_size", batch_size)
    RANGES["num_workers"].check("num_workers", num_workers)
    RANGES["val_max_samples"].check("limit", max_samples)
    RANGES["stack_index"].check("stack_index", stack_index)
    if resize is not None and not isinstance(resize, str):
        size = list(resize)
        if len(size) != 2 or not all(isinstance(v, int) and 32 <= v <= MAX_FRAME
                                     and v % 32 == 0 for v in size):
            raise ConfigError(f"resize: expected [H, W] in multiples of 32 from 32 to "
                              f"{MAX_FRAME} pixels, got {size}")


def evaluate_checkpoint(data, checkpoint, *, split: str = "test", device: str = "auto",
                        batch_size: int = 1, num_workers: int = 0, make3d: bool = False,
                        max_depth: float | None = None, clip: bool | None = None,
                        resize=AS_TRAINED, max_samples: int | None = None,
                        stack_index: int | None = None, progress: bool = True,
                        progress_every: float = DEFAULT_EVERY_S, oracle: bool | None = None
                        ) -> dict:
    """Load ``checkpoint``, rebuild its model and score it on ``split`` of ``data``.

    The evaluation protocol follows the run unless overridden: ``max_depth``, ``clip`` and
    ``resize`` default to the checkpoint's training config.

    Parameters
    ----------
    max_depth : float, optional
        Evaluated depth range, metres (``inf``: unlimited). Default: the run's
        ``max_depth``, else the dataset's benchmark range
        (:func:`~trainer.metrics.benchmark_max_depth`), else unlimited.
    clip : bool, optional
        Clip predictions to the range. Default: the run's ``clip_depth`` (true).
    resize : (int, int), None or ``AS_TRAINED``
        Resize whole frames to ``(H, W)`` and score at that size; ``None``: the stored
        frames; ``AS_TRAINED`` (default): the run's ``resize``.
    stack_index : int, optional
        Image of a focal-stack split to score (and its sigma map). Default: the run's
        ``stack_index`` when the split is a stack; given for a split that is not, it is
        refused.
    progress : bool
        Progress on stderr: a bar on a terminal, else a plain line every ``progress_every``
        seconds (see :mod:`trainer.progress`); False: none.
    make3d, batch_size, num_workers, max_samples
        See ``trainer eval``.
    oracle : bool, optional
        Also score the oracle deconvolution and the defocused input
        (:mod:`trainer.oracle`); default: when the model has an AiF head and the frames a
        sigma map (not after a resize that changes the aspect ratio); True where they have
        none is refused.

    Returns
    -------
    dict
        :func:`evaluate`'s metrics plus ``split``, ``checkpoint``, ``epoch`` and the
        protocol used: ``max_depth`` (None: unlimited), ``clip``, ``resize`` ([H, W] or
        None).

    Raises
    ------
    CheckpointError, SchemaError, ConfigError
        Bad checkpoint, dataset lacking the needed arrays, bad device.
    """
    _check_eval_args(max_depth=max_depth, resize=resize, batch_size=batch_size,
                     num_workers=num_workers, max_samples=max_samples, stack_index=stack_index)
    ticker = Ticker(progress_every)
    dev = resolve_device(device)
    ckpt = load_checkpoint(checkpoint)
    model = build_model(ckpt, path=checkpoint).to(dev)
    train_cfg = ckpt.get("train_config", {})
    reader = open_dataset(data)
    max_depth, clip, resize = _protocol(train_cfg, reader.attrs, max_depth=max_depth,
                                        clip=clip, resize=resize)
    kw = dict(heads=model.config.heads, crop=None, resize=resize, hflip=False,
              max_samples=max_samples)
    ds = _eval_dataset(data, split, reader, model, train_cfg, kw, stack_index)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=pin_memory(dev))
    amp = train_cfg.get("amp")  # as trained: None means bf16 on CUDA only
    amp = dev.type == "cuda" if amp is None else bool(amp)
    with Progress(len(ds), f"eval {split}", enabled=progress, ticker=ticker) as bar:
        res = evaluate(model, loader, device=dev, amp=amp, make3d=make3d,
                       max_depth=max_depth, clip=clip, progress=bar)
    res.update(split=split, checkpoint=str(checkpoint), epoch=int(ckpt["epoch"]),
               max_depth=max_depth, clip=clip, resize=None if resize is None else list(resize))
    res.update(_oracle_scores(ds, data, split, reader, model, train_cfg, kw, progress,
                              ticker, oracle))
    return res


def _oracle_scores(ds, data, split, reader, model, train_cfg, kw, progress, ticker,
                   oracle: bool | None) -> dict:
    """The oracle's scores (:func:`_oracle`) where asked, or by default where the model has
    an AiF head and the split a sigma map; else none."""
    sp = reader[split]
    has_sigma = sp.has("sigma") or not sp.has("defocused")  # scene-only: rendered with sigma
    if oracle and not has_sigma:
        raise ConfigError(f"--oracle: split {split!r} of {data} stores no sigma map to "
                          "deconvolve with; leave --oracle out")
    if has_sigma and ("aif" in model.config.heads if oracle is None else oracle):
        return _oracle(ds, data, split, reader.attrs, train_cfg, kw, progress, ticker,
                       asked=bool(oracle))
    return {}


def _protocol(train_cfg: dict, attrs: dict, *, max_depth, clip, resize):
    """``(max_depth, clip, resize)`` of an evaluation: each given, else the run's; the depth
    range else the dataset's benchmark range; an unlimited range is None."""
    if isinstance(resize, str) and resize == AS_TRAINED:
        resize = train_cfg.get("resize")
    resize = None if resize is None else (int(resize[0]), int(resize[1]))
    if clip is None:
        clip = bool(train_cfg.get("clip_depth", True))
    if max_depth is None:
        max_depth = train_cfg.get("max_depth")
    if max_depth is None:
        max_depth = benchmark_max_depth(attrs)
    if max_depth is not None and math.isinf(max_depth):
        max_depth = None
    return max_depth, clip, resize


def _eval_dataset(data, split, reader, model, train_cfg, kw, stack_index):
    """The dataset scored: the stored frames (one image of a focal stack), or for a
    scene-only split the frames rendered here; ``kw`` gains the arrays read (the camera,
    for a camera-input model and the blind zone)."""
    given_stack = stack_index is not None  # else the run's, for a split that is a stack
    if stack_index is None:
        stack_index = train_cfg.get("stack_index")
    if split in reader.splits:
        sp = reader[split]
        scene_only = not sp.has("defocused")
        if takes_camera(model) or scene_only or sp.has("focus_distance"):
            kw["arrays"] = scored_arrays(model.config.heads, lambda a: scene_only or sp.has(a),
                                         camera=takes_camera(model))
    if split in reader.splits and not reader[split].has("defocused"):
        if given_stack:
            raise ConfigError(f"stack_index {stack_index}: split {split!r} of {data} is "
                              "scene-only (rendered here, one image per sample), not a focal "
                              "stack; leave --stack-index out")
        return _fixed_render_dataset(data, split, reader.attrs, train_cfg, kw)
    if not given_stack and split in reader.splits and not reader[split].focal_stack:
        stack_index = None  # a run trained on a stack, scored on single images
    return DefocusDataset(data, split, stack_index=stack_index, **kw)


def _oracle(ds, data, split, attrs, train_cfg, kw, progress, ticker, asked: bool) -> dict:
    """The oracle baseline (:mod:`trainer.oracle`) on the frames of ``ds``, read again with
    their true sigma map; nothing, unless ``asked``, where sigma is undefined (a resize
    that changes the aspect ratio)."""
    kw = kw | {"arrays": ("aif", "sigma")}
    try:
        if isinstance(ds, OnTheFlyDataset):
            frames = _fixed_render_dataset(data, split, attrs, train_cfg, kw)
            psf = ds.settings.psf
        else:
            frames = DefocusDataset(data, split, stack_index=ds.stack_index, **kw)
            psf = attrs.get("psf") or "gaussian"  # datasets before the disc PSF: Gaussian
    except SchemaError:
        if asked:
            raise
        return {}
    with Progress(len(frames), f"oracle {split}", enabled=progress, ticker=ticker) as bar:
        return oracle_metrics(frames, psf, progress=bar)


def _fixed_render_dataset(data, split, attrs: dict, train_cfg: dict, kw: dict):
    """A scene-only split rendered with the run's fixed draw (see the module docstring)."""
    settings = resolve_render_settings(
        attrs, camera=train_cfg.get("camera"), focus=train_cfg.get("focus"),
        mode=train_cfg.get("render_mode"), psf=train_cfg.get("psf"), data=data)
    seed = train_cfg.get("render_seed")
    seed = train_cfg.get("seed", 0) if seed is None else seed
    return OnTheFlyDataset(data, split, settings=settings, fixed=True, render_seed=seed,
                           render_stream=train_cfg.get("render_stream", FIXED_STREAM), **kw)


# what an unset protocol value means, in words
_NONE_WORDS = {"max_depth": "none (every depth scored)", "resize": "none (native frames)"}


def _plain(key: str, value) -> str:
    """A table value in plain words: no Python ``None``, ``True`` or lists."""
    if value is None:
        return _NONE_WORDS.get(key, "none")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "resize" and isinstance(value, list | tuple):
        return "x".join(str(v) for v in value)
    return str(value)


def format_table(metrics: dict) -> str:
    """Two aligned columns, metric and value (floats with 4 decimals)."""
    rows = []
    for k, v in metrics.items():
        if k.startswith("_") or isinstance(v, dict):  # nested (blind_zone): --json only
            continue
        if isinstance(v, float):
            v = f"{v:.4f}" if math.isfinite(v) else str(v)
        rows.append((k, _plain(k, v)))
    width = max((len(k) for k, _ in rows), default=6)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  -----"]
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)
