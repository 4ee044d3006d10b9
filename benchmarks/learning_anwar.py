"""Learning row (k) of the v1 learning benchmark: Anwar et al.'s network (model anwar).

On the v1 benchmark's procedural scenes (same source, sizes, camera ``2hded`` focused at
10 m, ``gather`` engine, seed) and with the budget of its extra rows (``rows_steps`` steps
of ``batch_size`` crops, the same learning-rate schedule shape), train model anwar
(reduced width in ``--quick``: ``settings.anwar_model``) and score its last checkpoint on
the test scenes (dense upsampled depth, the trainer's metrics), beside (a) the constant
predictor, the training split's mean depth. Its optimiser is ``settings.anwar_optimizer``
(default the anwar preset's SGD) at lr ``settings.anwar_lr``. The checkpoint is scored by
its own read-out (``model.readout``, default the paper's arg-max class) and by the other
one (a copy of the checkpoint with only the read-out changed): ``anwar.test`` and
``anwar.test_expectation`` (or ``test_argmax``).

Writes ``benchmarks/results/learning_anwar[_quick].json`` and prints a Markdown row set.

Usage::

    python benchmarks/learning_anwar.py --quick --threads 1   # a few CPU minutes
    python benchmarks/learning_anwar.py --device cuda    # the full-size network
    python benchmarks/learning_anwar.py --quick --workdir W   # reuse W/defocused.zarr
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_machine.py
from _machine import chosen_settings, cpu_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CAMERA, FOCUS, MODE = "2hded", "fixed:10", "gather"  # the v1 benchmark's
SETTINGS = {
    "quick": {"n_train": 104, "n_val": 8, "n_test": 24, "size": [256, 256], "batch_size": 8,
              "crop": 128, "rows_steps": 240, "curve_points": 8, "anwar_lr": 1e-2,
              "anwar_optimizer": "sgd",
              "anwar_model": {"widths": [16, 32, 64, 64, 64], "fc_width": 256,
                              "pool_size": 3, "keypoint_stride": 8}},
    "full": {"n_train": 2050, "n_val": 50, "n_test": 200, "size": [256, 256],
             "batch_size": 8, "crop": 256, "rows_steps": 20000, "curve_points": 25,
             "anwar_lr": 1e-2, "anwar_optimizer": "sgd", "anwar_model": {}},
}

__all__ = ["SETTINGS", "main", "synthesise", "constant_baseline", "anwar_config", "start_run",
           "finish_run"]


def synthesise(path: Path, s: dict, *, seed: int) -> None:
    """The v1 benchmark's procedural train / test set."""
    from defocuskit.pipeline.config import SynthConfig
    from defocuskit.pipeline.synth import run_synth

    h, w = s["size"]
    run_synth(SynthConfig(source="procedural", input="-", output=str(path), camera=CAMERA,
                          focus=FOCUS, render_mode=MODE, seed=seed, shard_size=32,
                          source_options={"n_train": s["n_train"], "n_test": s["n_test"],
                                          "height": h, "width": w, "seed": seed}),
              progress=False)


def constant_baseline(path: Path) -> dict:
    """(a): every test pixel predicted as the training split's mean valid depth."""
    from defocuskit.dataset.store import open_dataset
    from trainer.metrics import depth_metrics

    ds = open_dataset(path)
    train = ds["train"].read_all("depth").astype(np.float64)
    mean = float(np.nanmean(train))
    test = ds["test"].read_all("depth")
    rows = [depth_metrics(np.full(t.shape, mean), t) for t in test]
    keys = [k for k in rows[0] if k != "n_pixels"]
    return {k: float(np.mean([r[k] for r in rows])) for k in keys} | {
        "n_images": len(rows), "train_mean_depth_m": mean}


def anwar_config(s: dict, *, device: str, seed: int):
    """The row's TrainConfig: the anwar preset, the v1 rows' budget and schedule shape."""
    from trainer.config import resolve_config

    per_epoch = max(1, (s["n_train"] - s["n_val"]) // s["batch_size"])
    epochs = math.ceil(s["rows_steps"] / per_epoch)
    return resolve_config(preset="anwar", overrides={
        "model_name": "anwar", "epochs": epochs, "max_steps": s["rows_steps"],
        "batch_size": s["batch_size"], "lr": s["anwar_lr"],
        "optimizer": s["anwar_optimizer"],
        "lr_milestones": [max(1, round(0.75 * epochs))], "crop": s["crop"],
        "val_split": "holdout", "val_fraction": s["n_val"] / s["n_train"],
        "val_every": max(1, epochs // s["curve_points"]), "num_workers": 0, "seed": seed,
        "model": dict(s["anwar_model"]), "device": device, "progress": False,
        "plots": False})


def _readout_eval(data: Path, run_dir: Path, ckpt: dict, readout: str, device: str) -> dict:
    """The test metrics of the last checkpoint read out by ``readout`` (a copy of it with
    only ``model_config.readout`` changed, saved beside it)."""
    from trainer.checkpoint import save_checkpoint
    from trainer.evaluate import evaluate_checkpoint

    state = {k: v for k, v in ckpt.items() if k != "format_version"}
    state["model_config"] = {**ckpt["model_config"], "readout": readout}
    path = save_checkpoint(run_dir / f"last_{readout}.pt", state)
    test = evaluate_checkpoint(data, path, split="test", device=device, progress=False)
    return {k: v for k, v in test.items() if k != "checkpoint"}


def _row(data: Path, run_dir: Path, cfg, device: str) -> dict:
    from trainer.checkpoint import load_checkpoint
    from trainer.evaluate import evaluate_checkpoint
    from trainer.fit import fit
    from trainer.models import get_spec

    t0 = time.perf_counter()
    out = fit(data, run_dir, cfg, log=lambda m: print(f"  (k) anwar: {m}", flush=True))
    seconds = time.perf_counter() - t0
    test = evaluate_checkpoint(data, run_dir / "last.pt", split="test", device=device)
    ckpt = load_checkpoint(run_dir / "last.pt")
    spec = get_spec("anwar")
    model = spec.build(spec.config_from_dict(ckpt["model_config"]))
    other = "expectation" if model.config.readout == "argmax" else "argmax"
    return {"test": {k: v for k, v in test.items() if k != "checkpoint"},
            "readout": model.config.readout,
            f"test_{other}": _readout_eval(data, run_dir, ckpt, other, device),
            "steps": out["steps"], "train_seconds": round(seconds, 1),
            "parameters": spec.parameter_counts(model),
            "model_config": ckpt["model_config"], "train_config": cfg.to_dict(),
            "history": ckpt.get("history", [])}


def markdown(res: dict) -> str:
    """The rows for docs/benchmarks.md."""
    head = "| row | RMSE (m) | AbsRel | δ1 | parameters |\n|---|---|---|---|---|"
    c, a = res["constant"], res["anwar"]
    lines = [head, f"| (a) constant: train-set mean depth | {c['rmse']:.3f} | "
                   f"{c['abs_rel']:.3f} | {c['delta1']:.3f} | - |"]
    for key in sorted(k for k in a if k.startswith("test")):
        t = a[key]
        readout = a["readout"] if key == "test" else key.removeprefix("test_")
        lines.append(f"| (k) Anwar et al. (model anwar), {readout} read-out | "
                     f"{t['rmse']:.3f} | {t['abs_rel']:.3f} | {t['delta1']:.3f} | "
                     f"{a['parameters']['total']:,} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    a, s, work, data, res = start_run(argv, doc=__doc__, table=SETTINGS, name="learning_anwar")
    res["constant"] = constant_baseline(data)
    cfg = anwar_config(s, device=a.device, seed=a.seed)
    res["anwar"] = _row(data, work / "anwar", cfg, a.device)
    return finish_run(res, a, argv, name="learning_anwar", table=markdown(res))


def start_run(argv, *, doc: str, table: dict, name: str):
    """The command line, settings, dataset and result header shared by this script and
    ``oracle_aif.py``: (args, settings, workdir, dataset path, result dict)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="reduced width, a few CPU minutes")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int,
                   help="torch CPU threads (default: torch's); 1 avoids oversubscription "
                        "when another job shares a 2-core machine")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="override a setting, e.g. --set rows_steps=20")
    p.add_argument("--workdir", help="keep (or reuse) the dataset and run here")
    p.add_argument("--out", help=f"JSON path (default benchmarks/results/{name}[_quick].json)")
    a = p.parse_args(argv)
    s = chosen_settings(p, table, a.quick, a.set)
    if a.threads is not None and a.threads < 1:
        p.error(f"--threads {a.threads}: expected a positive integer")
    import torch

    from trainer.evaluate import resolve_device

    work = Path(a.workdir or tempfile.mkdtemp(prefix=f"bench-{name}-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "defocused.zarr"
    a.t0 = time.perf_counter()
    if not data.exists():
        synthesise(data, s, seed=a.seed)
    if a.threads:  # after the synthesis, so nothing it runs can change the count
        torch.set_num_threads(a.threads)
    res = {"mode": "quick" if a.quick else "full", "settings": s, "camera": CAMERA,
           "focus": FOCUS, "render_mode": MODE, "seed": a.seed,
           "machine": {"cpu": cpu_model(), "device": str(resolve_device(a.device)),
                       "torch_threads": torch.get_num_threads()}}
    return a, s, work, data, res


def finish_run(res: dict, a, argv, *, name: str, table: str) -> dict:
    """Time, command, the JSON file and the printed table, for :func:`start_run`'s scripts."""
    res["seconds_total"] = round(time.perf_counter() - a.t0, 1)
    res["command"] = " ".join(["python", f"benchmarks/{name}.py",
                               *(sys.argv[1:] if argv is None else argv)])
    out = Path(a.out or RESULTS / f"{name}{'_quick' if a.quick else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print("\n" + table + f"\n\nwrote {out}", flush=True)
    return res


if __name__ == "__main__":
    main()
