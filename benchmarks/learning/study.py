"""One seed of the learning study: both settings, every input arm, the causal probe."""

from __future__ import annotations

from pathlib import Path

from learning import probe as pr
from learning.data import ARMS, load_split, make_variant, synthesise, train_mean_sigma
from learning.runs import constant_predictions, predict_split, say, score, train, train_config
from learning.stats import mean_ci, paired_ci

__all__ = ["ROW_LABELS", "run_seed", "summarise", "COMPARISONS"]

ROW_LABELS = {
    "mean_depth": "(a) constant: training-split mean depth",
    "sharp": "(b) sharp (all-in-focus) input",
    "true": "(c) defocus from the scene's own depth",
    "other": "(d) defocus from another scene's depth",
    "constant": "(e) constant σ (training-split mean)",
    "camera": "(c) + camera input (--camera-input)",
}
# (setting, a, b): the paired difference a - b of each metric over scenes and seeds
COMPARISONS = [("ideal", "true", "sharp"), ("ideal", "true", "other"),
               ("ideal", "true", "constant"), ("ideal", "sharp", "constant"),
               ("real", "true", "sharp"), ("real", "true", "other"),
               ("real", "true", "constant"), ("real", "camera", "true"),
               ("real", "camera", "sharp")]


def _arm(data, work: Path, cfg, label: str, *, device: str) -> dict:
    say(f"training {label}")
    out = train(data, work, cfg, label=label)
    preds, truth = predict_split(work / "last.pt", data, device=device)
    out.update(score(preds, truth))
    out["_preds"] = preds
    return out


def run_seed(s: dict, work: Path, *, seed: int, device: str, jobs: int, workers: int,
             settings=("ideal", "real"), probe: bool = True) -> dict:
    """Train and score every arm of ``settings`` for ``seed``; the probe on ``ideal``."""
    res = {}
    for setting in settings:
        src = work / f"{setting}.zarr"
        say(f"seed {seed}, {setting}: synthesising {s['n_train']} + {s['n_test']} scenes")
        r = {"synth": synthesise(src, s, setting, seed=seed, jobs=jobs),
             "train_mean_sigma_px": train_mean_sigma(src)}
        cfg = train_config(s, device=device, seed=seed, workers=workers)
        for arm in ARMS:
            data = make_variant(src, work / f"{setting}_{arm}.zarr", arm, setting, seed=seed)
            r[arm] = _arm(data, work / f"run_{setting}_{arm}", cfg, f"{setting} {arm}",
                          device=device)
        if setting == "real":
            cam_cfg = train_config(s, device=device, seed=seed, workers=workers,
                                   camera_input=True)
            r["camera"] = _arm(src, work / "run_real_camera", cam_cfg, "real camera",
                               device=device)
        _, truth = predict_split(work / f"run_{setting}_true" / "last.pt", src, device=device)
        r["mean_depth"] = score(constant_predictions(load_split(src, "train")["depth"], truth),
                                truth)
        if setting == "ideal" and probe:
            r["probe"] = _probe(src, work, r, truth, device=device)
        for v in r.values():
            if isinstance(v, dict):
                v.pop("_preds", None)
        res[setting] = r
    return res


def _probe(src: Path, work: Path, r: dict, truth: dict, *, device: str) -> dict:
    out = {}
    cams = pr.probe_cameras(load_split(src, "test")["aif"].shape[2])
    for name, what in pr.PROBES.items():
        data = pr.rerender(src, work / f"probe_{name}.zarr", name)
        implied = [pr.implied_depth(d, cams["train"], cams[name]) for d in truth["depth"]]
        row = {"what": what}
        for arm, key in (("true", "dfd"), ("sharp", "sharp")):
            new, _ = predict_split(work / f"run_ideal_{arm}" / "last.pt",
                                   data if arm == "true" else work / "ideal_sharp.zarr",
                                   device=device)
            row[key] = pr.response(r[arm]["_preds"], new, truth["depth"], implied)
        say(f"  probe {name}: DFD slope {row['dfd']['slope']:.2f}, sharp "
            f"{row['sharp']['slope']:.2f}")
        out[name] = row
    return out


def _rows(setting: str) -> list[str]:
    return ["mean_depth", "sharp", "true", "other", "constant"] + (
        ["camera"] if setting == "real" else [])


def summarise(per_seed: dict) -> dict:
    """Means with 95 % intervals over scenes and seeds, and the paired comparisons."""
    seeds = sorted(per_seed)
    settings = [k for k in per_seed[seeds[0]]]
    out = {"rows": {}, "comparisons": [], "probe": {}}
    metrics = ("rmse", "abs_rel", "delta1")
    for setting in settings:
        rows = {}
        for arm in _rows(setting):
            if arm not in per_seed[seeds[0]][setting]:
                continue
            rows[arm] = {m: mean_ci([per_seed[sd][setting][arm]["per_scene"][m]
                                     for sd in seeds]) for m in metrics}
        out["rows"][setting] = rows
    for setting, a, b in COMPARISONS:
        if setting not in settings or a not in out["rows"][setting]:
            continue
        out["comparisons"].append({
            "setting": setting, "a": a, "b": b,
            **{m: paired_ci([per_seed[sd][setting][a]["per_scene"][m] for sd in seeds],
                            [per_seed[sd][setting][b]["per_scene"][m] for sd in seeds])
               for m in metrics}})
    if "probe" in per_seed[seeds[0]].get("ideal", {}):
        for name in pr.PROBES:
            out["probe"][name] = {k: mean_ci([[per_seed[sd]["ideal"]["probe"][name][k]["slope"]]
                                              for sd in seeds]) for k in ("dfd", "sharp")}
    return out
