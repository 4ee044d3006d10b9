"""Procedural textures and a portable random stream for the procedural indoor scenes.

Used by :mod:`defocuskit.sources._procedural_scenes`, which both the ``procedural`` source
and ``samples/make_samples.py`` (the bundled samples) render with.

Everything here uses only integer arithmetic and the IEEE-exact float operations
(+, -, *, /, floor, sqrt), never sin/exp/log or numpy's random ``Generator``: their
results may differ in the last bit between CPUs, libm builds or numpy versions, and the
committed sample files must be reproducible byte for byte.

Textures map surface coordinates ``(s, t)`` in metres to a value in [0, 1] that mixes the
material's two colours.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SplitMix64", "TEXTURES", "texture_value", "value_noise", "fbm"]

_MASK = (1 << 64) - 1


class SplitMix64:
    """Deterministic scalar random stream (SplitMix64) over Python integers.

    Parameters
    ----------
    seed : int
        Any non-negative integer; the same seed gives the same stream on every platform.
    """

    def __init__(self, seed: int):
        self.state = seed & _MASK

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def uniform(self, low: float, high: float, *, ndigits: int = 3) -> float:
        """A float in [low, high), rounded to ``ndigits`` decimals (exact in the manifest)."""
        return round(low + (high - low) * ((self.next_u64() >> 11) * 2.0**-53), ndigits)

    def integer(self, low: int, high: int) -> int:
        """An integer in [low, high)."""
        return low + self.next_u64() % (high - low)

    def choice(self, items):
        return items[self.integer(0, len(items))]


def _hash(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Hash integer lattice coordinates to floats in [0, 1) (splitmix finaliser, wrapping)."""
    h = (ix.astype(np.int64).view(np.uint64) * np.uint64(0x9E3779B185EBCA87)
         ^ iy.astype(np.int64).view(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
         ^ np.uint64((seed * 0x165667B19E3779F9) & _MASK))
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    h = h ^ (h >> np.uint64(31))
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _smooth(f: np.ndarray) -> np.ndarray:
    return f * f * (3.0 - 2.0 * f)


def value_noise(s: np.ndarray, t: np.ndarray, seed: int) -> np.ndarray:
    """Bilinear value noise with smoothstep weights on the unit lattice; values in [0, 1)."""
    fs, ft = np.floor(s), np.floor(t)
    ws, wt = _smooth(s - fs), _smooth(t - ft)
    i, j = fs.astype(np.int64), ft.astype(np.int64)
    v00, v10 = _hash(i, j, seed), _hash(i + 1, j, seed)
    v01, v11 = _hash(i, j + 1, seed), _hash(i + 1, j + 1, seed)
    top = v00 + (v10 - v00) * ws
    bottom = v01 + (v11 - v01) * ws
    return top + (bottom - top) * wt


def fbm(s: np.ndarray, t: np.ndarray, seed: int, *, octaves: int = 4) -> np.ndarray:
    """Fractal sum of ``octaves`` value-noise layers (each half the amplitude), in [0, 1)."""
    total = np.zeros_like(s)
    amp, norm, freq = 1.0, 0.0, 1.0
    for k in range(octaves):
        total += amp * value_noise(s * freq, t * freq, seed + 7919 * k)
        norm += amp
        amp *= 0.5
        freq *= 2.0
    return total / norm


def _checkers(s, t, p, seed):
    cell = (np.floor(s / p["scale_m"]) + np.floor(t / p["scale_m"])).astype(np.int64)
    return (cell & 1).astype(np.float64)


def _stripes(s, t, p, seed):
    a, b = p["direction"]
    norm = np.sqrt(a * a + b * b)
    x = (a * s + b * t) / (norm * p["scale_m"])
    tri = np.abs(2.0 * (x - np.floor(x)) - 1.0)
    return _smooth(np.clip((tri - 0.35) / 0.3, 0.0, 1.0))


def _noise(s, t, p, seed):
    v = fbm(s / p["scale_m"], t / p["scale_m"], seed)
    return np.clip((v - 0.2) / 0.6, 0.0, 1.0)


def _bricks(s, t, p, seed, *, mortar=0.08):
    w, h = p["scale_m"] * 2.0, p["scale_m"]
    row = np.floor(t / h)
    su = s / w + 0.5 * (row.astype(np.int64) & 1)
    col = np.floor(su)
    fu, fv = su - col, t / h - row
    tint = 0.15 + 0.35 * _hash(col, row, seed)
    edge = (fu < mortar * 0.5) | (fv < mortar)
    return np.where(edge, 1.0, tint)


def _planks(s, t, p, seed):
    h = p["scale_m"]
    row = np.floor(t / h)
    su = s / (6.0 * h) + _hash(row, row, seed)
    col = np.floor(su)
    grain = fbm(su * 24.0, (t / h) * 1.5, seed + 11, octaves=3)
    gap = ((su - col) < 0.01) | ((t / h - row) < 0.05)
    return np.where(gap, 1.0, 0.1 + 0.5 * grain + 0.2 * _hash(col, row, seed + 3))


def _text(s, t, p, seed):
    """Rows of pseudo-glyphs: 3x5 random bitmaps per character cell, with word gaps."""
    cw = p["scale_m"]
    ch = 1.6 * cw
    cs, ct = np.floor(s / cw), np.floor(t / ch)
    bx = np.floor((s / cw - cs) * 5.0) - 1.0          # glyph columns 0..2 inside a margin
    by = np.floor((t / ch - ct) * 8.0) - 1.0          # glyph rows 0..4, then line spacing
    inside = (bx >= 0) & (bx <= 2) & (by >= 0) & (by <= 4)
    blank = _hash(cs, ct, seed + 5) < 0.18
    bit = _hash(cs * 16.0 + bx, ct * 16.0 + by, seed) < 0.55
    return np.where(inside & bit & ~blank, 1.0, 0.0)


TEXTURES = {
    "checkers": _checkers,
    "stripes": _stripes,
    "noise": _noise,
    "bricks": _bricks,
    "planks": _planks,
    "text": _text,
}


def texture_value(s: np.ndarray, t: np.ndarray, material: dict) -> np.ndarray:
    """Evaluate ``material["texture"]`` at surface coordinates (metres); (N,) float64 in [0, 1].

    A faint noise layer is added to every texture so that no surface is perfectly flat.
    """
    seed = material["seed"]
    s = s + material["offset_m"][0]
    t = t + material["offset_m"][1]
    base = TEXTURES[material["texture"]](s, t, material, seed)
    grain = value_noise(s / 0.07, t / 0.07, seed + 101)
    return np.clip(0.88 * base + 0.12 * grain, 0.0, 1.0)
