"""Does depth from defocus learn, and from what? The learning study with controls (v2).

Per seed, in two settings (``ideal``: focus beyond the scene, gather, no noise; ``real``:
per-image focus inside the scene, layered rendering with occlusion, sensor noise, 8-bit),
the same reduced-width 2HDED:NET (depth head only, the trainer's own code path) is trained
with the same steps, crops, seed and initialisation on inputs that differ only in how they
were rendered: (b) sharp, (c) defocus from the scene's depth, (d) defocus from another
scene's depth, (e) one constant sigma; (a) is the training-split mean depth, and in the
real setting (c) is trained once more with ``camera_input`` (the focus, f-number and focal
length given to the network). A causal probe re-renders the ideal test scenes with the
focus moved and with the f-number halved. Every number is per test scene, then a mean with
a 95 % bootstrap interval over scenes and seeds (``learning.stats``). See
``benchmarks/learning/`` and docs/benchmarks.md.

Usage::

    python benchmarks/bench_learning.py --quick --threads 1            # one seed, CPU
    python benchmarks/bench_learning.py --quick --threads 1 --seeds 0,1,2
    python benchmarks/bench_learning.py --device cuda --seeds 0,1,2     # full, for a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/: _machine, learning
from _machine import chosen_settings, cpu_model  # noqa: E402
from learning.report import figure, markdown  # noqa: E402
from learning.runs import say  # noqa: E402
from learning.study import run_seed, summarise  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FIGURES = REPO / "docs" / "figures"

# "model" holds ModelConfig overrides ({} = the paper's DenseNet-121 2HDED:NET)
SETTINGS = {
    "quick": {"n_train": 72, "n_val": 8, "n_test": 24, "size": [256, 256], "steps": 150,
              "batch_size": 8, "crop": 96, "lr": 0.01, "curve_points": 3,
              "model": {"growth_rate": 8, "num_init_features": 16, "block_config": [2, 3, 4, 3]}},
    "full": {"n_train": 2050, "n_val": 50, "n_test": 200, "size": [256, 256], "steps": 20000,
             "batch_size": 8, "crop": 256, "lr": 0.01, "curve_points": 25, "model": {}},
}


def _machine(device: str) -> dict:
    import torch

    info = {"cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "device": device}
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small model and data, for a CPU")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--settings", default="ideal,real", help="ideal, real or both")
    p.add_argument("--no-probe", action="store_true", help="skip the causal probe")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--jobs", type=int, default=1, help="synth worker processes")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    p.add_argument("--threads", type=int, help="torch CPU threads (1 on a shared machine)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="override a setting, e.g. --set steps=300")
    p.add_argument("--workdir", help="keep datasets and runs here (default: a temp dir)")
    p.add_argument("--out", help="JSON (default benchmarks/results/learning_v2[_quick].json)")
    p.add_argument("--figure", help="PNG (default docs/figures/learning_v2[_quick].png)")
    p.add_argument("--replot", metavar="JSON", help="redraw the figure and table of a JSON")
    return p, p.parse_args(argv)


def _save(res: dict, out: Path, t0: float, argv) -> None:
    """Write ``res`` with the summary over the seeds finished so far."""
    res["summary"] = summarise(res["seeds"])
    res["seeds_done"] = len(res["seeds"])
    res["seconds_total"] = round(time.perf_counter() - t0, 1)
    res["command"] = " ".join(["python", "benchmarks/bench_learning.py",
                               *(sys.argv[1:] if argv is None else argv)])
    if hasattr(os, "getloadavg"):
        res["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")


def main(argv=None) -> dict:
    p, a = _parse(argv)
    suffix = "_quick" if a.quick else ""
    fig_path = Path(a.figure or FIGURES / f"learning_v2{suffix}.png")
    if a.replot:
        res = json.loads(Path(a.replot).read_text())
        figure(res, fig_path)
        print(markdown(res))
        return res
    mode = "quick" if a.quick else "full"
    s = chosen_settings(p, SETTINGS, a.quick, a.set)
    settings = tuple(x.strip() for x in a.settings.split(",") if x.strip())
    if not settings or set(settings) - {"ideal", "real"}:
        p.error(f"--settings {a.settings}: expected ideal, real or both")
    try:
        seeds = [int(x) for x in a.seeds.split(",") if x.strip()]
    except ValueError:
        p.error(f"--seeds {a.seeds}: expected comma-separated integers")
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    from trainer.evaluate import resolve_device

    dev = str(resolve_device(a.device))
    out = Path(a.out or RESULTS / f"learning_v2{suffix}.json")
    res = {"mode": mode, "settings": s, "seed_list": seeds, "render_settings": list(settings),
           "machine": _machine(dev), "seeds": {}}
    t0 = time.perf_counter()
    tmp = None if a.workdir else tempfile.mkdtemp(prefix="bench-learning-")
    try:
        for seed in seeds:
            work = Path(a.workdir or tmp) / f"seed{seed}"
            work.mkdir(parents=True, exist_ok=True)
            res["seeds"][str(seed)] = run_seed(s, work, seed=seed, device=dev, jobs=a.jobs,
                                               workers=a.workers, settings=settings,
                                               probe=not a.no_probe)
            _save(res, out, t0, argv)  # after every seed: a stopped study keeps its seeds
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    figure(res, fig_path)
    print("\n" + markdown(res) + "\n", flush=True)
    say(f"wrote {out} and {fig_path} in {res['seconds_total']:.0f} s")
    return res


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
