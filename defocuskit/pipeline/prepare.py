"""Shared sample preparation: resize, crop and a depth-unit sanity check.

Images are resampled with area averaging when shrinking and bilinear interpolation when
enlarging. Depth is never blended across invalid pixels: the default nearest resampler
picks one source pixel per output pixel (NaN stays NaN, no "flying" depths between a
foreground edge and the background), and the masked resampler averages valid pixels only.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from defocuskit.errors import ConfigError, SourceError
from defocuskit.sources.base import Sample

__all__ = [
    "resize_sample",
    "resize_image",
    "resize_depth_nearest",
    "resize_depth_masked",
    "crop_sample",
    "center_crop",
    "check_depth_units",
]

_IMAGE_INTERP = ("auto", "area", "linear")
_DEPTH_INTERP = ("nearest", "masked")


def _check_size(size) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"size must be (H, W) in pixels, got {size!r}") from exc
    if h < 1 or w < 1:
        raise ConfigError(f"size must be positive (H, W) in pixels, got {size!r}")
    return h, w


def resize_image(image: np.ndarray, size, *, interp: str = "auto") -> np.ndarray:
    """Resize an (H, W, C) image to ``size = (H', W')`` pixels, keeping its dtype.

    ``interp="auto"`` uses area averaging when both sides shrink (no aliasing) and
    bilinear interpolation otherwise; ``"area"`` and ``"linear"`` force one of them.
    """
    import cv2  # OpenCV (heavy): only when a frame is resized

    h, w = _check_size(size)
    if interp not in _IMAGE_INTERP:
        raise ConfigError(f"image interpolation must be one of {_IMAGE_INTERP}, got {interp!r}")
    if image.shape[:2] == (h, w):
        return image.copy()
    if interp == "auto":
        shrink = h <= image.shape[0] and w <= image.shape[1]
        interp = "area" if shrink else "linear"
    flag = cv2.INTER_AREA if interp == "area" else cv2.INTER_LINEAR
    return cv2.resize(image, (w, h), interpolation=flag)


def _nearest_index(n_out: int, n_in: int) -> np.ndarray:
    # Pixel-centre mapping: output pixel i covers source coordinate (i + 0.5) * n_in / n_out.
    idx = np.floor((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.intp)
    return np.minimum(idx, n_in - 1)


def resize_depth_nearest(depth: np.ndarray, size) -> np.ndarray:
    """Nearest-neighbour resize of a (H, W) depth map (metres) by pixel centres.

    Output pixel ``(i, j)`` takes source pixel ``(floor((i + 0.5) * H / H'),
    floor((j + 0.5) * W / W'))``; rows map to rows and columns to columns, each with its
    own factor, so anisotropic grids (Make3D's 55 x 305) stretch correctly.

    Returns
    -------
    (H', W') float32 ndarray, metres; NaN where the picked source pixel is NaN.
    """
    h, w = _check_size(size)
    rows = _nearest_index(h, depth.shape[0])
    cols = _nearest_index(w, depth.shape[1])
    return np.ascontiguousarray(depth[rows[:, None], cols[None, :]], dtype=np.float32)


def resize_depth_masked(depth: np.ndarray, size, *, min_weight: float = 0.5) -> np.ndarray:
    """Resize a (H, W) depth map (metres) averaging valid pixels only.

    Invalid (NaN) pixels get weight 0; an output pixel whose valid weight is below
    ``min_weight`` (fraction of its footprint) becomes NaN. Area averaging when shrinking,
    bilinear when enlarging, as :func:`resize_image`.
    """
    valid = np.isfinite(depth)
    filled = np.where(valid, depth, 0).astype(np.float32)
    num = resize_image(filled[..., None], size)
    den = resize_image(valid.astype(np.float32)[..., None], size)
    num, den = num.reshape(num.shape[:2]), den.reshape(den.shape[:2])
    out = np.full(den.shape, np.nan, np.float32)
    ok = den >= min_weight
    out[ok] = num[ok] / den[ok]
    return out


def resize_sample(sample: Sample, size, *, image_interp: str = "auto",
                  depth_interp: str = "nearest") -> Sample:
    """Resize a sample's images and depth to ``size = (H, W)`` pixels.

    Parameters
    ----------
    sample : Sample
        ``aif`` (H, W, 3) uint8, ``depth`` (H, W) float32 metres, optional ``defocused``.
    size : (int, int)
        Output height and width in pixels.
    image_interp : {"auto", "area", "linear"}
        See :func:`resize_image`; applied to ``aif`` and ``defocused``.
    depth_interp : {"nearest", "masked"}
        :func:`resize_depth_nearest` or :func:`resize_depth_masked`.

    Returns
    -------
    Sample
        A new sample; ``meta["resized_from"]`` records the input (H, W).
    """
    h, w = _check_size(size)
    if depth_interp not in _DEPTH_INTERP:
        raise ConfigError(f"depth interpolation must be one of {_DEPTH_INTERP}, "
                          f"got {depth_interp!r}")
    if sample.aif.shape[:2] == (h, w):
        return sample
    resize_depth = resize_depth_nearest if depth_interp == "nearest" else resize_depth_masked
    defocused = sample.defocused
    if defocused is not None:
        defocused = resize_image(defocused, (h, w), interp=image_interp)
    meta = dict(sample.meta, resized_from=list(sample.aif.shape[:2]))
    return replace(sample, aif=resize_image(sample.aif, (h, w), interp=image_interp),
                   depth=resize_depth(sample.depth, (h, w)), defocused=defocused, meta=meta)


def crop_sample(sample: Sample, top: int, left: int, height: int, width: int) -> Sample:
    """Crop rows ``top:top+height`` and columns ``left:left+width`` (pixels) of a sample.

    ``meta["crop"]`` records ``[top, bottom, left, right]`` as Python slice bounds.
    """
    H, W = sample.aif.shape[:2]
    if top < 0 or left < 0 or height < 1 or width < 1 or top + height > H or left + width > W:
        raise ConfigError(f"crop rows {top}:{top + height}, cols {left}:{left + width} does "
                          f"not fit the {H}x{W} frame of sample {sample.sample_id!r}")
    rs, cs = slice(top, top + height), slice(left, left + width)
    defocused = None if sample.defocused is None else sample.defocused[rs, cs].copy()
    meta = dict(sample.meta, crop=[top, top + height, left, left + width])
    return replace(sample, aif=sample.aif[rs, cs].copy(), depth=sample.depth[rs, cs].copy(),
                   defocused=defocused, meta=meta)


def center_crop(sample: Sample, size) -> Sample:
    """Crop the central ``size = (H, W)`` pixels of a sample (odd margins: one more below/right)."""
    h, w = _check_size(size)
    H, W = sample.aif.shape[:2]
    if h > H or w > W:
        raise ConfigError(f"centre crop {h}x{w} is larger than the {H}x{W} frame of sample "
                          f"{sample.sample_id!r}")
    return crop_sample(sample, (H - h) // 2, (W - w) // 2, h, w)


def check_depth_units(depth: np.ndarray, where: str, *, max_median_m: float = 200.0,
                      min_median_m: float = 0.02, stored_as: str = "metres") -> None:
    """Raise SourceError when depth is in the wrong unit, naming the unit it looks like.

    Parameters
    ----------
    depth : (H, W) float ndarray, metres, NaN = invalid
    where : str
        Names the file or sample in the message.
    max_median_m : float
        Largest plausible median depth in metres. Kinect-style millimetre maps have
        medians of hundreds to thousands; real scenes in metres (Make3D tops out at
        ~82 m) stay far below 200.
    min_median_m : float
        Smallest plausible median depth in metres (2 cm): below it the map was most likely
        written in metres into a millimetre format (1000x too small).
    stored_as : str
        What the file format promises (``"metres"`` or ``"millimetres"``), for the message.
    """
    finite = depth[np.isfinite(depth)]
    if finite.size == 0:
        return
    median = float(np.median(finite))
    if median > max_median_m:
        raise SourceError(f"{where}: depth median is {median:.1f}, which looks like "
                          f"millimetres; metres were expected (median <= {max_median_m:g}). "
                          "Divide the depth by 1000 or use a millimetre format (16-bit PNG)")
    if median < min_median_m:
        hint = ("the file seems to hold metres, not millimetres: multiply by 1000 before "
                "saving the 16-bit PNG, or save metres as .npy" if stored_as == "millimetres"
                else "the file seems to hold kilometres or a normalised depth; save metres")
        raise SourceError(f"{where}: depth median is {median:.4f} m, implausibly near "
                          f"(expected >= {min_median_m:g} m): {hint}")
