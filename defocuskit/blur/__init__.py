"""The blur engine: all-in-focus image + per-pixel sigma (pixels) -> defocused image.

Its entry point :func:`render` is re-exported as ``defocuskit.render`` (the public name);
this subpackage is called ``blur`` so that the package attribute ``render`` is always the
function, never a module.

Modes (:data:`MODES`); all three agree for a constant sigma and differ at depth edges
(``docs/camera_model.md``, "At an occlusion edge"):

``gather``
    every output pixel averages the image with its own sigma's PSF (Numba kernel). Exact
    for a constant sigma and the reference for the blur arithmetic, but no occlusion: a
    blurred foreground keeps a hard outline over a sharp background, and a sharp
    foreground leaks into a blurred background.
``scatter``
    every source pixel spreads its own normalised PSF; result normalised (Numba kernel).
    No occlusion either: a blurred background spreads over a sharp foreground.
``layered``
    depth layers (quantised sigma levels), each blurred and composited over those behind
    it: approximates occlusion, right on both sides of an edge; needs ``depth=``
    (metres). The mode ``defocuskit synth`` and the on-the-fly trainer fall back to.

PSF shapes (:data:`PSFS`, see :mod:`defocuskit.blur.psf`): ``gaussian`` (standard deviation
sigma) and ``disc`` (uniform disc of radius 2 sigma, anti-aliased; the same second moment),
in every mode; ``polygon:N[,ROTATION]`` (an N-blade aperture) and ``bank:PATH`` (a
calibrated PSF bank), see :mod:`defocuskit.blur.shapes`, in gather and scatter through the
kernel table (:mod:`defocuskit.blur.table`), which also renders dual-pixel views.

Policies: NaN sigma (e.g. from an invalid depth) means no blur for that pixel; sigma is
clamped to :data:`SIGMA_MAX_PX`; a negative sigma raises. Borders are reflect-101.
"""

from __future__ import annotations

import numpy as np

from defocuskit.blur._common import (
    SIGMA_MAX_PX,
    RenderInputError,
    check_image,
    check_sigma,
    kernel_radius,
    srgb_to_linear,
)
from defocuskit.blur.disc import blur_gather_disc, blur_scatter_disc
from defocuskit.blur.gather import blur_gather
from defocuskit.blur.layered import blur_layered
from defocuskit.blur.noise import SensorNoise
from defocuskit.blur.psf import PSFS
from defocuskit.blur.scatter import blur_scatter
from defocuskit.blur.views import DualPixel, check_jpeg, finish_image, render_table
from defocuskit.errors import ConfigError
from defocuskit.psf_spec import parse_psf

__all__ = ["MODES", "PSFS", "SIGMA_MAX_PX", "DualPixel", "RenderInputError", "SensorNoise",
           "check_sigma", "kernel_radius", "render"]

MODES = ("gather", "scatter", "layered")
# the per-pixel modes, by (mode, psf); layered takes the psf as an argument
_PER_PIXEL = {("gather", "gaussian"): blur_gather, ("scatter", "gaussian"): blur_scatter,
              ("gather", "disc"): blur_gather_disc, ("scatter", "disc"): blur_scatter_disc}


def render(aif, sigma_px, *, mode: str = "layered", psf: str = "gaussian", depth=None,
           linear_light: bool = False, noise=None, seed=None, threads: int | None = None,
           focus_distance: float | None = None, frame_levels=None, dual_pixel: bool = False,
           frame_origin: tuple[int, int] = (0, 0), jpeg: int | None = None):
    """Render a defocused image.

    Parameters
    ----------
    aif : (H, W, 3) uint8 or float32 ndarray
        All-in-focus: uint8 0..255 or float32 (any range; [0, 1] with ``linear_light``/``noise``).
    sigma_px : (H, W) or (H, W, 3) float ndarray, pixels
        Blur sigma per pixel, >= 0; NaN means no blur; clamped to SIGMA_MAX_PX. The
        Gaussian's standard deviation, or half the disc's radius (``psf="disc"``). With a
        channel axis (chromatic aberration, :mod:`defocuskit.camera.chromatic`) channel
        ``c`` of the result is channel ``c`` of the render with ``sigma_px[..., c]`` (and
        ``focus_distance[c]``, ``frame_levels[c]``); noise, encoding and JPEG come after.
    mode : {"gather", "scatter", "layered"}
        Blur model, see the module docstring. ``layered`` (the default, and synth's) models
        occlusion and needs ``depth``; ``gather`` needs no depth.
    psf : str
        ``gaussian`` or ``disc`` (every mode), ``polygon:N[,ROTATION]`` or ``bank:PATH``
        (gather and scatter); see :mod:`defocuskit.blur.psf` and
        :mod:`defocuskit.blur.shapes`.
    depth : (H, W) float ndarray, metres, optional
        Required by ``layered`` (front/back order), the default mode. With
        ``focus_distance``, it also says which pixels lie in front of the focal plane (for
        asymmetric PSFs and dual-pixel views); without them every pixel is taken as behind.
    linear_light : bool
        Decode sRGB to linear light before blurring and encode afterwards.
    noise : SensorNoise or dict, optional
        Poisson-Gaussian sensor noise added after the blur (in linear light if enabled).
    seed : int or numpy.random.Generator, optional
        Required with ``noise``; makes the noise reproducible.
    threads : int, optional
        Threads to split the kernels' rows into; None: Numba's thread count
        (``numba.get_num_threads()``, 1 in a joblib worker that limits it).
    focus_distance : float or sequence of 3 floats, optional
        Focus distance in metres for ``layered``; estimated from sigma and depth if omitted.
        Per channel (``inf`` allowed: a channel focused beyond infinity) with a per-channel
        sigma.
    frame_levels : defocuskit.blur.layered.FrameLevels, optional
        ``layered`` only, when ``aif`` is a window of a larger frame whose top-left corner
        is at ``frame_origin`` (row, column) in it: the whole frame's sigma levels and
        level boxes, so that the window is layered as the frame is; default: its own.
    dual_pixel : bool
        Also render the left and right half-aperture views (gather or scatter; needs
        ``depth`` and ``focus_distance``; not with noise or linear light). Their sum is the
        full-aperture image.
    jpeg : int, optional
        JPEG quality 1..100: every returned image goes through a deterministic 8-bit JPEG
        round trip (OpenCV's encoder), float images taken as [0, 1].

    Returns
    -------
    (H, W, 3) ndarray, same dtype as ``aif``; with ``dual_pixel`` a :class:`DualPixel`
    (``defocused``, ``left``, ``right``).

    Raises
    ------
    RenderInputError
        (a ConfigError and ValueError) on a bad shape, dtype, mode, psf, negative sigma,
        a missing depth for ``layered`` or noise without a seed.

    Examples
    --------
    >>> img = np.zeros((32, 32, 3), np.uint8)
    >>> render(img, np.full((32, 32), 1.5, np.float32), depth=np.full((32, 32), 3.0)).shape
    (32, 32, 3)
    """
    img, sig, spec, noise, depth = _checked_inputs(aif, sigma_px, mode=mode, psf=psf, depth=depth,
                                                   noise=noise, seed=seed, jpeg=jpeg)
    x = img.astype(np.float32) / np.float32(255.0) if img.dtype == np.uint8 else img.copy()
    x = srgb_to_linear(x) if linear_light else x
    kw = dict(mode=mode, spec=spec, depth=depth, threads=threads, dual_pixel=dual_pixel,
              frame_origin=frame_origin, linear_light=linear_light, noise=noise)
    views = (_blur_channels(x, sig, focus_distance, frame_levels, kw) if sig.ndim == 3  # chromatic
             else _blur_views(x, sig, focus_distance=focus_distance,
                              frame_levels=frame_levels, **kw))
    done = [finish_image(v, img.dtype, linear_light, noise, seed, jpeg) for v in views]
    return DualPixel(*done) if dual_pixel else done[0]


def _checked_inputs(aif, sigma_px, *, mode, psf, depth, noise, seed, jpeg):
    """:func:`render`'s inputs checked (RenderInputError): ``(image, sigma, psf spec,
    noise, depth)``, the sigma (H, W) or (H, W, 3), the noise a SensorNoise or None."""
    img = check_image(aif)
    chromatic = np.ndim(sigma_px) == 3
    if chromatic and np.shape(sigma_px)[2] != 3:
        raise RenderInputError(f"render: sigma_px must have shape (H, W) or (H, W, 3), got "
                               f"{np.shape(sigma_px)}")
    sig = (np.stack([check_sigma(np.asarray(sigma_px)[..., c], img.shape[:2])
                     for c in range(3)], axis=-1) if chromatic
           else check_sigma(sigma_px, img.shape[:2]))
    if mode not in MODES:
        raise RenderInputError(f"render: mode must be one of {MODES}, got {mode!r}")
    try:
        spec = parse_psf(psf)
    except ConfigError as exc:
        raise RenderInputError(f"render: {exc}") from None
    check_jpeg(jpeg)
    if noise is not None:
        noise = SensorNoise.from_config(noise)
        if seed is None:
            raise RenderInputError("render: noise needs seed= (an int or a Generator)")
    if mode == "layered" and depth is None:
        raise RenderInputError("render: mode 'layered' (the default) needs depth= (H, W) "
                               "in metres; mode='gather' blurs without depth")
    if depth is not None:
        depth = np.asarray(depth)
        if depth.shape != sig.shape[:2] or not np.issubdtype(depth.dtype, np.floating):
            raise RenderInputError(f"render: depth must be a float (H, W) = {sig.shape} array "
                                   f"in metres, got {depth.dtype} {depth.shape}")
    return img, sig, spec, noise, depth


def _blur_channels(x, sig, focus_distance, frame_levels, kw) -> list[np.ndarray]:
    """:func:`_blur_views` of a chromatic render: channel ``c`` of each view blurred with
    ``sig[..., c]`` (and that channel's focus distance and frame levels)."""
    fds, lvs = _per_channel(focus_distance, frame_levels)
    views = None
    for c in range(3):
        vc = _blur_views(x, sig[..., c], focus_distance=fds[c], frame_levels=lvs[c], **kw)
        views = views or [np.empty_like(v) for v in vc]
        for v, one in zip(views, vc, strict=True):
            v[..., c] = one[..., c]
    return views


def _per_channel(focus_distance, frame_levels):
    """The per-channel focus distances and frame levels of a chromatic render."""
    fds = [None] * 3 if focus_distance is None else list(np.ravel(focus_distance))
    lvs = [None] * 3 if frame_levels is None else list(frame_levels)
    if len(fds) != 3 or len(lvs) != 3:
        raise RenderInputError("render: a per-channel sigma_px (H, W, 3) takes a focus_distance "
                               "and frame_levels per channel (3 each) or None")
    return fds, lvs


def _blur_views(x, sig, *, mode, spec, depth, threads, dual_pixel, focus_distance,
                frame_levels, frame_origin, linear_light, noise) -> list[np.ndarray]:
    """The blurred float32 image (or image, left and right views) of one (H, W) sigma, in
    the light ``x`` is in (before noise and encoding)."""
    if dual_pixel or not spec.closed_form:
        return render_table(x, sig, spec, mode=mode, depth=depth,
                            focus_distance=focus_distance, threads=threads,
                            dual_pixel=dual_pixel, linear_light=linear_light, noise=noise)
    if mode == "layered":
        return [blur_layered(x, sig, depth, focus_distance=focus_distance, psf=spec.kind,
                             threads=threads, frame_levels=frame_levels,
                             frame_origin=frame_origin)]
    return [_PER_PIXEL[mode, spec.kind](x, sig, threads=threads)]
