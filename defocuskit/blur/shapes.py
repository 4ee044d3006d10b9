"""PSF specifications and the kernels of the table PSFs: polygonal apertures and banks.

A PSF is named by a string (``--psf``, ``render(psf=...)``):

``gaussian``, ``disc``
    the engine's closed-form PSFs (:mod:`defocuskit.blur.psf`).
``polygon:N[,ROTATION]``
    an N-blade aperture (N >= 3): a regular N-gon with the area of the disc of radius
    ``r = 2 sigma`` (apothem ``a = r sqrt(pi / (N tan(pi / N)))``), its first vertex
    ``ROTATION`` degrees (default 0) counter-clockwise from the image's +x axis (as seen,
    y up). Anti-aliased by the disc's rule with the polygon's signed edge distance
    ``e(p) = max_k (n_k . p) - a`` (``n_k`` the edge normals): ``w = clip(0.5 - e, 0, 1)``,
    normalised to sum 1. As N grows, ``a -> r`` and ``max_k n_k . p -> |p|``, which is
    the disc's ``clip(r + 0.5 - |p|, 0, 1)``. Behind the focal plane the kernel is the
    polygon, in front of it the polygon turned by 180 degrees (the image of the aperture
    is inverted on the other side of the focus; the same for even N).
``bank:PATH``
    a calibrated PSF bank (:class:`KernelBank`): measured kernels indexed by signed CoC.

Polygons and banks are rendered by the kernel-table engine (:mod:`defocuskit.blur.table`),
gather and scatter only.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from defocuskit.blur._common import RenderInputError, kernel_radius
from defocuskit.blur.psf import DISC_MIN_RADIUS_PX, DISC_RADIUS_PER_SIGMA, disc_kernel
from defocuskit.psf_spec import PsfSpec, parse_psf

__all__ = ["COC_PER_SIGMA", "KernelBank", "PsfSpec", "closed_form_kernel", "gaussian_kernel",
           "load_bank", "parse_psf", "polygon_kernel"]

# a table PSF of sigma has the CoC (diameter, pixels) of the disc of the same sigma
COC_PER_SIGMA = 2.0 * DISC_RADIUS_PER_SIGMA


def gaussian_kernel(sigma_px: float) -> np.ndarray:
    """The engine's Gaussian (square support ``ceil(3 sigma)``, sum 1) as an array."""
    s = abs(float(sigma_px))
    if s == 0.0:
        return np.ones((1, 1), np.float32)
    R = kernel_radius(s)
    g = np.exp(-np.arange(-R, R + 1, dtype=np.float64) ** 2 / (2.0 * s * s))
    k = np.outer(g, g)
    return (k / k.sum()).astype(np.float32)


def polygon_kernel(sigma_px: float, blades: int, rotation_deg: float = 0.0) -> np.ndarray:
    """The N-blade PSF of signed ``sigma_px`` (see the module doc), odd square, sum 1."""
    r = DISC_RADIUS_PER_SIGMA * abs(float(sigma_px))
    if r < DISC_MIN_RADIUS_PX:
        return np.ones((1, 1), np.float32)
    half = math.pi / blades
    apothem = r * math.sqrt(math.pi / (blades * math.tan(half)))
    R = int(math.ceil((apothem + 0.5) / math.cos(half)))
    yy, xx = np.mgrid[-R:R + 1, -R:R + 1].astype(np.float64)
    yy = -yy  # image rows grow downwards; angles are taken with y up
    if sigma_px < 0:
        xx, yy = -xx, -yy
    theta = math.radians(rotation_deg) + half + 2.0 * half * np.arange(blades)
    reach = np.max(np.cos(theta)[:, None, None] * xx + np.sin(theta)[:, None, None] * yy,
                   axis=0)
    w = np.clip(0.5 - (reach - apothem), 0.0, 1.0)
    keep = int(np.max(np.abs(np.argwhere(w > 0) - R)))
    w = w[R - keep:R + keep + 1, R - keep:R + keep + 1]
    return (w / w.sum()).astype(np.float32)


@dataclass(frozen=True)
class KernelBank:
    """A calibrated PSF bank, as loaded by :func:`load_bank`.

    ``coc_px`` (K,) ascending signed CoC diameters in pixels (negative: in front of the
    focal plane); ``kernels`` (K, S, S, C) float32, each centred in the odd square S and
    normalised to sum 1 per channel (C = 1 or 3); ``sha256`` of the file; ``signed``:
    whether the file has negative CoC values (else the front side is the stored kernels
    turned by 180 degrees).
    """

    path: str
    coc_px: np.ndarray
    kernels: np.ndarray
    sha256: str
    signed: bool

    def provenance(self) -> dict:
        c = self.coc_px
        return {"path": self.path, "sha256": self.sha256, "n_kernels": int(len(c)),
                "coc_px_range": [float(c.min()), float(c.max())],
                "channels": int(self.kernels.shape[3]), "kernel_size": int(self.kernels.shape[1])}


def _bank_error(path, why: str) -> RenderInputError:
    return RenderInputError(f"PSF bank {path}: {why} (format: an .npz with 'kernels' "
                            "(K, h, w) or (K, h, w, C) and 'coc_px' (K,), or a folder of "
                            "16-bit PNGs with an index.json, docs/camera_model.md)")


_BANKS: dict[tuple, KernelBank] = {}


def _read_bank(p: Path, path) -> tuple[np.ndarray, np.ndarray, str]:
    """The raw kernels, CoC values and sha256 of an .npz or a PNG folder."""
    if p.is_dir():
        from defocuskit.blur.bank_png import read_png_bank  # OpenCV: only for a folder

        return read_png_bank(p, lambda why: _bank_error(path, why))
    raw = p.read_bytes()
    try:
        with np.load(p, allow_pickle=False) as z:
            kernels, coc = np.asarray(z["kernels"]), np.asarray(z["coc_px"])
    except (KeyError, ValueError, OSError) as exc:
        raise _bank_error(path, f"not a bank .npz ({exc})") from None
    return kernels, coc, hashlib.sha256(raw).hexdigest()


def _stamp(p: Path) -> tuple:
    """What identifies a bank's version on disk: its file's (or folder's files') times
    and sizes."""
    files = sorted(p.iterdir()) if p.is_dir() else [p]
    return tuple((f.name, f.stat().st_mtime, f.stat().st_size) for f in files)


def load_bank(path) -> KernelBank:
    """Read and check a bank: an .npz (``kernels``, ``coc_px``) or a folder of 16-bit PNGs
    with ``index.json`` (:mod:`defocuskit.blur.bank_png`); cached per file or folder.

    Checks: odd h and w, finite non-negative kernels each with a positive sum, C in
    (1, 3), CoC values finite and distinct. Kernels are normalised to sum 1 per channel
    and padded (with zeros) to one odd square. Without a CoC of 0 a point (in focus) is
    added at 0.
    """
    p = Path(str(path)).expanduser()
    try:
        key = (str(p.resolve()), _stamp(p))
    except OSError as exc:
        raise _bank_error(path, f"cannot read it ({exc.strerror or exc})") from None
    if key in _BANKS:
        return _BANKS[key]
    kernels, coc, sha = _read_bank(p, path)
    if kernels.ndim == 3:
        kernels = kernels[..., None]
    if kernels.ndim != 4 or kernels.shape[3] not in (1, 3):
        raise _bank_error(path, f"kernels has shape {kernels.shape}")
    K, h, w, C = kernels.shape
    if coc.shape != (K,) or K == 0:
        raise _bank_error(path, f"coc_px has shape {coc.shape}, expected ({K},)")
    if h % 2 == 0 or w % 2 == 0:
        raise _bank_error(path, f"kernels are {h} x {w}; h and w must be odd (centred)")
    kernels = kernels.astype(np.float64)
    coc = coc.astype(np.float64)
    sums = kernels.sum(axis=(1, 2))
    if (not np.isfinite(kernels).all() or (kernels < 0).any() or (sums <= 0).any()
            or not np.isfinite(coc).all() or len(np.unique(coc)) != K):
        raise _bank_error(path, "kernels must be finite, >= 0, each with a positive sum, "
                          "and coc_px finite and distinct")
    kernels = kernels / sums[:, None, None, :]
    S = max(h, w)
    full = np.zeros((K, S, S, C), np.float32)
    full[:, (S - h) // 2:(S + h) // 2, (S - w) // 2:(S + w) // 2] = kernels
    if not (coc == 0).any():
        point = np.zeros((1, S, S, C), np.float32)
        point[0, S // 2, S // 2] = 1.0
        full, coc = np.concatenate([full, point]), np.append(coc, 0.0)
    order = np.argsort(coc)
    bank = KernelBank(path=str(path), coc_px=coc[order], kernels=full[order],
                      sha256=sha, signed=bool((coc < 0).any()))
    _BANKS[key] = bank
    return bank


def closed_form_kernel(kind: str, sigma_px: float) -> np.ndarray:
    """The gaussian or disc PSF as an array (for the kernel table and figures)."""
    return gaussian_kernel(sigma_px) if kind == "gaussian" else disc_kernel(abs(sigma_px))
