"""One shard of one split, the unit of work of ``defocuskit synth``.

:func:`run_shard` reads each sample of the shard from the source, prepares it (resize,
depth-unit check), renders it (:func:`sample_arrays`: the cameras drawn from
``sample_rng(seed, split, i)`` and each image rendered by the render recipe,
:mod:`defocuskit.recipe`) and writes the whole shard once; a sample that fails with
``on_error = "skip"`` is written as fill values and reported. It runs in a worker process;
:mod:`defocuskit.pipeline.synth` plans the shards and runs them.

Invalid depth (NaN, inf, <= 0) follows the recipe: rendered as the nearest valid pixel's
depth; the stored depth keeps its value and the stored sigma is NaN there.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from defocuskit.camera.focus import sample_rng
from defocuskit.dataset.store import PER_SAMPLE_SCALARS, write_shard
from defocuskit.errors import DefocusKitError
from defocuskit.pipeline.config import SynthConfig
from defocuskit.pipeline.prepare import check_depth_units, resize_sample
from defocuskit.recipe import SCENE_ONLY, RenderSettings, draw_cameras, render_sample
from defocuskit.sources import Sample, Source

__all__ = ["prepare_sample", "release_shard_buffers", "run_shard", "sample_arrays"]


def prepare_sample(sample: Sample, cfg: SynthConfig) -> Sample:
    """The sample resized as the run asks, its depth units checked."""
    if cfg.resize is not None:
        sample = resize_sample(sample, tuple(cfg.resize))
    check_depth_units(sample.depth, f"sample {sample.sample_id!r}")
    return sample


def sample_arrays(sample: Sample, settings: RenderSettings, seed: int, split: str,
                  index: int, threads: int | None) -> dict[str, np.ndarray]:
    """Everything stored for one sample (without the leading sample axis)."""
    out: dict[str, np.ndarray] = {"aif": sample.aif, "depth": sample.depth,
                                  "source_index": np.int32(index)}
    if settings.mode == SCENE_ONLY:  # the scene only, also of a real capture
        return out
    if sample.defocused is not None:  # a real capture (iDFD): stored as it is
        out["defocused"] = sample.defocused
        return out
    rng = sample_rng(seed, split, index)
    cameras = draw_cameras(sample.depth, settings, rng)
    views = ("defocused", "defocused_left", "defocused_right") if settings.dual_pixel else \
        ("defocused",)
    images: dict[str, list] = {k: [] for k in views}
    sigmas, scalars = [], {k: [] for k in PER_SAMPLE_SCALARS}
    for cam in cameras:
        noise_seed = int(rng.integers(2**31 - 1))
        r = render_sample(sample.aif, sample.depth, cam, settings, seed=noise_seed,
                          threads=threads)
        for k in views:
            images[k].append(r[k])
        sigmas.append(r["sigma"])
        for k in PER_SAMPLE_SCALARS:
            scalars[k].append(getattr(cam, k))
    pick = (lambda v: np.stack(v)) if settings.stack_size else (lambda v: v[0])
    for k in views:
        out[k] = pick(images[k])
    out["sigma"] = pick(sigmas)
    for k, v in scalars.items():
        out[k] = np.asarray(pick(v), dtype=np.float32)
    return out


def run_shard(source: Source, cfg: SynthConfig, settings: RenderSettings, split: str,
              shard_index: int, start: int, stop: int,
              threads: int | None) -> dict[str, Any]:
    """Read, render and write one shard; return what was done (runs in a worker).

    Each sample is copied into the shard's arrays as soon as it is rendered (shaped by the
    first good sample, in this thread's buffers of the last shard where they fit:
    :func:`_shard_arrays`), which keeps one shard in memory rather than a list of samples
    plus their stack, and copies each while it is still in the cache.
    """
    skipped = []
    data: dict[str, np.ndarray] | None = None
    done = np.zeros(stop - start, np.bool_)
    for j, i in enumerate(range(start, stop)):
        try:
            sample = prepare_sample(source.read(split, i), cfg)
            row = sample_arrays(sample, settings, cfg.seed, split, i, threads)
        except DefocusKitError as exc:
            sid = source.sample_ids(split)[i]
            if cfg.on_error != "skip":
                raise type(exc)(f"{split}/{sid} (index {i}): {exc}") from None
            skipped.append({"split": split, "index": i, "sample_id": sid, "error": str(exc)})
            continue
        if data is None:
            data = _shard_arrays(row, stop - start)
        _put_row(data, j, row)
        done[j] = True
    if data is not None:
        blank = _blank_row({k: v[0] for k, v in data.items()})
        for j in np.flatnonzero(~done):
            _put_row(data, int(j), blank)
    else:  # every sample failed: leave the fill values, mark sources as missing
        data = {"source_index": np.full(stop - start, -1, np.int32)}
    write_shard(cfg.output, split, shard_index, data, storage_options=cfg.storage_options)
    return {"split": split, "shard": shard_index, "n": stop - start - len(skipped),
            "skipped": skipped}


_POOL = threading.local()  # this thread's shard buffers, kept from one shard to the next


def _shard_arrays(row: dict[str, Any], n: int) -> dict[str, np.ndarray]:
    """Uninitialised arrays for a shard of ``n`` samples shaped like ``row``: views into
    this thread's buffers of the last shard where they fit, new ones where not.

    Fresh memory costs the kernel a page fault and a zeroed page per 4 KiB; refilling the
    last shard's buffers instead saved about 4 ms of a NYU sample's ~80 ms in a worker.
    Each thread has its own, so threads that run shards never share one; every row is
    written before the shard is (``run_shard``), so nothing of the last shard remains.
    """
    old = getattr(_POOL, "buffers", {})
    kept, data = {}, {}
    for k, v in row.items():
        v = np.asarray(v)
        key = (k, v.dtype.str, v.shape)
        buf = old.get(key)
        if buf is None or len(buf) < n:
            buf = np.empty((n, *v.shape), v.dtype)
        kept[key] = buf
        data[k] = buf[:n]
    _POOL.buffers = kept  # buffers of other keys or shapes are dropped
    return data


def release_shard_buffers() -> None:
    """Drop this thread's shard buffers (after an in-process run)."""
    _POOL.buffers = {}


def _put_row(data: dict[str, np.ndarray], j: int, row: dict[str, Any]) -> None:
    """Copy one sample's arrays into row ``j`` of the shard's; its keys, shapes and dtypes
    must be those of the shard's first sample (no silent broadcasting or casting)."""
    if row.keys() != data.keys():
        raise RuntimeError(f"sample arrays {sorted(row)} differ from the shard's "
                           f"{sorted(data)}")
    for k, v in row.items():
        v = np.asarray(v)
        if v.shape != data[k].shape[1:] or v.dtype != data[k].dtype:
            raise RuntimeError(f"{k}: {v.dtype} {v.shape} differs from the shard's "
                               f"{data[k].dtype} {data[k].shape[1:]}")
        data[k][j] = v


def _blank_row(template: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fill values for a skipped sample: zeros, NaN floats, source index -1."""
    blank = {}
    for k, v in template.items():
        v = np.asarray(v)
        fill = np.nan if v.dtype.kind == "f" else 0
        blank[k] = np.full(v.shape, fill, v.dtype)
    blank["source_index"] = np.int32(-1)
    return blank
