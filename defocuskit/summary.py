"""What `defocuskit inspect` reports: splits, shapes, camera, statistics, completeness."""

from __future__ import annotations

from typing import Any

import numpy as np

from defocuskit.store import open_dataset

__all__ = ["summarize", "format_summary", "stat_indices"]


def stat_indices(n: int, max_samples: int) -> np.ndarray:
    """Evenly spaced sample indices used for statistics (all of them when n is small)."""
    if n <= max_samples:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_samples).round().astype(int))


def _stats(values: np.ndarray) -> dict[str, float | None]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"min": None, "max": None, "mean": None, "median": None, "valid_fraction": 0.0}
    return {"min": float(v.min()), "max": float(v.max()), "mean": float(v.mean()),
            "median": float(np.median(v)), "valid_fraction": float(v.size / values.size)}


def summarize(path, *, max_samples: int = 64) -> dict[str, Any]:
    """Summary of a dataset as plain JSON (statistics over up to ``max_samples`` per split)."""
    ds = open_dataset(path, require_complete=False)
    a = ds.attrs
    info: dict[str, Any] = {
        "path": str(path), "schema_version": a.get("schema_version"),
        "complete": bool(a.get("complete", False)), "seed": a.get("seed"),
        "engine_mode": a.get("engine_mode"), "focus_policy": a.get("focus_policy"),
        "psf": a.get("psf"),
        "camera": a.get("camera"), "source": a.get("source", {}).get("name"),
        "source_identity": a.get("source", {}).get("identity"),
        "versions": a.get("versions"), "last_run": a.get("last_run"), "splits": {},
    }
    for name in ds.splits:
        sp = ds[name]
        done = np.asarray(sp.array("_shard_done")[:]).astype(bool)
        idx = stat_indices(len(sp), max_samples)
        s: dict[str, Any] = {
            "n": len(sp), "image_shape": list(sp.image_shape), "focal_stack": sp.focal_stack,
            "scene_only": not sp.has("defocused"),
            "arrays": {k: {"shape": list(sp.array(k).shape), "dtype": str(sp.array(k).dtype)}
                       for k in sorted(sp._g.array_keys()) if not k.startswith("_")},
            "shards_done": int(done.sum()), "shards_total": int(done.size),
            "skipped": len(sp.attrs.get("skipped", [])), "stats_over_samples": int(idx.size),
        }
        if done.all() and len(sp):
            s["depth_m"] = _stats(np.asarray(sp.array("depth").get_orthogonal_selection(
                (idx, slice(None), slice(None)))))
            if sp.has("sigma"):
                sig = sp.array("sigma")
                sel = (idx,) + (slice(None),) * (sig.ndim - 1)
                s["sigma_px"] = _stats(np.asarray(sig.get_orthogonal_selection(sel)))
                fd = np.asarray(sp.array("focus_distance")[:], dtype=np.float64)
                s["focus_distance_m"] = _stats(fd)
                for k in ("focal_length", "f_number", "pixel_pitch", "coc_to_sigma"):
                    v = np.asarray(sp.array(k)[:], dtype=np.float64)
                    s[k] = _stats(v)
        info["splits"][name] = s
    return info


def _fmt(st: dict | None, unit: str, scale: float = 1.0, prec: int = 3) -> str:
    if not st or st.get("min") is None:
        return "n/a"
    return (f"{st['min'] * scale:.{prec}f} .. {st['max'] * scale:.{prec}f} {unit} "
            f"(mean {st['mean'] * scale:.{prec}f}, valid {100 * st['valid_fraction']:.1f} %)")


# what an unfinished dataset's summary says; synth --resume refuses a changed input or
# configuration (it names what changed), so the advice names the same command
_INCOMPLETE = ("NO (interrupted: rerun the same synth command with --resume; "
               "with a changed input or configuration, --overwrite instead)")


def _psf_words(psf) -> str:
    """The PSF and what sigma means for it."""
    if psf == "disc":
        return "disc (uniform, radius = 2 sigma)"
    if psf == "gaussian":
        return "gaussian (sigma = its standard deviation)"
    return "not recorded" if psf is None else str(psf)


def format_summary(info: dict[str, Any]) -> str:
    """Human-readable rendering of :func:`summarize`'s result."""
    cam = info.get("camera") or {}
    lines = [
        f"dataset   {info['path']}",
        f"complete  {'yes' if info['complete'] else _INCOMPLETE}",
        f"source    {info['source']}  ({(info.get('source_identity') or {}).get('path', '?')})",
        f"camera    {cam.get('preset')}  {cam.get('source', '')}",
        f"mode      {info['engine_mode']}   focus {info['focus_policy']}   seed {info['seed']}",
        f"psf       {_psf_words(info.get('psf'))}",
    ]
    for name, s in info["splits"].items():
        h, w = s["image_shape"]
        stack = f", focal stack of {s['focal_stack']}" if s["focal_stack"] else ""
        lines.append(f"\n[{name}] {s['n']} samples of {h}x{w}{stack}; shards "
                     f"{s['shards_done']}/{s['shards_total']} done"
                     + (f"; {s['skipped']} skipped" if s["skipped"] else ""))
        if s.get("scene_only"):
            lines.append("  scene only (synth --mode none): no defocus stored; train with "
                         "`trainer fit --on-the-fly`")
        for k, v in s["arrays"].items():
            lines.append(f"  {k:<15} {str(tuple(v['shape'])):<24} {v['dtype']}")
        if "depth_m" in s:
            lines.append(f"  depth           {_fmt(s['depth_m'], 'm')}")
        if "sigma_px" in s:
            lines.append(f"  sigma           {_fmt(s['sigma_px'], 'px', prec=2)}")
            lines.append(f"  focus distance  {_fmt(s['focus_distance_m'], 'm')}")
            lines.append(f"  focal length    {_fmt(s['focal_length'], 'mm', 1e3, 1)}")
            lines.append(f"  f-number        {_fmt(s['f_number'], '', prec=2)}")
            lines.append(f"  pixel pitch     {_fmt(s['pixel_pitch'], 'um', 1e6, 2)}")
        lines.append(f"  (statistics over {s['stats_over_samples']} samples)")
    return "\n".join(lines)
