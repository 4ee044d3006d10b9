"""Planning a synth run before anything is written: frame-size checks, the splits' layout
and the input's identity.

:func:`check_frame_sizes` refuses mixed frame sizes from the file headers (readers that can
tell them cheaply); :func:`check_cameras` builds the camera of each split's first sample
(a focus nearer than the focal length, a sigma that does not fit float32);
:func:`plan_splits` decides what each split of the new dataset holds;
:func:`input_identity` is what a dataset records of its input and
:func:`check_input_unchanged` what a resume compares.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from defocuskit.camera.focus import sample_rng
from defocuskit.dataset.output import is_remote, sibling_names
from defocuskit.dataset.store import SplitSpec
from defocuskit.errors import ConfigError, DefocusKitError, SourceError
from defocuskit.pipeline.config import SynthConfig
from defocuskit.pipeline.shard import prepare_sample
from defocuskit.recipe import SCENE_ONLY, RenderSettings, draw_cameras, fill_invalid_depth
from defocuskit.sources import Sample, Source

__all__ = ["check_cameras", "check_frame_sizes", "first_readable_sample", "plan_splits",
           "input_identity", "check_input_unchanged"]


def check_frame_sizes(source: Source, cfg: SynthConfig) -> None:
    """Mixed frame sizes, found from the file headers before anything is written.

    For readers that can tell sizes cheaply (``check_frame_sizes``: the folder reader):
    every image of a split must have one size unless ``resize`` is given, and each depth
    map its image's size (unless ``on_error = "skip"``, which skips such a sample later,
    as it does an unreadable file).
    """
    check = getattr(source, "check_frame_sizes", None)
    if check is None:
        return
    for split in cfg.splits or source.splits():
        if split in source.splits():  # an unknown split is named by plan_splits
            check(split, cfg.limit, same_size=cfg.resize is None,
                  strict=cfg.on_error != "skip")


def plan_splits(source: Source, cfg: SynthConfig,
                settings: RenderSettings) -> dict[str, SplitSpec]:
    """What each split of the new dataset holds: its sample ids, frame size (from its first
    readable sample) and arrays (focal stack, sigma, defocused: by the mode and whether the
    source brings real defocused images). An unknown split is a ConfigError, a source
    without samples a SourceError."""
    splits = cfg.splits or source.splits()
    specs = {}
    for split in splits:
        if split not in source.splits():
            raise ConfigError(f"source {cfg.source!r} has no split {split!r}; it has "
                              f"{source.splits()}")
        ids = source.sample_ids(split)[: cfg.limit]
        if not ids:
            continue
        first = first_readable_sample(source, split, len(ids), cfg)
        h, w = first.aif.shape[:2]
        k = settings.stack_size
        real = first.defocused is not None
        scene = cfg.render_mode == SCENE_ONLY
        specs[split] = SplitSpec(n=len(ids), height=h, width=w, sample_ids=tuple(ids),
                                 focal_stack=0 if (real or scene) else k,
                                 has_sigma=not (real or scene), has_defocused=not scene,
                                 dual_pixel=bool(settings.dual_pixel) and not (real or scene),
                                 sigma_channels=3 if settings.chromatic else 0)
    if not specs:
        raise SourceError(f"source {cfg.source!r} at {cfg.input!r} has no samples")
    return specs


def first_readable_sample(source: Source, split: str, n: int, cfg: SynthConfig) -> Sample:
    """The first of the split's ``n`` samples, prepared; with ``on_error = "skip"`` the
    first one that reads, so that a bad first file is skipped like any other (the run's
    frame size is taken from it). Raises the first sample's error otherwise, or when none
    of the ``n`` reads."""
    first_error = None
    for i in range(n):
        try:
            return prepare_sample(source.read(split, i), cfg)
        except DefocusKitError as exc:
            if cfg.on_error != "skip":
                raise
            first_error = first_error or exc
    raise first_error if first_error is not None else SourceError(f"split {split!r} is empty")


def check_cameras(source: Source, cfg: SynthConfig, settings: RenderSettings) -> None:
    """Build the cameras of each split's first sample and their sigma maps, as the render
    will, before anything is created: a focus distance that is not beyond the focal
    length (a long lens, a near ``fixed:`` focus) or a sigma map beyond float32 is refused
    here instead of in the first shard. Nothing to check for a scene-only run.

    Raises
    ------
    ConfigError
        One line naming the sample and what is wrong, and that nothing was created.
    """
    if settings.mode == SCENE_ONLY:
        return
    for split in cfg.splits or source.splits():
        if split not in source.splits():  # named by plan_splits
            continue
        ids = source.sample_ids(split)[: cfg.limit]
        if not ids:
            continue
        sample = first_readable_sample(source, split, len(ids), cfg)
        if sample.defocused is not None:  # a real capture: no camera of ours
            continue
        index = ids.index(sample.sample_id)
        where = f"{split}/{sample.sample_id} (index {index})"
        try:
            cameras = draw_cameras(sample.depth, settings, sample_rng(cfg.seed, split, index))
            depth = fill_invalid_depth(sample.depth)
        except SourceError as exc:  # no valid depth: skipped later under on_error = skip
            if cfg.on_error == "skip":
                continue
            raise SourceError(f"{where}: {exc}; nothing was created") from None
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}; nothing was created") from None
        for cam in cameras:
            with np.errstate(over="ignore", invalid="ignore"):
                sigma = np.asarray(cam.sigma_px(depth), dtype=np.float32)
            if not (np.isfinite(sigma).all() and np.isfinite(np.float32(cam.focus_distance))):
                raise ConfigError(f"{where}: the camera (focus {cam.focus_distance:g} m, sigma "
                                  f"rule {cam.sigma_rule()}) gives sigma maps beyond float32; "
                                  "lower coc_to_sigma or the aperture; nothing was created")


def input_identity(source: Source, cfg: SynthConfig, *, full: bool = False) -> dict[str, Any]:
    """The input's identity (:meth:`Source.identity`), leaving out the output and its
    hidden siblings when the dataset is written inside its own input folder."""
    exclude = () if is_remote(cfg.output) else (sibling_names(cfg.output),)
    return source.identity(exclude=exclude, full=full)


def check_input_unchanged(cfg: SynthConfig, source: Source, stored: dict,
                           strict_resume: bool) -> None:
    """Refuse a resume whose input differs from the one the dataset was started with.

    Compared: the size, ``sha256`` (a folder's listing of paths, sizes and times; a file's
    first 16 MiB), ``sample_sha256`` (each file's first and last KiB) and, for a dataset
    started with ``strict_resume``, ``full_sha256`` (every byte, read again now). A key
    the dataset did not record (an older version) is not compared.
    """
    if strict_resume and "full_sha256" not in stored:
        raise ConfigError(f"{cfg.output}: --strict-resume needs the full input hash, which "
                          "is recorded only when the dataset is started with "
                          "--strict-resume; resume without it (size, listing and the head "
                          "and tail of each file are checked) or start again with "
                          "--overwrite --strict-resume")
    now = input_identity(source, cfg, full="full_sha256" in stored)
    keys = ("size", "sha256", "sample_sha256", "full_sha256")
    changed = [k for k in keys if k in stored and stored[k] != now.get(k)]
    if changed:
        raise ConfigError(f"{cfg.output}: the input {cfg.input!r} changed since the dataset "
                          f"was started ({', '.join(changed)} differ: {stored.get('hashed')}); "
                          "resuming would mix two inputs. Restore the input or start again "
                          "with --overwrite")
