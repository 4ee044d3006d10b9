"""The datasets of the learning benchmark: two settings and the input controls.

Settings (``SETTINGS_RENDER``), the same procedural rooms and camera (``2hded``) in both:

``ideal``  focus fixed at 10 m beyond the farthest wall (sigma is one-to-one in depth),
           gather rendering (no occlusion), no sensor noise.
``real``   a per-image focus drawn uniformly between the scene's nearest and farthest depth
           (policy ``uniform``: near and far blur are ambiguous), layered rendering with
           occlusion, Poisson-Gaussian sensor noise (gain 0.01, read sigma 0.002); 8-bit.

Inputs (``ARMS``); the depth label, the scenes and everything else are the same:

(b) ``sharp``     the all-in-focus image;
(c) ``true``      defocus from the scene's own depth (the synthesised dataset itself);
(d) ``other``     defocus from *another* scene's sigma map: scene ``i`` of a split is blurred
                  with the sigma, depth (layer order) and focus of scene ``(i + 1) % n``
                  turned by 90 degrees (the rooms share a layout, floor below and far wall
                  in the middle, so an upright map still correlates with this scene's
                  inverse depth, r = 0.36 on average over 16 rooms, and one turned by 180
                  degrees anti-correlates, r = -0.18; turned by 90, r = -0.04); the sigma
                  statistics of the split are exactly those of (c). Frames must be square.
(e) ``constant``  one sigma for every pixel: the training split's mean sigma of (c).

(d) and (e) are rendered with the setting's mode and noise (own seed per sample), 8-bit.
Every variant keeps the per-sample camera values of (c), so the blind-zone metric bins all
arms by the same focal plane.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["CAMERA", "SETTINGS_RENDER", "ARMS", "synthesise", "load_split", "make_variant",
           "train_mean_sigma", "other_index"]

CAMERA = "2hded"
NOISE = {"gain": 0.01, "read_sigma": 0.002}
SETTINGS_RENDER = {
    "ideal": {"focus": "fixed:10", "mode": "gather", "noise": None},
    "real": {"focus": "uniform", "mode": "layered", "noise": NOISE},
}
ARMS = ("sharp", "true", "other", "constant")
SCALARS = ("focus_distance", "focal_length", "f_number", "pixel_pitch", "coc_to_sigma")


def synthesise(path: Path, s: dict, setting: str, *, seed: int, jobs: int) -> dict:
    """Render the procedural train / test set of ``setting`` with ``run_synth``."""
    from defocuskit.pipeline.config import SynthConfig
    from defocuskit.pipeline.synth import run_synth

    r = SETTINGS_RENDER[setting]
    h, w = s["size"]
    cfg = SynthConfig(source="procedural", input="-", output=str(path), camera=CAMERA,
                      focus=r["focus"], render_mode=r["mode"], noise=r["noise"], seed=seed,
                      jobs=jobs, shard_size=32,
                      source_options={"n_train": s["n_train"], "n_test": s["n_test"],
                                      "height": h, "width": w, "seed": seed})
    summary = run_synth(cfg, progress=False)
    return {"samples": summary.n_samples, "seconds": round(summary.seconds, 2),
            "config": cfg.content_key()}


def load_split(path: Path, split: str) -> dict[str, np.ndarray]:
    """Every array of ``split`` in memory (the benchmark's splits are small)."""
    from defocuskit.dataset.store import open_dataset

    sp = open_dataset(path)[split]
    names = [n for n in ("aif", "defocused", "depth", "sigma", *SCALARS) if sp.has(n)]
    return {n: np.asarray(sp.array(n)[:]) for n in names}


def train_mean_sigma(path: Path) -> float:
    """Mean finite stored sigma (pixels) of the training split."""
    sig = load_split(path, "train")["sigma"]
    return float(np.nanmean(sig))


def other_index(i: int, n: int) -> int:
    """The scene whose sigma map blurs scene ``i`` in control (d)."""
    return (i + 1) % n


def _render(aif, sigma, depth, focus, setting: str, noise_seed: int) -> np.ndarray:
    from defocuskit.blur import render

    r = SETTINGS_RENDER[setting]
    filled = np.where(np.isfinite(depth) & (depth > 0), depth, np.nanmax(depth))
    return render(aif, np.nan_to_num(sigma, nan=0.0).astype(np.float32), mode=r["mode"],
                  depth=filled.astype(np.float32), noise=r["noise"], seed=noise_seed,
                  focus_distance=float(focus), threads=1)


def _variant_split(a: dict, arm: str, setting: str, *, sigma_c: float | None, seed: int,
                   split_key: int) -> dict:
    n = a["aif"].shape[0]
    out = {"aif": a["aif"], "depth": a["depth"], **{k: a[k] for k in SCALARS if k in a}}
    if arm == "sharp":
        out["defocused"] = a["aif"]
        out["sigma"] = a["sigma"]  # unused (no blur); the store keeps the camera with sigma
        return out
    imgs, sigmas = [], []
    for i in range(n):
        if arm == "other":
            j = other_index(i, n)
            sig, dep = np.rot90(a["sigma"][j]), np.rot90(a["depth"][j])
            focus = a["focus_distance"][j]
        else:  # constant
            sig = np.full(a["sigma"][i].shape, sigma_c, np.float32)
            dep, focus = a["depth"][i], a["focus_distance"][i]
        sigmas.append(np.ascontiguousarray(sig, dtype=np.float32))
        imgs.append(_render(a["aif"][i], sigmas[-1], np.ascontiguousarray(dep), focus, setting,
                            noise_seed=int(np.random.SeedSequence([seed, split_key, i])
                                           .generate_state(1)[0])))
    out["defocused"] = np.stack(imgs)
    out["sigma"] = np.stack(sigmas)  # the sigma the input was blurred with
    return out


def make_variant(src: Path, dst: Path, arm: str, setting: str, *, seed: int) -> Path:
    """Write the dataset of input ``arm`` for the scenes of ``src`` (module docstring)."""
    from defocuskit.dataset.store import write_arrays

    if arm == "true":
        return src
    if arm == "other" and len(set(load_split(src, "test")["depth"].shape[1:])) != 1:
        raise ValueError("control 'other' turns another scene's map by 90 degrees: the "
                         "frames must be square")
    if arm not in ARMS:
        raise ValueError(f"arm {arm!r}: expected one of {ARMS}")
    sigma_c = train_mean_sigma(src) if arm == "constant" else None
    splits = {name: _variant_split(load_split(src, name), arm, setting, sigma_c=sigma_c,
                                   seed=seed, split_key=k)
              for k, name in enumerate(("train", "test"))}
    write_arrays(dst, splits, attrs={"note": f"control {arm!r} of {src}", "setting": setting},
                 shard_size=32)
    return dst
