"""Inputs and output of ``defocuskit deconvolve``: an image file with a ``.npy`` sigma map, or
a dataset sample with its own defocused image, sigma map and PSF; the result as a PNG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from defocuskit.dataset.store import open_dataset
from defocuskit.errors import ConfigError, DataError

__all__ = ["read_dataset_sample", "read_image_and_sigma", "write_png"]


def read_image_and_sigma(image_path, sigma_path) -> tuple[np.ndarray, np.ndarray]:
    """``(uint8 (H, W, 3) RGB, float32 (H, W) sigma in pixels)`` from an image file and an
    ``.npy`` file of the same height and width."""
    image_path, sigma_path = Path(image_path), Path(sigma_path)
    bgr = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ConfigError(f"deconvolve: cannot read {str(image_path)!r} as an image (PNG, JPEG, "
                          "TIFF...)")
    if sigma_path.suffix.lower() != ".npy":
        raise ConfigError(f"deconvolve: --sigma {str(sigma_path)!r}: expected a .npy file of "
                          "the (H, W) sigma map in pixels")
    try:
        sigma = np.load(sigma_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"deconvolve: cannot read {str(sigma_path)!r}: {exc}") from exc
    if sigma.shape != bgr.shape[:2] or not np.issubdtype(sigma.dtype, np.floating):
        raise ConfigError(f"deconvolve: {str(sigma_path)!r} holds a {sigma.dtype} "
                          f"{sigma.shape} array; expected float (H, W) = {bgr.shape[:2]} "
                          "(the image's size), sigma in pixels")
    return np.ascontiguousarray(bgr[..., ::-1]), sigma.astype(np.float32)


def _parse_sample(sample: str | None, splits: list[str]) -> tuple[str, int | None]:
    if sample is None:
        return splits[0], None
    split, _, index = sample.rpartition("/")
    if not split or not index.isdigit():
        raise ConfigError(f"deconvolve: --sample expects SPLIT/INDEX such as test/0, "
                          f"got {sample!r}")
    if split not in splits:
        raise ConfigError(f"deconvolve: the dataset has no split {split!r}; it has {splits}")
    return split, int(index)


def read_dataset_sample(path, sample: str | None = None, stack_index: int | None = None):
    """``(defocused uint8, sigma float32, psf, "split/index")`` of one dataset sample.

    ``sample`` is ``SPLIT/INDEX`` (default: the first usable sample of the first split);
    ``stack_index`` picks the image of a focal stack (default 0). The PSF is the dataset's
    ``psf`` attribute (``gaussian`` for datasets written before it was recorded).
    """
    ds = open_dataset(path)
    split, index = _parse_sample(sample, list(ds.splits))
    sp = ds[split]
    if not (sp.has("defocused") and sp.has("sigma")):
        raise DataError(f"deconvolve: split {split!r} of {path} stores no defocused image and "
                        "sigma map (real captures or a dataset without rendering)")
    if sp.sigma_channels:
        raise DataError(f"deconvolve: split {split!r} of {path} has a sigma per colour channel "
                        "(synth --chromatic); deconvolve takes one sigma per pixel")
    usable = sp.usable_indices()
    if index is None:
        if not usable:
            raise DataError(f"deconvolve: split {split!r} of {path} has no usable sample")
        index = usable[0]
    if index not in usable:
        raise ConfigError(f"deconvolve: sample {split}/{index} is not a usable sample of {path} "
                          f"(usable: {len(usable)} of {len(sp)})")
    img, sigma = sp.read_array("defocused", index), sp.read_array("sigma", index)
    if sp.focal_stack:
        k = stack_index or 0
        if not 0 <= k < sp.focal_stack:
            raise ConfigError(f"deconvolve: --stack-index {k} is out of the stack's range "
                              f"0..{sp.focal_stack - 1}")
        img, sigma = img[k], sigma[k]
    elif stack_index is not None:
        raise ConfigError(f"deconvolve: split {split!r} is not a focal stack; leave out "
                          "--stack-index")
    return img, sigma, ds.attrs.get("psf") or "gaussian", f"{split}/{index}"


def write_png(path, img: np.ndarray, *, overwrite: bool) -> Path:
    """Write uint8 RGB ``img`` to the ``.png`` file ``path``; an existing file only with
    ``overwrite``."""
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"deconvolve: --output {str(out)!r}: expected a .png file name")
    if out.is_dir():
        raise ConfigError(f"deconvolve: --output {str(out)!r} is a folder; give a .png file")
    if out.exists() and not overwrite:
        raise ConfigError(f"deconvolve: {str(out)!r} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise ConfigError(f"deconvolve: the folder of {str(out)!r} does not exist")
    for parent in out.resolve().parents:
        if (parent / "zarr.json").is_file():
            raise ConfigError(f"deconvolve: {str(out)!r} lies inside the Zarr store "
                              f"{str(parent)!r}; write the image outside the dataset")
    if not cv2.imwrite(str(out), np.ascontiguousarray(img[..., ::-1])):
        raise ConfigError(f"deconvolve: could not write {str(out)!r}")
    return out
