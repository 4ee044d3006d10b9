"""Causal probe: re-render the ideal setting's test scenes with another camera and check that
the depth-from-defocus model's predictions move as the thin lens says.

The ideal setting's model learns one map, blur -> depth, for the camera focused at 10 m.
Re-rendered with the focus moved to 20 m, or with the f-number halved (twice the aperture),
every pixel's sigma grows; a model that reads the blur must then predict the depth ``d'``
whose training-camera sigma equals the new sigma, ``sigma_10(d') = sigma_new(d)`` (found by
inverting the training camera's sigma over 0.3-10 m, where it is monotonic). The response
of a model is the least-squares slope, through the origin and over all valid test pixels,
of its log-depth change ``ln p_new - ln p_old`` against the implied ``ln d' - ln d``: 1 =
moves exactly as the thin lens implies, 0 = ignores the blur. The sharp-input model sees
the all-in-focus image, which a camera change leaves as it is, so its response is 0 by
construction; it is computed all the same, on the same re-renders.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from learning.data import CAMERA, load_split

__all__ = ["PROBES", "probe_cameras", "implied_depth", "rerender", "response"]

PROBES = {"focus_20m": "focus moved 10 m -> 20 m", "f_number_half": "f-number halved"}


def probe_cameras(width: int) -> dict:
    """The training camera (``train``) and one per probe, from the ``2hded`` preset."""
    from defocuskit.camera.presets import get_preset

    base = get_preset(CAMERA).make(image_width=width, rng=np.random.default_rng(0))
    train = base.with_focus(10.0)
    return {"train": train, "focus_20m": base.with_focus(20.0),
            "f_number_half": dataclasses.replace(train, f_number=train.f_number / 2)}


def implied_depth(depth: np.ndarray, train_cam, new_cam) -> np.ndarray:
    """The depth whose sigma under ``train_cam`` equals the sigma of ``depth`` under
    ``new_cam`` (NaN outside the invertible range)."""
    grid = np.geomspace(0.3, 10.0, 4000)
    s_grid = np.asarray(train_cam.sigma_px(grid), np.float64)  # decreasing in depth
    s_new = np.asarray(new_cam.sigma_px(np.where(depth > 0, depth, np.nan)), np.float64)
    out = np.interp(-s_new, -s_grid, grid, left=np.nan, right=np.nan)
    return np.where(np.isfinite(s_new), out, np.nan)


def rerender(ideal: Path, dst: Path, probe: str) -> Path:
    """The ideal setting's test split re-rendered (gather, no noise) with camera ``probe``."""
    from defocuskit.blur import render
    from defocuskit.dataset.store import write_arrays

    a = load_split(ideal, "test")
    cam = probe_cameras(a["aif"].shape[2])[probe]
    imgs, sig = [], []
    for aif, d in zip(a["aif"], a["depth"], strict=True):
        s = np.asarray(cam.sigma_px(np.where(d > 0, d, 10.0)), np.float32)
        sig.append(s)
        imgs.append(render(aif, s, mode="gather", threads=1))
    n = len(imgs)
    scalars = {"focus_distance": cam.focus_distance, "focal_length": cam.focal_length,
               "f_number": cam.f_number, "pixel_pitch": cam.pixel_pitch,
               "coc_to_sigma": cam.coc_to_sigma}
    split = {"aif": a["aif"], "depth": a["depth"], "defocused": np.stack(imgs),
             "sigma": np.stack(sig),
             **{k: np.full(n, v, np.float32) for k, v in scalars.items()}}
    write_arrays(dst, {"test": split}, attrs={"note": f"probe {probe} of {ideal}"},
                 shard_size=32)
    return dst


def response(old: list, new: list, depth: list, implied: list) -> dict:
    """Slope of the predicted log-depth change on the implied one, and their medians."""
    po, pn = np.concatenate([p.ravel() for p in old]), np.concatenate([p.ravel() for p in new])
    d = np.concatenate([x.ravel() for x in depth])
    di = np.concatenate([x.ravel() for x in implied])
    ok = np.isfinite(d) & (d > 0) & np.isfinite(di) & (di > 0)
    po, pn = np.maximum(po[ok], 1e-3), np.maximum(pn[ok], 1e-3)
    s_pred, s_imp = np.log(pn) - np.log(po), np.log(di[ok]) - np.log(d[ok])
    return {"slope": float(np.sum(s_pred * s_imp) / np.sum(s_imp ** 2)),
            "median_pred_log_change": float(np.median(s_pred)),
            "median_implied_log_change": float(np.median(s_imp)), "n_pixels": int(ok.sum())}
