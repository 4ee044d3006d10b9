"""Evaluation on full frames: depth metrics over valid pixels, PSNR / SSIM of the AiF.

Each frame is padded on the device to a multiple of 32 (reflection), predicted, and the
prediction cropped back, so every pixel of the stored frame is scored. Metrics are per
image, then averaged over images (see :class:`trainer.metrics.MetricAccumulator`). With
``make3d=True`` the depth metrics are also reported over the Make3D ranges C1 (gt <= 70 m)
and C2 (gt <= 80 m) with ``c1_`` / ``c2_`` prefixes.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch.utils.data import DataLoader

from trainer.data import DefocusDataset, crop_to, pad_to_multiple, to_device_batch
from trainer.metrics import MAKE3D_RANGES, MetricAccumulator

__all__ = ["evaluate", "evaluate_checkpoint", "format_table", "resolve_device", "autocast_for"]


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; other strings go to ``torch.device``."""
    from defocuskit.errors import ConfigError

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
    """bf16 autocast on CUDA when ``amp``; a no-op context elsewhere."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model, loader, *, device, amp: bool = False, channels_last: bool = False,
             max_depth: float | None = None, make3d: bool = False,
             keep_first: bool = False) -> dict:
    """Score ``model`` on every full frame of ``loader``.

    Parameters
    ----------
    model : TwoHeadedNet
        Put in eval mode here (and left so).
    loader : iterable of batches from :class:`~trainer.data.DefocusDataset` (``crop=None``)
    device : torch.device
    max_depth : float, optional
        Ignore gt depth above this (metres) in the main metrics.
    make3d : bool
        Also compute the C1 / C2 range metrics.
    keep_first : bool
        Also return the first batch's inputs, predictions and targets (CPU float32) under
        ``"_first"`` for the validation panel.

    Returns
    -------
    dict
        ``rmse``, ``abs_rel``, ``log10``, ``delta1..3`` (depth head), ``psnr``, ``ssim`` (AiF
        head), ``n_images``; with ``make3d`` also ``c1_*`` and ``c2_*`` depth metrics.
    """
    model.eval()
    accs = {"": MetricAccumulator(max_depth=max_depth)}
    if make3d:
        accs.update({f"{k}_": MetricAccumulator(max_depth=v) for k, v in MAKE3D_RANGES.items()})
    first = None
    for batch in loader:
        b = to_device_batch(batch, device, channels_last=channels_last)
        x, size = pad_to_multiple(b["defocused"])
        with autocast_for(device, amp):
            pred = model(x)
        pred = {k: v.float() for k, v in crop_to(pred, size).items()}
        for prefix, acc in accs.items():
            if not prefix:
                acc.update(pred, b)
            elif "depth" in pred:  # the Make3D ranges only concern depth
                acc.update({"depth": pred["depth"]}, b)
        if keep_first and first is None:
            first = {"input": b["defocused"].float().cpu(),
                     **{f"pred_{k}": v.cpu() for k, v in pred.items()},
                     **{f"true_{k}": b[k].float().cpu() for k in ("depth", "aif") if k in b}}
    out = {}
    for prefix, acc in accs.items():
        if prefix and not acc.n_images:
            continue
        res = acc.compute()
        if prefix:
            res = {f"{prefix}{k}": v for k, v in res.items() if k not in ("psnr", "ssim",
                                                                           "n_images")}
        out.update(res)
    if first is not None:
        out["_first"] = first
    return out


def evaluate_checkpoint(data, checkpoint, *, split: str = "test", device: str = "auto",
                        batch_size: int = 1, num_workers: int = 0, make3d: bool = False,
                        max_depth: float | None = None, max_samples: int | None = None,
                        stack_index: int | None = None) -> dict:
    """Load ``checkpoint``, rebuild its model and score it on ``split`` of ``data``.

    Raises
    ------
    CheckpointError, SchemaError, ConfigError
        Bad checkpoint, dataset lacking the needed arrays, bad device.
    """
    from trainer.checkpoint import build_model, load_checkpoint

    dev = resolve_device(device)
    ckpt = load_checkpoint(checkpoint)
    model = build_model(ckpt, path=checkpoint).to(dev)
    train_cfg = ckpt.get("train_config", {})
    if stack_index is None:
        stack_index = train_cfg.get("stack_index")
    ds = DefocusDataset(data, split, heads=model.config.heads, crop=None,
                        stack_index=stack_index, max_samples=max_samples)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=dev.type == "cuda")
    amp = bool(train_cfg.get("amp", False))
    res = evaluate(model, loader, device=dev, amp=amp, make3d=make3d, max_depth=max_depth)
    res.update(split=split, checkpoint=str(checkpoint), epoch=int(ckpt["epoch"]))
    return res


def format_table(metrics: dict) -> str:
    """Two aligned columns, metric and value (floats with 4 decimals)."""
    rows = []
    for k, v in metrics.items():
        if k.startswith("_"):
            continue
        if isinstance(v, float):
            v = f"{v:.4f}" if math.isfinite(v) else str(v)
        rows.append((k, str(v)))
    width = max((len(k) for k, _ in rows), default=6)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  -----"]
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)
