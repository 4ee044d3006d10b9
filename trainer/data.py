"""A torch Dataset over one split of a defocuskit Zarr dataset.

The Zarr group is opened lazily, once per process (the pid is checked), so the Dataset
pickles cheaply into DataLoader workers under fork, spawn or forkserver. Images stay uint8
until they reach the device (:func:`to_device_batch` converts them), which quarters the
bytes that cross the worker pipes and the host-to-device copy.

Two resolution protocols. Random crops (the paper: square crops of the stored frames)
with a horizontal flip (p = 0.5), nothing that changes the blur; evaluation on full frames,
which :func:`pad_to_multiple` pads on the device to a multiple of 32 (the prediction is
cropped back). Or the official code's: every frame, for training and evaluation, resized
as a whole to a fixed size (``resize``, see :mod:`trainer.resize`), flipped in training.
The crop position and flip of sample ``i`` in epoch ``e`` depend only on ``(seed, e, i)``,
so augmentation is reproducible whatever the worker count and resuming a run replays it
exactly. :func:`holdout_indices` draws the validation samples held out of a training split.

The defocus-map head reads the stored ``sigma`` (pixels) and MDDNet's consistency term the
per-sample camera values. Both are in pixels of the stored frame: a crop or flip leaves
them valid, and a whole-frame resize by a factor s scales every blur by s, so ``sigma`` is
multiplied by s and ``pixel_pitch`` divided by s. A resize that changes the aspect ratio
makes the blur elliptical, which no single sigma describes: it is refused (more than
:data:`MAX_ANISOTROPY` apart) when sigma or the camera is read.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from defocuskit.dataset.lock import reader_lock
from defocuskit.dataset.store import PER_SAMPLE_SCALARS, open_dataset
from defocuskit.errors import ConfigError, SchemaError
from trainer.device import to_device
from trainer.model import KNOWN_HEADS
from trainer.resize import resize_depth, resize_image

__all__ = ["DefocusDataset", "parse_heads", "required_arrays", "to_device_batch",
           "pad_to_multiple", "crop_to", "holdout_indices", "MAX_ANISOTROPY"]

_HOLDOUT_STREAM = 0x5A1D  # separates the holdout draw from the other uses of the seed

_HEAD_ARRAYS = {"depth": "depth", "aif": "aif", "defocus": "sigma"}
# the channel of a per-channel sigma (R, G, B; synth --chromatic) that the defocus head,
# its losses and the metrics see: green, the middle of the visible band
SIGMA_CHANNEL = 1
# sigma is only defined for an isotropic resize: the two scale factors may differ this much
MAX_ANISOTROPY = 0.02


def required_arrays(heads, *, method: str = "supervised", camera: bool = False
                    ) -> tuple[str, ...]:
    """Arrays a split must hold to train the given heads (the input is always needed).

    ``method="self-supervised"`` needs the AiF (the re-blur target) and no label: neither
    depth nor sigma is listed, whatever the heads. ``camera=True`` adds the per-sample
    camera values (``focus_distance``, ``focal_length``, ``f_number``, ``pixel_pitch``,
    ``coc_to_sigma``) of the consistency term.
    """
    if method == "self-supervised":
        names = ["aif"]
    else:
        names = [_HEAD_ARRAYS[h] for h in heads]
    if camera:
        names += PER_SAMPLE_SCALARS
    return ("defocused", *names)


def holdout_indices(n: int, fraction: float, *, seed: int) -> tuple[list[int], list[int]]:
    """Split the sample indices ``0..n-1`` of a training split into (train, validation).

    The validation share is ``round(fraction * n)`` samples, at least one, drawn by a
    permutation seeded with ``seed`` (the same ``n``, ``fraction`` and ``seed`` always give
    the same split). Both lists are sorted.

    Raises
    ------
    ConfigError
        ``fraction`` outside (0, 1), or a split too small to keep a training sample.
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"val_fraction: expected a share in (0, 1), got {fraction}")
    k = max(1, round(fraction * n))
    if k >= n:
        raise ConfigError(f"val_fraction {fraction}: holding out {k} of the {n} training "
                          "sample(s) leaves none to train on; use --val-split NAME or none")
    perm = np.random.default_rng([seed, _HOLDOUT_STREAM]).permutation(n)
    return sorted(int(i) for i in perm[k:]), sorted(int(i) for i in perm[:k])


def parse_heads(heads) -> tuple[str, ...]:
    """Heads as a tuple: from a sequence, or the command line's comma string ``"depth,aif"``.

    Raises
    ------
    ConfigError
        An unknown, repeated or missing head (naming the known ones).
    """
    names = heads.split(",") if isinstance(heads, str) else list(heads)
    names = [str(h).strip() for h in names]
    bad = [h for h in names if h not in KNOWN_HEADS]
    if not names or bad or len(set(names)) != len(names):
        raise ConfigError(f"heads: expected a non-empty subset of {', '.join(KNOWN_HEADS)} "
                          f"(a sequence or a comma-separated string such as 'depth,aif'), "
                          f"got {heads!r}")
    return tuple(names)


class DefocusDataset(Dataset):
    """Samples of one split as uint8 / float32 tensors.

    Parameters
    ----------
    path : str or path-like
        A complete dataset written by ``defocuskit synth`` (local path or fsspec URL).
    split : str
        The split to read, e.g. ``"train"``.
    heads : sequence of str or str, keyword-only
        Heads to be trained or evaluated (``("depth", "aif")`` or the command line's
        ``"depth,aif"``); decides which arrays must exist.
    crop : int or None, keyword-only
        Square random-crop size in pixels for training (of the resized frame when
        ``resize`` is given); ``None`` returns whole frames.
    resize : (int, int) or None, keyword-only
        Resize every frame as a whole to this ``(height, width)`` first
        (:func:`~trainer.resize.resize_image`, :func:`~trainer.resize.resize_depth`).
    hflip : bool, keyword-only
        Random horizontal flip (p = 0.5) of cropped or resized samples; pass ``False`` to
        evaluate on resized frames. Frames neither cropped nor resized are never flipped.
    seed : int, keyword-only
        Base seed of the augmentation.
    stack_index : int or None, keyword-only
        For a focal-stack dataset, the index of the defocused image to use (its sigma map
        and camera values come with it); ``None`` refuses focal stacks, and an index on a
        split that is not a stack is refused too.
    max_samples : int or None, keyword-only
        Use only the first ``max_samples`` samples (of ``indices`` when given).
    indices : sequence of int or None, keyword-only
        Use only these samples of the split, in this order (e.g. a training split without
        its validation holdout); ``None``: all.
    arrays : sequence of str or None, keyword-only
        Exactly the arrays to read besides ``defocused`` (see :func:`required_arrays`),
        each required; ``None``: those the heads need plus ``aif`` and ``depth`` when the
        split has them (for evaluation panels).

    Each item is a dict: ``"defocused"`` (3, h, w) uint8; ``"aif"`` (3, h, w) uint8 (when
    read); ``"depth"`` (1, h, w) float32 metres, NaN = invalid (when read); ``"sigma"``
    (1, h, w) float32 pixels of the returned frame, NaN = invalid (when read; of a dataset
    with a sigma per colour channel, ``synth --chromatic``, the green channel's:
    :data:`SIGMA_CHANNEL`); the camera
    values as float32 scalars (``pixel_pitch`` in metres per returned pixel; when read);
    ``"index"`` int, the sample's index in the split. The dataset's CoC model (root
    attributes ``camera.coc_model``, ``None`` if absent) is the attribute ``coc_model``.

    While the object lives (in the process that made it) it holds the dataset's lock
    shared (``lock``, a :class:`~defocuskit.dataset.lock.ReaderLock`; None where no lock can be
    made, e.g. a remote store), so ``defocuskit synth`` refuses to replace or resume the
    dataset meanwhile; ``lock.release()`` lets go early.

    Raises
    ------
    ConfigError
        ``defocuskit synth`` is writing the dataset.
    SchemaError
        The split lacks an array the heads need, is a focal stack without
        ``stack_index`` (or with one out of range), is no stack but ``stack_index`` is
        given, is smaller than the crop, ``indices`` are out of range, or a
        resize changes the aspect ratio while sigma or the camera is read.
    """

    _rendered: tuple[str, ...] = ()  # arrays a subclass makes instead of reading them

    def __init__(self, path, split: str, *, heads=("depth", "aif"), crop: int | None = None,
                 resize: tuple[int, int] | None = None, hflip: bool = True, seed: int = 0,
                 stack_index: int | None = None, max_samples: int | None = None,
                 indices=None, arrays=None):
        self.path, self.split, self.heads = path, split, parse_heads(heads)
        self.crop, self.hflip, self.seed = crop, hflip, seed
        self.resize = None if resize is None else (int(resize[0]), int(resize[1]))
        self.stack_index = stack_index
        self.epoch = 0
        # a shared hold on the dataset's lock while this object lives: `synth --overwrite`
        # or `--resume` is refused meanwhile (a pickled copy in a worker holds nothing)
        self.lock = reader_lock(path)
        reader = open_dataset(path)  # checked against its manifest (sizes, metadata)
        # the manifest's hash, None for a dataset written before manifests: a resumed run
        # must continue on the dataset it started on
        self.dataset_identity = None if reader.manifest is None else reader.manifest["identity"]
        camera_attrs = reader.attrs.get("camera")
        self.coc_model = (camera_attrs.get("coc_model") if isinstance(camera_attrs, dict)
                          else None)
        rule = camera_attrs.get("sigma_rule") if isinstance(camera_attrs, dict) else None
        self.coc_offset_px = float((rule or {}).get("coc_offset_px", 0.0))
        sp = reader[split]
        needed = self._arrays_needed(arrays)
        missing = [a for a in needed if not sp.has(a)]
        if missing:
            hint = ("; it is scene-only (synth --render-mode scene-only): train with "
                    "--on-the-fly" if not sp.has("defocused") else "")
            raise SchemaError(f"dataset {path}, split {split!r}: heads {list(self.heads)} need "
                              f"array(s) {missing}, which it lacks{hint}")
        if sp.focal_stack and "defocused" in needed:
            if stack_index is None:
                raise SchemaError(f"dataset {path}, split {split!r}: a focal stack of "
                                  f"{sp.focal_stack} images; choose one with --stack-index "
                                  f"(stack_index) 0..{sp.focal_stack - 1}")
            if not 0 <= stack_index < sp.focal_stack:
                raise SchemaError(f"stack_index {stack_index}: split {split!r} of {path} holds "
                                  f"focal stacks of {sp.focal_stack} images; expected "
                                  f"0..{sp.focal_stack - 1}")
        elif stack_index is not None and "defocused" in needed:
            raise SchemaError(f"stack_index {stack_index}: split {split!r} of {path} is not a "
                              "focal stack (one defocused image per sample); leave "
                              "--stack-index (stack_index) out")
        self.image_shape = tuple(sp.image_shape)
        h, w = self.resize or self.image_shape
        if crop is not None and (crop > h or crop > w):
            what = "the resized frames" if self.resize else f"the images of split {split!r}"
            raise SchemaError(f"crop {crop}: larger than {what} ({h}x{w})")
        if arrays is None:
            self.names = tuple(dict.fromkeys(
                (*needed, *(a for a in ("aif", "depth") if sp.has(a)))))
        else:
            self.names = needed
        self.scale = 1.0  # blur scale of the resize (sigma, pixel pitch)
        if self.resize is not None:
            sy, sx = self.resize[0] / self.image_shape[0], self.resize[1] / self.image_shape[1]
            self.scale = (sx * sy) ** 0.5
            blur_read = bool({"sigma", "pixel_pitch"} & {*self.names, *self._rendered})
            if blur_read and abs(sx / sy - 1) > MAX_ANISOTROPY:
                raise SchemaError(
                    f"resize {self.resize[0]}x{self.resize[1]} of {split!r} frames "
                    f"{self.image_shape[0]}x{self.image_shape[1]} scales the blur by "
                    f"{sy:.3f} vertically and {sx:.3f} horizontally: the defocus map "
                    f"(sigma) is undefined for an elliptical blur; resize keeping the "
                    f"aspect ratio (within {MAX_ANISOTROPY:.0%}) or train on crops")
        self.indices = list(range(len(sp))) if indices is None else [int(i) for i in indices]
        bad = [i for i in self.indices if not 0 <= i < len(sp)]
        if bad:
            raise SchemaError(f"dataset {path}, split {split!r}: sample indices {bad[:5]} out "
                              f"of range (0..{len(sp) - 1})")
        skipped = sp.skipped_indices()  # skipped by synth --on-error skip: no data there
        self.indices = [i for i in self.indices if i not in skipped]
        if not self.indices:
            raise SchemaError(f"dataset {path}, split {split!r}: no usable sample"
                              + (" (every one was skipped by synth)" if skipped else ""))
        if max_samples is not None:
            self.indices = self.indices[:max_samples]
        self._n = len(self.indices)
        self._split, self._pid = None, None  # opened lazily in each process

    def __len__(self) -> int:
        return self._n

    def _arrays_needed(self, arrays) -> tuple[str, ...]:
        """The arrays to read, each required (``arrays``: see the class docstring)."""
        return (required_arrays(self.heads) if arrays is None
                else ("defocused", *dict.fromkeys(arrays)))

    def _aug_rng(self, i: int) -> np.random.Generator:
        """The crop / flip generator of sample ``i`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, int(i)])

    def _window(self, rng: np.random.Generator) -> tuple[int, int]:
        """(top, left) of the random crop: the first two draws of :meth:`_aug_rng`."""
        h, w = self.resize or self.image_shape
        return (int(rng.integers(0, h - self.crop + 1)),
                int(rng.integers(0, w - self.crop + 1)))

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation of ``epoch`` (call before creating the iterator)."""
        self.epoch = int(epoch)

    def _reader(self):
        if self._split is None or self._pid != os.getpid():
            # checked against the manifest again in every process (each epoch's workers)
            self._split = open_dataset(self.path, note_no_manifest=False)[self.split]
            self._pid = os.getpid()
        return self._split

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_split"], state["_pid"] = None, None  # never ship an open store to a worker
        return state

    def _read(self, name: str, i: int) -> np.ndarray:
        # checked read: a damaged chunk or a missing shard is one DataError line naming
        # the dataset, split, array and sample, never a codec traceback or fill values
        values = self._reader().read_array(name, i)
        if self.stack_index is not None and name not in ("aif", "depth"):
            return values[self.stack_index]  # defocused, sigma, camera: one per stack image
        return values

    def __getitem__(self, k: int) -> dict:
        if not 0 <= k < self._n:
            raise IndexError(f"sample {k} out of range ({self._n})")
        i = self.indices[k]
        return self._finish(i, {n: self._read(n, i) for n in self.names})

    def _finish(self, i: int, data: dict, *, cropped: bool = False) -> dict:
        """Resize, crop (unless ``cropped`` already), flip and convert one sample's arrays."""
        scalars = {n: np.float32(data.pop(n)) for n in PER_SAMPLE_SCALARS if n in data}
        if "sigma" in data and data["sigma"].ndim == 3:  # per channel (synth --chromatic)
            data["sigma"] = np.ascontiguousarray(data["sigma"][..., SIGMA_CHANNEL])
        if self.resize is not None:
            data = {n: (resize_depth(v, self.resize) if n in ("depth", "sigma")
                        else resize_image(v, self.resize)) for n, v in data.items()}
            if "sigma" in data:
                data["sigma"] = data["sigma"] * np.float32(self.scale)
            if "pixel_pitch" in scalars:
                scalars["pixel_pitch"] = np.float32(scalars["pixel_pitch"] / self.scale)
        if self.crop is not None or self.resize is not None:
            rng = self._aug_rng(i)
            if self.crop is not None:
                top, left = self._window(rng)
                if not cropped:
                    window = (slice(top, top + self.crop), slice(left, left + self.crop))
                    data = {n: v[window] for n, v in data.items()}
            if self.hflip and bool(rng.integers(0, 2)):
                data = {n: v[:, ::-1] for n, v in data.items()}
        out = {"index": int(i)}
        out.update({n: torch.tensor(v, dtype=torch.float32) for n, v in scalars.items()})
        for n, v in data.items():
            v = np.ascontiguousarray(v)
            if v.ndim == 3:  # (h, w, 3) uint8 -> (3, h, w)
                out[n] = torch.from_numpy(v).permute(2, 0, 1).contiguous()
            else:  # (h, w) float32 depth (metres) or sigma (pixels) -> (1, h, w)
                out[n] = torch.from_numpy(v.astype(np.float32, copy=False))[None]
        return out


def to_device_batch(batch: dict, device, *, channels_last: bool = False) -> dict:
    """Move a collated batch to ``device``, uint8 images -> float32 in [0, 1] there.

    Returns a dict with ``"defocused"`` and ``"aif"`` (B, 3, h, w) float32 in [0, 1],
    ``"depth"`` (B, 1, h, w) float32 metres, ``"sigma"`` (B, 1, h, w) float32 pixels and the
    (B,) float32 camera values, whichever the batch holds.
    """
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    out = {}
    for k, v in batch.items():
        if not torch.is_tensor(v) or k == "index":
            continue
        v = to_device(v, device)  # asynchronous to CUDA (from the loader's pinned memory)
        if v.dtype == torch.uint8:
            v = v.float().div_(255.0)
        out[k] = v.contiguous(memory_format=fmt) if v.ndim == 4 else v
    return out


def pad_to_multiple(x: torch.Tensor, multiple: int = 32) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (B, C, H, W) at the bottom/right by reflection up to a multiple of ``multiple``.

    Returns the padded tensor and the original ``(H, W)`` for :func:`crop_to`.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # reflection needs pad < size; replicate covers tiny images
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def crop_to(pred: dict, size: tuple[int, int]) -> dict:
    """Crop every (B, C, H', W') tensor of a prediction dict back to ``size = (H, W)``."""
    h, w = size
    return {k: v[..., :h, :w] for k, v in pred.items()}
