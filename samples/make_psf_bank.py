"""Make a PSF bank (.npz) from photographs of a point light, and the example bank.

The procedure (docs/camera_model.md, "Calibrated PSF bank"): for each photograph of a
small point light (an LED behind a pinhole) at a known distance, with the focus and
aperture of the camera to model,

1. subtract the dark level (the median of the photograph: a point light fills little of it)
   and set what is left below 0 to 0;
2. crop an odd square centred on the light's centroid, large enough for the whole blur;
3. give its signed CoC in pixels from the thin lens (``defocuskit.Camera.coc_px`` of the
   distance, negative when the light is nearer than the focus distance);

then save ``kernels`` (K, h, w) or (K, h, w, 3) and ``coc_px`` (K,) with ``numpy.savez``.
The bank normalises each kernel on load.

Run as a script, it writes ``samples/psf_bank_example.npz``: seven kernels of a 7-blade
aperture with a soft rim, made into "photographs" (a dark level and a little noise) and
put through the steps above, the way a measured bank would be. Usage::

    python samples/make_psf_bank.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from defocuskit.blur.shapes import polygon_kernel


def kernel_from_photo(photo: np.ndarray, half: int) -> np.ndarray:
    """Steps 1 and 2: (H, W) or (H, W, C) photograph -> (2 half + 1)-square kernel."""
    img = np.asarray(photo, np.float64)
    img = np.clip(img - np.median(img, axis=(0, 1)), 0.0, None)
    lum = img if img.ndim == 2 else img.mean(axis=2)
    ys, xs = np.indices(lum.shape)
    cy = int(round(float((ys * lum).sum() / lum.sum())))
    cx = int(round(float((xs * lum).sum() / lum.sum())))
    return img[cy - half:cy + half + 1, cx - half:cx + half + 1]


def example_bank(seed: int = 0) -> dict[str, np.ndarray]:
    """The example bank's arrays (see the module doc)."""
    rng = np.random.default_rng(seed)
    coc = np.array([-12.0, -6.0, -2.0, 2.0, 6.0, 12.0, 20.0])
    half = 13
    kernels = []
    for c in coc:
        k = polygon_kernel(c / 4.0, 7, 10.0).astype(np.float64)
        k = k * (1.0 + 0.6 * (k > 0) * _rim(k))  # brighter towards the rim
        photo = np.full((64, 64), 0.02) + rng.normal(0.0, 1e-4, (64, 64))
        r = k.shape[0] // 2
        photo[32 - r:32 + r + 1, 30 - r:30 + r + 1] += k / k.max()
        kernels.append(kernel_from_photo(photo, half))
    return {"kernels": np.stack(kernels).astype(np.float32), "coc_px": coc}


def _rim(k: np.ndarray) -> np.ndarray:
    r = k.shape[0] // 2
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    d = np.hypot(yy, xx)
    return d / max(float(d[k > 0].max()), 1.0)


if __name__ == "__main__":
    out = Path(__file__).with_name("psf_bank_example.npz")
    np.savez(out, **example_bank())
    print(f"wrote {out}")
