"""Non-blind deconvolution of a defocused image with a known sigma map.

Its entry point :func:`deconvolve` is re-exported as ``defocuskit.deconvolve``; this
subpackage is called ``deblur`` so that the package attribute ``deconvolve`` is always the
function, never a module.

The prior, the solver and the boundary handling are in :mod:`defocuskit.deblur.hqs`; the
two methods (per pixel, as Anwar et al., and the fast constant-sigma levels) in
:mod:`defocuskit.deblur.methods`. The PSFs are the renderer's own
(:mod:`defocuskit.blur.psf`), so ``deconvolve(render(aif, sigma, mode="gather"), sigma)``
inverts the same kernels. ``docs/deconvolution.md`` states the choices and the measured accuracy.
"""

from __future__ import annotations

import numpy as np

from defocuskit.blur._common import SIGMA_MAX_PX
from defocuskit.blur.psf import PSFS
from defocuskit.deblur.hqs import ALPHA, LAMBDA
from defocuskit.deblur.methods import (
    LEVEL_STEP_PX,
    PATCH_PX,
    deconvolve_levels,
    deconvolve_per_pixel,
)
from defocuskit.errors import ConfigError

__all__ = ["METHODS", "DeconvolveInputError", "deconvolve"]

METHODS = ("levels", "per-pixel")


class DeconvolveInputError(ConfigError, ValueError):
    """Bad image, sigma map or option given to :func:`defocuskit.deconvolve`."""


def _check_inputs(blurred, sigma_px) -> tuple[np.ndarray, np.ndarray]:
    """Validate the image and the sigma map; returns (float64 image, clean float64 sigma)."""
    if not isinstance(blurred, np.ndarray):
        raise DeconvolveInputError(
            f"deconvolve: blurred must be a numpy array, got {type(blurred).__name__}")
    if blurred.ndim != 3 or blurred.shape[2] != 3 or 0 in blurred.shape:
        raise DeconvolveInputError(
            f"deconvolve: blurred must have shape (H, W, 3), got {blurred.shape}")
    if blurred.dtype not in (np.uint8, np.float32):
        raise DeconvolveInputError(
            f"deconvolve: blurred dtype must be uint8 or float32, got {blurred.dtype}")
    y = blurred.astype(np.float64)
    if blurred.dtype == np.uint8:
        y /= 255.0
    elif not np.isfinite(y).all():
        raise DeconvolveInputError("deconvolve: blurred has non-finite values (NaN or inf)")
    s = np.asarray(sigma_px)
    if s.shape != blurred.shape[:2]:
        raise DeconvolveInputError(f"deconvolve: sigma_px must have shape {blurred.shape[:2]} "
                                   f"(H, W of blurred), got {s.shape}")
    if not np.issubdtype(s.dtype, np.floating):
        raise DeconvolveInputError(
            f"deconvolve: sigma_px must be a float array (pixels), got {s.dtype}")
    s = s.astype(np.float64)
    if np.any(s < 0):
        raise DeconvolveInputError(
            f"deconvolve: sigma_px must be >= 0 pixels, got a minimum of {np.nanmin(s):g}")
    np.nan_to_num(s, copy=False, nan=0.0, posinf=SIGMA_MAX_PX)
    return y, np.minimum(s, SIGMA_MAX_PX)


def _check_options(psf, method, lam, alpha, level_step, patch) -> None:
    if psf not in PSFS:
        raise DeconvolveInputError(f"deconvolve: psf must be one of {PSFS}, got {psf!r}")
    if method not in METHODS:
        raise DeconvolveInputError(f"deconvolve: method must be one of {METHODS}, got {method!r}")
    if not (np.isfinite(lam) and lam > 0):
        raise DeconvolveInputError(f"deconvolve: lam must be a positive number, got {lam!r}")
    if not (0.0 < alpha <= 1.0):
        raise DeconvolveInputError(f"deconvolve: alpha must be in (0, 1], got {alpha!r}")
    if not (np.isfinite(level_step) and level_step > 0):
        raise DeconvolveInputError(
            f"deconvolve: level_step must be a positive number of pixels, got {level_step!r}")
    if not (isinstance(patch, int | np.integer) and patch >= 3 and patch % 2 == 1):
        raise DeconvolveInputError(
            f"deconvolve: patch must be an odd integer >= 3 (pixels), got {patch!r}")


def deconvolve(blurred, sigma_px, *, psf: str = "gaussian", method: str = "levels",
               lam: float = LAMBDA, alpha: float = ALPHA, level_step: float = LEVEL_STEP_PX,
               patch: int = PATCH_PX, threads: int | None = None) -> np.ndarray:
    """Deconvolve a defocused image with its per-pixel blur (hyper-Laplacian prior).

    Parameters
    ----------
    blurred : (H, W, 3) uint8 or float32 ndarray
        The defocused image; uint8 in 0..255, float32 in [0, 1] (``lam`` is set for that
        range).
    sigma_px : (H, W) float ndarray, pixels
        The blur of every pixel, as :func:`defocuskit.render` takes it: >= 0; NaN or 0
        means no blur (the pixel is copied); clamped to ``SIGMA_MAX_PX``.
    psf : {"gaussian", "disc"}
        The renderer's PSF shape (:mod:`defocuskit.blur.psf`).
    method : {"levels", "per-pixel"}
        ``levels``: whole-image deconvolutions at constant sigmas ``0, level_step, ...``,
        each pixel interpolated between the two around its sigma (fast). ``per-pixel``:
        every pixel from the ``patch`` x ``patch`` window around it with its own PSF
        (Anwar et al.; about 1 ms per pixel).
    lam : float
        Weight of the data term (Krishnan & Fergus' lambda); larger is sharper and rings
        more.
    alpha : float
        Exponent of the gradient prior, in (0, 1] (the ``w``-step solver assumes it).
    level_step : float, pixels
        Sigma spacing of the levels (``levels`` only).
    patch : int, pixels
        Odd side of the window of ``per-pixel``.
    threads : int, optional
        Threads (per-pixel rows, FFT workers); None: Numba's thread count.

    Returns
    -------
    (H, W, 3) ndarray, same dtype as ``blurred`` (float32 unclipped; uint8 rounded, clipped)

    Raises
    ------
    DeconvolveInputError
        (a ConfigError and ValueError) on a bad shape, dtype, negative sigma, non-finite
        pixel or an unknown or out-of-range option.

    Examples
    --------
    >>> img = np.full((32, 32, 3), 0.5, np.float32)
    >>> out = deconvolve(img, np.full((32, 32), 1.5, np.float32))
    >>> bool(np.allclose(out, 0.5, atol=1e-4))
    True
    """
    _check_options(psf, method, lam, alpha, level_step, patch)
    y, sigma = _check_inputs(blurred, sigma_px)
    if method == "levels":
        x = deconvolve_levels(y, sigma, psf, lam=float(lam), alpha=float(alpha),
                              step=float(level_step), threads=threads)
    else:
        x = deconvolve_per_pixel(y, sigma, psf, lam=float(lam), alpha=float(alpha),
                                 patch=int(patch), threads=threads)
    if blurred.dtype == np.uint8:
        return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    return x.astype(np.float32)
