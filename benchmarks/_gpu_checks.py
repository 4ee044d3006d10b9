"""Items 3 to 5 of ``benchmarks/gpu_check.py``: numerical agreement (fp32 vs bf16 loss,
CPU vs device evaluation of one checkpoint), the differentiable re-blur, and one step of
every model variant. Shared helpers and items 1-2: ``_gpu_train.py``.
"""

from __future__ import annotations

import math
import time

import torch
from _gpu_train import Check, ItemTimeout, _build, _config, _loader, _steps

from trainer import device as dev
from trainer.config import METHODS, PRESETS
from trainer.defocus import reblur, sigma_levels
from trainer.evaluate import evaluate_checkpoint
from trainer.fit import fit
from trainer.models import DEFAULT_MODEL, get_spec, model_names

EVAL_RTOL, EVAL_ATOL = 2e-2, 1e-4  # CPU vs GPU metrics (GPU fp32 convolutions use TF32)

# 2HDED:NET (registry model "2hded", trainer.model.TwoHeadedNet) is trained as these
# variants of heads, method and loss; every other registered model as one more variant
# (registry_variants). A method of trainer.config.METHODS that no entry here uses is
# recorded by item "models" as not covered.
MODEL_VARIANTS = {
    "2hded": {"heads": ("depth", "aif")},
    "2hded_defocus_head": {"heads": ("depth", "aif", "defocus")},
    "mddnet_consistency": {"heads": ("depth", "defocus"), "consistency": 1.0},
    "self_supervised": {"method": "self-supervised", "heads": ("aif", "defocus")},
}


# the parts of a model's recipe (its preset) that one training step depends on
RECIPE_KEYS = ("optimizer", "lr", "loss", "mddnet_lambdas", "consistency", "consistency_norm")


def registry_variants(tiny: bool) -> dict[str, dict]:
    """One variant per registered model other than 2HDED:NET: its default heads and its
    own recipe; with ``tiny``, the model's smoke config (``ModelSpec.smoke_config``)."""
    out = {}
    for name in model_names():
        if name == DEFAULT_MODEL:
            continue
        spec = get_spec(name)
        kw = {k: tuple(v) if isinstance(v, list) else v
              for k, v in PRESETS[spec.preset].items() if k in RECIPE_KEYS}
        kw.update(model_name=name, heads=tuple(spec.default_heads),
                  model=dict(spec.smoke_config) if tiny else {})
        out[name] = kw
    return out


def _loss_after(check: Check, batches: list, amp: bool, cl: bool, name: str) -> dict:
    """Train a fresh model (the run seed: identical weights) on ``batches``; the losses."""
    cfg = _config(check, batch_size=check.batches[0], amp=amp, channels_last=cl)
    run = _build(check, cfg, name)
    _, _, mean_first = _steps(run, run.model, iter(batches[:-1]))
    _, _, last = _steps(run, run.model, iter(batches[-1:]))
    n = len(batches)
    mean = (mean_first * (n - 1) + last) / n if n > 1 else last
    del run
    dev.release_memory(check.device)
    return {"amp_bf16": amp, "channels_last": cl, "loss_last": last, "loss_mean": mean}


def _gap(a: dict, b: dict) -> dict:
    return {k: abs(a[k] - b[k]) / max(abs(a[k]), 1e-12) for k in ("loss_last", "loss_mean")}


def loss_gap(check: Check) -> dict:
    """fp32 twice (the run-to-run floor) and bf16 + channels_last, over the same batches."""
    probe = _build(check, _config(check, batch_size=check.batches[0]), "agree_data")
    batches = list(_loader(probe, check.workers, check.agree_steps))
    del probe
    fp32 = _loss_after(check, batches, False, False, "agree_fp32")
    again = _loss_after(check, batches, False, False, "agree_fp32_again")
    bf16 = _loss_after(check, batches, True, True, "agree_bf16")
    return {"steps": len(batches), "batch_size": check.batches[0], "fp32": fp32,
            "fp32_again": again, "bf16_cl": bf16, "rel_gap_bf16": _gap(fp32, bf16),
            "rel_gap_fp32_repeat": _gap(fp32, again)}


def eval_agreement(check: Check) -> dict:
    """``trainer fit`` for one epoch on the device (fp32), then its last.pt scored on the
    CPU and on the device; every metric compared within EVAL_RTOL (or EVAL_ATOL)."""
    cfg = _config(check, batch_size=check.batches[0], amp=False, val_split="holdout",
                  val_max_samples=2, num_workers=check.workers)
    run_dir = check.work / "fit_run"
    t0 = time.perf_counter()
    out = fit(check.data, run_dir, cfg, log=lambda line: None)
    fit_s = time.perf_counter() - t0
    kw = dict(split="test", max_samples=check.eval_samples, progress=False)
    on_cpu = evaluate_checkpoint(check.data, run_dir / "last.pt", device="cpu", **kw)
    on_dev = evaluate_checkpoint(check.data, run_dir / "last.pt", device=str(check.device),
                                 **kw)
    diffs, worst = {}, 0.0
    for k, v in on_cpu.items():
        w = on_dev.get(k)
        if isinstance(v, float) and isinstance(w, float) and math.isfinite(v):
            diffs[k] = {"cpu": v, "device": w, "abs": abs(v - w)}
            ok = abs(v - w) <= EVAL_ATOL + EVAL_RTOL * abs(v)
            diffs[k]["within"] = ok
            worst = max(worst, abs(v - w) / max(abs(v), 1e-12))
    note = ("the device is the CPU: both evaluations ran on the CPU"
            if check.device.type == "cpu" else None)
    return {"note": note, "fit_steps": out["steps"], "fit_seconds": fit_s,
            "fit_images_per_s": out["last"].get("train_images_per_s"),
            "samples": check.eval_samples, "rtol": EVAL_RTOL, "atol": EVAL_ATOL,
            "max_rel_diff": worst, "within_tolerance": all(d["within"] for d in diffs.values()),
            "metrics": diffs}


def item_agreement(check: Check, rec: dict, deadline: float) -> None:
    """Item 3: the fp32 vs bf16 loss gap, and CPU vs device evaluation of a checkpoint."""
    rec["loss"] = loss_gap(check)
    rec["eval"] = eval_agreement(check)
    g, e = rec["loss"]["rel_gap_bf16"], rec["eval"]
    rec["summary"] = [f"loss after {rec['loss']['steps']} steps: bf16 vs fp32 "
                      f"{100 * g['loss_last']:.2f} % (fp32 repeat "
                      f"{100 * rec['loss']['rel_gap_fp32_repeat']['loss_last']:.2f} %)",
                      f"eval cpu vs {check.device.type}: max rel diff {e['max_rel_diff']:.2e}"
                      f" (tolerance {EVAL_RTOL:g}: {'ok' if e['within_tolerance'] else 'OFF'})"]


def reblur_row(device, size: int, batch: int, smax: float, repeats: int,
               deadline: float) -> dict:
    """Forward and forward + backward of ``reblur`` on a σ ramp 0..smax, peak memory."""
    g = torch.Generator().manual_seed(0)
    aif = torch.rand(batch, 3, size, size, generator=g).to(device).requires_grad_(True)
    ramp = torch.linspace(0, smax, size).view(1, 1, 1, size).expand(batch, 1, size, size)
    sig = ramp.contiguous().to(device).requires_grad_(True)

    def both():
        reblur(aif, sig, sigma_max=smax).square().mean().backward()

    both()  # FFT plans, kernels
    dev.synchronize(device)
    row = {"size": size, "batch": batch, "sigma_max": smax, "levels": len(sigma_levels(smax))}
    half = time.perf_counter() + (deadline - time.perf_counter()) / 2
    for key, fn, stop in (("forward", lambda: reblur(aif.detach(), sig.detach(),
                                                    sigma_max=smax), half),
                          ("forward_backward", both, deadline)):
        dev.reset_peak_memory(device)
        n, t0 = 0, time.perf_counter()
        while n < repeats and (n == 0 or time.perf_counter() < stop):
            fn()
            n += 1
        dev.synchronize(device)
        row[f"{key}_ms"] = 1e3 * (time.perf_counter() - t0) / n
        row[f"{key}_peak_memory_gib"] = dev.peak_memory_gib(device)
    row["grad_finite"] = bool(torch.isfinite(aif.grad).all() and torch.isfinite(sig.grad).all())
    return row


def item_reblur(check: Check, rec: dict, deadline: float) -> None:
    """Item 4: the differentiable blur's forward + backward time and peak memory."""
    rec["rows"] = rows = []
    reps = 2 if check.tiny else 50
    for k, (size, batch, smax) in enumerate(check.reblur_rows):
        share = (deadline - time.perf_counter()) / (len(check.reblur_rows) - k)
        rows.append(reblur_row(check.device, size, batch, smax, reps,
                               time.perf_counter() + share))
        dev.release_memory(check.device)
    rec["summary"] = [f"{r['size']}^2 x{r['batch']} sigma<={r['sigma_max']:g}: fwd+bwd "
                      f"{r['forward_backward_ms']:.1f} ms" +
                      (f", {r['forward_backward_peak_memory_gib']:.2f} GiB"
                       if r["forward_backward_peak_memory_gib"] is not None else "")
                      for r in rows]


def model_row(check: Check, name: str, variant: dict) -> dict:
    """Two bf16-autocast training steps of one variant; the second one timed."""
    kw = dict(variant)
    if kw.get("method") == "self-supervised":  # the re-blur's border must fit the crop
        kw["sigma_max"] = float(min(32, (check.crop - 1) // 3))
    run = _build(check, _config(check, batch_size=check.batches[0], amp=True, **kw),
                 f"model_{name}")
    batches = list(_loader(run, 0, 2))
    _steps(run, run.model, iter(batches[:1]))
    dev.reset_peak_memory(run.device)
    n, dt, loss = _steps(run, run.model, iter(batches[1:]))
    settings = {("model_config" if k == "model" else k): list(v) if isinstance(v, tuple) else v
                for k, v in kw.items()}  # "model" names the row
    row = {"model": name, **settings,
           "step_s": dt, "loss": loss, "loss_finite": math.isfinite(loss),
           "peak_memory_gib": dev.peak_memory_gib(run.device)}
    del run
    dev.release_memory(check.device)
    return row


def item_models(check: Check, rec: dict, deadline: float) -> None:
    """Item 5: one bf16 training step of every model variant and registered model (and no
    method left uncovered)."""
    rec["rows"] = rows = []
    for name, variant in {**MODEL_VARIANTS, **registry_variants(check.tiny)}.items():
        try:
            rows.append(model_row(check, name, variant))
        except ItemTimeout:
            raise
        except Exception as exc:
            rows.append({"model": name, "error": f"{type(exc).__name__}: {exc}"[:500]})
            dev.release_memory(check.device)
    covered = {v.get("method", "supervised") for v in MODEL_VARIANTS.values()}
    rec["not_covered"] = [m for m in METHODS if m not in covered]
    rec["summary"] = [f"{r['model']}: " + (f"{r['step_s'] * 1e3:.0f} ms/step, loss "
                                           f"{r['loss']:.4g}" if "error" not in r else "FAILED")
                      for r in rows]
    bad = [r for r in rows if "error" in r or not r.get("loss_finite")]
    if bad or rec["not_covered"]:
        raise RuntimeError(f"models failing: {[r['model'] for r in bad]}; methods without a "
                           f"variant: {rec['not_covered']}")
