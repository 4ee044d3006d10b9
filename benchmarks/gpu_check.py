"""Every figure of the GPU checklist's items 1-5 in one command, within a time budget.

Synthesises its own dataset (procedural scenes, NYU-sized 480x640 frames, stored gather
defocus; ``--tiny``: 96x128), then runs, in order of importance, each item under its share
of ``--budget`` (unused time passes to the later items):

1. ``train``: images/s at 256² for batch 4 and 16, fp32 / bf16 autocast + channels_last /
   + torch.compile, loader-fed and model-only, peak memory; ``loader``: loader-only
   samples/s with 8 and 16 workers against the training rate;
2. ``projection``: the paper's schedule (397,500 samples) at the best rate (target 30 min);
3. ``agreement``: the loss after the same steps in fp32 and bf16, and one ``trainer fit``
   checkpoint evaluated on the CPU and on the device;
4. ``reblur``: the differentiable blur's forward + backward, 256² x4 (σ ≤ 8, 32) and
   512² (σ ≤ 16, 32), with peak memory;
5. ``models``: one bf16 training step of every model variant.

An item that fails or overruns records its error and the script goes on. The JSON (written
after every item) holds the GPU, driver, CUDA and torch versions and every figure; a table
is printed last. ``--device cpu --tiny`` runs every code path in a minute or two on the CPU
(tests/test_gpu_check.py). Usage (docs/benchmarks.md, "GPU")::

    python benchmarks/gpu_check.py --out gpu_check.json            # CUDA, about 7 min
    python benchmarks/gpu_check.py --device cpu --tiny --out /tmp/g.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import numba
import numpy
import zarr

from defocuskit.errors import DefocusKitError
from defocuskit.pipeline.config import SynthConfig
from defocuskit.pipeline.synth import run_synth
from trainer.device import device_info, release_memory
from trainer.evaluate import resolve_device

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks/ helpers
import _gpu_checks as checks  # noqa: E402
import _gpu_train as train  # noqa: E402
from _gpu_train import ItemTimeout  # noqa: E402
from _machine import cpu_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCRIPT_NAME = "benchmarks/gpu_check.py"  # the "script" entry of every JSON it writes
TINY_MODEL = {"growth_rate": 8, "num_init_features": 16, "block_config": [2, 3, 4, 3]}

GRACE_S = 30.0  # an item is stopped (status "timeout") this long after its share


class InjectedFailure(Exception):
    """Raised at the end of the item named by --fail-item (the test of the recording)."""


@contextlib.contextmanager
def hard_limit(seconds: float):
    """Raise ItemTimeout in the main thread after ``seconds`` (POSIX main thread; elsewhere
    no limit)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not \
            threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise ItemTimeout(f"stopped after {seconds:.0f} s (its share of --budget + "
                          f"{GRACE_S:.0f} s)")

    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_items(items, check, budget_s: float, *, fail_item: str | None = None,
              save=lambda: None, say=print) -> dict:
    """Run ``items`` ((name, weight, fn(check, rec, deadline)), ...) in order, each under its
    share of what is left of ``budget_s``; record each in ``check.results[name]`` with its
    status (ok, failed, timeout, skipped), seconds and error, and go on whatever happens."""
    t_start = time.perf_counter()
    for k, (name, weight, fn) in enumerate(items):
        left = budget_s - (time.perf_counter() - t_start)
        share = left * weight / sum(w for _, w, _ in items[k:])
        rec = check.results[name] = {"status": "running", "budget_s": round(share, 1)}
        if left <= 0:
            rec.update(status="skipped", error="the budget was spent by the earlier items")
            continue
        say(f"[{time.strftime('%H:%M:%S')}] {name}: up to {share:.0f} s")
        t0 = time.perf_counter()
        try:
            with hard_limit(share + GRACE_S):
                fn(check, rec, t0 + share)
                if name == fail_item:
                    raise InjectedFailure(f"--fail-item {name}: injected after the item ran")
            rec["status"] = "ok"
        except Exception as exc:  # recorded; the next item runs
            rec["status"] = "timeout" if isinstance(exc, ItemTimeout) else "failed"
            rec["error"] = f"{type(exc).__name__}: {exc}"[:1000]
            rec["traceback"] = traceback.format_exc(limit=-4)[-2000:]
            say(f"  {name} {rec['status']}: {rec['error']}")
        rec["seconds"] = round(time.perf_counter() - t0, 2)
        with contextlib.suppress(Exception):
            release_memory(check.device)
        save()
    return check.results


def make_dataset(check, rec: dict, deadline: float) -> None:
    """The procedural train / test dataset every item reads (stored gather defocus)."""
    h, w = check.frame
    path = check.work / "data.zarr"
    cfg = SynthConfig(source="procedural", input="-", output=str(path), render_mode="gather",
                      jobs=1 if check.tiny else min(8, os.cpu_count() or 1), shard_size=16,
                      source_options={"n_train": check.n_train, "n_test": check.n_test,
                                      "height": h, "width": w, "seed": 0})
    summary = run_synth(cfg, progress=False)
    check.data = path
    rec.update(frames=[h, w], samples=summary.n_samples, synth_seconds=summary.seconds)
    rec["summary"] = [f"{summary.n_samples} frames of {h}x{w} in {summary.seconds:.1f} s"]


def make_check(a, device, work: Path):
    """The sizes of a full (CUDA) or ``--tiny`` run."""
    if a.tiny:
        return train.Check(device=device, tiny=True, work=work, frame=(96, 128), crop=64,
                           batches=(2, 4), workers=0, loader_workers=(0, 2), loader_batches=4,
                           model=TINY_MODEL, steps=a.steps or 2, warmup=1, agree_steps=3,
                           eval_samples=2, reblur_rows=((64, 2, 8.0), (128, 1, 16.0),
                                                        (128, 1, 32.0)), n_train=12, n_test=2)
    return train.Check(device=device, tiny=False, work=work, frame=(480, 640), crop=256,
                       batches=(4, 16), workers=a.workers, loader_workers=(8, 16),
                       loader_batches=300, model={}, steps=a.steps or 300, warmup=3,
                       agree_steps=20, eval_samples=4,
                       reblur_rows=((256, 4, 8.0), (256, 4, 32.0), (512, 1, 16.0),
                                    (512, 1, 32.0)), n_train=64, n_test=8)


# (name, share weight of the budget, function), in order of importance
ITEMS = (("dataset", 1.0, make_dataset), ("train", 4.0, train.item_train),
         ("loader", 1.0, train.item_loader), ("projection", 0.05, train.item_projection),
         ("agreement", 1.5, checks.item_agreement), ("reblur", 1.0, checks.item_reblur),
         ("models", 1.0, checks.item_models))


def table(results: dict) -> str:
    """One line per item and figure: name, status, seconds, what it measured."""
    lines = [f"{'item':<11} {'status':<8} {'s':>6}  figures", "-" * 72]
    for name, rec in results.items():
        figures = rec.get("summary") or [rec.get("error", "")]
        if rec.get("error") and rec.get("summary"):
            figures = [*figures, rec["error"]]
        for k, text in enumerate(figures):
            head = (f"{name:<11} {rec['status']:<8} {rec.get('seconds', 0):>6.1f}" if k == 0
                    else " " * 27)
            lines.append(f"{head}  {text[:100]}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    ap.add_argument("--tiny", action="store_true",
                    help="tiny frames, model and step counts: every code path in a minute or "
                         "two on the CPU (the test of this script)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds for the whole check (default 420; --tiny 240)")
    ap.add_argument("--workers", type=int, default=8,
                    help="DataLoader workers of the training rows (--tiny: 0)")
    ap.add_argument("--steps", type=int, default=None,
                    help="most timed steps per training row (default 300; --tiny 2)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gpu_check.json"),
                    help="the JSON written (default benchmarks/results/gpu_check.json)")
    ap.add_argument("--fail-item", default=None, choices=[n for n, _, _ in ITEMS],
                    help="make this item raise after it ran (tests the recording)")
    a = ap.parse_args(argv)
    for name, value, low in (("--budget", a.budget, 1), ("--workers", a.workers, 0),
                             ("--steps", a.steps, 1)):
        if value is not None and value < low:
            ap.error(f"{name}: expected >= {low}, got {value}")
    if not _ours(Path(a.out)):
        ap.error(f"--out {a.out}: exists and is not a result of this script; choose another "
                 "path (it is left as it is)")
    return check_and_report(a)


def environment(device) -> dict:
    """The device (GPU, driver, CUDA, cuDNN, torch) and the host's CPU and versions."""
    env = device_info(device)
    env.update(cpu=cpu_model(), cpu_count=os.cpu_count(), numpy=numpy.__version__,
               numba=numba.__version__, zarr=zarr.__version__)
    with contextlib.suppress(Exception):
        env["git_commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                                           capture_output=True, text=True, timeout=10,
                                           check=True).stdout.strip()
    return env


def _write(path: Path, doc: dict) -> None:
    """Replace the JSON whole (a temporary file of a fresh name renamed over it), so a kill
    leaves the last complete one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.",
                                     suffix=".part", delete=False) as f:
        f.write(json.dumps(doc, indent=2, default=str) + "\n")
    Path(f.name).replace(path)


def _ours(path: Path) -> bool:
    """Whether ``path`` is absent or an earlier result of this script (which it replaces)."""
    if not path.exists():
        return True
    try:
        return json.loads(path.read_text()).get("script") == SCRIPT_NAME
    except (OSError, ValueError, AttributeError):
        return False


def check_and_report(a) -> dict:
    try:
        device = resolve_device(a.device)
    except DefocusKitError as exc:
        sys.exit(f"gpu_check: --device: {exc}")
    budget = a.budget if a.budget is not None else (240.0 if a.tiny else 420.0)
    out = Path(a.out)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        check = make_check(a, device, Path(tmp))
        doc = {"script": SCRIPT_NAME, "mode": "tiny" if a.tiny else "full",
               "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "budget_s": budget, "environment": environment(device),
               "items": check.results}

        def save():
            doc["elapsed_s"] = round(time.perf_counter() - t0, 1)
            _write(out, doc)

        run_items(ITEMS, check, budget - (time.perf_counter() - t0), fail_item=a.fail_item,
                  save=save)
    doc["complete"] = all(r["status"] == "ok" for r in check.results.values())
    save()
    print(f"wrote {out} in {doc['elapsed_s']:.0f} s")
    print(table(check.results))
    return doc


if __name__ == "__main__":
    result = main()
    sys.exit(0 if result["complete"] else 1)
