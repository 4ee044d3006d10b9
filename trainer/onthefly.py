"""On-the-fly defocus: the loader renders a fresh defocused input for every sample and epoch.

A synthetic dataset freezes one focus distance per scene; here each DataLoader worker
draws a camera and a focus distance for sample ``i`` of epoch ``e`` from the same camera
presets and focus policies as ``defocuskit synth`` and renders the input with the Numba
engine (:func:`defocuskit.render`, one thread per worker). Only the scene is read (AiF and
depth), so this works on a scene-only dataset (``synth --render-mode scene-only``) and on
a synthetic one alike (its stored defocus is ignored).

Determinism. The crop and flip come from ``(seed, e, i)`` exactly as in
:class:`~trainer.data.DefocusDataset`; the camera, focus and noise from
``default_rng([seed, e, i, TRAIN_STREAM])``. Nothing depends on the worker that renders a
sample or on the order, so 0, 1 or N workers give identical batches and a resumed run
replays exactly. A *fixed* dataset (validation, ``trainer eval``) draws sample ``i`` of
split ``s`` from ``default_rng([render_seed, render_stream, crc32(s), i])``: the same
every epoch and run, recorded in ``config.json``.

Rendering follows the render recipe of defocuskit (:mod:`defocuskit.recipe`), as
``defocuskit synth`` does: the settings are resolved once (:func:`resolve_render_settings`),
each sample's camera is drawn by :func:`defocuskit.draw_camera` and its crop rendered by
:func:`defocuskit.render_sample` with ``window=``: from the whole frame's filled depth and
(layered) sigma levels, with the margin the mode needs, so the crop equals the same crop of
synth's render of the frame bit for bit (without sensor noise). A frame without a valid
depth is an error, as in synth.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from defocuskit import RenderSettings, draw_camera, render_sample
from defocuskit import warm_up as _warm_up
from defocuskit.dataset.store import PER_SAMPLE_SCALARS
from defocuskit.dataset.summary import render_mode_of
from defocuskit.errors import ConfigError, SchemaError, SourceError
from defocuskit.recipe import RENDER_MODES
from trainer.data import DefocusDataset

__all__ = ["OnTheFlyDataset", "resolve_render_settings", "warm_up", "render_levels",
           "settings_dict", "TRAIN_STREAM", "FIXED_STREAM"]

TRAIN_STREAM = 0x0F7F  # separates the training draws from the crop / flip draws
FIXED_STREAM = 0xF1ED  # the fixed (validation, eval) draws: independent of the epoch


def resolve_render_settings(attrs: dict, *, camera: str | None = None,
                            focus: str | None = None, mode: str | None = None,
                            psf: str | None = None, data: Any = "the dataset"
                            ) -> RenderSettings:
    """The settings of on-the-fly rendering: the given values, else the dataset's.

    Defaults come from the dataset's root attributes: ``camera.preset``, ``focus_policy``,
    ``render_mode`` (``engine_mode`` in older datasets; for a scene-only dataset, whose
    render mode is ``"scene-only"``: the preset's render mode, else ``FALLBACK_MODE``,
    ``layered``), ``psf``, and from ``config``
    the CoC model and sigma override (when the camera is the dataset's), ``linear_light``,
    ``noise``, ``dual_pixel``, ``jpeg``, ``diffraction`` and ``chromatic`` (the defocused
    image is rendered as synth's).
    Each setting records whether it came from the options (``"user"``), the dataset
    (``"dataset"``), the preset or the fallback (``RenderSettings.origin``).

    Raises
    ------
    ConfigError
        Neither the options nor the dataset name a camera preset or a focus policy; an
        unknown preset, policy, mode or PSF; a focal-stack policy (one image is rendered).
    """
    cam_attrs = attrs.get("camera") if isinstance(attrs.get("camera"), dict) else {}
    synth_cfg = attrs.get("config") if isinstance(attrs.get("config"), dict) else {}
    stored_camera = cam_attrs.get("preset")
    stored_mode = render_mode_of(attrs)
    stored = {"camera": stored_camera, "focus": attrs.get("focus_policy"),
              "mode": stored_mode if stored_mode in RENDER_MODES else None,
              "psf": attrs.get("psf")}
    given = {"camera": camera, "focus": focus, "mode": mode, "psf": psf}
    missing = [opt for opt, k in (("--camera PRESET", "camera"), ("--focus POLICY", "focus"))
               if not (given[k] or stored[k])]
    if missing:
        raise ConfigError(f"on-the-fly: dataset {data} (render mode {stored_mode!r}) records no "
                          f"camera preset or focus policy to render with; give "
                          f"{' and '.join(missing)} (see `defocuskit cameras`; focus e.g. "
                          "histogram)")
    if mode is not None and mode not in RENDER_MODES:
        raise ConfigError(f"render_mode: expected one of {list(RENDER_MODES)}, got {mode!r}")
    values = {k: given[k] or stored[k] for k in given}
    given_by = {k: "user" if given[k] else "dataset" for k in given if values[k]}
    same_camera = values["camera"] == stored_camera
    if same_camera:
        given_by.update(coc_model="dataset", coc_to_sigma="dataset")
    settings = RenderSettings(
        camera=values["camera"], focus=values["focus"], mode=values["mode"],
        psf=values["psf"] or "gaussian",
        coc_model=synth_cfg.get("coc_model") if same_camera else None,
        coc_to_sigma=synth_cfg.get("coc_to_sigma") if same_camera else None,
        linear_light=bool(synth_cfg.get("linear_light", False)),
        noise=synth_cfg.get("noise"), dual_pixel=bool(synth_cfg.get("dual_pixel", False)),
        jpeg=synth_cfg.get("jpeg"), diffraction=synth_cfg.get("diffraction"),
        chromatic=synth_cfg.get("chromatic"), given_by=given_by)
    if settings.stack_size:
        raise ConfigError(f"on-the-fly: focus policy {settings.focus!r} gives a focal stack; "
                          "the loader renders one image per sample: give --focus fixed:M, "
                          "uniform, histogram or syndof")
    return settings


def warm_up(settings: RenderSettings) -> None:
    """Compile (or load from Numba's cache) the kernels of ``settings`` in this process, so
    forked DataLoader workers inherit them instead of each loading them."""
    _warm_up(settings, threads=1)


class OnTheFlyDataset(DefocusDataset):
    """A :class:`~trainer.data.DefocusDataset` whose input is rendered when it is read.

    Reads ``aif`` and ``depth``; returns the same items (``defocused``, and of ``aif``,
    ``depth``, ``sigma`` and the camera values those in ``arrays``, or, for ``None``,
    ``aif``, ``depth`` and ``sigma`` if a defocus head is trained).

    Parameters
    ----------
    settings : RenderSettings, keyword-only
    fixed : bool, keyword-only
        Draw each sample independently of the epoch (validation, eval).
    render_seed, render_stream : int, keyword-only
        Seed and stream of the fixed draws (``fixed=True``).
    Other parameters: see :class:`~trainer.data.DefocusDataset` (``stack_index`` is not
    used: one image is rendered).

    Raises
    ------
    SchemaError
        The split lacks ``aif`` or ``depth``, or the crop does not fit.
    """

    def __init__(self, path, split: str, *, settings: RenderSettings, fixed: bool = False,
                 render_seed: int = 0, render_stream: int = FIXED_STREAM, arrays=None,
                 **kwargs):
        kwargs.pop("stack_index", None)
        heads = tuple(kwargs.get("heads", ("depth", "aif")))
        if arrays is None:
            arrays = ("aif", "depth", *(("sigma",) if "defocus" in heads else ()))
        self.outputs = tuple(dict.fromkeys(arrays))
        self._rendered = ("defocused", *(n for n in self.outputs
                                         if n == "sigma" or n in PER_SAMPLE_SCALARS))
        super().__init__(path, split, arrays=("aif", "depth"), **kwargs)
        self.settings, self.fixed = settings, bool(fixed)
        self.render_seed, self.render_stream = int(render_seed), int(render_stream)
        self._split_key = zlib.crc32(str(split).encode("utf-8"))
        made = settings.preset.make(image_width=self.image_shape[1],
                                    rng=np.random.default_rng(0),
                                    coc_model=settings.coc_model,
                                    coc_to_sigma=settings.coc_to_sigma, psf=settings.psf)
        self.coc_model = made.coc_model  # for the consistency term
        self.coc_offset_px = float(made.coc_offset_px)

    def _arrays_needed(self, arrays) -> tuple[str, ...]:
        return ("aif", "depth")

    def render_rng(self, i: int) -> np.random.Generator:
        """The generator of sample ``i``'s camera, focus and noise (see the module doc)."""
        if self.fixed:
            return np.random.default_rng([self.render_seed, self.render_stream,
                                          self._split_key, int(i)])
        return np.random.default_rng([self.seed, self.epoch, int(i), TRAIN_STREAM])

    def __getitem__(self, k: int) -> dict:
        if not 0 <= k < len(self):
            raise IndexError(f"sample {k} out of range ({len(self)})")
        i = self.indices[k]
        aif, depth = self._read("aif", i), self._read("depth", i)
        h, w = depth.shape
        window, cropped = (0, 0, h, w), False
        if self.crop is not None and self.resize is None:
            top, left = self._window(self._aug_rng(i))
            window, cropped = (top, left, self.crop, self.crop), True
        rng = self.render_rng(i)
        try:
            camera = draw_camera(depth, self.settings, rng)
        except SourceError as exc:  # no valid depth
            raise SourceError(f"on-the-fly: {self.path} split {self.split!r} sample {i}: "
                              f"{exc}") from None
        noise_seed = int(rng.integers(2**31 - 1))
        r = render_sample(aif, depth, camera, self.settings, window=window, seed=noise_seed,
                          threads=1)
        top, left, ch, cw = window
        cut = (slice(top, top + ch), slice(left, left + cw))
        data = {"defocused": r["defocused"]}
        for n in self.outputs:
            if n in ("aif", "depth"):
                data[n] = (aif if n == "aif" else depth)[cut]
            elif n == "sigma":
                data[n] = r["sigma"]
            elif n in PER_SAMPLE_SCALARS:
                data[n] = np.float32(getattr(camera, n))
            else:
                raise SchemaError(f"on-the-fly: cannot produce array {n!r}")
        return self._finish(i, data, cropped=cropped)


def render_levels(render_mode: str | None) -> dict | None:
    """The layered mode's sigma-level rule (``defocuskit.blur.layered.level_rule``) that a
    run rendering with ``render_mode`` uses, None for the other modes.

    Checkpoints record it, so that resuming a layered on-the-fly run under another rule
    (the code's default changed in between) is refused rather than rendering the rest of
    the run differently.
    """
    if render_mode != "layered":
        return None
    from defocuskit.blur.layered import level_rule  # loads Numba

    return level_rule()


def settings_dict(settings: RenderSettings) -> dict:
    """Plain-JSON form (for logs and reports)."""
    return settings.to_dict()
