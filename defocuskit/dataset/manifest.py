"""The dataset manifest: every file of a completed dataset, its size and its checksum.

Chunk checksums (``crc32c`` inside every chunk) cannot see damage to whole files: a shard
file truncated to zero bytes reads as an absent chunk (fill values), two intact shard
files swapped both pass their checksums, and an edited ``zarr.json`` (another dtype, a
shorter shape) changes what every chunk means. The manifest, written when a dataset is
completed (:func:`write_manifest`, called by :func:`defocuskit.dataset.store.mark_complete`, so
again at the end of every resumed run), lists every file of the dataset with its size
and the BLAKE2b-128 hash of its whole content, and the sample count of every split. Its
``identity`` is a BLAKE2b hash of that list: the dataset's identity, which the trainer
records in its checkpoints.

Two checks use it:

- :func:`check_files` with ``full=False`` (every reader on open): one listing of the
  dataset's files, every metadata file (``zarr.json``, a few KiB each) read and compared by
  size and checksum, every shard file compared by size. No data is read.
- :func:`check_files` with ``full=True`` (``defocuskit inspect --verify``): the same plus the
  checksum of every shard file's whole content.

The format is described in ``docs/schema.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import fsspec

from defocuskit.errors import DataError

__all__ = ["MANIFEST_NAME", "MANIFEST_FORMAT", "FileProblem", "write_manifest",
           "read_manifest", "check_files", "dataset_identity", "VERIFY_ADVICE"]

MANIFEST_NAME = "defocuskit-manifest.json"
MANIFEST_FORMAT = 1
VERIFY_ADVICE = "check it with `defocuskit inspect --verify`"
_BLOCK = 8 << 20  # bytes read at a time when hashing a shard file


@dataclass(frozen=True)
class FileProblem:
    """One file of a dataset that does not match its manifest."""

    file: str        # path relative to the dataset root, '/'-separated
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


def _fs(path, storage_options: dict | None = None):
    """``(filesystem, root)`` for a local path or an fsspec URL."""
    s = os.fspath(path)
    if s.startswith("file://"):
        s = s[len("file://"):]
    if "://" not in s:
        return fsspec.filesystem("file"), os.path.abspath(s).replace(os.sep, "/")
    fs, root = fsspec.core.url_to_fs(s, **(storage_options or {}))
    return fs, root.rstrip("/")


def _listing(fs, root: str) -> dict[str, int]:
    """Every file under ``root`` (relative '/'-path -> size), the manifest itself left out."""
    found = fs.find(root, detail=True)
    out = {}
    prefix = root.rstrip("/") + "/"
    for full, info in found.items():
        if not full.startswith(prefix):
            continue
        rel = full[len(prefix):]
        if info.get("type", "file") != "file" or rel.startswith(MANIFEST_NAME):
            continue
        out[rel] = int(info["size"])
    return out


def _tracked(rel: str) -> bool:
    """Files the manifest is about: Zarr metadata and chunk/shard files (``…/c/…``)."""
    parts = rel.split("/")
    return parts[-1] == "zarr.json" or "c" in parts[:-1]


def _digest(fs, full: str) -> str:
    """BLAKE2b-128 of a whole file. Not CRC-32C: every chunk of a shard file ends with its
    own CRC-32C, and the CRC-32C of a sequence of such self-checked pieces depends only on
    their lengths, so two different shard files of one size would have the same one."""
    h = hashlib.blake2b(digest_size=16)
    with fs.open(full, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def _identity(body: dict) -> str:
    text = json.dumps({"samples": body["samples"], "files": body["files"]}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def write_manifest(path, samples: dict[str, int], *,
                   storage_options: dict | None = None) -> dict:
    """List every file of the completed dataset at ``path`` with its size and hash.

    ``samples``: the sample count of every split. Written last, after the metadata is
    consolidated; replaces an earlier manifest (a resumed run). Returns the manifest.
    """
    fs, root = _fs(path, storage_options)
    files = {rel: {"size": size, "blake2b": _digest(fs, f"{root}/{rel}")}
             for rel, size in sorted(_listing(fs, root).items()) if _tracked(rel)}
    body = {"format": "defocuskit-manifest", "version": MANIFEST_FORMAT,
            "checksum": "blake2b-128", "samples": dict(samples), "files": files}
    body["identity"] = _identity(body)
    text = json.dumps(body, indent=1, sort_keys=True)
    target = f"{root}/{MANIFEST_NAME}"
    if isinstance(fs, fsspec.implementations.local.LocalFileSystem):
        tmp = target + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    else:
        fs.pipe_file(target, text.encode())
    return body


def read_manifest(path, *, storage_options: dict | None = None) -> dict | None:
    """The dataset's manifest, or None when it has none (written before manifests).

    Raises
    ------
    DataError
        The manifest exists but is not valid JSON, lacks its keys, or its identity does
        not match its own file list (it was edited).
    """
    fs, root = _fs(path, storage_options)
    target = f"{root}/{MANIFEST_NAME}"
    try:
        raw = fs.cat_file(target)
    except FileNotFoundError:
        return None
    where = f"dataset {path}: {MANIFEST_NAME}"
    try:
        body = json.loads(raw)
        ok = (isinstance(body, dict) and body.get("format") == "defocuskit-manifest"
              and isinstance(body.get("files"), dict) and isinstance(body.get("samples"), dict))
    except (ValueError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise DataError(f"{where} is damaged (not a manifest's JSON); {VERIFY_ADVICE}")
    if body.get("version") != MANIFEST_FORMAT:
        raise DataError(f"{where}: format version {body.get('version')}, this defocuskit "
                        f"reads version {MANIFEST_FORMAT}; install a matching version")
    if body.get("identity") != _identity(body):
        raise DataError(f"{where} does not match its own identity hash (it was edited); "
                        f"{VERIFY_ADVICE}")
    return body


def check_files(path, manifest: dict, *, full: bool = False,
                storage_options: dict | None = None, progress=None) -> list[FileProblem]:
    """Every file of the dataset that differs from ``manifest`` (see the module doc).

    ``full``: also hash every shard file's content (else sizes only; metadata files are
    always hashed). ``progress``, if given, is called with each shard file's size
    in bytes once it is hashed.
    """
    fs, root = _fs(path, storage_options)
    found = _listing(fs, root)
    problems: list[FileProblem] = []
    for rel, want in manifest["files"].items():
        size = found.get(rel)
        if size is None:
            problems.append(FileProblem(rel, "missing (listed in the manifest)"))
            continue
        if size != want["size"]:
            what = "empty" if size == 0 else f"{size} bytes"
            how = ("metadata edited or damaged" if rel.endswith("zarr.json")
                   else "truncated, extended or replaced")
            problems.append(FileProblem(rel, f"{what}, the manifest says {want['size']} "
                                        f"bytes ({how})"))
            continue
        if full or rel.endswith("zarr.json"):
            if _digest(fs, f"{root}/{rel}") != want["blake2b"]:
                kind = "metadata edited" if rel.endswith("zarr.json") else \
                    "content differs (replaced, swapped or damaged)"
                problems.append(FileProblem(rel, f"{kind}: its checksum does not match "
                                            "the manifest"))
            if progress and not rel.endswith("zarr.json"):
                progress(size)
    for rel in sorted(set(found) - set(manifest["files"])):
        if _tracked(rel):
            problems.append(FileProblem(rel, "not in the manifest (a file added after the "
                                        "dataset was completed)"))
    return problems


def dataset_identity(manifest: dict | None) -> str | None:
    """The dataset's identity (the manifest's hash), None without a manifest."""
    return None if manifest is None else manifest["identity"]
