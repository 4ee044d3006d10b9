"""``trainer predict``: defocused images in, depth and all-in-focus images out.

For each input ``<stem>.<ext>`` the output directory receives

* ``<stem>_depth.png``: 16-bit PNG, depth in **millimetres** (0 = no value; values are
  clipped to 1..65535 mm, i.e. up to 65.5 m);
* ``<stem>_depth_color.png``: for viewing, the depth colour-mapped (turbo, from its minimum
  = blue to its maximum) with a colour bar in metres at the right;
* ``<stem>_aif.png``: the predicted all-in-focus image, 8-bit RGB (model anwar: the input
  deconvolved with the blur its predicted depth implies, :mod:`trainer.models.anwar_io`);
* ``<stem>_sigma.npy``: the predicted defocus map, (H, W) float32, Gaussian sigma in pixels
  of the input image (defocus head);
* ``<stem>_sigma_color.png``: that map colour-mapped (turbo from 0 px = blue to its maximum)
  with a colour bar in pixels.

A colour map is the top-left H x W pixels of its PNG, pixel for pixel; the colour bar adds
:data:`~trainer.plots.SCALE_BAR_WIDTH_PX` columns (and white rows below an image shorter
than :data:`~trainer.plots.SCALE_BAR_MIN_HEIGHT_PX`), see
:func:`~trainer.plots.colormap_with_scale_bar`.

Only the outputs of the heads the checkpoint has are written. Images of any size up to
``max_pixels`` (default 2048 x 2048; the network's activations grow with the frame) are
padded (reflection) to a multiple of 32 and the prediction is cropped back; a larger
image is refused with the limit stated. Images are read by their stored type: 8-bit,
16-bit, or float in [0, 1] (e.g. a 32-bit TIFF). Two inputs with the same file name in
different folders never share outputs: the later ones are named ``<folder>_<stem>``
(and ``-2``, ``-3``, ... if that is taken too).

Every output name is planned before anything is written: an output that would be one of
the inputs (``a.png`` and ``a_aif.png`` predicted into their own folder) is refused, with
or without ``overwrite``; an output file that exists already is refused unless
``overwrite``. Each file is written under a temporary name and renamed into place, so a
link at an output path is replaced, never written through.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from defocuskit.errors import ConfigError, SourceError
from defocuskit.sources import read_rgb_float
from trainer.camera_input import takes_camera
from trainer.checkpoint import build_model, load_checkpoint, model_name_of
from trainer.data import crop_to, pad_to_multiple
from trainer.evaluate import resolve_device
from trainer.models import get_spec
from trainer.plots import colormap_with_scale_bar
from trainer.progress import DEFAULT_EVERY_S, Progress, Ticker

__all__ = ["predict_images", "output_stems", "plan_outputs", "depth_to_png16", "MAX_PIXELS",
           "OUTPUT_SUFFIXES"]

MAX_PIXELS = 2048 * 2048  # default size limit of one input image


def output_stems(images) -> list[str]:
    """One distinct output stem per input (see the module doc)."""
    taken: set[str] = set()
    stems = []
    for path in images:
        p = Path(path)
        stem = p.stem
        if stem in taken and p.parent.name:
            stem = f"{p.parent.name}_{p.stem}"
        base, k = stem, 2
        while stem in taken:
            stem, k = f"{base}-{k}", k + 1
        taken.add(stem)
        stems.append(stem)
    return stems


def depth_to_png16(depth_m: np.ndarray) -> np.ndarray:
    """(H, W) float metres -> (H, W) uint16 millimetres; non-finite or <= 0 -> 0."""
    d = np.asarray(depth_m, dtype=np.float64)
    valid = np.isfinite(d) & (d > 0)
    mm = np.where(valid, np.clip(np.rint(d * 1000.0), 1, 65535), 0)
    return mm.astype(np.uint16)


# what each head writes, in this order, per input stem
OUTPUT_SUFFIXES = {"depth": ("_depth.png", "_depth_color.png"), "aif": ("_aif.png",),
                   "defocus": ("_sigma.npy", "_sigma_color.png")}


def plan_outputs(images, output, heads, *, overwrite: bool = False) -> list[dict[str, Path]]:
    """Every file a prediction will write, per input (suffix -> path), checked first.

    Raises
    ------
    ConfigError
        An output path is one of the inputs (e.g. ``a.png`` and ``a_aif.png`` predicted
        into their own folder), whatever ``overwrite`` says; or an output file exists
        already and ``overwrite`` is not set.
    """
    out_dir = Path(output)
    inputs = {os.path.realpath(p): Path(p) for p in images}
    plan, existing = [], []
    for stem in output_stems(images):
        targets = {suffix: out_dir / f"{stem}{suffix}"
                   for head in OUTPUT_SUFFIXES if head in heads
                   for suffix in OUTPUT_SUFFIXES[head]}
        for target in targets.values():
            clash = inputs.get(os.path.realpath(target))
            if clash is not None:
                raise ConfigError(f"output {target}: is the input {clash} (or a link to "
                                  "it), which predict never overwrites; choose another "
                                  "--output folder")
            if os.path.lexists(target):
                existing.append(target.name)
        plan.append(targets)
    if existing and not overwrite:
        shown = ", ".join(existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise ConfigError(f"output {out_dir}: {len(existing)} of the files to write exist "
                          f"already ({shown}); pass --overwrite to replace them, or choose "
                          "another --output")
    return plan


def _replace_with(target: Path, save) -> None:
    """Write through ``save(temporary path)``, then rename over ``target``: a link at
    ``target`` is replaced, never written through, and a failed write leaves it as it was."""
    tmp = target.with_name(f".{target.stem}.partial{target.suffix}")
    try:
        save(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_image(target: Path, img: np.ndarray) -> None:
    def save(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), img):
            raise SourceError(f"output {target}: could not be written")

    _replace_with(target, save)


def _write_npy(target: Path, arr: np.ndarray) -> None:
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, arr)

    _replace_with(target, save)


@torch.no_grad()
def predict_images(checkpoint, images, output, *, device: str = "auto",
                   max_pixels: int = MAX_PIXELS, progress: bool = True,
                   progress_every: float = DEFAULT_EVERY_S,
                   overwrite: bool = False, derive_options: dict | None = None) -> list[Path]:
    """Run a checkpoint on image files and write the outputs (see module doc).

    Every output name is planned, and checked against the inputs and the files already
    in ``output`` (:func:`plan_outputs`), before anything is written.

    Parameters
    ----------
    checkpoint : path-like
        A ``last.pt`` / ``best.pt`` written by ``trainer fit``.
    images : sequence of path-like
        Input images (any size; RGB, grey or RGBA, 8 or 16 bit).
    output : path-like
        Output directory, created if needed.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``.
    max_pixels : int
        Largest image (height x width) accepted.
    progress : bool
        Progress on stderr: a bar on a terminal, else a plain line every ``progress_every``
        seconds (see :mod:`trainer.progress`); False: none.
    overwrite : bool
        Replace output files that exist already (an input never).
    derive_options : dict, optional
        For a model whose spec derives outputs from its heads (``derived_outputs``; model
        anwar: the AiF by deconvolution), passed to the spec's ``derive``: ``camera`` (a
        camera preset name or table, or None: the checkpoint's) and ``focus_distance``
        (metres, or None).

    Returns
    -------
    list of Path
        The files written.
    """
    ticker = Ticker(progress_every)
    dev = resolve_device(device)
    ckpt = load_checkpoint(checkpoint)
    model = build_model(ckpt, path=checkpoint).to(dev).eval()
    if takes_camera(model):
        raise ConfigError(f"checkpoint {checkpoint}: trained with --camera-input, it needs each "
                          "image's camera (focus distance, f-number, focal length), which an "
                          "image file does not carry; score it with `trainer eval` on a dataset")
    spec = get_spec(model_name_of(ckpt))
    derived = spec.derived_outputs if spec.derive is not None else ()
    plan = plan_outputs(images, output, tuple(model.config.heads) + tuple(derived),
                        overwrite=overwrite)
    Path(output).mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with Progress(len(images), "predict", enabled=progress, ticker=ticker) as bar:
        for path, targets in zip(images, plan, strict=True):
            image, pred = _predict_one(model, dev, path, max_pixels)
            if derived:  # e.g. anwar's AiF: the input deconvolved with the depth's blur
                pred.update(spec.derive(model, image, pred, dict(derive_options or {})))
            if "depth" in pred:
                d = pred["depth"][0, 0].numpy()
                _write_image(targets["_depth.png"], depth_to_png16(d))
                _write_image(targets["_depth_color.png"],
                             colormap_with_scale_bar(d, label="depth [m]")[..., ::-1])
            if "aif" in pred:
                a = pred["aif"][0].clamp(0, 1).permute(1, 2, 0).numpy()
                _write_image(targets["_aif.png"], (a * 255 + 0.5).astype(np.uint8)[..., ::-1])
            if "defocus" in pred:
                sigma = pred["defocus"][0, 0].numpy().astype(np.float32)
                _write_npy(targets["_sigma.npy"], sigma)
                _write_image(targets["_sigma_color.png"],
                             colormap_with_scale_bar(sigma, label="sigma [px]",
                                                     vmin=0.0)[..., ::-1])
            written += targets.values()
            bar.update(1)
    return written


def _predict_one(model, dev, path, max_pixels: int):
    """The image (1, 3, H, W) and the heads' outputs for it, cropped to its size (CPU
    float32)."""
    rgb = read_rgb_float(path)
    h, w = rgb.shape[:2]
    if h * w > max_pixels:
        raise ConfigError(f"image {path}: {w}x{h} = {h * w} pixels is more than the limit "
                          f"of {max_pixels} (--max-pixels); resize it, or raise the limit "
                          "if the device has the memory")
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    x, size = pad_to_multiple(image.to(dev))
    return image.float(), {k: v.float().cpu() for k, v in crop_to(model(x), size).items()}
