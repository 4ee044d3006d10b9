"""Does the self-supervised σ map learn? The thesis's label-free loss, with and without the
cost-volume anchor, against the constants and the supervised defocus head.

Per seed: procedural rooms (textured materials), camera ``2hded`` at f/1.0 focused at 10 m
beyond the room (σ one-to-one with depth: median about 1.8 px, up to 11.5 px at 256 px
wide), rendered with the exact gather (the blur model that the loss's re-blur assumes;
setting ``render_mode``: ``layered`` adds occlusion, which the re-blur does not model;
settings ``focus`` and ``noise``: another focus policy, sensor noise) and stored in 8 bits.
The same reduced-width 2HDED:NET (heads ``aif,defocus``) is trained with the same steps,
crops, seed and initialisation under three losses:

``supervised``      L1 against the stored σ (+ the deblurring term);
``selfsup``         the thesis's label-free loss (2 L_re + 0.5 L_smooth + 0.01 L_deblur);
``selfsup_anchor``  the same plus the cost-volume anchor (``selfsup_anchor``, label-free).

Beside them, no training: the training split's mean and median σ (constants), and the
cost-volume estimate itself (:func:`trainer.costvolume.cost_volume_sigma`), which reads
the test image's AiF as well as its defocused input (the networks see only the input).
Every σ map is scored per test scene: MAE over all finite pixels and over the textured ones
(AiF gradient magnitude > 0.02 per pixel, central differences of the channel mean); means
with 95 % bootstrap intervals over scenes and seeds, and paired differences.

Usage::

    python benchmarks/bench_selfsup.py --quick --threads 1              # one seed, CPU
    python benchmarks/bench_selfsup.py --quick --threads 1 --seeds 0,1,2
    python benchmarks/bench_selfsup.py --device cuda --seeds 0,1,2       # full, for a GPU
    python benchmarks/bench_selfsup.py --quick --set render_mode='"layered"'  # occlusion
    python benchmarks/bench_selfsup.py --quick --set render_mode='"layered"' \
        --set focus='"uniform"' --set noise='{"gain": 0.01, "read_sigma": 0.002}'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/: _machine, learning
from _machine import chosen_settings, cpu_model  # noqa: E402
from learning.data import load_split  # noqa: E402
from learning.runs import say, train, train_config  # noqa: E402
from learning.sigma_scores import TEXTURE_THRESHOLD, scene_errors, texture_mask  # noqa: E402
from learning.stats import mean_ci, paired_ci  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FIGURES = REPO / "docs" / "figures"
CAMERA = {"preset": "2hded", "f_number": 1.0}
TRAINED = ("supervised", "selfsup", "selfsup_anchor")
ROWS = ("constant_mean", "constant_median", "cost_volume", *TRAINED)
SETTINGS = {
    "quick": {"n_train": 72, "n_val": 8, "n_test": 24, "size": [256, 256], "steps": 240,
              "batch_size": 8, "crop": 128, "lr": 0.01, "curve_points": 4, "sigma_max": 12.0,
              "anchor": 1.0, "anchor_window": 7, "render_mode": "gather",
              "focus": "fixed:10", "noise": None,
              "model": {"growth_rate": 8, "num_init_features": 16, "block_config": [2, 3, 4, 3]}},
    "full": {"n_train": 2050, "n_val": 50, "n_test": 200, "size": [256, 256], "steps": 20000,
             "batch_size": 8, "crop": 256, "lr": 0.01, "curve_points": 25, "sigma_max": 12.0,
             "anchor": 1.0, "anchor_window": 7, "render_mode": "gather",
             "focus": "fixed:10", "noise": None, "model": {}},
}

__all__ = ["SETTINGS", "ROWS", "synthesise", "texture_mask", "scene_errors", "predict_sigma",
           "run_seed", "summarise", "main"]


def synthesise(path: Path, s: dict, *, seed: int, jobs: int = 1) -> None:
    """The procedural train / test rooms of one seed, σ up to about 11.5 px, 8-bit."""
    from defocuskit.pipeline.config import SynthConfig
    from defocuskit.pipeline.synth import run_synth

    h, w = s["size"]
    run_synth(SynthConfig(source="procedural", input="-", output=str(path), camera=CAMERA,
                          focus=s["focus"], render_mode=s["render_mode"], noise=s["noise"],
                          seed=seed, jobs=jobs,
                          shard_size=32,
                          source_options={"n_train": s["n_train"], "n_test": s["n_test"],
                                          "height": h, "width": w, "seed": seed}),
              progress=False)


def predict_sigma(checkpoint: Path, defocused: np.ndarray, *, device: str = "cpu") -> list:
    """The defocus head's σ map (H, W) for each (H, W, 3) uint8 image of ``defocused``."""
    import torch

    from trainer.camera_input import model_forward
    from trainer.checkpoint import build_model, load_checkpoint
    from trainer.data import crop_to, pad_to_multiple

    model = build_model(load_checkpoint(checkpoint)).to(device).eval()
    out = []
    with torch.no_grad():
        for img in defocused:
            x = torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None]
            x, size = pad_to_multiple(x.to(device))
            out.append(crop_to(model_forward(model, x), size)["defocus"][0, 0].cpu().numpy())
    return out


def _cost_volume(test: dict, s: dict) -> list:
    import torch

    from trainer.costvolume import cost_volume_sigma

    maps = []
    for a, b in zip(test["aif"], test["defocused"], strict=True):
        ta, tb = (torch.from_numpy(v.astype(np.float32) / 255).permute(2, 0, 1)[None]
                  for v in (a, b))
        est, _ = cost_volume_sigma(ta, tb, sigma_max=s["sigma_max"], window=s["anchor_window"])
        maps.append(est[0, 0].numpy())
    return maps


def _configs(s: dict, *, seed: int, device: str, workers: int) -> dict:
    base = dataclasses.replace(
        train_config(s, device=device, seed=seed, workers=workers, heads=("aif", "defocus")),
        sigma_max=s["sigma_max"])
    ss = dataclasses.replace(base, method="self-supervised")
    return {"supervised": base, "selfsup": ss,
            "selfsup_anchor": dataclasses.replace(ss, selfsup_anchor=s["anchor"],
                                                  selfsup_anchor_window=s["anchor_window"])}


def run_seed(s: dict, work: Path, *, seed: int, device: str, jobs: int, workers: int) -> dict:
    """One seed: synthesise, score the constants and the cost volume, train and score the
    three losses. Per-scene errors of every row, the σ statistics, the training records and
    (``example``) the first test scene's AiF, true σ and predicted maps."""
    data = work / f"rooms_{seed}.zarr"
    t0 = time.perf_counter()
    synthesise(data, s, seed=seed, jobs=jobs)
    train_sigma = load_split(data, "train")["sigma"]
    test = load_split(data, "test")
    stats = {"train_mean_px": float(np.nanmean(train_sigma)),
             "train_median_px": float(np.nanmedian(train_sigma)),
             "max_px": float(np.nanmax(train_sigma)),
             "test_max_px": float(np.nanmax(test["sigma"]))}
    say(f"seed {seed}: σ mean {stats['train_mean_px']:.2f} px, median "
        f"{stats['train_median_px']:.2f}, max {stats['max_px']:.2f} "
        f"({time.perf_counter() - t0:.0f} s to synthesise)")
    masks = [texture_mask(a.astype(np.float32) / 255) for a in test["aif"]]
    maps = {"constant_mean": [np.full(m.shape, stats["train_mean_px"]) for m in masks],
            "constant_median": [np.full(m.shape, stats["train_median_px"]) for m in masks],
            "cost_volume": _cost_volume(test, s)}
    runs = {}
    for name, cfg in _configs(s, seed=seed, device=device, workers=workers).items():
        run_dir = work / f"{name}_{seed}"
        runs[name] = train(data, run_dir, cfg, label=name) | {"train_config": cfg.to_dict()}
        maps[name] = predict_sigma(run_dir / "last.pt", test["defocused"], device=device)
    per = {}
    for row in ROWS:
        errs = [scene_errors(p, t, m) for p, t, m in zip(maps[row], test["sigma"], masks,
                                                         strict=True)]
        per[row] = {k: [e[k] for e in errs] for k in ("mae_all", "mae_textured")}
        say(f"  {row}: MAE all {np.mean(per[row]['mae_all']):.3f} px, textured "
            f"{np.mean(per[row]['mae_textured']):.3f} px")
    return {"seed": seed, "sigma": stats, "textured_fraction": float(np.mean(masks)),
            "per_scene": per, "runs": runs,
            "example": {"aif": test["aif"][0], "truth": test["sigma"][0],
                        **{r: maps[r][0] for r in ("cost_volume", *TRAINED)}}}


def summarise(per_seed: dict) -> dict:
    """Means with 95 % intervals per row and metric; paired differences of each row against
    the median constant, and of the anchored loss against the thesis's and the supervised."""
    seeds = sorted(per_seed)
    out = {"rows": {}, "vs_constant_median": {}, "anchor_vs_selfsup": {},
           "anchor_vs_supervised": {}}
    for metric in ("mae_all", "mae_textured"):
        col = {r: [per_seed[k]["per_scene"][r][metric] for k in seeds] for r in ROWS}
        for r in ROWS:
            out["rows"].setdefault(r, {})[metric] = mean_ci(col[r])
            out["vs_constant_median"].setdefault(r, {})[metric] = paired_ci(
                col[r], col["constant_median"])
        out["anchor_vs_selfsup"][metric] = paired_ci(col["selfsup_anchor"], col["selfsup"])
        out["anchor_vs_supervised"][metric] = paired_ci(col["selfsup_anchor"],
                                                        col["supervised"])
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="reduced width, CPU budget")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--jobs", type=int, default=1, help="synthesis worker processes")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="change one setting (e.g. --set steps=120)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="keep datasets and runs here (default: a temporary folder)")
    p.add_argument("--out", type=Path, default=None, help="results JSON")
    p.add_argument("--figure", type=Path, default=None, help="figure PNG")
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    s = chosen_settings(p, SETTINGS, args.quick, args.set)
    seeds = [int(v) for v in args.seeds.split(",")]
    tag = "_quick" if args.quick else ""
    out = args.out or RESULTS / f"selfsup_study{tag}.json"
    fig = args.figure or FIGURES / f"selfsup_study{tag}.png"
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_selfsup_"))
    res = {"mode": "quick" if args.quick else "full", "settings": s, "camera": CAMERA,
           "focus": s["focus"], "render_mode": s["render_mode"], "noise": s["noise"],
           "texture_threshold": TEXTURE_THRESHOLD,
           "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(),
                       "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                       "device": args.device},
           "command": "python benchmarks/bench_selfsup.py " + " ".join(argv or sys.argv[1:]),
           "per_seed": {}}
    t0 = time.perf_counter()
    example = None
    try:
        for seed in seeds:
            r = run_seed(s, work, seed=seed, device=args.device, jobs=args.jobs,
                         workers=args.workers)
            example = example or r.pop("example")  # arrays: the figure's, not the JSON's
            r.pop("example", None)
            res["per_seed"][str(seed)] = r
            res["summary"] = summarise(res["per_seed"])
            res["seconds_total"] = round(time.perf_counter() - t0, 1)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(res, indent=1) + "\n")  # after every seed
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    from learning.selfsup_report import figure, markdown

    figure(res, fig, example)
    print(markdown(res))
    say(f"wrote {out} and {fig}")
    return res


if __name__ == "__main__":
    main()
