"""The synth pipeline: source -> prepare -> camera & focus -> sigma map -> render -> store.

One shard of one split is one task. Tasks run in joblib worker processes (``jobs > 1``),
in the calling process (``jobs == 1``), or on a dask cluster (``backend="dask"``); each
task reads its samples, renders them, buffers the whole shard and writes it once, then
marks it done. Every random draw of sample ``i`` comes from ``sample_rng(seed, split, i)``,
so the arrays are identical whatever the number of workers or the order of the tasks.

What one task does to its samples: :mod:`defocuskit.pipeline.shard`; how one image is
rendered (and the invalid-depth policy): the render recipe, :mod:`defocuskit.recipe`.

``render_mode = "scene-only"`` (:data:`SCENE_ONLY`) renders nothing: each sample stores its
scene only (AiF, depth, source index), with the same shards, provenance and resume; the trainer
renders the defocus in its loader (``trainer fit --on-the-fly``). The camera preset and
focus policy are still recorded, as the defaults of that rendering.
"""

from __future__ import annotations

import sys
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

from joblib import Parallel, delayed, parallel_config
from tqdm.auto import tqdm

from defocuskit.dataset.output import (
    LEFTOVER_MARKER,
    describe_os_error,
    discard_staging,
    is_remote,
    mark_staging,
    prepare_staging,
    probe_output,
    real_path,
    refuse_foreign_entries,
    remove_dataset,
    restore_interrupted_swap,
    swap_into_place,
    writer_lock,
)
from defocuskit.dataset.store import (
    SplitSpec,
    create_dataset,
    done_shards,
    mark_complete,
    open_group_rw,
    shard_ranges,
)
from defocuskit.errors import ConfigError, SchemaError, SourceError
from defocuskit.pipeline.config import SynthConfig, upgrade_config_keys
from defocuskit.pipeline.plan import (
    check_cameras,
    check_frame_sizes,
    check_input_unchanged,
    plan_splits,
)
from defocuskit.pipeline.provenance import dataset_provenance
from defocuskit.pipeline.shard import release_shard_buffers, run_shard
from defocuskit.recipe import (
    SCENE_ONLY,
    RenderSettings,
    fill_invalid_depth,
    warm_up,
)
from defocuskit.sources import Source, get_source

__all__ = ["SCENE_ONLY", "SynthSummary", "run_synth", "build_source", "fill_invalid_depth"]

# the first compile of each mode's kernels in synth's warm-up (Gaussian PSF; the disc PSF
# takes 1-2 s), measured with an empty NUMBA_CACHE_DIR, each mode in a fresh process, on 2
# shared CPU cores: gather 2.9-5.0 s, scatter 3.1-3.3 s, layered up to 9 s (its
# long-support blur passes); a cached load takes about 0.5 s
_COMPILE_TIME = {"gather": "about 3-5 s", "scatter": "about 3 s", "layered": "about 5-10 s"}


@dataclass
class SynthSummary:
    """What a run did (printed by the CLI, stored in the dataset's attributes)."""

    output: str
    n_samples: int = 0           # samples rendered in this run
    n_skipped: int = 0
    n_shards: int = 0            # shards written in this run
    n_shards_reused: int = 0     # shards already complete (resume)
    seconds: float = 0.0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # said once per run (the CLI: stderr)

    @property
    def samples_per_s(self) -> float:
        return self.n_samples / self.seconds if self.seconds > 0 else 0.0


def build_source(cfg: SynthConfig) -> Source:
    """Construct the configured reader; a bad input becomes one SourceError."""
    return get_source(cfg.source, cfg.input, **cfg.source_options)


def _check_noise(cfg: SynthConfig) -> None:
    """Fail on bad noise parameters before anything is read or written (the camera, focus
    policy and mode were checked when the render settings were resolved)."""
    if cfg.noise is not None:
        from defocuskit.blur import SensorNoise  # loads Numba

        SensorNoise.from_config(cfg.noise)


def _open_for_resume(cfg: SynthConfig, source: Source,
                     strict_resume: bool = False) -> dict[str, None]:
    """Check that the dataset at ``cfg.output`` can be finished with this configuration
    and this input (its identity recorded at creation must not change: see
    :func:`~defocuskit.pipeline.plan.check_input_unchanged`)."""
    root = open_group_rw(cfg.output, cfg.storage_options)
    old = root.attrs.get("content_key")
    if old is None or upgrade_config_keys(old) != cfg.content_key():
        raise ConfigError(f"{cfg.output}: existing dataset was written with another "
                          f"configuration; use --overwrite to replace it (stored: {old})")
    check_input_unchanged(cfg, source, (root.attrs.get("source") or {}).get("identity")
                           or {}, strict_resume)
    splits = list(root.attrs.get("splits", []))
    for split in splits:
        if split not in root or "_shard_done" not in root[split]:
            raise SchemaError(f"{cfg.output}: split {split!r} was never created (a run "
                              "killed while creating the dataset); nothing was changed. "
                              "Replace it with --overwrite")
    return {s: None for s in splits}


def _create(source: Source, cfg: SynthConfig, target: str, settings: RenderSettings,
            strict_resume: bool = False) -> dict[str, SplitSpec]:
    specs = plan_splits(source, cfg, settings)
    create_dataset(target, specs, attrs=dataset_provenance(source, cfg, settings, strict_resume),
                   shard_size=cfg.shard_size,
                   compressor=cfg.compressor, storage_options=cfg.storage_options)
    return specs


def run_synth(cfg: SynthConfig, *, resume: bool = False, overwrite: bool = False,
              progress: bool | None = None, strict_resume: bool = False) -> SynthSummary:
    """Run (or resume) a synth job and return its summary.

    Never writes into, empties or deletes anything that is not a defocuskit dataset (see
    :mod:`defocuskit.dataset.output`): a new dataset goes to a path that does not exist or is an
    empty folder; ``resume`` finishes an existing dataset in place and deletes nothing;
    ``overwrite`` builds the new dataset beside the old one (local paths) and swaps it in
    only once it is complete. A local output is taken by its real path (a symbolic link to
    a dataset resumes or replaces the dataset it points to). ``strict_resume``: a new
    dataset records a full hash of its input, which every resume reads again.

    Raises
    ------
    ConfigError
        If the output is not a defocuskit dataset, holds files the dataset did not write
        (``overwrite``), exists and neither ``resume`` nor ``overwrite`` is set, another
        process is writing or reading it, a resume finds a dataset written with a
        different configuration or input, or writing fails (disk full, read-only).
    SchemaError
        If the output's metadata is damaged or it was left half-created.
    SourceError
        On unreadable input (unless ``cfg.on_error == "skip"``).
    """
    t0 = time.perf_counter()
    if resume and overwrite:
        raise ConfigError("resume and overwrite exclude each other")
    settings = cfg.render_settings()  # resolved once: the camera, its defaults, their origin
    cfg = cfg.resolved(settings)
    _check_noise(cfg)
    source = build_source(cfg)
    check_frame_sizes(source, cfg)  # before the lock: a refused input creates nothing
    given = cfg.output
    if not is_remote(cfg.output):
        cfg = replace(cfg, output=str(real_path(cfg.output)))
    with writer_lock(cfg.output, shown=given):
        summary = _write(source, cfg, settings, t0, progress, resume=resume,
                         overwrite=overwrite, strict_resume=strict_resume, given=given)
    summary.output = given
    return summary


def _write(source: Source, cfg: SynthConfig, settings: RenderSettings, t0: float,
           progress: bool | None, *, resume: bool, overwrite: bool, strict_resume: bool,
           given: str) -> SynthSummary:
    """:func:`run_synth` under the writer lock; ``cfg.output`` is the real path of a local
    output, ``given`` the path as the user wrote it (for messages)."""
    if not is_remote(cfg.output):
        restore_interrupted_swap(cfg.output)
    state = probe_output(cfg.output, cfg.storage_options)
    if state == "dataset" and not (resume or overwrite):
        raise ConfigError(f"output {given!r} already exists; pass --resume to "
                          "finish it or --overwrite to replace it")
    if state == "dataset" and resume:
        specs = _open_for_resume(cfg, source, strict_resume)
        return _fill(source, cfg, settings, specs, t0, progress)
    # a focus nearer than the focal length, ...: refused before anything is created (a
    # resume was checked when its dataset was created, and compares its input first)
    check_cameras(source, cfg, settings)
    if state == "dataset" and not is_remote(cfg.output):
        refuse_foreign_entries(cfg.output, given)
    if is_remote(cfg.output):
        if state == "dataset":  # recognised as ours: remote stores cannot swap
            remove_dataset(cfg.output, cfg.storage_options)
        specs = _create(source, cfg, cfg.output, settings, strict_resume)
        return _fill(source, cfg, settings, specs, t0, progress)
    stage = prepare_staging(cfg.output)
    try:
        specs = _create(source, cfg, str(stage), settings, strict_resume)
        mark_staging(stage, cfg.output)
        if state == "absent":  # move the skeleton in now: a resume finds it there
            swap_into_place(stage, cfg.output, replace=False)
            return _fill(source, cfg, settings, specs, t0, progress)
        with warnings.catch_warnings():  # Zarr's listing meets the marker file
            warnings.filterwarnings("ignore", f"Object at {LEFTOVER_MARKER} ")
            summary = _fill(source, replace(cfg, output=str(stage)), settings, specs, t0,
                            progress, kept=cfg.output)
        swap_into_place(stage, cfg.output, replace=True)
        return summary
    except OSError as exc:
        raise ConfigError(describe_os_error(exc, cfg.output)
                          + ("; the existing dataset was not changed"
                             if state == "dataset" else "")) from None
    finally:
        discard_staging(stage)  # gone already unless this run failed


def _input_error_hint(source: Source, output: str, kept: bool) -> str | None:
    """What to do after a sample failed mid-run, for a reader whose files are the user's
    own (``fixable_input``: the folder reader); None for the others.

    Fixing the file changes the input's identity hash, so ``--resume`` would refuse the
    dataset; ``--overwrite`` starts it again. ``kept``: an existing dataset was being
    replaced and is still as it was.
    """
    if not getattr(source, "fixable_input", False):
        return None
    where = (f"The existing dataset {output!r} was not changed" if kept
             else f"The dataset {output!r} is left unfinished")
    return (f"{where}: fix that file, then rerun with --overwrite (--resume refuses an input "
            "that changed since the dataset was started)")


def _frame_notes(settings: RenderSettings, specs: dict) -> list[str]:
    """A fixed-pitch camera preset's note on frames far from its source's size, once per
    frame width (:meth:`~defocuskit.camera.named.CameraPreset.frame_note`)."""
    if settings.mode == SCENE_ONLY:
        return []
    preset = settings.preset
    widths = sorted({spec.width for spec in specs.values() if spec is not None})  # resume: none
    return [note for w in widths if (note := preset.frame_note(w)) is not None]


def _fill(source: Source, cfg: SynthConfig, settings: RenderSettings, specs: dict, t0: float,
          progress: bool | None, kept: str | None = None) -> SynthSummary:
    """Render and write every shard not yet done, then mark the dataset complete.

    ``kept``: the output path when ``cfg.output`` is the staging copy of a dataset being
    replaced (an input error then leaves that dataset as it was).
    """
    summary = SynthSummary(output=cfg.output, notes=_frame_notes(settings, specs))
    root = open_group_rw(cfg.output, cfg.storage_options)
    shard_size = int(root.attrs["shard_size"])
    tasks = []
    for split in specs:
        n = int(root[split].attrs["n"])
        done = done_shards(cfg.output, split, cfg.storage_options)
        for si, (a, b) in enumerate(shard_ranges(n, shard_size)):
            if done[si]:
                summary.n_shards_reused += 1
            else:
                tasks.append((split, si, a, b))
    total = sum(b - a for _, _, a, b in tasks)
    threads = None if (cfg.jobs == 1 and cfg.backend == "loky") else 1
    if tasks and settings.mode != SCENE_ONLY:
        _warm_up(settings)
    bar = tqdm(total=total, unit="sample", desc="synth", disable=None if progress is None
               else not progress, file=sys.stderr)
    skipped_by_split: dict[str, list] = {s: list(root[s].attrs.get("skipped", []))
                                         for s in specs}
    try:
        for result in _execute(source, cfg, settings, tasks, threads):
            summary.n_shards += 1
            summary.n_samples += result["n"]
            if result["skipped"]:
                # the parent is the only writer of attributes: safe while workers write data
                skipped_by_split[result["split"]] += result["skipped"]
                root[result["split"]].attrs["skipped"] = skipped_by_split[result["split"]]
                summary.skipped += result["skipped"]
            bar.update(result["n"] + len(result["skipped"]))
    except SourceError as exc:  # a bad input file met after the dataset was created
        hint = _input_error_hint(source, kept or cfg.output, kept is not None)
        if hint is None:
            raise
        raise SourceError(f"{exc}. {hint}") from None
    finally:
        bar.close()
    summary.n_skipped = len(summary.skipped)
    summary.seconds = time.perf_counter() - t0
    mark_complete(cfg.output, storage_options=cfg.storage_options, extra_attrs={
        "last_run": {"samples": summary.n_samples, "seconds": round(summary.seconds, 3),
                     "samples_per_s": round(summary.samples_per_s, 3), "jobs": cfg.jobs,
                     "backend": cfg.backend, "resumed_shards": summary.n_shards_reused},
    })
    return summary


def _warm_up(settings: RenderSettings) -> None:
    """Compile (or load from Numba's cache) the mode's kernels once, in this process
    (:func:`defocuskit.recipe.warm_up`), saying so when it takes long.

    Workers then load the cached machine code instead of each compiling it at the same
    time. Measured on 2 shared CPU cores with an empty ``NUMBA_CACHE_DIR``, each mode in a
    fresh process: see :data:`_COMPILE_TIME`.
    """
    mode = settings.mode
    t0 = time.perf_counter()
    # a cached load takes well under a second: still busy after 2 s means compiling
    notice = threading.Timer(2.0, lambda: print(
        f"compiling the {mode} blur kernels (first run on this machine, "
        f"{_COMPILE_TIME.get(mode, 'a few seconds')}; later runs load them from Numba's "
        "cache) ...", file=sys.stderr, flush=True))
    notice.daemon = True
    notice.start()
    try:
        warm_up(settings)
    finally:
        notice.cancel()
    dt = time.perf_counter() - t0
    if dt > 5:
        print(f"compiled the {mode} blur kernels in {dt:.0f} s (first run on this machine; "
              "later runs load them from Numba's cache)", file=sys.stderr)


def _execute(source: Source, cfg: SynthConfig, settings: RenderSettings, tasks, threads):
    """Yield each task's result as it finishes, on the configured backend."""
    if not tasks:
        return
    if cfg.jobs == 1 and cfg.backend == "loky":
        try:
            for t in tasks:
                yield run_shard(source, cfg, settings, *t, threads)
        finally:
            release_shard_buffers()  # this process goes on after the run
        return
    calls = (delayed(run_shard)(source, cfg, settings, *t, threads) for t in tasks)
    if cfg.backend == "dask":
        from distributed import Client  # optional dependency (dask extra)

        with Client(cfg.scheduler), parallel_config(backend="dask"):
            yield from Parallel(n_jobs=-1, return_as="generator_unordered")(calls)
        return
    yield from Parallel(n_jobs=cfg.jobs, backend="loky",
                        return_as="generator_unordered")(calls)
