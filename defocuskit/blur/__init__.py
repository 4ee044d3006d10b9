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
sigma) and ``disc`` (uniform disc of radius 2 sigma, anti-aliased; the same second moment).

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
    linear_to_srgb,
    srgb_to_linear,
)
from defocuskit.blur.disc import blur_gather_disc, blur_scatter_disc
from defocuskit.blur.gather import blur_gather
from defocuskit.blur.layered import blur_layered
from defocuskit.blur.noise import SensorNoise, add_sensor_noise
from defocuskit.blur.psf import PSFS
from defocuskit.blur.scatter import blur_scatter

__all__ = ["MODES", "PSFS", "SIGMA_MAX_PX", "RenderInputError", "SensorNoise", "check_sigma",
           "kernel_radius", "render"]

MODES = ("gather", "scatter", "layered")
# the per-pixel modes, by (mode, psf); layered takes the psf as an argument
_PER_PIXEL = {("gather", "gaussian"): blur_gather, ("scatter", "gaussian"): blur_scatter,
              ("gather", "disc"): blur_gather_disc, ("scatter", "disc"): blur_scatter_disc}


def render(aif, sigma_px, *, mode: str = "layered", psf: str = "gaussian", depth=None,
           linear_light: bool = False, noise=None, seed=None, threads: int | None = None,
           focus_distance: float | None = None, frame_levels=None,
           frame_origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Render a defocused image.

    Parameters
    ----------
    aif : (H, W, 3) uint8 or float32 ndarray
        All-in-focus image; uint8 in 0..255, float32 in any range ([0, 1] when
        ``linear_light`` or ``noise`` is used).
    sigma_px : (H, W) float ndarray, pixels
        Blur sigma per pixel, >= 0; NaN means no blur; clamped to SIGMA_MAX_PX. The
        Gaussian's standard deviation, or half the disc's radius (``psf="disc"``).
    mode : {"gather", "scatter", "layered"}
        Blur model, see the module docstring. The default, ``layered``, is the one that
        models occlusion and the default of ``defocuskit synth``; it needs ``depth``.
        ``gather`` needs no depth.
    psf : {"gaussian", "disc"}
        PSF shape, see :mod:`defocuskit.blur.psf`; every mode takes both.
    depth : (H, W) float ndarray, metres, optional
        Required by ``layered`` (front/back order), the default mode; ignored by the
        other modes.
    linear_light : bool
        Decode sRGB to linear light before blurring and encode afterwards.
    noise : SensorNoise or dict, optional
        Poisson-Gaussian sensor noise added after the blur (in linear light if enabled).
    seed : int or numpy.random.Generator, optional
        Required with ``noise``; makes the noise reproducible.
    threads : int, optional
        Threads to split the kernels' rows into; None: Numba's thread count
        (``numba.get_num_threads()``, 1 in a joblib worker that limits it).
    focus_distance : float, optional
        Focus distance in metres for ``layered``; estimated from sigma and depth if omitted.
    frame_levels : defocuskit.blur.layered.FrameLevels, optional
        ``layered`` only, when ``aif`` is a window of a larger frame whose top-left corner
        is at ``frame_origin`` (row, column) in it: the whole frame's sigma levels and
        level boxes, so that the window is layered as the frame is; default: its own.

    Returns
    -------
    (H, W, 3) ndarray, same dtype as ``aif``

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
    img = check_image(aif)
    sig = check_sigma(sigma_px, img.shape[:2])
    if mode not in MODES:
        raise RenderInputError(f"render: mode must be one of {MODES}, got {mode!r}")
    if psf not in PSFS:
        raise RenderInputError(f"render: psf must be one of {PSFS}, got {psf!r}")
    if noise is not None:
        noise = SensorNoise.from_config(noise)
        if seed is None:
            raise RenderInputError("render: noise needs seed= (an int or a Generator)")
    if mode == "layered":
        if depth is None:
            raise RenderInputError("render: mode 'layered' (the default) needs depth= (H, W) "
                                   "in metres; mode='gather' blurs without depth")
        depth = np.asarray(depth)
        if depth.shape != sig.shape or not np.issubdtype(depth.dtype, np.floating):
            raise RenderInputError(f"render: depth must be a float (H, W) = {sig.shape} array "
                                   f"in metres, got {depth.dtype} {depth.shape}")
    x = img.astype(np.float32) / np.float32(255.0) if img.dtype == np.uint8 else img.copy()
    if linear_light:
        x = srgb_to_linear(x)
    if mode == "layered":
        y = blur_layered(x, sig, depth, focus_distance=focus_distance, psf=psf,
                         threads=threads, frame_levels=frame_levels,
                         frame_origin=frame_origin)
    else:
        y = _PER_PIXEL[mode, psf](x, sig, threads=threads)
    if noise is not None:
        y = add_sensor_noise(y, noise, np.random.default_rng(seed))
    if linear_light:
        y = linear_to_srgb(y)
    if img.dtype == np.uint8:
        return np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)
    return y.astype(np.float32, copy=False)
