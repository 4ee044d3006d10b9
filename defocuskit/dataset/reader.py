"""Reading a dataset written by ``defocuskit synth``: :func:`open_dataset` checks the schema
version, completeness and the manifest, and returns a :class:`DatasetReader` whose
:class:`SplitReader` reads samples checked (see :mod:`defocuskit.dataset.store` for the
layout)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import zarr
from zarr.core.sync import sync

from defocuskit.dataset.manifest import VERIFY_ADVICE, check_files, read_manifest
from defocuskit.dataset.zarr_group import READABLE_VERSIONS, _open
from defocuskit.errors import DataError, SchemaError

__all__ = ["open_dataset", "DatasetReader", "SplitReader", "NoManifestWarning"]


class SplitReader:
    """Read access to one split; arrays stay lazy (one chunk per sample).

    :meth:`read` is the checked way to read samples: a damaged chunk (checksum mismatch,
    undecodable bytes) or a missing shard file raises :class:`DataError` naming the
    dataset, split, array and sample. :meth:`array` gives the raw Zarr array.
    """

    def __init__(self, group, name: str, dataset_path=None):
        self._g = group
        self.name = name
        self.dataset_path = dataset_path
        a = dict(group.attrs)
        self.sample_ids: list[str] = list(a.get("sample_ids", []))
        self.image_shape: tuple[int, int] = tuple(a["image_shape"])
        self.focal_stack: int = int(a.get("focal_stack", 0))
        # 3: sigma has a last axis of R, G, B (chromatic aberration); 0: one sigma per pixel
        self.sigma_channels: int = int(a.get("sigma_channels", 0))
        self.attrs = a
        self._present: dict[tuple[str, int], bool] = {}

    def __len__(self) -> int:
        return int(self._g["aif"].shape[0])

    def has(self, name: str) -> bool:
        return name in self._g

    def array(self, name: str):
        if name not in self._g:
            raise SchemaError(f"split {self.name!r} has no array {name!r}; it has "
                              f"{sorted(k for k in self._g.array_keys() if k[0] != '_')}")
        return self._g[name]

    def skipped_indices(self) -> set[int]:
        """Samples that ``synth --on-error skip`` left unwritten (never to be used)."""
        return {int(s["index"]) for s in self.attrs.get("skipped", [])}

    def usable_indices(self) -> list[int]:
        """Every sample index except the skipped ones."""
        skipped = self.skipped_indices()
        return [i for i in range(len(self)) if i not in skipped]

    def _where(self, name: str, i) -> str:
        return f"dataset {self.dataset_path}, split {self.name!r}, array {name!r}, sample {i}"

    def chunk_present(self, name: str, i: int) -> bool:
        """Whether the file holding sample ``i`` of ``name`` exists and is not empty
        (cached per shard; an empty file reads, in Zarr, as fill values)."""
        arr = self.array(name)
        outer = arr.shards or arr.chunks
        block = i // outer[0]
        key = (name, block)
        if key not in self._present:
            chunk_key = arr.metadata.encode_chunk_key((block,) + (0,) * (arr.ndim - 1))
            try:
                size = sync(arr.store_path.store.getsize(f"{arr.path}/{chunk_key}"))
            except FileNotFoundError:
                size = 0
            self._present[key] = size > 0
        return self._present[key]

    def read_array(self, name: str, i: int) -> np.ndarray:
        """Sample ``i`` of one array, checked (see the class docstring)."""
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} out of range for split {self.name!r} ({len(self)})")
        if i in self.skipped_indices():
            raise DataError(f"{self._where(name, i)}: skipped when the dataset was written "
                            "(synth --on-error skip); it holds no data")
        if not self.chunk_present(name, i):
            raise DataError(f"{self._where(name, i)}: its shard file is missing or empty; the "
                            "dataset is damaged (check it with `defocuskit inspect --verify`)")
        try:
            return np.asarray(self.array(name)[i])
        except Exception as exc:  # noqa: BLE001 - any codec failure means damaged bytes
            raise DataError(f"{self._where(name, i)}: damaged data ({exc.__class__.__name__}: "
                            f"{str(exc)[:120]}); check it with `defocuskit inspect --verify`"
                            ) from None

    def read(self, i: int, names=("defocused", "aif", "depth")) -> dict[str, np.ndarray]:
        return {n: self.read_array(n, i) for n in names}

    def read_all(self, name: str) -> np.ndarray:
        """Every usable sample of one array as one ndarray, checked as :meth:`read_array`
        checks one (a missing shard file or damaged bytes raise :class:`DataError`, never
        fill values); samples skipped by ``synth --on-error skip`` are left out, so row k
        is sample ``usable_indices()[k]``. Read a shard at a time."""
        arr = self.array(name)
        per_file = (arr.shards or arr.chunks)[0]
        skipped = self.skipped_indices()
        parts = []
        for a in range(0, len(self), per_file):
            b = min(a + per_file, len(self))
            keep = [i - a for i in range(a, b) if i not in skipped]
            if not keep:
                continue
            where = self._where(name, f"{a}-{b - 1}").replace("sample ", "samples ")
            if not self.chunk_present(name, a):
                raise DataError(f"{where}: their shard file is missing; the dataset is "
                                "damaged (check it with `defocuskit inspect --verify`)")
            try:
                block = np.asarray(arr[a:b])
            except Exception as exc:  # noqa: BLE001 - any codec failure means damaged bytes
                raise DataError(f"{where}: damaged data ({exc.__class__.__name__}: "
                                f"{str(exc)[:120]}); check it with `defocuskit inspect "
                                "--verify`") from None
            parts.append(block[keep])
        if not parts:
            return np.empty((0, *arr.shape[1:]), dtype=arr.dtype)
        return np.concatenate(parts)


class DatasetReader:
    """A complete defocuskit dataset opened for reading (see :func:`open_dataset`)."""

    def __init__(self, root, path, manifest: dict | None = None):
        self._root = root
        self.path = path
        self.manifest = manifest  # None: written before manifests (or not checked)
        self.attrs: dict[str, Any] = dict(root.attrs)
        self.splits: list[str] = list(self.attrs.get("splits", []))

    def __getitem__(self, split: str) -> SplitReader:
        if split not in self.splits:
            raise SchemaError(f"dataset {self.path}: no split {split!r}; it has {self.splits}")
        return SplitReader(self._root[split], split, self.path)

    def __iter__(self):
        return iter(self.splits)


def _check_against_manifest(path, storage_options) -> dict | None:
    """The manifest, once the files match it by size and metadata checksum (None if the
    dataset has none); else DataError naming the first file that differs."""
    manifest = read_manifest(path, storage_options=storage_options)
    if manifest is not None:
        problems = check_files(path, manifest, storage_options=storage_options)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise DataError(f"dataset {path}: {problems[0]}{more}; the dataset is "
                            f"damaged: {VERIFY_ADVICE}")
    return manifest


class NoManifestWarning(UserWarning):
    """A dataset written before manifests: files are not checked against one on open."""


def open_dataset(path, *, storage_options: dict | None = None,
                 require_complete: bool = True, check_manifest: bool = True,
                 note_no_manifest: bool = True) -> DatasetReader:
    """Open a dataset written by ``defocuskit synth`` for reading.

    With ``check_manifest`` (the default) the dataset's files are compared with its
    manifest first: metadata by checksum, shard files by size (no data read). A dataset
    without a manifest (written before manifests) is still read; ``note_no_manifest``
    says so once per dataset (a :class:`NoManifestWarning`).

    Raises
    ------
    SchemaError
        If ``path`` is not a defocuskit dataset, has another schema version, or is not
        complete (an interrupted run; finish it with ``defocuskit synth --resume``).
    DataError
        A file differs from the manifest, the manifest itself is damaged, or the root
        ``zarr.json`` cannot be parsed: the message names the file.
    """
    try:
        root = _open(path, "r", storage_options)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise SchemaError(f"{path}: not a Zarr dataset ({exc.__class__.__name__})") from None
    except (ValueError, TypeError, KeyError) as exc:  # JSON or metadata that does not parse
        if check_manifest:  # name the damaged file if the manifest can
            _check_against_manifest(path, storage_options)
        raise DataError(f"dataset {path}: its metadata (zarr.json) cannot be read "
                        f"({exc.__class__.__name__}: {str(exc)[:100]}); the dataset is "
                        f"damaged: {VERIFY_ADVICE}") from None
    attrs = dict(root.attrs)
    version = attrs.get("schema_version")
    if version is None:
        raise SchemaError(f"{path}: a Zarr group but not a defocuskit dataset "
                          "(no schema_version attribute)")
    if version not in READABLE_VERSIONS:
        raise SchemaError(f"{path}: schema version {version}, this defocuskit reads versions "
                          f"{list(READABLE_VERSIONS)}; re-run synth or install a matching "
                          "version")
    if require_complete and not attrs.get("complete", False):
        raise SchemaError(f"{path}: dataset is incomplete (an interrupted synth run); finish "
                          "it with `defocuskit synth ... --resume`")
    manifest = _check_against_manifest(path, storage_options) if check_manifest else None
    if check_manifest and manifest is None and note_no_manifest and attrs.get("complete"):
        warnings.warn(f"dataset {path} has no manifest (written before manifests): its "
                      "files are not checked on open; `defocuskit inspect --verify` checks "
                      "its chunk checksums", NoManifestWarning, stacklevel=1)  # once per dataset
    return DatasetReader(root, path, manifest)
