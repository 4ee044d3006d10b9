"""Opening a dataset's Zarr group (a local path or an fsspec URL) and the schema versions;
shared by the writing side (:mod:`defocuskit.dataset.store`) and the reading side
(:mod:`defocuskit.dataset.reader`)."""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any

import zarr

__all__ = ["SCHEMA_VERSION", "READABLE_VERSIONS"]

SCHEMA_VERSION = 2  # 2: every chunk carries a CRC-32C checksum
READABLE_VERSIONS = (1, 2)


@contextlib.contextmanager
def _quiet_consolidated():
    """Zarr warns that consolidated metadata is not in the v3 spec yet; we rely on it
    knowingly. Zarr also warns, when it lists a group's members, about the manifest file
    at the root, which is not a Zarr node. Silenced around our own calls only, never
    process-wide."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata",
                                category=UserWarning)
        warnings.filterwarnings("ignore", message="Object at .* is not recognized",
                                category=UserWarning)
        yield


def _url(path: str | os.PathLike) -> tuple[str, dict]:
    """Normalise a local path or fsspec URL; local ``file://`` URLs become plain paths."""
    s = os.fspath(path)
    if s.startswith("file://"):
        return s[len("file://"):], {}
    return s, {}


def _open(path, mode: str, storage_options: dict | None = None, consolidated=None,
          attributes: dict | None = None):
    url, opts = _url(path)
    kwargs: dict[str, Any] = {"mode": mode}
    if attributes is not None:
        kwargs["attributes"] = attributes
    if "://" in url:
        kwargs["storage_options"] = {**opts, **(storage_options or {})}
    if consolidated is not None:
        kwargs["use_consolidated"] = consolidated
    with _quiet_consolidated():
        return zarr.open_group(url, **kwargs)
