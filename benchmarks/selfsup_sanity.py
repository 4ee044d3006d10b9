"""Sanity check of the self-supervised loss: can it recover sigma on one textured scene?

One procedural room (seed ``--seed``), camera ``2hded`` focused at ``--focus`` m so sigma
spans about 0-8 px, rendered with the exact gather (Gaussian), the same model the loss
re-blurs with (:func:`trainer.defocus.reblur`). Two fits of the label-free loss
(:class:`trainer.selfsup.SelfSupervisedLoss`, the true AiF as the re-blur source):

``free``     the sigma map itself is the parameter (softplus of a free map): no network,
             so only the loss and its gradients decide; run with the thesis's smoothness
             weight 0.5 and with 0 (``--smooth`` lists them);
``network``  the reduced-width 2HDED:NET defocus head, overfitting that one image.

Reports sigma MAE (px) on all pixels and on textured pixels (AiF gradient magnitude above
``--texture`` in [0, 1] units per pixel) against the constant (the scene's mean sigma and
median sigma) and the mean |d L_re / d sigma| at the start on flat and textured pixels.
Writes ``benchmarks/results/selfsup_sanity.json``.

    python benchmarks/selfsup_sanity.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from _machine import cpu_model  # noqa: E402
from learning.sigma_scores import scene_errors, texture_mask  # noqa: E402


def scene(seed: int, focus: float, size: int, f_number: float | None = None):
    """(aif (H,W,3) uint8, defocused float32 [0, 1], sigma (H,W) px) of one procedural room
    (the preset's f-number unless ``f_number`` is given)."""
    import dataclasses

    from defocuskit.blur import render
    from defocuskit.camera.presets import get_preset
    from defocuskit.sources.procedural import ProceduralSource

    src = ProceduralSource(n_train=1, n_test=0, height=size, width=size, seed=seed)
    s = src.read("train", 0)
    aif, depth = np.asarray(s.aif), np.asarray(s.depth, np.float32)
    cam = get_preset("2hded").make(image_width=size, rng=np.random.default_rng(0))
    if f_number is not None:
        cam = dataclasses.replace(cam, f_number=f_number)
    sigma = np.asarray(cam.with_focus(focus).sigma_px(depth), np.float32)
    return aif, render(aif.astype(np.float32) / 255, sigma, mode="gather", threads=1), sigma


def grid_search(aif, blurred, sigma_max: float, step: float = 0.1) -> tuple:
    """Per pixel, the L1 re-blur cost ``sum_c |reblur(A, s)_c - I_b,c|`` on a grid of
    constant s in [0, sigma_max]: (the grid, the cost (S, H, W)). A pixel's re-blurred value
    depends on its own sigma only, so this is the loss's per-pixel landscape."""
    import torch

    from trainer.defocus import reblur

    grid = np.arange(0.0, sigma_max + 1e-6, step)
    cost = []
    for g in grid:
        r = reblur(aif, torch.full((1, 1, *aif.shape[-2:]), float(g)), sigma_max=sigma_max)
        cost.append((r - blurred).abs().sum(1)[0].numpy())
    return grid, np.stack(cost)


def descend(cost: np.ndarray, start: int) -> np.ndarray:
    """Per pixel, the grid index where a descent on ``cost`` from index ``start`` stops
    (its first local minimum)."""
    idx = np.full(cost.shape[1:], start)
    top = cost.shape[0] - 1
    for _ in range(cost.shape[0] + 1):
        here = np.take_along_axis(cost, idx[None], 0)[0]
        up = np.take_along_axis(cost, np.minimum(idx + 1, top)[None], 0)[0]
        down = np.take_along_axis(cost, np.maximum(idx - 1, 0)[None], 0)[0]
        idx = np.where((up < here) & (up <= down), idx + 1, np.where(down < here, idx - 1, idx))
    return idx


def fit_free(aif, blurred, sigma_max, *, smooth: float, steps: int, lr: float, init=None):
    """softplus(raw) fitted by Adam; raw starts at 1 px or at the map ``init`` (pixels)."""
    import torch

    from trainer.selfsup import SelfSupervisedConfig, SelfSupervisedLoss

    loss_fn = SelfSupervisedLoss(SelfSupervisedConfig(smooth_weight=smooth, sigma_max=sigma_max))
    if init is None:
        raw = torch.full((1, 1, *aif.shape[-2:]), 0.5413)  # softplus -> 1 px
    else:  # inverse softplus of the start map
        s0 = torch.from_numpy(np.maximum(init, 0.05).astype(np.float32))[None, None]
        raw = s0 + torch.log(-torch.expm1(-s0))
    raw.requires_grad_(True)
    opt = torch.optim.Adam([raw], lr=lr)
    for _ in range(steps):
        sig = torch.nn.functional.softplus(raw)
        loss, _ = loss_fn({"defocus": sig}, {"aif": aif, "defocused": blurred})
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.nn.functional.softplus(raw).detach()[0, 0].numpy()


def start_gradient(aif, blurred, sigma_max, mask) -> dict:
    """Mean |d L_re / d sigma| at sigma = 1 px everywhere, on flat and textured pixels."""
    import torch

    from trainer.defocus import reblur
    from trainer.selfsup import reconstruction_loss

    sig = torch.full((1, 1, *aif.shape[-2:]), 1.0, requires_grad=True)
    reconstruction_loss(reblur(aif, sig, sigma_max=sigma_max), blurred).backward()
    g = sig.grad[0, 0].abs().numpy()
    return {"flat": float(g[~mask].mean()), "textured": float(g[mask].mean())}


def fit_network(aif, blurred, sigma_max, *, steps: int, lr: float, seed: int,
                supervised=None):
    """The defocus head overfitting one image: the self-supervised loss, or, given the true
    sigma map ``supervised`` (pixels), the L1 loss against it (the supervised reference)."""
    import torch

    from trainer.model import ModelConfig, TwoHeadedNet
    from trainer.selfsup import SelfSupervisedConfig, SelfSupervisedLoss

    torch.manual_seed(seed)
    net = TwoHeadedNet(ModelConfig(heads=("defocus",), growth_rate=8, num_init_features=16,
                                   block_config=(2, 3, 4, 3)))
    loss_fn = SelfSupervisedLoss(SelfSupervisedConfig(sigma_max=sigma_max))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    target = None if supervised is None else torch.from_numpy(supervised)[None, None]
    for _ in range(steps):
        pred = net(blurred)
        if target is None:
            loss, _ = loss_fn(pred, {"aif": aif, "defocused": blurred})
        else:
            loss = (pred["defocus"] - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        return net(blurred)["defocus"][0, 0].numpy()


def _landscape(aif, blurred, sigma, sigma_max, mask) -> tuple[dict, np.ndarray]:
    """The per-pixel L1 landscape: its global minimum and the first local minimum that a
    descent from 1 px reaches, as sigma maps; returns (their MAEs, the global argmin)."""
    grid, cost = grid_search(aif, blurred, sigma_max)
    best = grid[cost.argmin(0)]
    local = grid[descend(cost, int(round(1.0 / (grid[1] - grid[0]))))]
    return {"grid_argmin": scene_errors(best, sigma, mask),
            "descent_from_1px": scene_errors(local, sigma, mask)}, best


def main(argv=None) -> dict:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--focus", type=float, default=10.0, help="focus distance, m")
    p.add_argument("--f-number", type=float, default=0.5,
                   help="f-number of the 2hded camera (0.5 at 128 px: sigma up to ~8 px)")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=0.05, help="Adam step of the free fits")
    p.add_argument("--net-steps", type=int, default=300)
    p.add_argument("--smooth", default="0.5,0", help="smoothness weights of the free fits")
    p.add_argument("--texture", type=float, default=0.02)
    p.add_argument("--threads", type=int)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "selfsup_sanity.json"))
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    aif8, blur_f, sigma = scene(a.seed, a.focus, a.size, a.f_number)
    blur8 = np.round(np.clip(blur_f, 0, 1) * 255) / 255  # the stored 8-bit input

    def chw(x):
        return torch.from_numpy(np.ascontiguousarray(x, np.float32)).permute(2, 0, 1)[None]

    aif, blurred, blurred_f = chw(aif8 / 255.0), chw(blur8), chw(blur_f)
    sigma_max = float(np.ceil(sigma.max()))
    mask = texture_mask(aif8 / 255.0, a.texture)
    from trainer.defocus import reblur
    gap = (reblur(aif, torch.from_numpy(sigma)[None, None], sigma_max=sigma_max) - blurred_f)
    res = {"seed": a.seed, "focus_m": a.focus, "f_number": a.f_number, "size": a.size,
           "sigma_max": sigma_max, "lr": a.lr, "steps": a.steps,
           "sigma_px": {"mean": float(sigma.mean()), "median": float(np.median(sigma)),
                        "max": float(sigma.max())},
           "textured_fraction": float(mask.mean()),
           "reblur_vs_gather_abs": {"max": float(gap.abs().max()),
                                    "mean": float(gap.abs().mean())},
           "start_gradient_abs": start_gradient(aif, blurred, sigma_max, mask),
           "constant_mean": scene_errors(np.full_like(sigma, sigma.mean()), sigma, mask),
           "constant_median": scene_errors(np.full_like(sigma, np.median(sigma)), sigma, mask)}
    res["landscape_8bit"], best = _landscape(aif, blurred, sigma, sigma_max, mask)
    res["landscape_float"], _ = _landscape(aif, blurred_f, sigma, sigma_max, mask)
    print(json.dumps({k: res[k] for k in ("landscape_8bit", "landscape_float")}), flush=True)
    res["free"] = {}
    for w in (float(x) for x in a.smooth.split(",")):
        for start, init in (("1px", None), ("grid", best)):
            pred = fit_free(aif, blurred, sigma_max, smooth=w, steps=a.steps, lr=a.lr,
                            init=init)
            key = f"from_{start}_smooth_{w:g}"
            res["free"][key] = scene_errors(pred, sigma, mask) | {
                "above_sigma_max": float((pred > sigma_max).mean())}
            print(f"free {key}: {res['free'][key]}", flush=True)
    if a.net_steps:
        for name, sup in (("network", None), ("supervised", sigma)):
            pred = fit_network(aif, blurred, sigma_max, steps=a.net_steps, lr=1e-3,
                               seed=a.seed, supervised=sup)
            res[name] = scene_errors(pred, sigma, mask) | {"steps": a.net_steps}
            print(f"{name}: {res[name]}", flush=True)
    res["machine"] = {"cpu": cpu_model(), "torch_threads": torch.get_num_threads()}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["command"] = " ".join(["python", "benchmarks/selfsup_sanity.py",
                               *(sys.argv[1:] if argv is None else argv)])
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "machine"}, indent=1))
    return res


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
