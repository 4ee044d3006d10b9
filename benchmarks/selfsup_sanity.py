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


def scene(seed: int, focus: float, size: int):
    """(aif (H,W,3) uint8, defocused uint8, sigma (H,W) px) of one procedural room."""
    from defocuskit.blur import render
    from defocuskit.camera.presets import get_preset
    from defocuskit.sources.procedural import ProceduralSource

    src = ProceduralSource(n_train=1, n_test=0, height=size, width=size, seed=seed)
    s = src.read("train", 0)
    aif, depth = np.asarray(s.aif), np.asarray(s.depth, np.float32)
    cam = get_preset("2hded").make(image_width=size, rng=np.random.default_rng(0))
    sigma = np.asarray(cam.with_focus(focus).sigma_px(depth), np.float32)
    return aif, render(aif, sigma, mode="gather", threads=1), sigma


def texture_mask(aif01: np.ndarray, thresh: float) -> np.ndarray:
    """Pixels whose AiF gradient magnitude (channel mean, central differences) > thresh."""
    g = aif01.mean(-1)
    gy, gx = np.gradient(g)
    return np.hypot(gx, gy) > thresh


def _maes(pred, sigma, mask) -> dict:
    err = np.abs(pred - sigma)
    return {"mae_all": float(err.mean()), "mae_textured": float(err[mask].mean())}


def fit_free(aif, blurred, sigma_max, *, smooth: float, steps: int, lr: float):
    import torch

    from trainer.selfsup import SelfSupervisedConfig, SelfSupervisedLoss

    loss_fn = SelfSupervisedLoss(SelfSupervisedConfig(smooth_weight=smooth, sigma_max=sigma_max))
    raw = torch.full((1, 1, *aif.shape[-2:]), 0.5413, requires_grad=True)  # softplus -> 1 px
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


def fit_network(aif, blurred, sigma_max, *, steps: int, lr: float, seed: int):
    import torch

    from trainer.model import ModelConfig, TwoHeadedNet
    from trainer.selfsup import SelfSupervisedConfig, SelfSupervisedLoss

    torch.manual_seed(seed)
    net = TwoHeadedNet(ModelConfig(heads=("defocus",), growth_rate=8, num_init_features=16,
                                   block_config=(2, 3, 4, 3)))
    loss_fn = SelfSupervisedLoss(SelfSupervisedConfig(sigma_max=sigma_max))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for _ in range(steps):
        loss, _ = loss_fn(net(blurred), {"aif": aif, "defocused": blurred})
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        return net(blurred)["defocus"][0, 0].numpy()


def main(argv=None) -> dict:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--focus", type=float, default=10.0, help="focus distance, m")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--net-steps", type=int, default=300)
    p.add_argument("--smooth", default="0.5,0", help="smoothness weights of the free fits")
    p.add_argument("--texture", type=float, default=0.02)
    p.add_argument("--threads", type=int)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "selfsup_sanity.json"))
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    aif8, blur8, sigma = scene(a.seed, a.focus, a.size)
    aif = torch.from_numpy(aif8).permute(2, 0, 1)[None].float() / 255
    blurred = torch.from_numpy(blur8).permute(2, 0, 1)[None].float() / 255
    sigma_max = float(np.ceil(sigma.max()))
    mask = texture_mask(aif8 / 255.0, a.texture)
    res = {"seed": a.seed, "focus_m": a.focus, "size": a.size, "sigma_max": sigma_max,
           "sigma_px": {"mean": float(sigma.mean()), "median": float(np.median(sigma)),
                        "max": float(sigma.max())},
           "textured_fraction": float(mask.mean()),
           "start_gradient_abs": start_gradient(aif, blurred, sigma_max, mask),
           "constant_mean": _maes(np.full_like(sigma, sigma.mean()), sigma, mask),
           "constant_median": _maes(np.full_like(sigma, np.median(sigma)), sigma, mask),
           "free": {}}
    for w in (float(x) for x in a.smooth.split(",")):
        pred = fit_free(aif, blurred, sigma_max, smooth=w, steps=a.steps, lr=0.05)
        res["free"][f"smooth_{w:g}"] = _maes(pred, sigma, mask)
        print(f"free, smooth {w:g}: {res['free'][f'smooth_{w:g}']}", flush=True)
    if a.net_steps:
        pred = fit_network(aif, blurred, sigma_max, steps=a.net_steps, lr=1e-3, seed=a.seed)
        res["network"] = _maes(pred, sigma, mask) | {"steps": a.net_steps}
        print(f"network: {res['network']}", flush=True)
    res["machine"] = {"cpu": cpu_model(), "torch_threads": torch.get_num_threads()}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["command"] = " ".join(["python", "benchmarks/selfsup_sanity.py",
                               *(sys.argv[1:] if argv is None else argv)])
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "machine"}, indent=1))
    return res


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
