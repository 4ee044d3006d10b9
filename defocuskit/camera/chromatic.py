"""Longitudinal chromatic aberration: one focal length, hence one CoC, per colour channel.

``--chromatic R,G,B`` gives each channel's focal-length offset ``delta_c`` in millimetres
from the camera's focal length ``f`` (e.g. ``0.05,0,-0.03``). The lens keeps its aperture
diameter ``D = f / N`` and its sensor distance ``v`` (``1/v = 1/f - 1/S``: the camera is
focused at ``S`` for the reference focal length); channel ``c`` has the focal length
``f_c = f + delta_c`` and images an object at ``x`` at ``1/v_x = 1/f_c - 1/x``, so its CoC
diameter on the sensor is

    ``CoC_c(x) = D v |1/f_c - 1/v - 1/x| = D v |1/S_c - 1/x|``,  ``1/S_c = 1/f_c - 1/v``

(exactly the camera's ``exact`` CoC model with ``f_c`` and the channel's own focus distance
``S_c``; the ``paper`` model takes ``f_c`` for ``v``, as it takes ``f`` for it with one
focal length). ``1/S_c <= 0`` is a channel focused beyond infinity: every depth lies in
front of its focal plane. The camera's sigma rule (:meth:`Camera.sigma_of_coc_px`: scale,
offset, rounding, diffraction floor) then gives each channel's sigma. With offsets
``0,0,0`` every channel has the camera's own sigma.
"""

from __future__ import annotations

import math

import numpy as np

from defocuskit.camera.optics import Camera
from defocuskit.errors import ConfigError

__all__ = ["CHROMATIC_MAX_MM", "CHROMATIC_MODEL", "channel_focus_distances",
           "channel_inverse_focus", "channel_sigmas", "chromatic_sigma_px", "parse_chromatic"]

CHROMATIC_MODEL = ("CoC_c = D v |1/f_c - 1/v - 1/x|, f_c = f + offset_c, D = f / N and "
                   "1/v = 1/f - 1/S kept; sigma_c by the camera's sigma rule")
CHROMATIC_MAX_MM = 5.0  # largest |offset| accepted, mm (measured lenses: well under 1 mm)


def parse_chromatic(value) -> tuple[float, float, float] | None:
    """The three offsets (mm) of ``R,G,B`` text or a 3-sequence; None stays None (off)."""
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        out = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or not all(math.isfinite(v) and abs(v) <= CHROMATIC_MAX_MM for v in out):
        raise ConfigError(f"chromatic: expected three focal-length offsets R,G,B in mm, each "
                          f"within +-{CHROMATIC_MAX_MM:g} (e.g. 0.05,0,-0.03), got {value!r}")
    return out


def _sensor_inverse(camera: Camera) -> float:
    return 1.0 / camera.focal_length - 1.0 / camera.focus_distance  # 1/v, 1/m


def channel_inverse_focus(camera: Camera, offsets_mm) -> np.ndarray:
    """``1/S_c`` (1/m) of each channel (see the module doc); <= 0: beyond infinity."""
    f_c = camera.focal_length + np.asarray(offsets_mm, np.float64) * 1e-3
    if (f_c <= 0).any():
        raise ConfigError(f"chromatic: offsets {list(offsets_mm)} mm make a focal length <= 0 "
                          f"(focal length {camera.focal_length * 1e3:g} mm)")
    return 1.0 / f_c - _sensor_inverse(camera)


def channel_focus_distances(camera: Camera, offsets_mm) -> tuple[float, float, float]:
    """Each channel's focus distance ``S_c`` in metres (``inf`` beyond infinity)."""
    inv = channel_inverse_focus(camera, offsets_mm)
    return tuple(float(1.0 / i) if i > 0 else math.inf for i in inv)


def chromatic_sigma_px(camera: Camera, depth, offsets_mm) -> np.ndarray:
    """Per-channel sigma (pixels), float64 of shape ``depth.shape + (3,)``; NaN where the
    depth is invalid (NaN, inf, <= 0)."""
    x = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(x) & (x > 0)
    inv_x = np.where(valid, 1.0 / np.where(valid, x, 1.0), np.nan)[..., None]
    inv_s = channel_inverse_focus(camera, offsets_mm)
    f_c = camera.focal_length + np.asarray(offsets_mm, np.float64) * 1e-3
    v = 1.0 / _sensor_inverse(camera) if camera.coc_model == "exact" else f_c
    coc_px = camera.aperture_diameter * v * np.abs(inv_s - inv_x) / camera.pixel_pitch
    for c in np.flatnonzero(np.asarray(offsets_mm) == 0):  # the camera's own, bit for bit
        coc_px[..., c] = camera.coc_px(x)
    return camera.sigma_of_coc_px(coc_px)


def channel_sigmas(camera: Camera, depth, offsets_mm) -> list[tuple[np.ndarray, float]]:
    """``[(sigma, focus_distance)]`` per rendered channel: one pair (the camera's sigma and
    focus) without chromatic aberration (``offsets_mm`` None), else one per channel."""
    if offsets_mm is None:
        return [(np.asarray(camera.sigma_px(depth)), camera.focus_distance)]
    sig = chromatic_sigma_px(camera, depth, offsets_mm)
    fds = channel_focus_distances(camera, offsets_mm)
    return [(sig[..., c], fds[c]) for c in range(3)]
