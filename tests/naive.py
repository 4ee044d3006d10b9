"""Plain, obviously-correct references for the fast kernels (slow: small images only).

Written the textbook way, one ``exp`` per tap (the whole 2-D window at once), with
explicit reflect-101 indexing, so they share no code and no trick with the Numba kernels
they check.
"""

import functools
import math

import numpy as np

__all__ = ["reflect101", "gaussian_window", "naive_gather", "naive_scatter", "gaussian_reference",
           "disc_weights", "naive_disc_gather", "naive_disc_scatter", "disc_reference"]


def reflect101(i: int, n: int) -> int:
    """Index ``i`` mirrored into ``[0, n)`` without repeating the edge (cv2 REFLECT_101)."""
    if n == 1:
        return 0
    period = 2 * n - 2
    i = abs(i) % period
    return period - i if i >= n else i


@functools.lru_cache(maxsize=4096)
def gaussian_window(s: float):
    """``(w, r)``: the weights exp(-(dx^2 + dy^2) / (2 s^2)) for |dx|, |dy| <= r = ceil(3 s).

    Unnormalised; s = 0 gives the single weight 1. Cached: references call it per pixel.
    """
    r = math.ceil(3 * s)
    if s == 0:
        return np.ones((1, 1)), 0
    d = np.arange(-r, r + 1, dtype=np.float64)
    w = np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2 * s * s))
    w.flags.writeable = False
    return w, r


def naive_gather(img, sigma):
    """out(p) = sum_q w img(q) / sum_q w, w = exp(-|q-p|^2 / (2 s_p^2)), |q-p|_inf <= 3 s_p."""
    H, W, _ = img.shape
    out = np.zeros((H, W, 3), np.float64)
    for y in range(H):
        for x in range(W):
            w, r = gaussian_window(float(sigma[y, x]))
            rows = [reflect101(y + d, H) for d in range(-r, r + 1)]
            cols = [reflect101(x + d, W) for d in range(-r, r + 1)]
            window = img[np.ix_(rows, cols)].astype(np.float64)  # (2r + 1, 2r + 1, 3)
            out[y, x] = (w[..., None] * window).sum(axis=(0, 1)) / w.sum()
    return out


def naive_scatter(img, sigma):
    """Each source (including reflect-101 border copies) spreads its normalised PSF."""
    H, W, _ = img.shape
    pad = math.ceil(3 * float(sigma.max()))
    acc = np.zeros((H, W, 3))
    wsum = np.zeros((H, W))
    for ys in range(-pad, H + pad):
        for xs in range(-pad, W + pad):
            sy, sx = reflect101(ys, H), reflect101(xs, W)
            w, r = gaussian_window(float(sigma[sy, sx]))
            # the part of the source's window that lands on the image
            y0, y1 = max(ys - r, 0), min(ys + r, H - 1)
            x0, x1 = max(xs - r, 0), min(xs + r, W - 1)
            if y0 > y1 or x0 > x1:
                continue
            part = w[y0 - ys + r:y1 - ys + r + 1, x0 - xs + r:x1 - xs + r + 1] / w.sum()
            acc[y0:y1 + 1, x0:x1 + 1] += part[..., None] * img[sy, sx]
            wsum[y0:y1 + 1, x0:x1 + 1] += part
    return acc / wsum[..., None]


def gaussian_reference(img, s):
    """Constant-sigma blur by SciPy: separable, truncated at ceil(3 s), mirror = reflect-101."""
    from scipy.ndimage import gaussian_filter

    r = math.ceil(3 * s)
    return np.stack([gaussian_filter(img[..., c].astype(np.float64), s, mode="mirror",
                                     truncate=r / s) for c in range(3)], axis=-1)


def disc_weights(s):
    """The disc PSF of sigma ``s`` as a 2-D array (unnormalised) and its half-width.

    Radius r = 2 s; w(d) = clip(r + 0.5 - d, 0, 1), d = Euclidean distance from the centre;
    r < 0.5 is no blur (a single tap). The window is one pixel wider than the support.
    """
    r = 2.0 * float(s)
    if r < 0.5:
        return np.ones((1, 1)), 0
    half = math.ceil(r + 0.5)
    offs = range(-half, half + 1)
    ker = np.array([[min(max(r + 0.5 - math.sqrt(dx * dx + dy * dy), 0.0), 1.0)
                     for dx in offs] for dy in offs])
    return ker, half


def naive_disc_gather(img, sigma):
    """out(p) = sum_q w_p(q - p) img(q) / sum_q w_p(q - p), w_p the disc of sigma(p)."""
    H, W, _ = img.shape
    out = np.zeros((H, W, 3), np.float64)
    for y in range(H):
        for x in range(W):
            ker, half = disc_weights(sigma[y, x])
            acc = np.zeros(3)
            for i, dy in enumerate(range(-half, half + 1)):
                for k, dx in enumerate(range(-half, half + 1)):
                    acc += ker[i, k] * img[reflect101(y + dy, H), reflect101(x + dx, W)]
            out[y, x] = acc / ker.sum()
    return out


def naive_disc_scatter(img, sigma):
    """Each source (including reflect-101 border copies) spreads its normalised disc."""
    H, W, _ = img.shape
    pad = math.ceil(2 * float(sigma.max()) + 0.5)
    acc = np.zeros((H, W, 3))
    wsum = np.zeros((H, W))
    for ys in range(-pad, H + pad):
        for xs in range(-pad, W + pad):
            sy, sx = reflect101(ys, H), reflect101(xs, W)
            ker, half = disc_weights(sigma[sy, sx])
            ker = ker / ker.sum()
            for i, dy in enumerate(range(-half, half + 1)):
                for k, dx in enumerate(range(-half, half + 1)):
                    ty, tx = ys + dy, xs + dx
                    if 0 <= ty < H and 0 <= tx < W:
                        acc[ty, tx] += ker[i, k] * img[sy, sx]
                        wsum[ty, tx] += ker[i, k]
    return acc / wsum[..., None]


def disc_reference(img, s):
    """Constant-sigma disc blur by SciPy's correlate (mirror = reflect-101)."""
    from scipy.ndimage import correlate

    ker, _ = disc_weights(s)
    ker = ker / ker.sum()
    return np.stack([correlate(img[..., c].astype(np.float64), ker, mode="mirror")
                     for c in range(3)], axis=-1)
