"""On-the-fly defocus: the loader renders a fresh defocused input for every sample and epoch.

A synthetic dataset freezes one focus distance per scene; here each DataLoader worker
draws a camera and a focus distance for sample ``i`` of epoch ``e`` from the same camera
presets and focus policies as ``defocuskit synth`` and renders the input with the Numba
engine (:func:`defocuskit.render`, one thread per worker). Only the scene is read (AiF and
depth), so this works on a scene-only dataset (``synth --mode none``) and on a synthetic
one alike (its stored defocus is ignored).

Determinism. The crop and flip come from ``(seed, e, i)`` exactly as in
:class:`~trainer.data.DefocusDataset`; the camera, focus and noise from
``default_rng([seed, e, i, TRAIN_STREAM])``. Nothing depends on the worker that renders a
sample or on the order, so 0, 1 or N workers give identical batches and a resumed run
replays exactly. A *fixed* dataset (validation, ``trainer eval``) draws sample ``i`` of
split ``s`` from ``default_rng([render_seed, render_stream, crc32(s), i])``: the same
every epoch and run, recorded in ``config.json``.

Crop margin. Only a crop is rendered, from a window grown by ``ceil(3 sigma_max)`` pixels
on each side (clamped to the frame), sigma_max being the camera's largest sigma over the
frame's valid depth range (clamped to :data:`defocuskit.blur.SIGMA_MAX_PX`); every PSF
reaches at most that far (Gaussian ``ceil(3 sigma)``, disc ``ceil(2 sigma - 0.5)``), so a
crop pixel sees the same sources as in a render of the whole frame, and the frame's own
border is the same reflect-101 border. Gather and scatter give the whole-frame result to
the last bit; layered chooses its sigma levels from the window's sigma range, so it agrees
only closely (``tests/test_onthefly.py`` states the tolerance). Invalid depth is filled
from the nearest valid pixel of the window (synth uses the whole frame).
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from defocuskit.dataset.store import PER_SAMPLE_SCALARS
from defocuskit.errors import ConfigError, SchemaError
from trainer.data import DefocusDataset

__all__ = ["RenderSettings", "OnTheFlyDataset", "resolve_render_settings", "draw_camera",
           "render_window", "margin_px", "warm_up", "render_levels", "TRAIN_STREAM",
           "FIXED_STREAM"]

TRAIN_STREAM = 0x0F7F  # separates the training draws from the crop / flip draws
FIXED_STREAM = 0xF1ED  # the fixed (validation, eval) draws: independent of the epoch


@dataclass(frozen=True)
class RenderSettings:
    """What the loader renders with: a camera preset, a focus policy, an engine mode, a PSF,
    and the dataset's sigma rule overrides, light and noise options."""

    camera: str  # a preset name, or a custom camera's one-line text (camera_table.camera_text)
    focus: str
    mode: str = "gather"
    psf: str = "gaussian"
    coc_model: str | None = None      # None: the preset's
    coc_to_sigma: float | None = None  # None: the preset's sigma rule
    linear_light: bool = False
    noise: dict | None = None


def resolve_render_settings(attrs: dict, *, camera: str | None = None,
                            focus: str | None = None, mode: str | None = None,
                            psf: str | None = None, data: Any = "the dataset"
                            ) -> RenderSettings:
    """The settings of on-the-fly rendering: the given values, else the dataset's.

    Defaults come from the dataset's root attributes: ``camera.preset``, ``focus_policy``,
    ``engine_mode`` (for a scene-only dataset, whose mode is ``"none"``: the preset's
    render mode, else ``presets.FALLBACK_MODE``, ``layered``), ``psf``, and from ``config``
    the CoC model and sigma override (when the camera is the dataset's), ``linear_light``
    and ``noise``.

    Raises
    ------
    ConfigError
        Neither the options nor the dataset name a camera preset or a focus policy; an
        unknown preset, policy, mode or PSF; a focal-stack policy (one image is rendered).
    """
    from defocuskit.blur import MODES, PSFS
    from defocuskit.camera.focus import make_focus_policy
    from defocuskit.camera.presets import FALLBACK_MODE, get_preset

    cam_attrs = attrs.get("camera") if isinstance(attrs.get("camera"), dict) else {}
    synth_cfg = attrs.get("config") if isinstance(attrs.get("config"), dict) else {}
    stored_camera = cam_attrs.get("preset")
    camera = camera or stored_camera
    focus = focus or attrs.get("focus_policy")
    missing = [opt for opt, v in (("--camera PRESET", camera), ("--focus POLICY", focus))
               if not v]
    if missing:
        raise ConfigError(f"on-the-fly: dataset {data} (engine mode "
                          f"{attrs.get('engine_mode')!r}) records no camera preset or focus "
                          f"policy to render with; give {' and '.join(missing)} (see "
                          "`defocuskit cameras`; focus e.g. histogram)")
    preset = get_preset(camera)
    policy = make_focus_policy(focus)
    if policy.k != 1 or focus.strip().lower().startswith("stack"):
        raise ConfigError(f"on-the-fly: focus policy {focus!r} gives a focal stack; the loader "
                          "renders one image per sample: give --focus fixed:M, uniform, "
                          "histogram or syndof")
    engine = attrs.get("engine_mode")
    mode = mode or (engine if engine in MODES else getattr(preset, "mode", None) or FALLBACK_MODE)
    psf = psf or attrs.get("psf") or "gaussian"
    if mode not in MODES:
        raise ConfigError(f"render_mode: expected one of {list(MODES)}, got {mode!r}")
    if psf not in PSFS:
        raise ConfigError(f"psf: expected one of {list(PSFS)}, got {psf!r}")
    same_camera = camera == stored_camera
    return RenderSettings(camera=camera, focus=focus, mode=mode, psf=psf,
                          coc_model=synth_cfg.get("coc_model") if same_camera else None,
                          coc_to_sigma=synth_cfg.get("coc_to_sigma") if same_camera else None,
                          linear_light=bool(synth_cfg.get("linear_light", False)),
                          noise=synth_cfg.get("noise"))


def draw_camera(depth_m: np.ndarray, settings: RenderSettings, rng: np.random.Generator):
    """The camera of one draw, focused: as ``defocuskit synth`` draws it for a sample.

    ``depth_m`` is the whole (H, W) frame in metres (its width sets the pixel pitch, its
    valid depths feed the focus policy and a preset's per-sample aperture rule).
    """
    from defocuskit.camera.focus import make_focus_policy
    from defocuskit.camera.presets import get_preset

    preset = get_preset(settings.camera)
    camera = preset.make(image_width=depth_m.shape[1], rng=rng, coc_model=settings.coc_model,
                         coc_to_sigma=settings.coc_to_sigma)
    distances = make_focus_policy(settings.focus).draw(depth_m, rng)
    camera = preset.adapt(camera, depth_m, focus_m=distances)
    return camera.with_focus(float(distances[0]))


def margin_px(camera, depth_m: np.ndarray) -> int:
    """``ceil(3 sigma_max)``: how far (pixels) any PSF of this camera reaches on this frame.

    sigma is monotonic in depth on each side of the focus plane, so its largest value over
    the valid depths is at the nearest or the farthest one.
    """
    from defocuskit.blur import SIGMA_MAX_PX
    from defocuskit.blur._common import kernel_radius

    d = depth_m[np.isfinite(depth_m) & (depth_m > 0)]
    if d.size == 0:
        return 0
    s = np.asarray(camera.sigma_px(np.array([d.min(), d.max()], np.float64)))
    s = s[np.isfinite(s)]
    return kernel_radius(min(float(s.max()), SIGMA_MAX_PX)) if s.size else 0


def _fill_depth(depth: np.ndarray, fallback_m: float) -> np.ndarray:
    from defocuskit.pipeline.synth import fill_invalid_depth

    valid = np.isfinite(depth) & (depth > 0)
    if valid.all():
        return depth
    if not valid.any():
        return np.full_like(depth, fallback_m)
    return fill_invalid_depth(np.where(valid, depth, np.nan).astype(depth.dtype))


def render_window(aif: np.ndarray, depth_m: np.ndarray, camera, window, settings:
                  RenderSettings, *, noise_seed: int = 0, threads: int | None = 1
                  ) -> dict[str, np.ndarray]:
    """Render the crop ``window = (top, left, height, width)`` of a frame.

    The window is grown by :func:`margin_px` on each side (clamped to the frame), rendered
    with :func:`defocuskit.render`, and cut back.

    Parameters
    ----------
    aif : (H, W, 3) uint8 ndarray
    depth_m : (H, W) float32 ndarray, metres, NaN = invalid
    camera : defocuskit.Camera
        Focused (its ``focus_distance`` is the focus).
    window : (int, int, int, int)
    settings : RenderSettings
    noise_seed : int
        Seed of the sensor noise, if the settings have noise.

    Returns
    -------
    dict
        ``defocused`` (h, w, 3) uint8, ``sigma`` (h, w) float32 pixels (NaN where the depth
        is invalid) and ``margin`` (the margin used, pixels).
    """
    from defocuskit.blur import render

    top, left, h, w = (int(v) for v in window)
    H, W = depth_m.shape
    m = margin_px(camera, depth_m)
    y0, x0 = max(top - m, 0), max(left - m, 0)
    y1, x1 = min(top + h + m, H), min(left + w + m, W)
    d = depth_m[y0:y1, x0:x1]
    render_depth = _fill_depth(d, camera.focus_distance)
    sigma = np.asarray(camera.sigma_px(render_depth), dtype=np.float32)
    out = render(np.ascontiguousarray(aif[y0:y1, x0:x1]), sigma, mode=settings.mode,
                 psf=settings.psf, depth=render_depth, linear_light=settings.linear_light,
                 noise=settings.noise, seed=noise_seed, threads=threads,
                 focus_distance=camera.focus_distance)
    inner = (slice(top - y0, top - y0 + h), slice(left - x0, left - x0 + w))
    sigma = np.where(np.isfinite(d) & (d > 0), sigma, np.float32(np.nan))[inner]
    return {"defocused": out[inner], "sigma": np.ascontiguousarray(sigma), "margin": m}


def warm_up(settings: RenderSettings) -> None:
    """Compile (or load from Numba's cache) the kernels of ``settings`` in this process, so
    forked DataLoader workers inherit them instead of each loading them."""
    from defocuskit.blur import render

    img = np.zeros((8, 8, 3), np.uint8)
    render(img, np.ones((8, 8), np.float32), mode=settings.mode, psf=settings.psf,
           depth=np.ones((8, 8), np.float32), focus_distance=1.0, threads=1)


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
        from defocuskit.camera.presets import get_preset

        made = get_preset(settings.camera).make(image_width=self.image_shape[1],
                                                rng=np.random.default_rng(0),
                                                coc_model=settings.coc_model,
                                                coc_to_sigma=settings.coc_to_sigma)
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
        camera = draw_camera(depth, self.settings, rng)
        noise_seed = int(rng.integers(2**31 - 1))
        r = render_window(aif, depth, camera, window, self.settings, noise_seed=noise_seed)
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
    from defocuskit.blur.layered import level_rule

    return level_rule()


def settings_dict(settings: RenderSettings) -> dict:
    """Plain-JSON form (for logs and reports)."""
    return dataclasses.asdict(settings)
