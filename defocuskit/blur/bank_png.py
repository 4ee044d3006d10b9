"""A PSF bank as a folder of 16-bit PNGs plus a JSON index of their CoC values.

Layout of ``bank:FOLDER``::

    FOLDER/index.json   {"coc_px": [c_0, c_1, ...], "files": ["k0.png", "k1.png", ...]}
    FOLDER/k0.png ...   one kernel each: 16-bit greyscale (one channel) or 16-bit RGB (a
                        kernel per channel); odd height and width, centred

``coc_px`` and ``files`` have one entry per kernel, in any order; file names are relative
to the folder and stay inside it. The PNG values are the kernel up to a scale (each kernel
is normalised to sum 1 per channel when loaded), so a photograph's crop can be stored as
it is. :func:`write_png_bank` writes an .npz bank in this layout, each kernel scaled to
fill the 16 bits (its largest value 65535), which keeps every tap to within
``0.5 / 65535`` of the kernel's largest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np

__all__ = ["INDEX_NAME", "read_png_bank", "write_png_bank"]

INDEX_NAME = "index.json"
FULL_SCALE = 65535


def read_png_bank(folder: Path, error) -> tuple[np.ndarray, np.ndarray, str]:
    """``(kernels (K, h, w, C) float64, coc_px (K,), sha256)`` of a bank folder; ``error``
    makes the exception of a bad bank from a reason. The sha256 covers the index and
    every PNG, in the index's order."""
    index = folder / INDEX_NAME
    try:
        raw = index.read_bytes()
        meta = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise error(f"a bank folder needs a readable {INDEX_NAME} ({exc})") from None
    files, coc = (meta.get("files"), meta.get("coc_px")) if isinstance(meta, dict) else (0, 0)
    if not (isinstance(files, list) and isinstance(coc, list) and len(files) == len(coc)
            and files and all(isinstance(f, str) for f in files)):
        raise error(f"{INDEX_NAME} needs 'files' (PNG names) and 'coc_px' (numbers), one "
                    "entry per kernel")
    digest = hashlib.sha256(raw)
    kernels = []
    root = folder.resolve()
    for name in files:
        p = (folder / name).resolve()
        if root not in p.parents:
            raise error(f"{name!r} lies outside the bank folder")
        data = p.read_bytes() if p.is_file() else b""
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
        if img is None or img.dtype != np.uint16 or img.ndim not in (2, 3):
            raise error(f"{name!r} is not a 16-bit PNG")
        if img.ndim == 3 and img.shape[2] != 3:
            raise error(f"{name!r} has {img.shape[2]} channels; expected 1 or 3")
        digest.update(data)
        kernels.append(img[..., None] if img.ndim == 2 else img[..., ::-1])  # BGR -> RGB
    shapes = {k.shape for k in kernels}
    if len(shapes) != 1:
        raise error(f"the PNGs differ in size or channels: {sorted(shapes)}")
    try:
        coc_px = np.asarray(coc, np.float64)
    except (TypeError, ValueError):
        raise error(f"{INDEX_NAME}: coc_px must be numbers") from None
    return np.stack(kernels).astype(np.float64), coc_px, digest.hexdigest()


def write_png_bank(npz_path, folder) -> Path:
    """Write the .npz bank ``npz_path`` (``kernels`` (K, h, w[, C]), ``coc_px``) as a PNG
    folder (see the module doc); ``folder`` must not exist or be empty. Returns the
    index's path."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise FileExistsError(f"{folder} exists and is not an empty folder; the bank is "
                              "written only into a new or empty one")
    with np.load(npz_path, allow_pickle=False) as z:
        kernels, coc = np.asarray(z["kernels"], np.float64), np.asarray(z["coc_px"])
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for n, k in enumerate(kernels):
        q = np.rint(k / k.max() * FULL_SCALE).astype(np.uint16)
        q = q[..., 0] if q.ndim == 3 and q.shape[2] == 1 else q
        name = f"k{n:03d}.png"
        if not cv2.imwrite(str(folder / name), q[..., ::-1] if q.ndim == 3 else q):
            raise OSError(f"cannot write {folder / name}")
        files.append(name)
    index = folder / INDEX_NAME
    index.write_text(json.dumps({"coc_px": [float(c) for c in coc], "files": files}, indent=1)
                     + "\n")
    return index
