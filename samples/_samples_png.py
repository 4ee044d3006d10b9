"""A small, deterministic PNG encoder for ``make_samples.py``.

The filter choice per row is pure integer arithmetic and the compressor is zlib at a fixed
level, so the same pixels give the same bytes wherever the same zlib version runs (the
version is recorded in the manifest). Writes 8-bit RGB and 16-bit greyscale.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["png_bytes", "write_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _filter_rows(raw: np.ndarray, bpp: int) -> np.ndarray:
    """Apply the best of the five PNG filters to each row (min sum of |signed residual|).

    raw : (H, L) uint8, the scanlines; returns (H, 1 + L) uint8 with the filter type first.
    """
    x = raw.astype(np.int32)
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    b = np.zeros_like(x)
    b[1:] = x[:-1]
    c = np.zeros_like(x)
    c[1:, bpp:] = x[:-1, :-bpp]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    cands = np.stack([x, x - a, x - b, x - (a + b) // 2, x - paeth]) & 0xFF   # (5, H, L)
    signed = np.where(cands > 127, 256 - cands, cands)
    choice = np.argmin(signed.sum(axis=2), axis=0)                          # (H,)
    rows = cands[choice, np.arange(x.shape[0])].astype(np.uint8)
    return np.concatenate([choice.astype(np.uint8)[:, None], rows], axis=1)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an image as PNG bytes.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray (RGB) or (H, W) uint16 ndarray (greyscale, e.g. mm)

    Returns
    -------
    bytes
        A complete PNG file (IHDR, one IDAT compressed with zlib level 9, IEND).
    """
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        h, w = image.shape[:2]
        raw, bpp, depth_bits, colour_type = image.reshape(h, w * 3), 3, 8, 2
    elif image.dtype == np.uint16 and image.ndim == 2:
        h, w = image.shape
        raw = image.astype(">u2").view(np.uint8).reshape(h, w * 2)
        bpp, depth_bits, colour_type = 2, 16, 0
    else:
        raise ValueError(f"png_bytes: expected (H, W, 3) uint8 or (H, W) uint16, "
                         f"got {image.shape} {image.dtype}")
    filtered = _filter_rows(np.ascontiguousarray(raw), bpp)
    ihdr = struct.pack(">IIBBBBB", w, h, depth_bits, colour_type, 0, 0, 0)
    idat = zlib.compress(filtered.tobytes(), 9)
    return _SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def write_png(path, image: np.ndarray) -> int:
    """Write ``image`` (see :func:`png_bytes`) to ``path``; return the number of bytes."""
    data = png_bytes(image)
    with open(path, "wb") as fh:
        fh.write(data)
    return len(data)
