"""Training and per-scene scoring for the learning benchmark (through the trainer's API)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

__all__ = ["train_config", "train", "predict_split", "score", "say"]


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def train_config(s: dict, *, device: str, seed: int, workers: int, heads=("depth",),
                 camera_input: bool = False):
    """The one schedule of every arm: ``s['steps']`` steps, the same crops, lr and seed."""
    from trainer.config import TrainConfig

    per_epoch = max(1, (s["n_train"] - s["n_val"]) // s["batch_size"])
    epochs = math.ceil(s["steps"] / per_epoch)
    model = dict(s["model"]) | ({"camera_input": True} if camera_input else {})
    return TrainConfig(
        epochs=epochs, max_steps=s["steps"], batch_size=s["batch_size"], lr=s["lr"],
        lr_milestones=(max(1, round(0.75 * epochs)),), crop=s["crop"], train_split="train",
        val_split="holdout", val_fraction=s["n_val"] / s["n_train"],
        val_every=max(1, epochs // s["curve_points"]), num_workers=workers, seed=seed,
        heads=tuple(heads), model=model, device=device, progress=False, plots=False)


def train(data: Path, run_dir: Path, cfg, *, label: str) -> dict:
    """Fit; returns steps, seconds and the history (train loss, held-out RMSE)."""
    from trainer.checkpoint import load_checkpoint
    from trainer.fit import fit

    t0 = time.perf_counter()
    out = fit(data, run_dir, cfg, log=lambda m: None)
    seconds = time.perf_counter() - t0
    keep = ("step", "train_total", "val_rmse", "val_delta1")
    hist = [{k: r[k] for k in keep if k in r}
            for r in load_checkpoint(run_dir / "last.pt").get("history", [])]
    say(f"  {label}: {out['steps']} steps in {seconds:.0f} s")
    return {"steps": out["steps"], "train_seconds": round(seconds, 1), "history": hist}


def predict_split(checkpoint: Path, data: Path, split: str = "test", *, device: str = "cpu"
                  ) -> tuple[list[np.ndarray], dict]:
    """The depth predictions (H, W) of every image of ``split`` and the true arrays."""
    import torch
    from torch.utils.data import default_collate

    from trainer.camera_input import model_forward, scored_arrays
    from trainer.checkpoint import build_model, load_checkpoint
    from trainer.data import DefocusDataset, crop_to, pad_to_multiple, to_device_batch

    model = build_model(load_checkpoint(checkpoint)).to(device).eval()
    ds = DefocusDataset(data, split, heads=("depth",), crop=None, hflip=False,
                        arrays=scored_arrays(("depth",), lambda a: a in ("depth",)))
    preds, truth = [], {"depth": [], "focus_distance": []}
    with torch.no_grad():
        for k in range(len(ds)):
            b = to_device_batch(default_collate([ds[k]]), torch.device(device))
            x, size = pad_to_multiple(b["defocused"])
            pred = crop_to(model_forward(model, x, b), size)["depth"]
            preds.append(pred[0, 0].float().cpu().numpy())
            truth["depth"].append(b["depth"][0, 0].cpu().numpy())
            truth["focus_distance"].append(float(b["focus_distance"][0]))
    return preds, truth


def score(preds: list[np.ndarray], truth: dict) -> dict:
    """Per-image RMSE, AbsRel, delta1 (lists, one value per test scene) and the pooled
    blind-zone bins (:mod:`trainer.blindzone`)."""
    from trainer.blindzone import BlindZoneAccumulator
    from trainer.metrics import depth_metrics

    per = {"rmse": [], "abs_rel": [], "delta1": []}
    zone = BlindZoneAccumulator()
    for p, t, f in zip(preds, truth["depth"], truth["focus_distance"], strict=True):
        m = depth_metrics(p, t)
        for k in per:
            per[k].append(float(m[k]))
        zone.update(p[None], t[None], np.array([f]))
    return {"per_scene": per, "blind_zone": zone.compute()}


def constant_predictions(train_depth: np.ndarray, truth: dict) -> list[np.ndarray]:
    """(a): the training split's mean valid depth everywhere."""
    mean = float(np.nanmean(np.where(train_depth > 0, train_depth, np.nan)))
    return [np.full(t.shape, mean, np.float32) for t in truth["depth"]]
