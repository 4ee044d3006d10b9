"""PSF names: ``gaussian``, ``disc``, ``polygon:N[,ROTATION]``, ``bank:PATH``.

Parsing only (no Numba), so that a configuration is checked without loading the blur
engine; the kernels are built in :mod:`defocuskit.blur.shapes`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from defocuskit.errors import ConfigError

__all__ = ["POLYGON_MAX_N", "PsfSpec", "parse_psf"]

POLYGON_MAX_N = 64


@dataclass(frozen=True)
class PsfSpec:
    """A parsed PSF name: ``kind`` in gaussian | disc | polygon | bank."""

    kind: str
    blades: int = 0
    rotation_deg: float = 0.0
    path: str = ""

    @property
    def closed_form(self) -> bool:
        """Rendered by the engine's own kernels (every mode), not the kernel table."""
        return self.kind in ("gaussian", "disc")

    @property
    def family(self) -> str:
        """The sigma rule a camera preset applies: the disc's for polygons and banks."""
        return "gaussian" if self.kind == "gaussian" else "disc"


def parse_psf(psf) -> PsfSpec:
    """The :class:`PsfSpec` of a PSF name (see the module doc); a ConfigError if bad."""
    if isinstance(psf, PsfSpec):
        return psf
    text = str(psf).strip()
    kind, _, arg = text.partition(":")
    if kind in ("gaussian", "disc") and not arg:
        return PsfSpec(kind)
    if kind == "polygon":
        parts = [p.strip() for p in arg.split(",")] if arg else []
        try:
            n = int(parts[0])
            rot = float(parts[1]) if len(parts) > 1 else 0.0
        except (IndexError, ValueError):
            n, rot = -1, 0.0
        if len(parts) > 2 or not 3 <= n <= POLYGON_MAX_N or not math.isfinite(rot):
            raise ConfigError(f"psf {text!r}: expected polygon:N[,ROTATION] with N "
                                   f"blades, 3 <= N <= {POLYGON_MAX_N}, and ROTATION in "
                                   "degrees (e.g. polygon:6 or polygon:5,18)")
        return PsfSpec("polygon", blades=n, rotation_deg=rot)
    if kind == "bank":
        if not arg:
            raise ConfigError("psf 'bank:': give the bank's path, bank:PATH.npz or "
                              "bank:FOLDER (16-bit PNGs and index.json)")
        return PsfSpec("bank", path=arg)
    raise ConfigError(f"psf must be gaussian, disc, polygon:N[,ROTATION] or bank:PATH, "
                           f"got {text!r}")
