"""Layered mode: occlusion-aware compositing of depth layers, back to front.

The scene is cut into layers of *signed* sigma (negative in front of the focus plane,
positive behind), which is monotonic in depth, so layer order is depth order. Each pixel is
split between its two neighbouring levels with hat weights (0 always a level; neighbouring
levels at most ``max(max_step, rel_step |level|)`` pixels apart: 0.5 px up to 1.25 px of
sigma, 40 % of the level beyond, :func:`sigma_levels`). Each layer's premultiplied colour
and coverage are blurred with the level's sigma (the truncated Gaussian, support ``ceil(3
sigma)``: the engine's separable kernel, or ``cv2.GaussianBlur`` for short supports; for
the disc PSF, ``cv2.filter2D`` with the level's disc; reflect-101, on the layer's bounding
box grown one pixel past the support) and composited "over" what lies behind it. Consequences:

* a blurred foreground spreads over the background (its blurred coverage covers it);
* a sharp foreground keeps its pixels (coverage 1) and the blurred background behind it is
  computed from the background pixels only, so the foreground does not leak into it;
* where a blurred layer in front of the focus plane turns semi-transparent, the background
  it hid is filled first by a normalised blur of what is behind (premultiplied, so colours
  are not darkened), as SYNDOF does for the layers in front of focus;
* the result is divided by the accumulated coverage, so a constant image stays constant.

Approximations: sigma is quantised to the levels; the hidden background's fill covers it
only partly, so just inside a blurred foreground's edge the foreground weighs more than a
lens gives it (up to 0.10 of the step, ``docs/camera_model.md``, "At an occlusion edge").
"""

from __future__ import annotations

import math

import numpy as np

from defocuskit.blur._common import aligned_zeros, round_up
from defocuskit.blur._jit import compile_kernel, run_threads, thread_count
from defocuskit.blur._layered_kernels import (
    BLUR_COLUMNS_SIGNATURE,
    BLUR_LANES,
    BLUR_ROWS_SIGNATURE,
    NEEDED_SIGNATURE,
    blur_columns,
    blur_rows,
    composite_over,
    extract_layer,
    fill_hidden,
    needed_groups,
    unpremultiply,
)
from defocuskit.blur.levels import (
    MAX_LEVEL_REL_STEP,
    MAX_LEVEL_STEP_PX,
    FrameLevels,
    assign_levels,
    level_boxes_of,
    level_rule,
    sigma_levels,
    signed_sigma,
    window_reach,
)
from defocuskit.blur.psf import disc_kernel, support_radius

__all__ = ["MAX_LEVEL_REL_STEP", "MAX_LEVEL_STEP_PX", "blur_layered", "estimate_focus_depth",
           "FrameLevels", "level_rule", "sigma_levels", "window_reach"]

# Gaussian levels with a support radius up to this use cv2.GaussianBlur, longer ones the
# engine's separable kernel; both compute the same truncated normalised kernel. On a dense
# 640x480 RGBA frame, one thread, the engine's kernel took 6.7 ms at r = 24 against
# OpenCV's 13 ms, and was no faster at r <= 6; on the realistic scenes of
# benchmarks/bench_render.py, thresholds 0, 3 and 6 gave the same speed within 5 %
# (AVX2 host)
CV2_MAX_RADIUS = 6


def estimate_focus_depth(sigma: np.ndarray, depth: np.ndarray) -> float:
    """Depth (metres) of the sharpest valid pixels: the median depth where sigma is minimal."""
    valid = np.isfinite(depth) & (depth > 0)
    if not valid.any():
        return float("nan")
    s = sigma[valid]
    smin = s.min()
    near_min = s <= smin + 0.02 * (s.max() - smin) + 1e-6
    return float(np.median(depth[valid][near_min]))


def gaussian_weights(sigma: float, r: int) -> np.ndarray:
    """One side ``g[0 .. r]`` of the truncated Gaussian sampled at integers, normalised so
    that the full symmetric kernel sums to 1 (float32, as ``cv2.getGaussianKernel``)."""
    d = np.arange(r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (d / sigma) ** 2)
    return (g / (g[0] + 2.0 * g[1:].sum())).astype(np.float32)


def gaussian_blur_flat(src: np.ndarray, h: int, w: int, sigma: float, tmp: np.ndarray,
                       rows: np.ndarray, out: np.ndarray, needed_out: np.ndarray | None = None,
                       needed_tmp: np.ndarray | None = None, off: int = 0,
                       stride: int | None = None, written: np.ndarray | None = None) -> None:
    """The truncated Gaussian of ``sigma`` (support ``ceil(3 sigma)``, reflect-101) of an
    (h, w, 4) float32 image held in the flat buffer ``src`` (row y at ``off + y stride``;
    ``stride`` 4 w by default), into the flat ``out``.

    Buffer sizes as :func:`~defocuskit.blur._layered_kernels.blur_columns` and
    :func:`~defocuskit.blur._layered_kernels.blur_rows` need them; ``rows.shape[0]`` threads.
    ``needed_out`` / ``needed_tmp`` (bool, >= (h, lane groups of a row)) restrict the output
    to some lane groups (see ``needed_groups``); None computes everything. ``written``
    (bool, same shape) receives where the output may be non-zero.
    """
    r = support_radius(sigma, "gaussian")
    g = gaussian_weights(sigma, r)
    for kernel, sig in ((blur_columns, BLUR_COLUMNS_SIGNATURE), (blur_rows, BLUR_ROWS_SIGNATURE)):
        compile_kernel(kernel, sig, simd="slp+loop")
    groups = -(-4 * w // BLUR_LANES)
    if needed_out is None:
        needed_out = needed_tmp = np.ones((h, groups), np.bool_)
    if written is None:
        written = np.empty((h, groups), np.bool_)
    nthreads = rows.shape[0]
    stride = 4 * w if stride is None else stride
    run_threads(blur_columns, nthreads, src, off, stride, h, w, g, r, tmp, needed_tmp)
    run_threads(blur_rows, nthreads, tmp, h, w, g, r, rows, out, needed_out, written)


class _Scratch:
    """Reused buffers of one ``blur_layered`` call (frame-sized, sliced per box): 0 the
    extracted layer (then what lies behind it), 1 the blurred layer, 2 the blur's vertical
    pass, 3 the blurred background fill; ``rows`` one row buffer per thread."""

    def __init__(self, h: int, w: int, r_max: int, nthreads: int):
        self.shape = (h, w)
        # BLUR_LANES floats of slack: the blur's last lane group of a row reads past its end.
        # From 64-byte boundaries (rows of a multiple of 16 floats): the same bits, and on
        # the Motorcycle at sigma max 8 4-10 % faster than NumPy's 16-byte alignment
        # (interleaved calls against a 16-byte-aligned variant)
        self.bufs = [aligned_zeros((h * w * 4 + BLUR_LANES,)) for _ in range(4)]
        self.rows = aligned_zeros((nthreads, round_up(4 * (w + 2 * r_max) + BLUR_LANES, 16)))
        groups = -(-4 * w // BLUR_LANES)
        self.everything = np.ones((h, groups), np.bool_)
        self.needed_out = np.zeros((h, groups), np.bool_)
        self.needed_tmp = np.zeros((h, groups), np.bool_)
        self.written = np.zeros((h, groups), np.bool_)

    def box(self, i: int, h: int, w: int) -> np.ndarray:
        """Buffer ``i`` as a C-contiguous (h, w, 4) array."""
        return self.bufs[i][:h * w * 4].reshape(h, w, 4)


def _blur(scratch: _Scratch, h: int, w: int, sigma: float, psf: str,
          dst: int) -> tuple[np.ndarray, np.ndarray]:
    """Scratch buffer 0, as an (h, w, 4) box, blurred with the level's PSF into buffer
    ``dst``; buffer 0 itself when the PSF is a single tap. Returns the box and which
    16-pixel groups of it may be non-zero (all, unless the engine's kernel says otherwise)."""
    r = support_radius(sigma, psf)
    if r == 0:
        return scratch.box(0, h, w), scratch.everything
    # reflect-101 at a box edge only mirrors zeros (the box has a margin one pixel wider
    # than the PSF's support) or the true image border, so blurring the box equals
    # blurring the whole frame there
    out = scratch.box(dst, h, w)
    if psf == "disc" or r <= CV2_MAX_RADIUS:
        import cv2  # here, not at module level: keeps OpenCV off the import (cold start) path

        src = scratch.box(0, h, w)
        if psf == "disc":
            cv2.filter2D(src, -1, disc_kernel(sigma), dst=out, borderType=cv2.BORDER_REFLECT_101)
        else:
            cv2.GaussianBlur(src, (2 * r + 1, 2 * r + 1), sigma, dst=out, sigmaY=sigma,
                             borderType=cv2.BORDER_REFLECT_101)
        return out, scratch.everything
    gaussian_blur_flat(scratch.bufs[0], h, w, sigma, scratch.bufs[2], scratch.rows,
                       scratch.bufs[dst], scratch.everything, scratch.everything,
                       written=scratch.written)
    return out, scratch.written


def _hidden_fill(scratch: _Scratch, acc_flat: np.ndarray, box: tuple, sigma: float,
                 psf: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The blur of the accumulator over ``box = (y0, y1, x0, x1)`` that fills what a blurred
    front layer uncovers (scratch buffer 3, as a box) and the 16-pixel groups where it is
    used, or None where the box is covered everywhere (nothing to fill)."""
    # The engine's kernel reads the box straight from the accumulator and computes only the
    # lane groups where it is not exactly covered (alpha != 1; ``needed_groups``): the fill
    # is multiplied by 1 - alpha, so the other groups (stale, finite) never count.
    y0, y1, x0, x1 = box
    h, w = y1 - y0, x1 - x0
    H, W = scratch.shape
    acc = acc_flat[:H * W * 4].reshape(H, W, 4)
    r = support_radius(sigma, psf)
    if psf == "disc" or r <= CV2_MAX_RADIUS:
        if acc[y0:y1, x0:x1, 3].min() >= 1.0:
            return None
        scratch.box(0, h, w)[...] = acc[y0:y1, x0:x1]
        return _blur(scratch, h, w, sigma, psf, 3)[0], scratch.everything
    compile_kernel(needed_groups, NEEDED_SIGNATURE)
    needed_out, needed_tmp = scratch.needed_out, scratch.needed_tmp
    needed_groups(acc, y0, x0, h, w, -(-4 * r // BLUR_LANES) + 1, needed_out, needed_tmp)
    if not needed_out[:h].any():
        return None
    gaussian_blur_flat(acc_flat, h, w, sigma, scratch.bufs[2], scratch.rows, scratch.bufs[3],
                       needed_out, needed_tmp, off=4 * (y0 * W + x0), stride=4 * W)
    return scratch.box(3, h, w), needed_out


def _fill_uncovered(scratch: _Scratch, acc_flat: np.ndarray, box: np.ndarray, sigma: float,
                    psf: str) -> None:
    """A blurred layer in front of the focus plane uncovers what it hid: fill that with a
    normalised blur of what lies behind (premultiplied, so no darkening), on the layer's
    bounding ``box`` (y min, y max, x min, x max) grown by the support r (its reflect-101
    border mirrors the background itself); scratch buffer 0 (the extracted layer) is free
    once the layer is blurred."""
    H, W = scratch.shape
    r = support_radius(sigma, psf)
    fy0, fy1 = max(box[0] - r, 0), min(box[1] + r + 1, H)
    fx0, fx1 = max(box[2] - r, 0), min(box[3] + r + 1, W)
    fill = _hidden_fill(scratch, acc_flat, (fy0, fy1, fx0, fx1), sigma, psf)
    if fill is not None:
        acc = acc_flat[:H * W * 4].reshape(H, W, 4)
        fill_hidden(acc, fill[0], fy0, fx0, fill[1])


class _Slabs:
    """The experimental slab compositing of ``blur_layered(slab_px=...)``: the layers of
    one slab are summed (premultiplied colour and coverage), and a finished slab is laid
    "over" the accumulator with its coverage clipped to 1."""

    def __init__(self, acc: np.ndarray, width: float):
        if not width > 0:
            raise ValueError(f"slab_px must be > 0, got {width!r}")
        self.acc, self.width = acc, float(width)
        self.sum = np.zeros_like(acc)
        self.current = None

    def enter(self, level: float) -> None:
        """Start the slab of ``level`` (signed sigma), compositing the previous one."""
        slab = math.floor(level / self.width + 1e-9)
        if self.current is not None and slab != self.current:
            self.flush()
        self.current = slab

    def add(self, layer: np.ndarray, y0: int, x0: int) -> None:
        h, w = layer.shape[:2]
        self.sum[y0:y0 + h, x0:x0 + w] += layer

    def flush(self) -> None:
        alpha = np.minimum(self.sum[..., 3:4], np.float32(1.0))
        self.acc *= np.float32(1.0) - alpha
        self.acc += self.sum
        self.sum[...] = 0.0


def _plan(sigma, depth, focus_distance, max_step, rel_step, frame, origin):
    """``(levels, j, frac, ext)``: the levels, each pixel's two levels and weight, and each
    level's bounding box (the whole frame's, cut to this window, when ``frame`` is given)."""
    H, W = sigma.shape
    d = np.asarray(depth, dtype=np.float64)
    if focus_distance is None:
        focus_distance = estimate_focus_depth(sigma, d)
    signed = signed_sigma(sigma, d, focus_distance)
    levels, j, frac = assign_levels(signed, None if frame is None else frame.levels,
                                    max_step, rel_step)
    ext = level_boxes_of(j, levels.size) if frame is None else frame.window(*origin, H, W)
    return levels, j, frac, ext


def blur_layered(img: np.ndarray, sigma: np.ndarray, depth: np.ndarray, *,
                 focus_distance: float | None = None,
                 max_step: float = MAX_LEVEL_STEP_PX, psf: str = "gaussian",
                 threads: int | None = None, slab_px: float | None = None,
                 rel_step: float = MAX_LEVEL_REL_STEP,
                 frame_levels: FrameLevels | None = None,
                 frame_origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Occlusion-aware layered defocus.

    Parameters
    ----------
    img : (H, W, 3) float32 ndarray, C-contiguous
        Image, any range.
    sigma : (H, W) float32 ndarray, pixels
        Clean sigma map (finite, >= 0, clamped).
    depth : (H, W) float ndarray, metres
        Used for the front/back order only. Invalid depth (NaN, inf, <= 0) puts the pixel
        behind the focus plane with its own sigma (0 for the usual NaN sigma: in focus).
    focus_distance : float, optional
        Focus distance, metres; estimated from sigma and depth when omitted.
    max_step : float
        Largest spacing of sigma levels near focus, pixels.
    psf : {"gaussian", "disc"}
        PSF shape of every layer's blur (:mod:`defocuskit.blur.psf`).
    threads : int, optional
        Threads of the engine's Gaussian passes (default: Numba's thread count); OpenCV,
        used for short supports and the disc, keeps its own thread setting.
    slab_px : float, optional
        Experimental, not used by synth: composite slabs of levels ``slab_px`` pixels of
        signed sigma wide, each the sum of its layers (``docs/camera_model.md``, "Layered:
        level spacing and continuous surfaces"); None (the default): every level.
    rel_step : float
        Level steps up to ``max(max_step, rel_step |level|)`` (:func:`sigma_levels`;
        default :data:`MAX_LEVEL_REL_STEP`); 0: uniform steps <= ``max_step``.
    frame_levels : FrameLevels, optional
        When ``img`` is a window of a larger frame: the frame's levels and level boxes
        (:meth:`FrameLevels.of` the whole frame), and ``frame_origin`` the window's (top,
        left) in it; default: this image's own.

    Returns
    -------
    (H, W, 3) float32 ndarray
    """
    H, W = sigma.shape
    img = np.ascontiguousarray(img, dtype=np.float32)
    levels, j, frac, ext = _plan(sigma, depth, focus_distance, max_step, rel_step,
                                 frame_levels, frame_origin)
    nlev = levels.size
    # BLUR_LANES floats of slack: the hidden-background fill's blur reads past a row's end
    acc_flat = aligned_zeros((H * W * 4 + BLUR_LANES,))
    acc = acc_flat[:H * W * 4].reshape(H, W, 4)
    r_max = max(support_radius(abs(float(v)), psf) for v in levels)
    scratch = _Scratch(H, W, r_max, thread_count(threads))
    slabs = None if slab_px is None else _Slabs(acc, slab_px)
    for k in range(nlev - 1, -1, -1):  # far (large signed sigma) to near
        if ext[1, k] < 0:
            continue
        if slabs is not None:
            slabs.enter(float(levels[k]))
        s = abs(float(levels[k]))
        r = support_radius(s, psf)
        # the layer's box reaches one pixel past the PSF's support: its reflect-101 border
        # then mirrors only zeros into the support (grown by r alone, the box's last pixel
        # would see the layer's outermost pixel twice, directly and mirrored)
        y0, y1 = max(ext[0, k] - r - 1, 0), min(ext[1, k] + r + 2, H)
        x0, x1 = max(ext[2, k] - r - 1, 0), min(ext[3, k] + r + 2, W)
        rgba = scratch.box(0, y1 - y0, x1 - x0)
        extract_layer(img, j, frac, k, y0, x0, rgba)
        layer, nonzero = _blur(scratch, y1 - y0, x1 - x0, s, psf, 1)
        if r > 0 and levels[k] < 0:
            _fill_uncovered(scratch, acc_flat, ext[:, k], s, psf)
        if slabs is None:
            composite_over(acc, layer, y0, x0, nonzero)
        else:
            slabs.add(layer, y0, x0)
    if slabs is not None:
        slabs.flush()
    out = np.empty((H, W, 3), np.float32)
    unpremultiply(acc, img, out)
    return out
