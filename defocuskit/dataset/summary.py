"""What `defocuskit inspect` reports: splits, shapes, camera, statistics, completeness."""

from __future__ import annotations

from typing import Any

import numpy as np

from defocuskit.dataset.manifest import VERIFY_ADVICE, check_files, read_manifest
from defocuskit.dataset.store import open_dataset, shard_ranges
from defocuskit.errors import DataError
from defocuskit.recipe import normalize_render_mode

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


def _file_problems(path) -> tuple[str, list[str], dict | None]:
    """(manifest state, problems, manifest): the cheap check of the files against the
    manifest (sizes, metadata checksums; no data read)."""
    try:
        manifest = read_manifest(path)
    except DataError as exc:
        return "damaged", [str(exc)], None
    if manifest is None:
        return "absent", [], None
    return "present", [str(p) for p in check_files(path, manifest)], manifest


def summarize(path, *, max_samples: int = 64) -> dict[str, Any]:
    """Summary of a dataset as plain JSON (statistics over up to ``max_samples`` per split).

    ``problems`` lists, one line each, damage found without reading everything: files
    that differ from the manifest in size or (metadata) checksum, shard files missing or
    empty (a dataset without a manifest), flags that contradict ``complete``, and samples
    that fail their checksum while the statistics are read. With problems no statistics
    are given (they would mix in fill values) and ``complete`` is false.
    """
    state, problems, _ = _file_problems(path)
    try:
        ds = open_dataset(path, require_complete=False, check_manifest=False)
    except DataError as exc:  # the root metadata does not parse
        if not problems:
            problems.append(str(exc))
        return {"path": str(path), "manifest": state, "complete": False,
                "problems": problems, "splits": {}}
    a = ds.attrs
    info: dict[str, Any] = {
        "path": str(path), "schema_version": a.get("schema_version"),
        "complete": bool(a.get("complete", False)), "manifest": state, "seed": a.get("seed"),
        "render_mode": render_mode_of(a), "focus_policy": a.get("focus_policy"),
        "psf": a.get("psf"), "psf_detail": a.get("psf_detail"),
        "dual_pixel": bool(a.get("dual_pixel", False)), "jpeg": a.get("jpeg"),
        "chromatic": a.get("chromatic"),
        "diffraction": diffraction_nm(a),
        "camera": a.get("camera"), "source": a.get("source", {}).get("name"),
        "source_identity": a.get("source", {}).get("identity"),
        "versions": a.get("versions"), "last_run": a.get("last_run"), "splits": {},
        "problems": problems,
    }
    marked_complete = info["complete"]
    for name in ds.splits:
        sp = ds[name]
        done = np.asarray(sp.array("_shard_done")[:]).astype(bool)
        if marked_complete and not done.all():
            info["complete"] = False
            problems.append(f"split {name!r}: shards {np.flatnonzero(~done).tolist()} are not "
                            "marked done although the dataset is marked complete (the "
                            "'shard done' flag was lost or changed)")
        if state != "present":  # no manifest to compare sizes with: every shard file there
            problems += _missing_shard_files(sp, done, int(a["shard_size"]))
        info["splits"][name] = s = {
            "n": len(sp), "image_shape": list(sp.image_shape), "focal_stack": sp.focal_stack,
            "scene_only": not sp.has("defocused"),
            "arrays": {k: {"shape": list(sp.array(k).shape), "dtype": str(sp.array(k).dtype)}
                       for k in sorted(sp._g.array_keys()) if not k.startswith("_")},
            "shards_done": int(done.sum()), "shards_total": int(done.size),
            "skipped": len(sp.attrs.get("skipped", [])), "stats_over_samples": 0,
        }
        if not done.all():
            s["stats_note"] = "not computed: not every shard is written"
        elif not sp.usable_indices():
            s["stats_note"] = "not computed: no usable sample"
    for name, s in info["splits"].items():
        if "stats_note" in s:
            continue
        if problems:
            s["stats_note"] = "not computed, the dataset is damaged: see the problems"
            continue
        try:
            s.update(_split_stats(ds[name], max_samples))
        except DataError as exc:
            problems.append(str(exc))
            s["stats_note"] = "not computed, the dataset is damaged: see the problems"
    if problems:
        info["complete"] = False
    return info


def _missing_shard_files(sp, done: np.ndarray, shard_size: int) -> list[str]:
    """One line per array and shard marked done whose file is missing or empty."""
    out = []
    skipped = sp.skipped_indices()
    names = sorted(k for k in sp._g.array_keys() if not k.startswith("_"))
    for si, (a, b) in enumerate(shard_ranges(len(sp), shard_size)):
        wanted = [i for i in range(a, b) if i not in skipped]
        if not done[si] or not wanted:
            continue
        for name in names:
            if not sp.chunk_present(name, wanted[0]):
                span = f"sample {a}" if b - a == 1 else f"samples {a}-{b - 1}"
                out.append(f"{sp.name}/{name} shard {si} ({span}): shard file missing or "
                           f"empty; {VERIFY_ADVICE}")
    return out


def _whole(sp, name: str) -> np.ndarray:
    """A small per-sample array, read at once; a chunk that fails is a DataError."""
    try:
        return np.asarray(sp.array(name)[:])
    except Exception as exc:  # noqa: BLE001 - any codec failure means damaged bytes
        raise DataError(f"{sp.name}/{name}: damaged chunk ({exc.__class__.__name__}); "
                        f"{VERIFY_ADVICE}") from None


def _split_stats(sp, max_samples: int) -> dict[str, Any]:
    """Depth, sigma and camera statistics of a split, every value read checked."""
    usable = sp.usable_indices()
    idx = [usable[k] for k in stat_indices(len(usable), max_samples)]
    out: dict[str, Any] = {"stats_over_samples": len(idx)}
    out["depth_m"] = _stats(np.stack([sp.read_array("depth", i) for i in idx]))
    if out["depth_m"]["min"] is None:
        out["stats_note"] = f"no valid (finite) depth in the {len(idx)} samples read"
    if sp.has("sigma"):
        sig = np.stack([sp.read_array("sigma", i) for i in idx])
        out["sigma_px"] = _stats(sig)
        if sp.sigma_channels:
            out["sigma_px_per_channel"] = {c: _stats(sig[..., j]) for j, c in enumerate("RGB")}
        for k, key in (("focus_distance", "focus_distance_m"), ("focal_length", None),
                       ("f_number", None), ("pixel_pitch", None), ("coc_to_sigma", None)):
            out[key or k] = _stats(_whole(sp, k)[usable].astype(np.float64))
    return out


def _fmt(st: dict | None, unit: str, scale: float = 1.0, prec: int = 3) -> str:
    if not st or st.get("min") is None:
        return "n/a (no finite values)"
    return (f"{st['min'] * scale:.{prec}f} .. {st['max'] * scale:.{prec}f} {unit} "
            f"(mean {st['mean'] * scale:.{prec}f}, valid {100 * st['valid_fraction']:.1f} %)")


# what an unfinished dataset's summary says; synth --resume refuses a changed input or
# configuration (it names what changed), so the advice names the same command
_INCOMPLETE = ("NO (interrupted: rerun the same synth command with --resume; "
               "with a changed input or configuration, --overwrite instead)")


def _psf_words(psf, detail: dict | None = None) -> str:
    """The PSF and what sigma means for it (a polygon's blades, a bank's file)."""
    detail = detail or {}
    if detail.get("kind") == "polygon":
        return (f"{detail['blades']}-blade polygon rotated {detail['rotation_deg']:g} deg "
                "(the area of the disc of radius 2 sigma)")
    if detail.get("kind") == "bank":
        b = detail.get("bank") or {}
        lo, hi = b.get("coc_px_range", ["?", "?"])
        return (f"PSF bank {b.get('path')} ({b.get('n_kernels')} kernels, CoC {lo} to {hi} "
                f"px, {b.get('channels')} channel(s), sha256 {str(b.get('sha256'))[:12]})")
    if psf == "disc":
        return "disc (uniform, radius = 2 sigma)"
    if psf == "gaussian":
        return "gaussian (sigma = its standard deviation)"
    return "not recorded" if psf is None else str(psf)


def render_mode_of(attrs: dict[str, Any]) -> str | None:
    """A dataset's render mode (root attribute ``render_mode``, older datasets'
    ``engine_mode``; their ``"none"`` read as ``"scene-only"``); None if not recorded."""
    mode = attrs.get("render_mode", attrs.get("engine_mode"))
    return normalize_render_mode(mode)


def diffraction_nm(attrs: dict[str, Any]) -> float:
    """The diffraction floor's wavelength of a dataset (nm; 0: off or not recorded)."""
    entry = (attrs.get("settings") or {}).get("diffraction") or {}
    return float(entry.get("value") or 0.0)


def view_lines(attrs: dict[str, Any]) -> list[str]:
    """The render options beyond the PSF, one line each (none when off)."""
    lines = []
    if attrs.get("diffraction"):
        lines.append(f"floor     diffraction at {attrs['diffraction']:g} nm "
                     "(sigma_d = 0.42 lambda N / pitch, in quadrature)")
    chromatic = attrs.get("chromatic")
    if chromatic:
        off = "/".join(f"{v:+g}" for v in chromatic.get("offsets_mm", []))
        lines.append(f"chromatic focal-length offsets R/G/B {off} mm: sigma per channel "
                     "(H, W, 3)")
    if attrs.get("dual_pixel"):
        lines.append("views     dual-pixel: defocused_left / defocused_right (half apertures, "
                     "each at twice its light)")
    jpeg = attrs.get("jpeg")
    if jpeg:
        lines.append(f"jpeg      round trip at quality {jpeg.get('quality')} "
                     f"({jpeg.get('encoder')})")
    return lines


def format_summary(info: dict[str, Any]) -> str:
    """Human-readable rendering of :func:`summarize`'s result."""
    problems = info.get("problems", [])
    if "source" not in info:  # the root metadata cannot be read
        return "\n".join([f"dataset   {info['path']}", f"complete  {_DAMAGED}",
                          *_problem_lines(problems)])
    cam = info.get("camera") or {}
    complete = "yes" if info["complete"] else _DAMAGED if problems else _INCOMPLETE
    lines = [
        f"dataset   {info['path']}",
        f"complete  {complete}",
        f"source    {info['source']}  ({(info.get('source_identity') or {}).get('path', '?')})",
        f"camera    {cam.get('preset')}  {cam.get('source', '')}",
        f"mode      {info['render_mode']}   focus {info['focus_policy']}   seed {info['seed']}",
        f"psf       {_psf_words(info.get('psf'), info.get('psf_detail'))}",
    ]
    lines += view_lines(info)
    if info.get("manifest") == "absent":
        lines.append("manifest  none (written before manifests): files not checked against "
                     "one; `inspect --verify` checks the chunk checksums")
    for name, s in info["splits"].items():
        h, w = s["image_shape"]
        stack = f", focal stack of {s['focal_stack']}" if s["focal_stack"] else ""
        lines.append(f"\n[{name}] {s['n']} samples of {h}x{w}{stack}; shards "
                     f"{s['shards_done']}/{s['shards_total']} done"
                     + (f"; {s['skipped']} skipped" if s["skipped"] else ""))
        if s.get("scene_only"):
            lines.append("  scene only (synth --render-mode scene-only): no defocus stored; "
                         "train with `trainer fit --on-the-fly`")
        for k, v in s["arrays"].items():
            lines.append(f"  {k:<15} {str(tuple(v['shape'])):<24} {v['dtype']}")
        if "depth_m" not in s:
            lines.append(f"  depth           n/a ({s.get('stats_note', 'not computed')})")
            continue
        lines.append(f"  depth           {_fmt(s['depth_m'], 'm')}")
        if "sigma_px" in s:
            lines.append(f"  sigma           {_fmt(s['sigma_px'], 'px', prec=2)}")
            for c, st in (s.get("sigma_px_per_channel") or {}).items():
                lines.append(f"    sigma {c}       {_fmt(st, 'px', prec=2)}")
            lines.append(f"  focus distance  {_fmt(s['focus_distance_m'], 'm')}")
            lines.append(f"  focal length    {_fmt(s['focal_length'], 'mm', 1e3, 1)}")
            lines.append(f"  f-number        {_fmt(s['f_number'], '', prec=2)}")
            lines.append(f"  pixel pitch     {_fmt(s['pixel_pitch'], 'um', 1e6, 2)}")
        lines.append(f"  (statistics over {s['stats_over_samples']} samples)")
    return "\n".join(lines + _problem_lines(problems))


_DAMAGED = "NO (damaged: see the problems below)"


def _problem_lines(problems: list[str]) -> list[str]:
    if not problems:
        return []
    return ([f"\n{len(problems)} problem(s):"] + [f"  {p}" for p in problems]
            + [f"the dataset is damaged: {VERIFY_ADVICE} (it reads every byte)"])
