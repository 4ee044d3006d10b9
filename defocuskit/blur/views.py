"""Renders through the kernel table (polygon and bank PSFs, dual-pixel views) and the
common last steps of every render: sensor noise, sRGB encoding, 8 bits, JPEG."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from defocuskit.blur._common import RenderInputError, linear_to_srgb
from defocuskit.blur.noise import add_sensor_noise
from defocuskit.blur.table import blur_table, build_table, split_halves
from defocuskit.psf_spec import PsfSpec

__all__ = ["DualPixel", "check_jpeg", "finish_image", "jpeg_round_trip", "render_table",
           "signed_sigma"]


class DualPixel(NamedTuple):
    """A dual-pixel render: the full-aperture image and its two half-aperture views
    (``defocused == left + right`` before rounding to the output dtype)."""

    defocused: np.ndarray
    left: np.ndarray
    right: np.ndarray


def signed_sigma(sigma: np.ndarray, depth, focus_distance) -> np.ndarray:
    """sigma with a minus sign in front of the focal plane (``depth < focus_distance``);
    all positive without a depth or focus distance."""
    if depth is None or focus_distance is None:
        return sigma
    return np.where(np.asarray(depth) < focus_distance, -sigma, sigma).astype(np.float32)


def render_table(x: np.ndarray, sigma: np.ndarray, spec: PsfSpec, *, mode: str, depth,
                 focus_distance, threads, dual_pixel: bool, linear_light: bool,
                 noise) -> list[np.ndarray]:
    """``[image]`` or ``[image, left, right]`` (float32, before noise and encoding) of
    ``x``, already in the light it is blurred in."""
    what = "dual-pixel views" if dual_pixel else f"psf {spec.kind!r}"
    if mode not in ("gather", "scatter"):
        raise RenderInputError(f"render: {what} render with mode 'gather' or 'scatter' (the "
                               f"kernel table); mode {mode!r} takes the gaussian or disc psf "
                               "only")
    if dual_pixel:
        if depth is None or focus_distance is None:
            raise RenderInputError("render: dual_pixel needs depth= and focus_distance= (the "
                                   "views mirror on the two sides of the focal plane)")
        if noise is not None or linear_light:
            raise RenderInputError("render: dual_pixel does not take noise or linear_light "
                                   "(the views would no longer sum to the full image)")
    ss = signed_sigma(sigma, depth, focus_distance)
    table = build_table(spec, ss)
    if not dual_pixel:
        return [blur_table(x, ss, table, mode=mode, threads=threads)]
    left_t, right_t = split_halves(table)
    left = blur_table(x, ss, left_t, mode=mode, norm=table, threads=threads)
    right = blur_table(x, ss, right_t, mode=mode, norm=table, threads=threads)
    return [left + right, left, right]


def check_jpeg(quality) -> None:
    """A JPEG quality must be an integer 1..100 (None: no JPEG)."""
    if quality is None:
        return
    if isinstance(quality, bool) or not (isinstance(quality, (int, np.integer))
                                         and 1 <= int(quality) <= 100):
        raise RenderInputError(f"render: jpeg quality must be an integer 1..100, got {quality!r}")


def jpeg_round_trip(img: np.ndarray, quality: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB through an in-memory JPEG at ``quality`` (OpenCV, 4:2:0)."""
    import cv2  # loaded only where a JPEG is asked for

    check_jpeg(quality)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RenderInputError("render: the JPEG encoder failed")
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def finish_image(y: np.ndarray, dtype, linear_light: bool, noise, seed,
                 jpeg: int | None) -> np.ndarray:
    """Noise, sRGB encoding, the output dtype, then the JPEG round trip."""
    if noise is not None:
        y = add_sensor_noise(y, noise, np.random.default_rng(seed))
    if linear_light:
        y = linear_to_srgb(y)
    if dtype == np.uint8 or jpeg is not None:
        q = np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)
        if jpeg is not None:
            q = jpeg_round_trip(q, jpeg)
        return q if dtype == np.uint8 else q.astype(np.float32) / np.float32(255.0)
    return y.astype(np.float32, copy=False)
