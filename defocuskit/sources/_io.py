"""Shared loading helpers for the dataset readers: images, depth files, pairing (MATLAB
files: :mod:`defocuskit.sources._mat`).

Every helper turns a failure (missing file, undecodable bytes, wrong variables) into one
:class:`~defocuskit.errors.SourceError` that names the file, so the readers need no
error handling of their own for these cases.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from defocuskit.errors import SourceError

__all__ = [
    "IMAGE_EXTS",
    "natural_key",
    "find_child_dir",
    "files_by_stem",
    "read_rgb",
    "read_rgb_float",
    "read_depth_png",
    "read_depth_png_mm",
    "check_complete_image",
    "read_depth_npy",
    "invalid_to_nan",
]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def natural_key(text: str) -> list:
    """Sort key that orders embedded integers numerically (``scene_2`` before ``scene_10``)."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", text)]


def find_child_dir(parent: Path, name: str) -> Path | None:
    """The sub-folder of ``parent`` called ``name``, matched case-insensitively, or None."""
    exact = parent / name
    if exact.is_dir():
        return exact
    if not parent.is_dir():
        return None
    for child in parent.iterdir():
        if child.is_dir() and child.name.lower() == name.lower():
            return child
    return None


def files_by_stem(folder: Path, exts: tuple[str, ...], *, prefix: str = "") -> dict[str, Path]:
    """Map stem -> file for the files of ``folder`` whose extension is in ``exts``.

    Extensions match case-insensitively (``.JPG`` and ``.jpg`` alike). ``prefix`` is
    stripped from the stem and files without it are ignored. Two files with the same
    stem (``a.jpg`` and ``a.PNG``) are ambiguous and raise SourceError.
    """
    out: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.suffix.lower() not in exts or not f.stem.startswith(prefix):
            continue
        stem = f.stem[len(prefix):]
        if stem in out:
            raise SourceError(f"{folder}: two files share the stem {stem!r} "
                              f"({out[stem].name} and {f.name}); keep one of them")
        out[stem] = f
    return out


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise SourceError(f"file {str(path)!r} does not exist")


def check_complete_image(path: Path, data: bytes) -> None:
    """Refuse a truncated JPEG or PNG (OpenCV decodes what is there and only warns).

    A JPEG must end with its end-of-image marker (FF D9, trailing zero padding allowed);
    a PNG must hold its IEND chunk near the end.
    """
    head = data[:8]
    if head[:3] == b"\xff\xd8\xff":
        if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
            raise SourceError(f"image {str(path)!r} is truncated (the JPEG has no end-of-image "
                              "marker; a partial download or copy?); replace the file")
    elif head == b"\x89PNG\r\n\x1a\n" and b"IEND" not in data[-64:]:
        raise SourceError(f"image {str(path)!r} is truncated (the PNG has no IEND chunk; "
                          "a partial download or copy?); replace the file")


_JPEG_HEAD = b"\xff\xd8\xff"
_TIFF_HEADS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_STDERR_LOCK = threading.Lock()  # one fd-2 redirection at a time in a process


@contextlib.contextmanager
def _stderr_captured(into: list[str]):
    """Redirect file descriptor 2 to a temporary file for the block; its text is appended
    to ``into``. libjpeg reports corrupt data (and goes on decoding) only there."""
    with _STDERR_LOCK, tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            into.append(tmp.read().decode("utf-8", "replace"))


def _read_image_bytes(path: Path, what: str) -> bytes:
    """The file's bytes, refused if missing, unreadable, empty or truncated."""
    _require_file(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{what} {str(path)!r} cannot be read ({exc.strerror})") from None
    if not data:
        raise SourceError(f"{what} {str(path)!r} is empty (0 bytes; an interrupted copy?); "
                          "replace the file")
    check_complete_image(path, data)
    return data


def _imdecode(path: Path, data: bytes, flags: int, what: str) -> np.ndarray:
    """Decode ``data``; a JPEG with any libjpeg warning (corrupt scan data, which OpenCV
    decodes anyway into wrong pixels) and every other failure is one SourceError."""
    import cv2  # OpenCV (heavy): only when images are read

    buf = np.frombuffer(data, np.uint8)
    messages: list[str] = []
    try:
        if data[:3] == _JPEG_HEAD:
            with _stderr_captured(messages):
                image = cv2.imdecode(buf, flags)
        else:
            image = cv2.imdecode(buf, flags)
    except cv2.error:
        image = None
    warning = next((ln.strip() for ln in "".join(messages).splitlines() if ln.strip()), "")
    if warning:
        raise SourceError(f"{what} {str(path)!r} is corrupt (the JPEG decoder reported: "
                          f"{warning[:200]}); replace the file")
    if image is None:
        raise SourceError(f"{what} {str(path)!r} could not be decoded (corrupt or not an "
                          "image)")
    return image


def _decode(path: Path, flags: int, what: str) -> np.ndarray:
    """Read, check, decode; every failure is one SourceError naming ``path``."""
    return _imdecode(path, _read_image_bytes(path, what), flags, what)


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB (the one image reader of the readers).

    Returns
    -------
    (H, W, 3) uint8 ndarray
        Grey images are replicated to three channels, alpha is dropped, 16-bit images are
        reduced to 8 bits, a float TIFF in [0, 1] is scaled by 255 and rounded. The EXIF
        orientation is ignored so that pixels stay on the stored grid (the grid the depth
        map was registered to).

    Raises
    ------
    SourceError
        If the file is missing, empty, truncated (JPEG or PNG), corrupt (a JPEG the
        decoder warns about) or cannot be decoded, or a float image outside [0, 1].
    """
    import cv2  # OpenCV (heavy): only when images are read

    path = Path(path)
    data = _read_image_bytes(path, "image")
    flags = cv2.IMREAD_IGNORE_ORIENTATION
    if data[:4] in _TIFF_HEADS:  # OpenCV's colour conversion cannot read float samples
        raw = _imdecode(path, data, cv2.IMREAD_UNCHANGED | flags, "image")
        if raw.dtype.kind == "f":
            rgb = _float_rgb(path, _to_rgb(raw))
            return np.round(rgb * np.float32(255)).astype(np.uint8)
    bgr = _imdecode(path, data, cv2.IMREAD_COLOR | flags, "image")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _to_rgb(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB from a decoded BGR(A) or grey image: grey repeated, alpha dropped."""
    if img.ndim == 2:
        img = img[..., None]
    img = img[..., :3] if img.shape[2] >= 3 else np.repeat(img[..., :1], 3, axis=2)
    return np.ascontiguousarray(img[..., ::-1])  # BGR -> RGB


def _float_rgb(path: Path, img: np.ndarray) -> np.ndarray:
    """A float image's values checked to lie in [0, 1], as float32."""
    finite = np.isfinite(img).all()
    lo, hi = float(np.nanmin(img)), float(np.nanmax(img))
    if not finite or lo < -1e-3 or hi > 1 + 1e-3:
        raise SourceError(f"image {str(path)!r}: a float image must hold values in [0, 1], "
                          f"got {lo:.3g}..{hi:.3g}" + ("" if finite else
                                                       " and non-finite values"))
    return np.clip(img, 0, 1).astype(np.float32)


def read_rgb_float(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB float32 in [0, 1], by its stored dtype.

    8-bit images are divided by 255, 16-bit by 65535; float images (e.g. a 32-bit TIFF)
    are taken as they are and must lie in [0, 1]. Grey is repeated, alpha dropped.

    Raises
    ------
    SourceError
        If the file is missing, empty, truncated, corrupt, undecodable, of another dtype,
        or a float image outside [0, 1].
    """
    import cv2  # OpenCV (heavy): only when images are read

    path = Path(path)
    img = _to_rgb(_decode(path, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION,
                          "image"))
    if img.dtype == np.uint8:
        return img.astype(np.float32) / np.float32(255)
    if img.dtype == np.uint16:
        return img.astype(np.float32) / np.float32(65535)
    if img.dtype.kind == "f":
        return _float_rgb(path, img)
    raise SourceError(f"image {str(path)!r}: unsupported pixel type {img.dtype}; expected "
                      "8- or 16-bit integers or float in [0, 1]")


def read_depth_png_mm(path: str | os.PathLike, *, what: str = "depth map") -> np.ndarray:
    """Read a 16-bit depth PNG in millimetres as metres (the one decoder of that format).

    Returns
    -------
    depth : (H, W) float32 ndarray, metres; a stored 0 (invalid) becomes NaN.

    Raises
    ------
    SourceError
        If the file is missing, truncated, or not a 16-bit single-channel PNG (an 8-bit
        PNG is refused: millimetres do not fit in 8 bits; save metres as .npy instead).
    """
    raw = read_depth_png(path)
    if raw.dtype != np.uint16:
        raise SourceError(f"{what} {str(path)!r} is an {raw.dtype} PNG; depth PNGs must be "
                          "16-bit in millimetres (or save metres as .npy)")
    depth = raw.astype(np.float32) / np.float32(1000.0)
    depth[raw == 0] = np.nan
    return depth


def read_depth_png(path: str | os.PathLike) -> np.ndarray:
    """Read a single-channel depth PNG without any conversion.

    Returns
    -------
    (H, W) uint8 or uint16 ndarray
        The stored integer codes; the caller applies the metric scale. A three-channel
        PNG whose channels are identical is accepted (its first channel is returned).
    """
    import cv2  # OpenCV (heavy): only when images are read

    raw = _decode(Path(path), cv2.IMREAD_UNCHANGED, "depth map")
    if raw.ndim == 3:
        if raw.shape[2] < 3 or not (np.array_equal(raw[..., 0], raw[..., 1])
                                    and np.array_equal(raw[..., 0], raw[..., 2])):
            raise SourceError(f"depth map {str(path)!r} has {raw.shape[2]} different channels; "
                              "expected a single-channel depth image")
        raw = raw[..., 0]
    if raw.dtype not in (np.uint8, np.uint16):
        raise SourceError(f"depth map {str(path)!r} has dtype {raw.dtype}; "
                          "expected an 8- or 16-bit PNG")
    return raw


def read_depth_npy(path: str | os.PathLike) -> np.ndarray:
    """Read a 2-D ``.npy`` depth map in metres as float32 (invalid values untouched)."""
    path = Path(path)
    _require_file(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise SourceError(f"depth file {str(path)!r} is not a readable .npy array: {exc}") from exc
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if np.iscomplexobj(arr):
        raise SourceError(f"depth file {str(path)!r} holds complex numbers ({arr.dtype}); "
                          "expected a real 2-D array (H, W) in metres")
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise SourceError(f"depth file {str(path)!r}: expected a 2-D numeric array (H, W) "
                          f"in metres, got shape {arr.shape} dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False)


def invalid_to_nan(depth: np.ndarray, *, max_depth: float | None = None) -> np.ndarray:
    """Depth as float32 metres with NaN wherever it is not a finite positive value.

    Parameters
    ----------
    depth : (H, W) ndarray, metres
    max_depth : float, optional
        Values strictly above it (metres) are also invalid (Make3D's laser limit).

    Returns
    -------
    (H, W) float32 ndarray, metres (a new array)
    """
    out = np.array(depth, dtype=np.float32, copy=True)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(out) | (out <= 0)
        if max_depth is not None:
            bad |= out > max_depth
    out[bad] = np.nan
    return out
