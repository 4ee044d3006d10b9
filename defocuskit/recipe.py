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
from typing import Any

import numpy as np

from defocuskit.camera.chromatic import channel_sigmas
from defocuskit.camera.optics import Camera
from defocuskit.errors import ConfigError, SourceError
from defocuskit.psf_spec import parse_psf
from defocuskit.render_settings import (
    OLD_SCENE_ONLY,
    PRESET_MODE,
    RENDER_MODES,
    SCENE_ONLY,
    RenderSettings,
    normalize_render_mode,
    psf_provenance,
)

__all__ = ["PRESET_MODE", "RENDER_MODES", "SCENE_ONLY", "RenderSettings", "draw_camera",
           "draw_cameras", "fill_invalid_depth", "normalize_render_mode", "psf_provenance",
           "render_sample", "valid_depth", "warm_up", "window_margin", "OLD_SCENE_ONLY"]

# the blur engine (defocuskit.blur) loads Numba: imported where a function renders, so that
# resolving a configuration stays cheap


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
