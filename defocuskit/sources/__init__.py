"""Dataset readers ("sources") and their registry.

``get_source(name, path, **options)`` builds a reader by name; ``list_sources()`` lists
the known names with one-line descriptions. Every reader returns :class:`Sample` records.
"""

from __future__ import annotations

import importlib

from defocuskit.errors import SourceError
from defocuskit.sources._io import read_rgb_float
from defocuskit.sources.base import Sample, Source, file_identity
from defocuskit.typed import check_options

__all__ = ["Sample", "Source", "file_identity", "get_source", "list_sources", "read_rgb_float",
           "SOURCES", "NO_INPUT_SOURCES"]

# name -> "module:Class"; modules are imported on use so that h5py/scipy/skimage load lazily.
SOURCES: dict[str, str] = {
    "samples": "defocuskit.sources.samples:SamplesSource",
    "middlebury": "defocuskit.sources.middlebury:MiddleburySource",
    "nyu": "defocuskit.sources.nyu:NYUSource",
    "make3d": "defocuskit.sources.make3d:Make3DSource",
    "idfd": "defocuskit.sources.idfd:IDFDSource",
    "folder": "defocuskit.sources.folder:FolderSource",
    "procedural": "defocuskit.sources.procedural:ProceduralSource",
}
# Sources that need no input: they generate their scenes (procedural) or carry their own
# data (middlebury: scikit-image's pair; samples: the bundled scenes, shipped with the
# package). `--input` may be left out (it is then "-").
NO_INPUT_SOURCES = ("procedural", "middlebury", "samples")


def _load(name: str) -> type[Source]:
    if name not in SOURCES:
        raise SourceError(f"unknown source {name!r}; known sources: {', '.join(SOURCES)}")
    module, cls = SOURCES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get_source(name: str, path, **options) -> Source:
    """Build the reader ``name`` over ``path`` with reader-specific ``options``.

    The options are checked against the reader's signature: an unknown option is named
    with the known ones, a value of the wrong type (``crop="no"``) is refused.
    """
    cls = _load(name)
    return cls(path, **check_options(cls, options, f"source {name!r} option"))


def list_sources() -> dict[str, str]:
    """Map of source name to its one-line description."""
    out = {}
    for name in SOURCES:
        try:
            out[name] = _load(name).description
        except (ImportError, AttributeError) as exc:  # a reader not yet available
            out[name] = f"(unavailable: {exc})"
    return out
