"""The first learning study (v1), kept for its sigma-map, on-the-fly and MDDNet row groups.

The v2 study with controls is ``benchmarks/bench_learning.py``.

Synthesises a procedural train / test set with the library (``run_synth``, source
``procedural``), then measures on the held-out test scenes:

(a) the constant predictor: the training set's mean depth everywhere;
(b) 2HDED:NET trained on ALL-IN-FOCUS inputs (monocular cues only): a twin of the dataset
    whose ``defocused`` array is the ``aif`` array, so the trainer is unchanged;
(c) the same network, same seed, same schedule, trained on the DEFOCUSED inputs;

plus the AiF quality of the defocused input itself and of (c)'s AiF head (PSNR / SSIM
against the true AiF). Depth metrics are per image, averaged over the test scenes, from
the *last* checkpoint of each run (no model selection). The curves come from the
trainer's validation pass on scenes held out of the training split (``val_split =
"holdout"``); fit never sees the test split.

Two more row groups (``--rows``), on the same scenes:

``selfsup``: the sigma (defocus) map on the test scenes, MAE and MSE in pixels
    against the stored sigma, of (d) a constant, the training split's mean stored sigma
    (and its median, the L1-optimal constant); (e) the supervised defocus head (heads
    aif,defocus, L1 against the stored sigma); (f) the self-supervised method of the
    thesis (heads aif,defocus, no depth or sigma label: re-blur of the AiF compared with
    the input). ``sigma_max`` of (f) is the largest stored sigma of the dataset rounded up
    to a whole pixel (its re-blur border, ceil(3 sigma_max), must fit in the crop).
``onthefly``: depth from a second dataset of the same scenes whose focus is
    drawn per sample (policy ``uniform``, between the nearest and farthest depth of the
    scene): (g) trained on that one frozen draw; (h) trained with on-the-fly defocus, a
    fresh ``uniform`` focus per sample and epoch, same camera, engine and PSF. Both are
    scored on the stored (fixed) defocus of that dataset's test split. A fixed focus
    (``fixed:10``) would make on-the-fly rendering redraw the same image every epoch, so
    both variants use the per-sample policy.

``mddnet`` (the model registry): depth and sigma map on the test scenes of (i) 2HDED:NET
    with heads depth,defocus (the trainer's default loss) and (j) MDDNet (heads
    depth,defocus, MDDNet's losses with the L2 consistency, Adam), against the constants
    (a) and (d). The quick run's MDDNet is reduced in width (``settings.mddnet_model``: a
    MiT-b0 encoder, 32-channel decoders), as the 2HDED:NET of the quick run is; it needs
    the ``mddnet`` extra.

These rows run ``settings.rows_steps`` steps each (fewer than the depth rows in
``--quick``, to keep the added time on 2 cores near 10 min).

Camera: the paper's (``2hded``: f = 70 mm, D = 44.8 mm, 36 mm sensor over the image
width) focused at 10 m, beyond the farthest wall (9.6 m), so the blur grows monotonically
as objects come nearer (sigma = 7.5 px at 0.7 m, 2.2 px at 2 m, 0.6 px at 5 m for 256 px
wide frames) and far surfaces stay sharp enough for their texture, hence their blur, to be
seen. See docs/benchmarks.md for why not near focus.

Writes ``benchmarks/results/learning[_quick].json``, ``docs/figures/learning[_quick].png``
and prints a Markdown table for docs/benchmarks.md.

Usage::

    python benchmarks/learning/v1.py --quick            # <= 10 min on 2 CPU cores
    python benchmarks/learning/v1.py --device cuda      # the full run, for a GPU
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_machine.py
from _machine import chosen_settings, cpu_model  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
FIGURES = REPO / "docs" / "figures"

__all__ = ["SETTINGS", "ROWS", "synthesise", "aif_twin", "constant_baseline",
           "input_quality", "sigma_stats", "constant_sigma_baseline", "train_and_test",
           "main"]

# Per mode: data, schedule and model. n_train scenes are synthesised for the train split;
# the trainer holds n_val of them out for its validation curve (val_split "holdout") and
# trains on the rest. "model" holds ModelConfig overrides ({} = the paper's DenseNet-121
# 2HDED:NET, 42 M parameters).
SETTINGS = {
    "quick": {"n_train": 104, "n_val": 8, "n_test": 24, "size": [256, 256], "steps": 480,
              "batch_size": 8, "crop": 128, "lr": 0.01, "curve_points": 8,
              "model": {"growth_rate": 8, "num_init_features": 16, "block_config": [2, 3, 4, 3]},
              "rows_steps": 240,
              "mddnet_model": {"depths": [2, 2, 2, 2], "hidden_sizes": [32, 64, 160, 256],
                               "decoder_hidden_size": 32}, "mddnet_lr": 1e-3},
    "full": {"n_train": 2050, "n_val": 50, "n_test": 200, "size": [256, 256], "steps": 20000,
             "batch_size": 8, "crop": 256, "lr": 0.01, "curve_points": 25,
             "model": {}, "rows_steps": 20000, "mddnet_model": {}, "mddnet_lr": 1e-4},
}
CAMERA, FOCUS, MODE = "2hded", "fixed:10", "gather"
ROWS = ("depth", "selfsup", "onthefly", "mddnet")  # (a)-(c); (d)-(f); (g)-(h); (i)-(j)
RANDOM_FOCUS = "uniform"  # the per-sample focus policy of the on-the-fly comparison


def _say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def synthesise(path: Path, s: dict, *, seed: int, jobs: int, focus: str = FOCUS) -> dict:
    """Render the procedural train / test set with ``run_synth``; returns its summary."""
    from defocuskit.pipeline.config import SynthConfig
    from defocuskit.pipeline.synth import run_synth

    h, w = s["size"]
    cfg = SynthConfig(source="procedural", input="-", output=str(path), camera=CAMERA,
                      focus=focus, render_mode=MODE, seed=seed, jobs=jobs, shard_size=32,
                      source_options={"n_train": s["n_train"], "n_test": s["n_test"],
                                      "height": h, "width": w, "seed": seed})
    summary = run_synth(cfg, progress=False)
    return {"samples": summary.n_samples, "seconds": round(summary.seconds, 2),
            "config": cfg.content_key()}


def aif_twin(src: Path, dst: Path) -> Path:
    """A copy of dataset ``src`` whose ``defocused`` array is its ``aif`` array (input (b))."""
    from defocuskit.dataset.store import open_dataset, write_arrays

    ds = open_dataset(src)
    splits = {}
    for name in ds.splits:
        sp = ds[name]  # zarr arrays: write_arrays reads them a shard at a time
        splits[name] = {"aif": sp.array("aif"), "defocused": sp.array("aif"),
                        "depth": sp.array("depth")}
    write_arrays(dst, splits, attrs={"note": f"aif-input twin of {src}"}, shard_size=32)
    return dst


def _mean_over_images(values: list[dict]) -> dict:
    keys = [k for k in values[0] if k != "n_pixels"]
    return {k: float(np.mean([v[k] for v in values])) for k in keys} | {"n_images": len(values)}


def constant_baseline(path: Path) -> dict:
    """(a): every test pixel predicted as the mean valid depth of the training split."""
    from defocuskit.dataset.store import open_dataset
    from trainer.metrics import depth_metrics

    ds = open_dataset(path)
    total = count = 0.0
    train = ds["train"].array("depth")
    for i in range(train.shape[0]):
        d = np.asarray(train[i], dtype=np.float64)
        d = d[np.isfinite(d)]
        total, count = total + d.sum(), count + d.size
    mean = total / count
    test = ds["test"].array("depth")
    per_image = [depth_metrics(np.full(test.shape[1:], mean), np.asarray(test[i]))
                 for i in range(test.shape[0])]
    return _mean_over_images(per_image) | {"train_mean_depth_m": mean}


def _finite_sigma(arr, i: int) -> np.ndarray:
    v = np.asarray(arr[i], dtype=np.float64)
    return v[np.isfinite(v)]


def sigma_stats(path: Path) -> dict:
    """Mean, median and max of the stored sigma (pixels) of the train split; max of all."""
    from defocuskit.dataset.store import open_dataset

    ds = open_dataset(path)
    train = ds["train"].array("sigma")
    vals = np.concatenate([_finite_sigma(train, i) for i in range(train.shape[0])])
    overall = max(float(np.max(_finite_sigma(ds[n].array("sigma"), i)))
                  for n in ds.splits for i in range(ds[n].array("sigma").shape[0]))
    return {"train_mean_px": float(vals.mean()), "train_median_px": float(np.median(vals)),
            "train_max_px": float(vals.max()), "max_px": overall}


def constant_sigma_baseline(path: Path, value: float) -> dict:
    """(d): every test pixel's sigma predicted as ``value``; MSE / MAE over the finite
    pixels of each image, then averaged over images (as ``trainer eval``)."""
    from defocuskit.dataset.store import open_dataset

    test = open_dataset(path)["test"].array("sigma")
    err = [_finite_sigma(test, i) - value for i in range(test.shape[0])]
    return {"defocus_mse": float(np.mean([np.mean(e ** 2) for e in err])),
            "defocus_mae": float(np.mean([np.mean(np.abs(e)) for e in err])),
            "n_images": len(err), "value_px": float(value)}


def input_quality(path: Path) -> dict:
    """PSNR / SSIM of the defocused test inputs against their AiF (the deblurring floor)."""
    import torch

    from defocuskit.dataset.store import open_dataset
    from trainer.metrics import image_metrics

    sp = open_dataset(path)["test"]
    per_image = []
    for i in range(len(sp)):
        x = sp.read(i, ("defocused", "aif"))
        t = {k: torch.from_numpy(v).permute(2, 0, 1).float() / 255 for k, v in x.items()}
        per_image.append(image_metrics(t["defocused"], t["aif"]))
    return _mean_over_images(per_image)


def _train_config(s: dict, *, device: str, seed: int, workers: int):
    from trainer.config import TrainConfig

    per_epoch = max(1, (s["n_train"] - s["n_val"]) // s["batch_size"])
    epochs = math.ceil(s["steps"] / per_epoch)
    return TrainConfig(
        epochs=epochs, max_steps=s["steps"], batch_size=s["batch_size"], lr=s["lr"],
        lr_milestones=(max(1, round(0.75 * epochs)),), crop=s["crop"], train_split="train",
        val_split="holdout", val_fraction=s["n_val"] / s["n_train"],
        val_every=max(1, epochs // s["curve_points"]), num_workers=workers, seed=seed,
        model=dict(s["model"]), device=device, progress=False, plots=False)


def train_and_test(data: Path, run_dir: Path, cfg, *, device: str, label: str,
                   keep_all: bool = False) -> dict:
    """Fit on ``data`` and score the last checkpoint on every test scene."""
    from trainer.evaluate import evaluate_checkpoint
    from trainer.fit import fit

    t0 = time.perf_counter()
    out = fit(data, run_dir, cfg, log=lambda m: _say(f"  {label}: {m}"))
    seconds = time.perf_counter() - t0
    res = evaluate_checkpoint(data, run_dir / "last.pt", split="test", device=device)
    keep = ("epoch", "step", "lr", "train_total", "train_depth_l1", "val_rmse", "val_abs_rel",
            "val_delta1", "val_psnr")
    history = [{k: v for k, v in row.items() if keep_all or k in keep}
               for row in _history(run_dir)]
    return {"test": {k: v for k, v in res.items() if k not in ("checkpoint",)},
            "steps": out["steps"], "epochs": out["epochs"], "train_seconds": round(seconds, 1),
            "history": history}


def _history(run_dir: Path) -> list[dict]:
    from trainer.checkpoint import load_checkpoint

    return load_checkpoint(run_dir / "last.pt").get("history", [])


def plot_curves(results: dict, path: Path) -> Path:
    """Training loss and held-out depth metrics of runs (b) and (c) against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    const = results["constant"]
    for key, label, color in (("aif_input", "(b) all-in-focus input", "C0"),
                              ("defocused_input", "(c) defocused input", "C3")):
        hist = results[key]["history"]
        steps = [r["step"] for r in hist]
        loss = "train_depth_l1" if "train_depth_l1" in hist[0] else "train_total"
        axes[0].plot(steps, [r[loss] for r in hist], color=color, label=label)
        pts = [(r["step"], r["val_rmse"], r["val_delta1"]) for r in hist if "val_rmse" in r]
        if pts:
            s, rmse, d1 = zip(*pts, strict=True)
            axes[1].plot(s, rmse, "o-", color=color, label=label)
            axes[2].plot(s, d1, "o-", color=color, label=label)
    axes[1].axhline(const["rmse"], color="k", ls="--", label="(a) constant, on the test scenes")
    axes[2].axhline(const["delta1"], color="k", ls="--", label="(a) constant, on the test scenes")
    axes[0].set(title="training depth L1 loss, m (epoch means)", xlabel="step", yscale="log")
    axes[1].set(title="depth RMSE (m), held-out training scenes", xlabel="step")
    axes[2].set(title="depth δ1 (higher is better), held-out training scenes", xlabel="step")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    s = results["settings"]
    fig.suptitle(f"bench_learning ({results['mode']}, seed {results['seed']}): "
                 f"{s['n_train'] - s['n_val']} training + {s['n_val']} held-out / "
                 f"{s['n_test']} test procedural rooms, {s['steps']} steps of "
                 f"{s['batch_size']}, camera {results['camera']} focused at "
                 f"{results['focus'].split(':')[1]} m")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def markdown_table(results: dict) -> str:
    parts = [_depth_table(results)] if "defocused_input" in results else []
    if "selfsup" in results:
        parts.append(_selfsup_table(results["selfsup"]))
    if "onthefly" in results:
        parts.append(_onthefly_table(results["onthefly"]))
    if "mddnet" in results:
        parts.append(_mddnet_table(results))
    return "\n\n".join(parts)


def _mddnet_table(results: dict) -> str:
    r = results["mddnet"]
    lines = ["| predictor, test scenes | RMSE (m) ↓ | AbsRel ↓ | δ1 ↑ | σ MAE (px) ↓ "
             "| σ MSE (px²) ↓ |", "|---|---|---|---|---|---|"]
    c, d = results["constant"], r["constant_sigma"]
    lines.append(f"| (a) / (d) constants: train-set mean depth / mean σ | {c['rmse']:.3f} "
                 f"| {c['abs_rel']:.3f} | {c['delta1']:.3f} | {d['defocus_mae']:.3f} "
                 f"| {d['defocus_mse']:.3f} |")
    for name, key in (("(i) 2HDED:NET, heads depth,defocus", "twohded"),
                      ("(j) MDDNet, MDDNet's losses", "mddnet")):
        t = r[key]["test"]
        lines.append(f"| {name} | {t['rmse']:.3f} | {t['abs_rel']:.3f} | {t['delta1']:.3f} "
                     f"| {t['defocus_mae']:.3f} | {t['defocus_mse']:.3f} |")
    return "\n".join(lines)


def _selfsup_table(r: dict) -> str:
    lines = ["| σ map, 24 test scenes | MAE (px) ↓ | MSE (px²) ↓ |", "|---|---|---|"]
    for name, key in ((f"(d) constant: train-set mean σ ({r['constant_mean']['value_px']:.2f} px)",
                       "constant_mean"),
                      (f"(d') constant: train-set median σ "
                       f"({r['constant_median']['value_px']:.2f} px)", "constant_median"),
                      ("(e) supervised defocus head (aif,defocus)", "supervised"),
                      ("(f) self-supervised (aif,defocus, no labels)", "self_supervised")):
        t = r[key]["test"] if "test" in r[key] else r[key]
        lines.append(f"| {name} | {t['defocus_mae']:.3f} | {t['defocus_mse']:.3f} |")
    lines[0] = lines[0].replace("24", str(r["constant_mean"]["n_images"]))
    return "\n".join(lines)


def _onthefly_table(r: dict) -> str:
    lines = ["| depth, test scenes (stored uniform-focus defocus) | RMSE (m) ↓ | AbsRel ↓ "
             "| δ1 ↑ | AiF PSNR (dB) |", "|---|---|---|---|---|"]
    for name, key in (("(g) fixed: one frozen focus draw per scene", "fixed"),
                      ("(h) on-the-fly: fresh focus per sample and epoch", "on_the_fly")):
        t = r[key]["test"]
        lines.append(f"| {name} | {t['rmse']:.3f} | {t['abs_rel']:.3f} | {t['delta1']:.3f} "
                     f"| {t['psnr']:.2f} |")
    return "\n".join(lines)


def _depth_table(results: dict) -> str:
    rows = [("(a) constant: train-set mean depth", results["constant"], None),
            ("(b) 2HDED:NET on all-in-focus input", results["aif_input"]["test"], None),
            ("(c) 2HDED:NET on defocused input", results["defocused_input"]["test"], None)]
    lines = ["| predictor | RMSE (m) ↓ | AbsRel ↓ | δ1 ↑ |", "|---|---|---|---|"]
    for name, r, _ in rows:
        lines.append(f"| {name} | {r['rmse']:.3f} | {r['abs_rel']:.3f} | {r['delta1']:.3f} |")
    q, c = results["input_quality"], results["defocused_input"]["test"]
    lines += ["", "| AiF image (test scenes) | PSNR (dB) ↑ | SSIM ↑ |", "|---|---|---|",
              f"| defocused input itself | {q['psnr']:.2f} | {q['ssim']:.3f} |",
              f"| (c)'s AiF head output | {c['psnr']:.2f} | {c['ssim']:.3f} |"]
    return "\n".join(lines)


def _machine(device: str) -> dict:
    import torch

    info = {"cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    if hasattr(os, "getloadavg"):  # 1, 5, 15 min: other jobs on a shared machine show here
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="small model and data: <= 10 min on 2 CPU cores (default: the full run)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=0, help="scenes, noise and model init")
    p.add_argument("--jobs", type=int, default=1, help="synth worker processes")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers while training")
    p.add_argument("--threads", type=int,
                   help="torch CPU threads (default: torch's); 1 avoids oversubscription "
                        "when another job shares a 2-core machine")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="override a setting, e.g. --set steps=200 --set n_train=32")
    p.add_argument("--rows", default=",".join(ROWS),
                   help="comma-separated row groups to run: depth ((a)-(c)), selfsup "
                        "((d)-(f)), onthefly ((g)-(h)), mddnet ((i)-(j)); default all")
    p.add_argument("--workdir", help="keep the datasets and runs here (default: a temp dir)")
    p.add_argument("--out", help="JSON path (default benchmarks/results/learning[_quick].json)")
    p.add_argument("--figure", help="PNG path (default docs/figures/learning[_quick].png)")
    p.add_argument("--replot", metavar="JSON",
                   help="only redraw the figure and print the table of a finished run's JSON")
    a = p.parse_args(argv)
    if a.replot:
        res = json.loads(Path(a.replot).read_text())
        suffix = "_quick" if res["mode"] == "quick" else ""
        if "defocused_input" in res:
            path = plot_curves(res, Path(a.figure or FIGURES / f"learning{suffix}.png"))
            print(markdown_table(res) + f"\n\nwrote {path}")
        else:
            print(markdown_table(res))
        return res
    rows = tuple(r.strip() for r in a.rows.split(",") if r.strip())
    if not rows or set(rows) - set(ROWS):
        p.error(f"--rows {a.rows}: expected a comma-separated subset of {list(ROWS)}")
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    mode = "quick" if a.quick else "full"
    s = chosen_settings(p, SETTINGS, a.quick, a.set)
    suffix = "_quick" if a.quick else ""
    # the depth rows keep learning[_quick].json; a run without them gets its own file
    name = f"learning{suffix}" + ("" if "depth" in rows else "_" + "_".join(rows))
    out = Path(a.out or RESULTS / f"{name}.json")
    figure = Path(a.figure or FIGURES / f"learning{suffix}.png")
    t_start = time.perf_counter()
    tmp = None if a.workdir else tempfile.mkdtemp(prefix="bench-learning-")
    work = Path(a.workdir or tmp)
    work.mkdir(parents=True, exist_ok=True)
    try:
        res = _run(s, work, mode=mode, seed=a.seed, device=a.device, jobs=a.jobs,
                   workers=a.workers, rows=rows)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    res["seconds_total"] = round(time.perf_counter() - t_start, 1)
    res["command"] = " ".join(["python", "benchmarks/learning/v1.py",
                               *(sys.argv[1:] if argv is None else argv)])
    if hasattr(os, "getloadavg"):
        res["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    if "defocused_input" in res:
        plot_curves(res, figure)
    table = markdown_table(res)
    print("\n" + table + "\n", flush=True)
    _say(f"wrote {out}" + (f" and {figure}" if "defocused_input" in res else "")
         + f" in {res['seconds_total']:.0f} s")
    return res


def _run(s: dict, work: Path, *, mode: str, seed: int, device: str, jobs: int,
         workers: int, rows: tuple[str, ...] = ROWS) -> dict:
    from trainer.evaluate import resolve_device
    from trainer.model import ModelConfig, TwoHeadedNet, count_parameters

    dev = str(resolve_device(device))
    res = {"mode": mode, "settings": s, "camera": CAMERA, "focus": FOCUS, "render_mode": MODE,
           "seed": seed, "rows": list(rows), "machine": _machine(dev),
           "parameters": count_parameters(TwoHeadedNet(ModelConfig(**s["model"]))),
           "model_note": ("reduced width (ModelConfig overrides in settings.model); the paper's "
                          "DenseNet-121 network is settings.model = {}") if s["model"] else
           "the paper's DenseNet-121 2HDED:NET"}
    data, twin = work / "defocused.zarr", work / "aif_input.zarr"
    _say(f"synthesising {s['n_train']} + {s['n_test']} procedural scenes "
         f"({s['size'][0]}x{s['size'][1]}, camera {CAMERA}, focus {FOCUS}, {MODE})")
    res["synth"] = synthesise(data, s, seed=seed, jobs=jobs)
    _say(f"  {res['synth']['samples']} samples in {res['synth']['seconds']:.1f} s")
    res["constant"] = constant_baseline(data)
    res["input_quality"] = input_quality(data)
    _say(f"(a) constant {res['constant']['train_mean_depth_m']:.3f} m: "
         f"RMSE {res['constant']['rmse']:.3f}  δ1 {res['constant']['delta1']:.3f}; "
         f"defocused input PSNR {res['input_quality']['psnr']:.2f} dB")
    cfg = _train_config(s, device=device, seed=seed, workers=workers)
    if "depth" in rows:
        _depth_rows(res, s, cfg, data, twin, work, dev=dev, device=device)
    if "selfsup" in rows:
        res["selfsup"] = _selfsup_rows(s, cfg, data, work, device=device)
    if "onthefly" in rows:
        res["onthefly"] = _onthefly_rows(s, cfg, work, seed=seed, jobs=jobs, device=device)
    if "mddnet" in rows:
        res["mddnet"] = _mddnet_rows(s, cfg, data, work, device=device)
    return res


def _mddnet_rows(s: dict, cfg, data: Path, work: Path, *, device: str) -> dict:
    """(i) 2HDED:NET and (j) MDDNet, both with depth and defocus heads, same budget."""
    from trainer.models import get_spec

    spec = get_spec("mddnet")
    model_cfg = spec.make_config(spec.heads, s["mddnet_model"])
    stats = sigma_stats(data)
    r = {"mddnet_parameters": spec.parameter_counts(spec.build(model_cfg)),
         "constant_sigma": constant_sigma_baseline(data, stats["train_mean_px"])}
    heads = ("depth", "defocus")
    r["twohded"] = _fit_row(data, work / "twohded_depth_defocus",
                            _rows_config(s, cfg, heads=heads), device=device,
                            label="(i) 2HDED:NET depth,defocus")
    mdd = _rows_config(s, cfg, heads=heads, model_name="mddnet", model=dict(s["mddnet_model"]),
                       optimizer="adam", lr=s["mddnet_lr"], loss="mddnet", consistency=0.1,
                       consistency_norm="l2")
    _say(f"(j) MDDNet: {r['mddnet_parameters']['total']:,} parameters")
    r["mddnet"] = _fit_row(data, work / "mddnet", mdd, device=device, label="(j) MDDNet")
    return r


def _rows_config(s: dict, cfg, **changes):
    """The rows' config: ``cfg`` for ``settings.rows_steps`` steps (same lr schedule shape)."""
    steps = s.get("rows_steps", s["steps"])
    per_epoch = max(1, (s["n_train"] - s["n_val"]) // s["batch_size"])
    epochs = math.ceil(steps / per_epoch)
    return dataclasses.replace(cfg, epochs=epochs, max_steps=steps,
                               lr_milestones=(max(1, round(0.75 * epochs)),),
                               val_every=max(1, epochs // s["curve_points"]), **changes)


def _fit_row(data, run_dir, cfg, *, device: str, label: str) -> dict:
    _say(f"training {label}: {cfg.max_steps} steps of {cfg.batch_size} x {cfg.crop}^2 crops, "
         f"heads {','.join(cfg.heads)}, method {cfg.method}"
         + (", on the fly" if cfg.on_the_fly else ""))
    out = train_and_test(data, run_dir, cfg, device=device, label=label, keep_all=True)
    out["train_config"] = cfg.to_dict()
    t = out["test"]
    shown = [f"{k} {t[k]:.3f}" for k in ("defocus_mae", "defocus_mse", "rmse", "abs_rel",
                                         "delta1", "psnr") if k in t]
    _say(f"  {label}: test " + "  ".join(shown) + f" ({out['train_seconds']:.0f} s)")
    return out


def _selfsup_rows(s: dict, cfg, data: Path, work: Path, *, device: str) -> dict:
    """(d) constant sigma, (e) supervised defocus head, (f) self-supervised."""
    stats = sigma_stats(data)
    # the re-blur ladder must reach the largest sigma of the scenes; a whole pixel above it
    sigma_max = float(min(32, math.ceil(stats["max_px"])))
    r = {"sigma": stats, "sigma_max": sigma_max,
         "constant_mean": constant_sigma_baseline(data, stats["train_mean_px"]),
         "constant_median": constant_sigma_baseline(data, stats["train_median_px"])}
    _say(f"(d) constant σ {stats['train_mean_px']:.3f} px: test MAE "
         f"{r['constant_mean']['defocus_mae']:.3f}  MSE {r['constant_mean']['defocus_mse']:.3f}"
         f"; stored σ max {stats['max_px']:.2f} px -> sigma_max {sigma_max:g}")
    heads = ("aif", "defocus")
    r["supervised"] = _fit_row(data, work / "supervised_defocus",
                               _rows_config(s, cfg, heads=heads), device=device,
                               label="(e) supervised defocus")
    r["self_supervised"] = _fit_row(
        data, work / "self_supervised",
        _rows_config(s, cfg, heads=heads, method="self-supervised", sigma_max=sigma_max),
        device=device, label="(f) self-supervised")
    return r


def _onthefly_rows(s: dict, cfg, work: Path, *, seed: int, jobs: int, device: str) -> dict:
    """(g) frozen per-sample focus draw against (h) a fresh draw every epoch."""
    data = work / "uniform_focus.zarr"
    _say(f"synthesising the same scenes with focus {RANDOM_FOCUS!r} (one draw per scene)")
    r = {"focus": RANDOM_FOCUS, "synth": synthesise(data, s, seed=seed, jobs=jobs,
                                                    focus=RANDOM_FOCUS)}
    r["input_quality"] = input_quality(data)
    r["fixed"] = _fit_row(data, work / "fixed_uniform", _rows_config(s, cfg), device=device,
                          label="(g) fixed draw")
    r["on_the_fly"] = _fit_row(
        data, work / "on_the_fly",
        _rows_config(s, cfg, on_the_fly=True, camera=CAMERA, focus=RANDOM_FOCUS,
                     render_mode=MODE, psf="gaussian"),
        device=device, label="(h) on the fly")
    return r


def _depth_rows(res: dict, s: dict, cfg, data: Path, twin: Path, work: Path, *, dev: str,
                device: str) -> None:
    """(b) all-in-focus input and (c) defocused input, ``settings.steps`` steps each."""
    _say("writing the all-in-focus twin")
    aif_twin(data, twin)
    res["train_config"] = cfg.to_dict()
    for key, path, label in (("aif_input", twin, "(b) aif input"),
                             ("defocused_input", data, "(c) defocused input")):
        _say(f"training {label}: {s['steps']} steps of {s['batch_size']} x {s['crop']}^2 crops, "
             f"{res['parameters']:,} parameters, device {dev}")
        res[key] = train_and_test(path, work / key, cfg, device=device, label=label)
        t = res[key]["test"]
        _say(f"  {label}: test RMSE {t['rmse']:.3f}  AbsRel {t['abs_rel']:.3f}  "
             f"δ1 {t['delta1']:.3f}  PSNR {t.get('psnr', float('nan')):.2f} "
             f"({res[key]['train_seconds']:.0f} s)")


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
