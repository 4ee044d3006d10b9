"""The render recipe: how one sample's defocused image is made from its AiF and depth.

``defocuskit synth`` (:mod:`defocuskit.pipeline.shard`) and the trainer's on-the-fly loader
(``trainer.onthefly``) both follow it, through these names only:

1. :class:`RenderSettings`, resolved once per run: the camera (a named preset or a custom
   camera table, resolved to its :class:`~defocuskit.camera.named.CameraPreset`), the focus
   policy, the render mode, the PSF, the CoC model and sigma rule, light and noise; each
   setting a preset can supply records where its value came from (:attr:`origin`).
2. :func:`draw_cameras` / :func:`draw_camera`: the camera of one draw, from a generator.
3. :func:`render_sample`: sigma map and blur of the whole frame or of a window of it.

Invalid depth, everywhere: NaN, inf and values <= 0 (:func:`valid_depth`). Such pixels are
rendered as if they had the depth of the nearest valid pixel of the *whole frame*
(:func:`fill_invalid_depth`), and their stored sigma is NaN. A frame without a valid depth
is a :class:`~defocuskit.errors.SourceError` (synth's ``--on-error skip`` skips it).

A window is rendered from the frame grown by :func:`window_margin` on each side (clamped
to the frame): every pixel of the window then sees the same sources, the same filled depth
and, for ``layered``, the same sigma levels as in a render of the whole frame, so the
window equals that crop of the whole render bit for bit (without sensor noise, which is
drawn per rendered pixel).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from defocuskit.camera.chromatic import channel_sigmas, parse_chromatic
from defocuskit.camera.focus import make_focus_policy
from defocuskit.camera.named import FALLBACK_FOCUS, FALLBACK_MODE, CameraPreset
from defocuskit.camera.optics import Camera
from defocuskit.camera.presets import get_preset
from defocuskit.camera.table import camera_table
from defocuskit.errors import ConfigError, SourceError
from defocuskit.psf_spec import parse_psf

__all__ = ["PRESET_MODE", "RENDER_MODES", "SCENE_ONLY", "RenderSettings", "draw_camera",
           "draw_cameras", "fill_invalid_depth", "normalize_render_mode", "psf_provenance",
           "render_sample", "valid_depth", "warm_up", "window_margin"]

# the blur engine (defocuskit.blur) loads Numba: imported where a function renders, so that
# resolving a configuration stays cheap
RENDER_MODES = ("gather", "scatter", "layered")  # defocuskit.blur.MODES
SCENE_ONLY = "scene-only"  # the render mode of a run that renders nothing (scene only)
PRESET_MODE = None  # a render mode or focus not given: the camera preset's, else the fallback
OLD_SCENE_ONLY = "none"  # SCENE_ONLY's spelling in older datasets and config files


def normalize_render_mode(value: str | None) -> str | None:
    """A render mode as given (CLI, config file, a dataset's attributes), with the older
    spelling ``"none"`` of :data:`SCENE_ONLY` read as ``SCENE_ONLY``."""
    return SCENE_ONLY if value == OLD_SCENE_ONLY else value


@dataclass(frozen=True)
class RenderSettings:
    """How samples are rendered, resolved once per run.

    Parameters
    ----------
    camera : str or dict
        A preset name, a camera table or its one-line text (``defocuskit cameras``).
    focus, mode : str or None
        Focus policy and render mode (:data:`RENDER_MODES`, or :data:`SCENE_ONLY`); None
        (:data:`PRESET_MODE`): the camera preset's, else :data:`FALLBACK_FOCUS` /
        :data:`FALLBACK_MODE`.
    psf : str
        ``gaussian``, ``disc``, ``polygon:N[,ROTATION]`` or ``bank:PATH``
        (:mod:`defocuskit.psf_spec`); the last two render with gather or scatter only.
    coc_model : str or None
        ``exact`` or ``paper``; None: the preset's.
    coc_to_sigma : float or None
        Replaces the preset's sigma rule by ``sigma = K * CoC``; None: the preset's rule.
    linear_light : bool
    noise : dict or None
        Sensor noise parameters (:class:`defocuskit.blur.SensorNoise`), None: off.
    dual_pixel : bool
        Also render the left and right half-aperture views (gather or scatter, no noise,
        no linear light).
    jpeg : int or None
        JPEG quality 1..100 of a round trip of every rendered image; None: off.
    diffraction : float or None
        Wavelength (nm) of the diffraction floor (:attr:`Camera.diffraction_nm`), 0: off;
        None: the preset's (on only for a preset whose source models it), else off.
    chromatic : str or sequence of 3 floats, optional
        Longitudinal chromatic aberration: the R, G, B focal-length offsets in mm
        (:mod:`defocuskit.camera.chromatic`); each channel is rendered with its own sigma,
        and the sigma map gets a channel axis (H, W, 3). None: off.
    given_by : dict, optional
        Who gave each non-None setting (provenance), by name; default ``"user"``.

    Attributes set on construction: ``preset`` (the resolved CameraPreset), ``policy`` (the
    focus policy object), ``focus``, ``mode`` and ``coc_model`` resolved, and ``origin``:
    for ``focus``, ``mode``, ``coc_model``, ``diffraction`` and ``sigma_rule`` the value used
    and where it came from (``given_by``'s word, ``"preset"``, ``"camera"``: a custom
    camera's table, or ``"fallback"``).

    Raises
    ------
    ConfigError
        An unknown camera, focus policy, mode or PSF.
    """

    camera: str | dict
    focus: str | None = None
    mode: str | None = None
    psf: str = "gaussian"
    coc_model: str | None = None
    coc_to_sigma: float | None = None
    linear_light: bool = False
    noise: dict | None = None
    dual_pixel: bool = False
    jpeg: int | None = None
    diffraction: float | None = None
    chromatic: Any = None
    given_by: dict = field(default_factory=dict, compare=False, repr=False)
    preset: CameraPreset = field(init=False, compare=False, repr=False)
    policy: Any = field(init=False, compare=False, repr=False)
    origin: dict = field(init=False, compare=False, repr=False)
    requested: dict = field(init=False, compare=False, repr=False)  # the values given

    def __post_init__(self):
        object.__setattr__(self, "requested", {f.name: getattr(self, f.name)
                                               for f in dataclasses.fields(self) if f.init})
        preset = get_preset(self.camera)
        origin = _origins(self, preset)
        resolved = {k: origin[k]["value"] for k in ("focus", "mode", "coc_model")}
        if resolved["mode"] not in (*RENDER_MODES, SCENE_ONLY):
            raise ConfigError(f"unknown render mode {resolved['mode']!r}; choose one of "
                              f"{[*RENDER_MODES, SCENE_ONLY]}")
        _check_render_options(self, resolved["mode"])
        object.__setattr__(self, "chromatic", parse_chromatic(self.chromatic))
        for name, value in (*resolved.items(), ("preset", preset), ("origin", origin),
                            ("policy", make_focus_policy(resolved["focus"]))):
            object.__setattr__(self, name, value)

    def __reduce__(self):  # for worker processes: rebuilt (and resolved) from the given values
        return (_rebuild, (self.requested,))

    @property
    def stack_size(self) -> int:
        """K for a focal-stack policy, 0 for one image per sample."""
        k = self.policy.k
        return k if (k > 1 or self.focus.strip().lower().startswith("stack")) else 0

    def to_dict(self) -> dict:
        """Plain JSON (for logs, reports and provenance)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("preset", "policy", "given_by", "requested")}


def _check_render_options(s: RenderSettings, mode: str) -> None:
    """The PSF and the view options, against each other and the mode (ConfigError)."""
    spec = parse_psf(s.psf)
    table = s.dual_pixel or not spec.closed_form
    what = "--dual-pixel" if s.dual_pixel else f"--psf {s.psf}"
    if table and mode == "layered":
        raise ConfigError(f"{what} renders with mode gather or scatter (a kernel per pixel); "
                          "the layered mode takes the gaussian or disc psf only: give "
                          "--mode gather or --mode scatter")
    if s.dual_pixel and (s.noise is not None or s.linear_light):
        raise ConfigError("--dual-pixel does not take --noise or --linear-light (the two "
                          "views would no longer sum to the full image)")
    if s.jpeg is not None and (isinstance(s.jpeg, bool) or not isinstance(s.jpeg, int)
                               or not 1 <= s.jpeg <= 100):
        raise ConfigError(f"jpeg quality must be an integer 1..100, got {s.jpeg!r}")
    if spec.kind == "bank":
        from defocuskit.blur.shapes import load_bank  # loads Numba: only for a bank

        load_bank(spec.path)


def psf_provenance(psf: str) -> dict[str, Any]:
    """What a dataset records of its PSF: the name, its kind, a polygon's blades and
    rotation, a bank's file hash, kernel count and CoC range."""
    spec = parse_psf(psf)
    out: dict[str, Any] = {"name": str(psf), "kind": spec.kind}
    if spec.kind == "polygon":
        out.update(blades=spec.blades, rotation_deg=spec.rotation_deg)
    if spec.kind == "bank":
        from defocuskit.blur.shapes import load_bank  # loads Numba

        out["bank"] = load_bank(spec.path).provenance()
    return out


def _rebuild(given: dict) -> RenderSettings:
    return RenderSettings(**given)


def _origins(s: RenderSettings, preset: CameraPreset) -> dict[str, dict[str, Any]]:
    """The fallback chain of the settings a preset can supply: given, else the preset's
    (its source's, or a custom camera's table), else the fallback."""
    table = s.camera if isinstance(s.camera, dict) else {}
    if isinstance(s.camera, str) and ("=" in s.camera or "," in s.camera):
        table = camera_table(s.camera)
        table = table if isinstance(table, dict) else {}
    named = not table or "preset" in table

    def origin(*keys):
        if any(k in table for k in keys):
            return "camera"
        return "preset" if named else "fallback"

    def pick(key, given, preset_value, fallback):
        if given is not None:
            return {"value": given, "from": s.given_by.get(key, "user")}
        if preset_value is not None:
            return {"value": preset_value, "from": origin(key)}
        return {"value": fallback, "from": "fallback"}

    return {
        "focus": pick("focus", s.focus, preset.focus, FALLBACK_FOCUS),
        "mode": pick("mode", s.mode, preset.mode, FALLBACK_MODE),
        "coc_model": pick("coc_model", s.coc_model, preset.coc_model, None),
        "diffraction": pick("diffraction", s.diffraction, preset.diffraction_nm, 0.0),
        "sigma_rule": {"value": preset.sigma_rule(s.coc_to_sigma,
                                                  psf=parse_psf(s.psf).family),
                       "from": s.given_by.get("coc_to_sigma", "user")
                       if s.coc_to_sigma is not None else
                       origin("coc_to_sigma", "coc_offset_px", "coc_step_px")},
    }


def valid_depth(depth: np.ndarray) -> np.ndarray:
    """Where the depth is valid: finite and > 0 (bool, the depth's shape)."""
    depth = np.asarray(depth)
    with np.errstate(invalid="ignore"):
        return np.isfinite(depth) & (depth > 0)


def fill_invalid_depth(depth: np.ndarray) -> np.ndarray:
    """The depth with each invalid pixel (NaN, inf, <= 0) replaced by the depth of its
    nearest valid pixel (for rendering only); ``depth`` itself when all are valid.

    Raises
    ------
    SourceError
        If no pixel is valid.
    """
    invalid = ~valid_depth(depth)
    if not invalid.any():
        return depth
    if invalid.all():
        raise SourceError("depth map has no valid pixel (all NaN, inf or <= 0)")
    from scipy import ndimage  # about 0.7 s to import: only where a depth has holes

    idx = ndimage.distance_transform_edt(invalid, return_distances=False, return_indices=True)
    return depth[idx[0], idx[1]]


def draw_cameras(depth: np.ndarray, settings: RenderSettings,
                 rng: np.random.Generator) -> list[Camera]:
    """The focused camera of each image of one sample (one, or one per focal-stack
    distance), drawn from ``rng``: the preset's camera for the frame's width, then the
    focus distances, then the preset's per-sample rule (SYNDOF's aperture: one for all
    the distances of a stack).

    Raises
    ------
    SourceError
        If the depth has no valid pixel.
    ConfigError
        If a focus distance is not beyond the focal length.
    """
    if not valid_depth(depth).any():
        raise SourceError("depth map has no valid pixel (all NaN, inf or <= 0)")
    preset = settings.preset
    camera = preset.make(image_width=depth.shape[1], rng=rng, coc_model=settings.coc_model,
                         coc_to_sigma=settings.coc_to_sigma,
                         psf=parse_psf(settings.psf).family)
    camera = dataclasses.replace(camera,
                                 diffraction_nm=float(settings.origin["diffraction"]["value"]))
    distances = settings.policy.draw(depth, rng)
    camera = preset.adapt(camera, depth, focus_m=distances)
    return [camera.with_focus(float(s)) for s in distances]


def draw_camera(depth: np.ndarray, settings: RenderSettings,
                rng: np.random.Generator) -> Camera:
    """The camera of a one-image draw (:func:`draw_cameras`); a focal-stack policy is a
    ConfigError."""
    if settings.stack_size:
        raise ConfigError(f"focus policy {settings.focus!r} gives a focal stack; draw_camera "
                          "draws one camera (use draw_cameras)")
    return draw_cameras(depth, settings, rng)[0]


def window_margin(camera: Camera, filled_depth: np.ndarray, settings: RenderSettings) -> int:
    """How far (pixels) the render of a pixel depends on the frame around it.

    ``filled_depth`` is the whole frame's depth after :func:`fill_invalid_depth`. Gather
    and scatter: the support of the largest sigma (sigma is monotonic in depth on each side
    of the focus plane, so it is largest at the nearest or farthest depth). Layered: the
    reach of its levels over the whole frame (:func:`defocuskit.blur.layered.window_reach`);
    with the disc PSF, the whole frame.
    """
    from defocuskit.blur import SIGMA_MAX_PX, check_sigma, kernel_radius  # loads Numba
    from defocuskit.blur.layered import FrameLevels, window_reach  # loads Numba

    spec = parse_psf(settings.psf)
    if settings.mode == "layered" and settings.psf == "disc":
        # the layers' disc blur is cv2.filter2D, which convolves by DFT for kernels of about
        # 11 x 11 and more: its rounding then depends on the size of the image blurred, so
        # only the whole frame gives the whole frame's result
        return max(filled_depth.shape)
    ends = np.array([filled_depth.min(), filled_depth.max()], np.float64)
    reach = 0  # with chromatic aberration: the farthest of the three channels'
    for s, fd in channel_sigmas(camera, ends, settings.chromatic):
        if settings.dual_pixel or not spec.closed_form:  # the kernel table's largest kernel
            from defocuskit.blur.table import build_table
            from defocuskit.blur.views import signed_sigma

            s = np.minimum(np.nan_to_num(s), SIGMA_MAX_PX).astype(np.float32)
            reach = max(reach, int(build_table(spec, signed_sigma(s, ends, fd)).radius.max()))
        elif settings.mode == "layered":
            whole = channel_sigmas(camera, filled_depth, settings.chromatic)
            sigma = [check_sigma(w.astype(np.float32), filled_depth.shape) for w, _ in whole]
            levels = [FrameLevels.of(g, filled_depth, f).levels for g, (_, f) in zip(
                sigma, whole, strict=True)]
            return max(window_reach(float(lv[0]), float(lv[-1]), settings.psf)
                       for lv in levels)
        else:
            s = s[np.isfinite(s)]
            reach = max(reach, kernel_radius(min(float(s.max()), SIGMA_MAX_PX)) if s.size else 0)
    return reach


def render_sample(aif: np.ndarray, depth: np.ndarray, camera: Camera,
                  settings: RenderSettings, *, window=None, seed=None,
                  threads: int | None = None) -> dict[str, Any]:
    """Render one image of a sample: the whole frame, or the crop ``window``.

    Parameters
    ----------
    aif : (H, W, 3) uint8 or float32 ndarray
    depth : (H, W) float ndarray, metres; NaN, inf and <= 0 are invalid
    camera : Camera
        Focused (:func:`draw_camera`).
    settings : RenderSettings
    window : (top, left, height, width), optional
        Render only this crop (from the frame grown by :func:`window_margin`).
    seed : int, optional
        Seed of the sensor noise (needed when ``settings.noise`` is set).
    threads : int, optional
        Threads of the blur kernels (None: Numba's count).

    Returns
    -------
    dict
        ``defocused`` (h, w, 3), ``sigma`` (h, w) float32 pixels, NaN where the depth is
        invalid ((h, w, 3), one per channel, with ``settings.chromatic``), and ``margin``
        (pixels rendered around the window; 0 for the frame);
        with ``settings.dual_pixel`` also ``defocused_left`` and ``defocused_right``, the
        half-aperture views of :func:`defocuskit.render` at twice their light (the
        exposure of the full image).

    Raises
    ------
    SourceError
        If the depth has no valid pixel.
    """
    from defocuskit.blur import check_sigma, render  # loads Numba
    from defocuskit.blur.layered import FrameLevels

    if settings.mode not in RENDER_MODES:
        raise ConfigError(f"render_sample: mode {settings.mode!r} renders nothing; choose "
                          f"one of {list(RENDER_MODES)}")
    H, W = depth.shape
    filled = fill_invalid_depth(depth)
    top, left, h, w = (0, 0, H, W) if window is None else (int(v) for v in window)
    if not (min(top, left) >= 0 and min(h, w) > 0 and top + h <= H and left + w <= W):
        raise ConfigError(f"render_sample: window {window} does not fit the {H}x{W} frame")
    m = 0 if window is None else window_margin(camera, filled, settings)
    y0, x0, y1, x1 = max(top - m, 0), max(left - m, 0), min(top + h + m, H), min(left + w + m, W)
    frame = (y0, x0, y1, x1) == (0, 0, H, W)
    d = filled[y0:y1, x0:x1]
    channels = channel_sigmas(camera, d, settings.chromatic)
    sigma = np.asarray(np.stack([c[0] for c in channels], axis=-1) if settings.chromatic
                       else channels[0][0], dtype=np.float32)
    focus = [c[1] for c in channels] if settings.chromatic else camera.focus_distance
    levels = None
    if settings.mode == "layered" and not frame:  # the whole frame's levels
        levels = [FrameLevels.of(check_sigma(w.astype(np.float32), (H, W)), filled, f)
                  for w, f in channel_sigmas(camera, filled, settings.chromatic)]
        levels = levels if settings.chromatic else levels[0]
    crop = np.ascontiguousarray(aif[y0:y1, x0:x1])
    if settings.dual_pixel and crop.dtype == np.uint8:  # the views are scaled before rounding
        crop = crop.astype(np.float32) / np.float32(255.0)
    out = render(crop, sigma, mode=settings.mode,
                 psf=settings.psf, depth=d, linear_light=settings.linear_light,
                 noise=settings.noise, seed=seed, threads=threads,
                 focus_distance=focus, frame_levels=levels,
                 frame_origin=(y0, x0), dual_pixel=settings.dual_pixel,
                 jpeg=None if settings.dual_pixel else settings.jpeg)
    inner = (slice(top - y0, top - y0 + h), slice(left - x0, left - x0 + w))
    valid = valid_depth(depth[y0:y1, x0:x1])
    sigma = np.where(valid[..., None] if settings.chromatic else valid, sigma, np.float32(np.nan))
    images = {"defocused": out}
    if settings.dual_pixel:
        images = _dual_pixel_images(out, aif.dtype, settings.jpeg)
    result = {k: np.ascontiguousarray(v[inner]) for k, v in images.items()}
    return {**result, "sigma": np.ascontiguousarray(sigma[inner]), "margin": m}


def _dual_pixel_images(out, dtype, jpeg) -> dict[str, np.ndarray]:
    """The full image and the two views of a dual-pixel render, in ``dtype``; each view at
    twice its light, i.e. the exposure of the full image (``(left + right) / 2`` equals
    the full image to within rounding), then each through the JPEG round trip."""
    from defocuskit.blur.views import finish_image  # loads Numba (and OpenCV for JPEG)

    images = {"defocused": out.defocused, "defocused_left": 2.0 * out.left,
              "defocused_right": 2.0 * out.right}
    return {k: finish_image(v, dtype, False, None, None, jpeg) for k, v in images.items()}


def warm_up(settings: RenderSettings, threads: int | None = None) -> None:
    """Compile (or load from Numba's cache) the kernels of ``settings`` in this process.

    The image has a depth ramp with blur from 6 px in front of the focus plane to 6 px
    behind it, so that every kernel a real frame uses is compiled here (a flat image would
    leave ``layered``'s per-level blur to the first real sample); worker processes then
    load the cached machine code (or inherit it, when forked).
    """
    from defocuskit.blur import render  # loads Numba

    if settings.mode not in RENDER_MODES:
        return
    h, w = 24, 32
    depth = np.linspace(0.5, 4.0, h * w, dtype=np.float32).reshape(h, w)
    sigma = np.abs(np.linspace(-6.0, 6.0, h * w, dtype=np.float32)).reshape(h, w)
    render(np.zeros((h, w, 3), np.uint8), sigma, mode=settings.mode, psf=settings.psf,
           depth=depth, focus_distance=2.25, threads=threads, dual_pixel=settings.dual_pixel)
