"""The on-disk dataset: a Zarr v3 group, one subgroup per split, sharded arrays.

Layout (schema version 2, documented in ``docs/schema.md``; version 1 is the same layout
without per-chunk checksums and is still read)::

    DATASET.zarr/                    root attrs: schema_version, complete, config, camera, ...
      train/                         split attrs: n, sample_ids, image_shape, focal_stack, ...
        aif          (N, H, W, 3)        uint8
        defocused    (N, H, W, 3)        uint8    (N, K, H, W, 3) for a focal stack of K;
                                                  absent in a scene-only dataset
        defocused_left, defocused_right          the dual-pixel views (synth --dual-pixel
                                                  only), same shape, each at twice its light
        depth        (N, H, W)           float32  metres, NaN = invalid
        sigma        (N, H, W)           float32  pixels  (N, K, H, W) for a stack; absent for
                                                  real captures (iDFD) and scene-only data;
                                                  a last axis of 3 (R, G, B) with synth
                                                  --chromatic (split attr sigma_channels 3)
        focus_distance, focal_length, f_number, pixel_pitch, coc_to_sigma
                     (N,) or (N, K)      float32  metres (f_number, coc_to_sigma: unitless)
        source_index (N,)                int32    index of the sample in the source split
        _shard_done  (n_shards,)         uint8    1 once a shard is fully written

Every array has one sample per chunk and ``shard_size`` samples per shard; one shard is
one unit of work, written once from a buffer (writing a shard sample by sample rewrites
it each time) by exactly one process (two writers of one shard lose samples). Arrays are
created by the parent before any worker starts; ``_shard_done`` is set after a shard's
data, and the root ``complete`` flag only when every shard is done, so an interrupted
dataset never looks complete and ``--resume`` redoes exactly the shards not marked done.

Every chunk ends in a CRC-32C checksum (Zarr v3's ``crc32c`` codec, after the compressor;
the shard index has its own), so a flipped bit is an error, never data. A shard file that
is missing reads, in Zarr, as fill values: :meth:`SplitReader.read` checks that the shard
file of every sample it reads exists and is not empty, so fill values are never taken
for data.

A completed dataset carries a manifest (:mod:`defocuskit.dataset.manifest`): every file's size and
checksum. :func:`open_dataset` compares the metadata files and the shard files' sizes with
it (no data read), so a truncated, emptied, extended or missing file, or edited metadata,
is refused before anything is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec

from defocuskit.dataset.manifest import check_files, read_manifest, write_manifest
from defocuskit.dataset.reader import DatasetReader, NoManifestWarning, SplitReader, open_dataset
from defocuskit.dataset.zarr_group import (
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    _open,
    _quiet_consolidated,
)
from defocuskit.errors import DataError, SchemaError

__all__ = [
    "SCHEMA_VERSION", "SplitSpec", "PER_SAMPLE_SCALARS", "create_dataset", "write_shard",
    "shard_ranges", "done_shards", "mark_complete", "open_dataset", "open_group_rw",
    "write_arrays", "DatasetReader", "SplitReader", "COMPRESSORS", "READABLE_VERSIONS",
    "NoManifestWarning",
]

PER_SAMPLE_SCALARS = ("focus_distance", "focal_length", "f_number", "pixel_pitch", "coc_to_sigma")
COMPRESSORS = {
    # lz4 decodes faster; zstd + bitshuffle compresses smaller (Blosc's trade-off)
    "lz4": lambda: BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),
    "zstd": lambda: BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle"),
}


@dataclass(frozen=True)
class SplitSpec:
    """What one split will hold: sample count, frame size and which arrays."""

    n: int
    height: int
    width: int
    sample_ids: tuple[str, ...]
    focal_stack: int = 0          # 0: one defocused image per sample; K: a stack of K
    has_sigma: bool = True        # False for real captures with no synthetic defocus map
    has_defocused: bool = True    # False for a scene-only split (synth --render-mode
    #                               scene-only): no defocused, sigma or camera arrays
    dual_pixel: bool = False      # True: also defocused_left and defocused_right
    sigma_channels: int = 0       # 3: sigma per colour channel (chromatic aberration)

    def lead_shape(self) -> tuple[int, ...]:
        return (self.n, self.focal_stack) if self.focal_stack else (self.n,)


def shard_ranges(n: int, shard_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the shards of a split of ``n`` samples."""
    return [(s, min(s + shard_size, n)) for s in range(0, n, shard_size)]


def create_dataset(path, splits: Mapping[str, SplitSpec], *, attrs: dict, shard_size: int = 64,
                   compressor: str = "lz4", storage_options: dict | None = None):
    """Create the empty group and every array (call in the parent, before workers start).

    The root is marked ``complete = False`` until :func:`mark_complete`. Nothing existing
    is ever deleted: ``path`` must not hold a Zarr group yet (``FileExistsError``
    otherwise; :mod:`defocuskit.dataset.output` decides where it is safe to write). The root
    attributes, including ``producer = "defocuskit"`` by which a dataset is recognised,
    are written together with the group itself.
    """
    if compressor not in COMPRESSORS:
        raise SchemaError(f"unknown compressor {compressor!r}; choose one of {list(COMPRESSORS)}")
    root_attrs = {"producer": "defocuskit", **attrs, "schema_version": SCHEMA_VERSION,
                  "complete": False, "shard_size": shard_size, "compressor": compressor,
                  "splits": list(splits)}
    root = _open(path, "w-", storage_options, attributes=root_attrs)
    for name, spec in splits.items():
        g = root.create_group(name)
        g.attrs.update({"n": spec.n, "sample_ids": list(spec.sample_ids),
                        "image_shape": [spec.height, spec.width],
                        "focal_stack": spec.focal_stack,
                        **({"sigma_channels": spec.sigma_channels}
                           if spec.sigma_channels else {}),
                        "n_shards":
                        len(shard_ranges(spec.n, shard_size))})
        h, w, k = spec.height, spec.width, spec.focal_stack
        stack = (k,) if k else ()

        def make(arr_name, tail, dtype, fill, _g=g, _n=spec.n, per_sample_chunk=True):
            shape = (_n, *tail)
            if per_sample_chunk:
                chunks = (1, *tail)
            else:  # tiny per-sample scalars: one chunk per shard so workers never share one
                chunks = (shard_size, *tail)
            _g.create_array(arr_name, shape=shape, chunks=chunks,
                            shards=(shard_size, *tail) if per_sample_chunk else None,
                            dtype=dtype, fill_value=fill,
                            compressors=[COMPRESSORS[compressor](), Crc32cCodec()])

        make("aif", (h, w, 3), "uint8", 0)
        if spec.has_defocused:
            make("defocused", (*stack, h, w, 3), "uint8", 0)
            if spec.dual_pixel:
                make("defocused_left", (*stack, h, w, 3), "uint8", 0)
                make("defocused_right", (*stack, h, w, 3), "uint8", 0)
        make("depth", (h, w), "float32", np.nan)
        if spec.has_sigma and spec.has_defocused:
            chans = (spec.sigma_channels,) if spec.sigma_channels else ()
            make("sigma", (*stack, h, w, *chans), "float32", np.nan)
            for scalar in PER_SAMPLE_SCALARS:
                make(scalar, stack, "float32", np.nan, per_sample_chunk=False)
        make("source_index", (), "int32", -1, per_sample_chunk=False)
        n_shards = len(shard_ranges(spec.n, shard_size))
        g.create_array("_shard_done", shape=(n_shards,), chunks=(1,), dtype="uint8",
                       fill_value=0, compressors=[Crc32cCodec()])
    return root


def open_group_rw(path, storage_options: dict | None = None):
    """Open an existing dataset for writing (resume, workers)."""
    return _open(path, "r+", storage_options, consolidated=False)


def write_shard(path, split: str, shard_index: int, data: Mapping[str, np.ndarray], *,
                storage_options: dict | None = None) -> None:
    """Write one whole shard (all arrays, one assignment each) and then mark it done.

    Every chunk is written, also one that equals the fill value (a black frame, a skipped
    sample's blanks): Zarr's default drops those, which made it compare every chunk with
    the fill value first (about a third of the time of a NYU-size shard's write) and would
    leave no shard file behind for a shard of black frames, which reads as missing.
    """
    root = open_group_rw(path, storage_options)
    g = root[split]
    shard_size = int(root.attrs["shard_size"])
    start = shard_index * shard_size
    for name, values in data.items():
        if name not in g:
            raise SchemaError(f"split {split!r} has no array {name!r}")
        arr = g[name].with_config({"write_empty_chunks": True})
        arr[start:start + len(values)] = values
    g["_shard_done"][shard_index] = 1


def done_shards(path, split: str, storage_options: dict | None = None) -> np.ndarray:
    """Boolean mask of the shards of ``split`` that are completely written."""
    g = _open(path, "r", storage_options, consolidated=False)[split]
    return np.asarray(g["_shard_done"][:]).astype(bool)


def mark_complete(path, *, extra_attrs: dict | None = None,
                  storage_options: dict | None = None) -> None:
    """Check every shard is done, set ``complete = True``, consolidate the metadata and
    write the manifest (:func:`defocuskit.dataset.manifest.write_manifest`).

    A dataset that already has a manifest (a resumed run of a complete dataset) must still
    match it in its shard files' sizes: damage is never sealed into a new manifest.
    """
    root = open_group_rw(path, storage_options)
    samples = {}
    for split in root.attrs["splits"]:
        missing = np.flatnonzero(~done_shards(path, split, storage_options))
        if missing.size:
            raise SchemaError(f"split {split!r}: shards {missing.tolist()} are not written")
        samples[split] = int(root[split].attrs["n"])
    old = read_manifest(path, storage_options=storage_options)
    if old is not None:
        damaged = [p for p in check_files(path, old, storage_options=storage_options)
                   if not p.file.endswith("zarr.json")]
        if damaged:
            raise DataError(f"dataset {path}: {damaged[0]}; the complete dataset is damaged "
                            "and a resume does not rewrite finished shards: rebuild it with "
                            "`defocuskit synth ... --overwrite`")
    root.attrs.update({**(extra_attrs or {}), "complete": True})
    with _quiet_consolidated():
        zarr.consolidate_metadata(root.store)
    write_manifest(path, samples, storage_options=storage_options)


def write_arrays(path, splits: Mapping[str, Mapping[str, np.ndarray]], *,
                 attrs: dict | None = None, shard_size: int = 8) -> None:
    """Write a complete dataset from in-memory arrays (tests, fixtures, small exports)."""
    specs = {}
    for name, arrays in splits.items():
        n, h, w = arrays["aif"].shape[:3]
        defocused = arrays.get("defocused")
        k = defocused.shape[1] if defocused is not None and defocused.ndim == 5 else 0
        sigma = arrays.get("sigma")
        chans = 3 if sigma is not None and sigma.ndim == (5 if k else 4) else 0
        specs[name] = SplitSpec(n=n, height=h, width=w, focal_stack=k,
                                sample_ids=tuple(f"{name}-{i}" for i in range(n)),
                                has_sigma=sigma is not None,
                                has_defocused=defocused is not None,
                                dual_pixel="defocused_left" in arrays, sigma_channels=chans)
    create_dataset(path, specs, attrs=attrs or {}, shard_size=shard_size)
    for name, arrays in splits.items():
        n = specs[name].n
        for si, (a, b) in enumerate(shard_ranges(n, shard_size)):
            data = {k: np.asarray(v[a:b]) for k, v in arrays.items()}
            data.setdefault("source_index", np.arange(a, b, dtype=np.int32))
            write_shard(path, name, si, data)
    mark_complete(path)
