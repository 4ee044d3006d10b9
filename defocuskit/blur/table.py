"""The kernel-table engine: a per-pixel PSF picked from a small table of kernels.

Used for the PSFs that have no closed-form kernel (``polygon:N``, ``bank:PATH``) and for
dual-pixel views of any PSF. The table holds kernels at *levels* of signed sigma (pixels;
negative in front of the focal plane):

* generated PSFs (gaussian, disc, polygon): levels every :data:`LEVEL_STEP_PX` pixels over
  the range of the image's sigma, each the PSF of that sigma;
* a bank: its stored CoC values divided by :data:`~defocuskit.blur.shapes.COC_PER_SIGMA`
  (CoC = 4 sigma, the disc of the same sigma); a bank without negative CoC values serves
  the front side with its kernels turned by 180 degrees.

A pixel of signed sigma s between levels ``l_i <= s < l_{i+1}`` gets the kernel
``(1 - f) K_i + f K_{i+1}``, ``f = (s - l_i) / (l_{i+1} - l_i)`` (linear interpolation of
the kernels, i.e. of the two blurs); beyond the table's ends the end kernel. Every kernel
sums to 1 per channel, so the interpolated one does too.

Dual-pixel halves (:func:`split_halves`): each kernel split along its vertical axis,
the centre column shared half and half, *not* renormalised, so left + right is the whole
kernel. Behind the focal plane (s > 0) the left view takes the taps left of the centre
(``dx < 0``), in front of it (s < 0) the taps right of it: the two views' images move
apart in opposite directions on the two sides of the focus.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from defocuskit.blur._jit import compile_kernel, run_threads, thread_count
from defocuskit.blur._table_kernels import (
    TABLE_GATHER_SIGNATURE,
    TABLE_SCATTER_SIGNATURE,
    table_gather_rows,
    table_scatter_rows,
)
from defocuskit.blur.shapes import (
    COC_PER_SIGMA,
    PsfSpec,
    closed_form_kernel,
    load_bank,
    polygon_kernel,
)

__all__ = ["LEVEL_STEP_PX", "KernelTable", "blur_table", "build_table", "split_halves"]

LEVEL_STEP_PX = 0.1  # level spacing of a generated table, sigma pixels


@dataclass(frozen=True)
class KernelTable:
    """``levels`` (L,) ascending signed sigma; ``kernels`` (L, S, S, C) float32, S odd;
    ``radius`` (L,) int64, the half-width of each kernel's nonzero taps."""

    levels: np.ndarray
    kernels: np.ndarray
    radius: np.ndarray

    def lookup(self, signed_sigma: np.ndarray):
        """Per pixel: the two entries and the weight of the second (see the module doc)."""
        lv = self.levels.astype(np.float32)
        s = np.asarray(signed_sigma, np.float32)
        i = np.clip(np.searchsorted(lv, s, side="right") - 1, 0, len(lv) - 1)
        j = np.minimum(i + 1, len(lv) - 1)
        gap = lv[j] - lv[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(gap > 0, (s - lv[i]) / gap, 0.0)
        f = np.clip(f, 0.0, 1.0).astype(np.float32)
        return (np.ascontiguousarray(i, np.int32), np.ascontiguousarray(j, np.int32),
                np.ascontiguousarray(f))


def _radius(kernels: np.ndarray) -> np.ndarray:
    c0 = kernels.shape[1] // 2
    out = np.zeros(len(kernels), np.int64)
    for n, k in enumerate(kernels):
        nz = np.argwhere(k.max(axis=2) > 0)
        out[n] = int(np.abs(nz - c0).max()) if len(nz) else 0
    return out


def _stack(kernels: list[np.ndarray]) -> np.ndarray:
    S = max(k.shape[0] for k in kernels)
    out = np.zeros((len(kernels), S, S, 1), np.float32)
    for n, k in enumerate(kernels):
        o = (S - k.shape[0]) // 2
        out[n, o:o + k.shape[0], o:o + k.shape[1], 0] = k
    return out


@functools.lru_cache(maxsize=32)
def _generated(spec: PsfSpec, lo_step: int, hi_step: int) -> KernelTable:
    levels = np.arange(lo_step, hi_step + 1, dtype=np.float64) * LEVEL_STEP_PX
    if spec.kind == "polygon":
        ks = [polygon_kernel(s, spec.blades, spec.rotation_deg) for s in levels]
    else:
        ks = [closed_form_kernel(spec.kind, s) for s in levels]
    kernels = _stack(ks)
    return KernelTable(levels, kernels, _radius(kernels))


def _bank_table(path: str) -> KernelTable:
    bank = load_bank(path)
    levels, kernels = bank.coc_px / COC_PER_SIGMA, bank.kernels
    if not bank.signed:
        front = levels > 0
        levels = np.concatenate([-levels[front][::-1], levels])
        kernels = np.concatenate([kernels[front][::-1, ::-1, ::-1], kernels])
    kernels = np.ascontiguousarray(kernels, np.float32)
    return KernelTable(levels, kernels, _radius(kernels))


def build_table(spec: PsfSpec, signed_sigma: np.ndarray) -> KernelTable:
    """The table of ``spec`` for an image of these signed sigmas (pixels)."""
    if spec.kind == "bank":
        return _bank_table(spec.path)
    s = np.asarray(signed_sigma, np.float64)
    lo = math.floor(float(s.min()) / LEVEL_STEP_PX) if s.size else 0
    hi = math.ceil(float(s.max()) / LEVEL_STEP_PX) if s.size else 0
    return _generated(spec, min(lo, 0), max(hi, 0))


def split_halves(table: KernelTable) -> tuple[KernelTable, KernelTable]:
    """The dual-pixel (left, right) tables of ``table`` (see the module doc)."""
    S = table.kernels.shape[1]
    dx = np.arange(S) - S // 2
    behind = np.where(dx < 0, 1.0, np.where(dx == 0, 0.5, 0.0)).astype(np.float32)
    front = behind[::-1].copy()
    mask = np.where(table.levels[:, None] >= 0, behind[None, :], front[None, :])
    left = np.ascontiguousarray(table.kernels * mask[:, None, :, None], np.float32)
    right = np.ascontiguousarray(table.kernels * (1.0 - mask)[:, None, :, None], np.float32)
    return (KernelTable(table.levels, left, table.radius),
            KernelTable(table.levels, right, table.radius))


def _pad(img: np.ndarray, pad: int) -> np.ndarray:
    return np.ascontiguousarray(np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="reflect"),
                                np.float32)


def blur_table(img: np.ndarray, signed_sigma: np.ndarray, table: KernelTable, *,
               mode: str = "gather", norm: KernelTable | None = None,
               threads: int | None = None) -> np.ndarray:
    """Blur ``img`` (H, W, 3) float32 with the per-pixel kernels of ``table``.

    ``mode``: ``gather`` (each output pixel under its own PSF, no normalisation needed:
    every kernel sums to 1, or is a part of one that does) or ``scatter`` (each source
    spreads its own PSF; divided by the weight of ``norm``'s kernels received, ``norm``
    defaulting to ``table``: give the whole table when ``table`` holds halves).
    """
    lo, hi, frac = table.lookup(signed_sigma)
    R = int(max(table.radius[lo].max(), table.radius[hi].max())) if lo.size else 0
    n = thread_count(threads)
    out = np.empty(img.shape, np.float32)
    if mode == "gather":
        compile_kernel(table_gather_rows, TABLE_GATHER_SIGNATURE)
        run_threads(table_gather_rows, n, _pad(img, R), lo, hi, frac, table.kernels,
                    table.radius, np.int64(R), out)
        return out
    compile_kernel(table_scatter_rows, TABLE_SCATTER_SIGNATURE)
    norm = table if norm is None else norm

    def padded(a):
        return np.ascontiguousarray(np.pad(a, R, mode="reflect") if R else a)

    run_threads(table_scatter_rows, n, _pad(img, R), padded(lo), padded(hi), padded(frac),
                table.kernels, norm.kernels, np.int64(R), np.int64(R), out)
    return out
