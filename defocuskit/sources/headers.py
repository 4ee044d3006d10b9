"""Sizes of image and depth files read from their headers, without decoding the pixels.

The folder source checks every pair before it writes anything (mixed sizes, a depth map
the reader would refuse): PNG (IHDR), JPEG (SOF marker), BMP and ``.npy`` headers are read
here; other formats, and headers that are not understood, fall back to the readers in
:mod:`defocuskit.sources._io` (a full decode, and their own error messages).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from defocuskit.errors import SourceError
from defocuskit.sources._io import read_depth_npy, read_depth_png_mm, read_rgb

__all__ = ["depth_file_size", "frame_size"]


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _png_ihdr(fh) -> tuple[int, int, int, int] | None:
    """(H, W, bit depth, colour type) from a PNG's IHDR chunk, or None if not a PNG."""
    head = fh.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    w, h, bit_depth, colour_type = struct.unpack(">IIBB", head[16:26])
    return h, w, bit_depth, colour_type


def _png_size(fh) -> tuple[int, int] | None:
    ihdr = _png_ihdr(fh)
    return None if ihdr is None else ihdr[:2]


def _jpeg_size(fh) -> tuple[int, int] | None:
    if fh.read(2) != b"\xff\xd8":
        return None
    while True:
        byte = fh.read(1)
        if not byte:
            return None
        if byte != b"\xff":
            continue
        marker = fh.read(1)
        while marker == b"\xff":  # fill bytes
            marker = fh.read(1)
        if not marker:
            return None
        m = marker[0]
        if m == 0xD8 or m == 0x01 or 0xD0 <= m <= 0xD7:  # no length field
            continue
        if m == 0xD9 or m == 0xDA:  # end of image, start of scan: no frame header before
            return None
        length = fh.read(2)
        if len(length) < 2:
            return None
        n = struct.unpack(">H", length)[0]
        if m in _JPEG_SOF:
            seg = fh.read(5)
            if len(seg) < 5:
                return None
            h, w = struct.unpack(">HH", seg[1:5])
            return (h, w) if h and w else None  # height 0: given later (DNL), decode
        fh.seek(n - 2, os.SEEK_CUR)


def _bmp_size(fh) -> tuple[int, int] | None:
    head = fh.read(26)
    if len(head) < 26 or head[:2] != b"BM":
        return None
    w, h = struct.unpack("<ii", head[18:26])
    return abs(h), abs(w)


def frame_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image or depth file, read from its header where the format allows.

    PNG, JPEG and BMP headers and ``.npy`` array headers are parsed without decoding the
    pixels; other formats (TIFF), and files whose header is not understood, are decoded.

    Raises
    ------
    SourceError
        If the file cannot be read or decoded (the decoders' messages).
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return _npy_size(path)
    parsers = {".png": _png_size, ".jpg": _jpeg_size, ".jpeg": _jpeg_size, ".bmp": _bmp_size}
    parser = parsers.get(path.suffix.lower())
    if parser is not None:
        try:
            with open(path, "rb") as fh:
                size = parser(fh)
        except OSError as exc:
            raise SourceError(f"image {str(path)!r} cannot be read ({exc.strerror})") from None
        if size is not None:
            return size
    return read_rgb(path).shape[:2]  # a full decode, with its errors


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int] | None:
    """(shape, dtype, bytes needed) of a ``.npy`` file from its header alone, or None if
    the header is not one numpy's 1.0 / 2.0 readers understand (the file is then loaded).

    A sub-array dtype is unfolded as ``np.load`` does: ``(H, W)`` of ``('<f4', (1,))``
    is an ``(H, W, 1)`` float32 array.
    """
    readers = {(1, 0): npy_format.read_array_header_1_0,
               (2, 0): npy_format.read_array_header_2_0}
    try:
        with open(path, "rb") as fh:
            version = npy_format.read_magic(fh)
            if version not in readers:
                return None
            shape, _fortran, dtype = readers[version](fh)
            offset = fh.tell()
    except (ValueError, OSError, EOFError):
        return None
    if dtype.subdtype is not None:
        dtype, sub = dtype.subdtype
        shape = (*shape, *sub)
    return tuple(int(n) for n in shape), dtype, offset + int(np.prod(shape)) * dtype.itemsize


def _npy_size(path: Path) -> tuple[int, int]:
    """(H, W) of a ``.npy`` depth map from its header (the reader decides otherwise)."""
    head = _npy_header(path)
    shape = None if head is None else head[0]
    if shape is not None and len(shape) == 3 and shape[2] == 1:
        shape = shape[:2]
    if shape is None or len(shape) != 2:
        return read_depth_npy(path).shape  # the reader's own error, or the size it reads
    return shape[0], shape[1]


_PNG_COLOUR = {0: "greyscale", 2: "RGB", 3: "palette", 4: "greyscale+alpha", 6: "RGBA"}


def depth_file_size(path: Path, name: str | None = None) -> tuple[int, int]:
    """(H, W) of a depth file that the folder source's ``read_depth`` can read, from its
    header alone: what the header shows the reader would refuse is refused here.

    A PNG must be 16-bit (the IHDR bit depth; an 8-bit or lower one, and so any palette
    PNG, cannot hold millimetres). Its colour type is not refused: a grey PNG, with or
    without alpha, is read as it is, and an RGB(A) one whose three colour channels are
    equal is read as grey; channels that differ are only seen, and refused, when the
    pixels are read. A ``.npy`` must hold a numeric (H, W) or (H, W, 1) array (no bool,
    string or object dtype) and be as long as its header says. The values (millimetres
    in a ``.npy``, metres in a PNG) are checked when the sample is read. A header that is
    not understood falls back to the reader itself (a full decode).

    Raises
    ------
    SourceError
        One line naming the file (``name``, default its path), what is wrong and what is
        expected.
    """
    path = Path(path)
    name = str(path) if name is None else name
    if path.suffix.lower() == ".npy":
        head = _npy_header(path)
        if head is None:
            return read_depth_npy(path).shape  # the reader's own message
        shape, dtype, needed = head
        if dtype.hasobject or not np.issubdtype(dtype, np.number):
            kind = "Python objects" if dtype.hasobject else f"dtype {dtype}"
            raise SourceError(f"folder: depth {name} holds {kind}; expected a numeric "
                              "(float) array (H, W) in metres")
        squeezed = shape[:2] if len(shape) == 3 and shape[2] == 1 else shape
        if len(squeezed) != 2:
            raise SourceError(f"folder: depth {name} has shape {shape}; expected a 2-D array "
                              "(H, W) or (H, W, 1) in metres")
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise SourceError(f"folder: depth {name} cannot be read ({exc.strerror})") from None
        if size < needed:
            raise SourceError(f"folder: depth {name} is truncated ({size} bytes, its header "
                              f"promises {needed}: a partial copy?); replace the file")
        return squeezed[0], squeezed[1]
    try:
        with open(path, "rb") as fh:
            ihdr = _png_ihdr(fh)
    except OSError as exc:
        raise SourceError(f"folder: depth {name} cannot be read ({exc.strerror})") from None
    if ihdr is None:  # not a PNG inside: the reader says what it is, or reads it
        return read_depth_png_mm(path, what="folder: depth").shape
    h, w, bit_depth, colour_type = ihdr
    if bit_depth != 16:
        colour = _PNG_COLOUR.get(colour_type, f"colour type {colour_type}")
        article = "an" if bit_depth == 8 else "a"
        raise SourceError(f"folder: depth {name} is {article} {bit_depth}-bit {colour} PNG; "
                          "depth PNGs must be 16-bit greyscale in millimetres (or save metres "
                          "as .npy)")
    return h, w
