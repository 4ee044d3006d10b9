"""A trained AiF head against the oracle deconvolution and the defocused input.

On the procedural scenes of ``benchmarks/learning_anwar.py`` (the v1 learning benchmark's:
same source, sizes, camera ``2hded`` focused at 10 m, ``gather`` engine, Gaussian PSF,
seed), train 2HDED:NET with heads ``depth,aif`` for the budget of the learning rows
(``rows_steps`` steps of ``batch_size`` crops, SGD lr ``lr`` divided by ten after 75 % of
the epochs; reduced width in ``--quick``: ``settings.model``, the v1 quick network) and
score its last checkpoint on the test scenes with ``trainer eval``'s figures
(:func:`trainer.evaluate.evaluate_checkpoint`), which beside the AiF head's PSNR / SSIM
report, on the same whole frames and pixels, those of

* the oracle: the defocused input deconvolved with the dataset's *true* sigma map and PSF
  (:mod:`trainer.oracle`, ``defocuskit.deconvolve``, method ``levels``);
* the defocused input itself.

Writes ``benchmarks/results/oracle_aif[_quick].json`` and prints a Markdown table.

Usage::

    python benchmarks/oracle_aif.py --quick --threads 1   # a few CPU minutes
    python benchmarks/oracle_aif.py --quick --workdir W    # reuse W/defocused.zarr
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_machine.py
from learning_anwar import finish_run, start_run  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
HEADS = ("depth", "aif")
SETTINGS = {
    "quick": {"n_train": 104, "n_val": 8, "n_test": 24, "size": [256, 256], "batch_size": 8,
              "crop": 128, "rows_steps": 240, "curve_points": 8, "lr": 0.01,
              "model": {"growth_rate": 8, "num_init_features": 16,
                        "block_config": [2, 3, 4, 3]}},
    "full": {"n_train": 2050, "n_val": 50, "n_test": 200, "size": [256, 256],
             "batch_size": 8, "crop": 256, "rows_steps": 20000, "curve_points": 25,
             "lr": 0.01, "model": {}},
}
IMAGE_KEYS = ("psnr", "ssim", "oracle_psnr", "oracle_ssim", "input_psnr", "input_ssim")

__all__ = ["SETTINGS", "main", "train_config", "markdown"]


def train_config(s: dict, *, device: str, seed: int):
    """2HDED:NET with heads depth,aif; the learning rows' budget and schedule shape."""
    from trainer.config import TrainConfig

    per_epoch = max(1, (s["n_train"] - s["n_val"]) // s["batch_size"])
    epochs = math.ceil(s["rows_steps"] / per_epoch)
    return TrainConfig(
        epochs=epochs, max_steps=s["rows_steps"], batch_size=s["batch_size"], lr=s["lr"],
        lr_milestones=(max(1, round(0.75 * epochs)),), crop=s["crop"], train_split="train",
        val_split="holdout", val_fraction=s["n_val"] / s["n_train"],
        val_every=max(1, epochs // s["curve_points"]), num_workers=0, seed=seed,
        heads=HEADS, model=dict(s["model"]), device=device, progress=False, plots=False)


def _row(data: Path, run_dir: Path, cfg, device: str) -> dict:
    from trainer.checkpoint import load_checkpoint
    from trainer.evaluate import evaluate_checkpoint
    from trainer.fit import fit

    t0 = time.perf_counter()
    out = fit(data, run_dir, cfg, log=lambda m: print(f"  2hded depth,aif: {m}", flush=True))
    seconds = time.perf_counter() - t0
    test = evaluate_checkpoint(data, run_dir / "last.pt", split="test", device=device,
                               oracle=True, progress=False)
    ckpt = load_checkpoint(run_dir / "last.pt")
    return {"test": {k: v for k, v in test.items() if k != "checkpoint"},
            "steps": out["steps"], "train_seconds": round(seconds, 1),
            "train_config": cfg.to_dict(), "history": ckpt.get("history", [])}


def markdown(res: dict) -> str:
    """The table for docs/benchmarks.md."""
    t = res["twohded"]["test"]
    rows = [("defocused input", "input_"), ("AiF head of 2HDED:NET (depth,aif)", ""),
            ("oracle: deconvolution with the true σ map", "oracle_")]
    lines = ["| AiF estimate | PSNR (dB) | SSIM |", "|---|---|---|"]
    lines += [f"| {name} | {t[p + 'psnr']:.2f} | {t[p + 'ssim']:.3f} |" for name, p in rows]
    return "\n".join(lines)


def main(argv=None) -> dict:
    a, s, work, data, res = start_run(argv, doc=__doc__, table=SETTINGS, name="oracle_aif")
    res["twohded"] = _row(data, work / "twohded_aif", train_config(s, device=a.device,
                                                                   seed=a.seed), a.device)
    return finish_run(res, a, argv, name="oracle_aif", table=markdown(res))


if __name__ == "__main__":
    main()
