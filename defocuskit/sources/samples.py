"""Reader for the bundled procedural RGB-D scenes in the repository's ``samples/`` folder.

The folder holds ``manifest.json`` and, per scene, an 8-bit RGB PNG and a 16-bit depth
PNG in millimetres (0 = invalid). ``samples/make_samples.py`` regenerates them.

The scenes ship with the package: building a wheel (``setup.py``) copies ``manifest.json``
and ``scenes/*.png`` to ``defocuskit/_samples/``, so ``--source samples`` needs no
``--input`` wherever defocuskit is installed; in a checkout (or an editable install) the
repository's ``samples/`` folder, the only copy in the source tree, is read instead.
"""

from __future__ import annotations

import json
import os
from importlib.resources import files
from pathlib import Path
from typing import Any

from defocuskit.errors import SourceError
from defocuskit.sources._io import read_depth_png_mm, read_rgb
from defocuskit.sources.base import Sample, Source

__all__ = ["SamplesSource", "default_samples_path", "read_depth_png_mm", "NO_INPUT"]

MANIFEST = "manifest.json"
PACKAGED = "_samples"  # defocuskit/_samples/: where a built wheel holds the scenes
# What ``--input`` may be to mean "the bundled scenes": left out, or one of these.
NO_INPUT = ("", "-", "samples")


def default_samples_path() -> Path:
    """The bundled scenes: the installed copy (``defocuskit/_samples``) if there is one,
    else the ``samples/`` folder of this repository checkout."""
    installed = files("defocuskit").joinpath(PACKAGED)
    if isinstance(installed, Path) and (installed / MANIFEST).is_file():
        return installed
    return Path(__file__).resolve().parents[2] / "samples"


class SamplesSource(Source):
    """The bundled procedural indoor scenes (256 x 320, depth 0.7-10 m).

    Parameters
    ----------
    path : str or os.PathLike, optional
        The samples folder holding ``manifest.json`` (a path to the manifest itself is also
        accepted). Default (also for ``""``, ``"-"`` and ``"samples"`` when no such folder
        exists here): the bundled scenes, :func:`default_samples_path`.

    Notes
    -----
    ``read`` returns a :class:`Sample` with ``aif`` (256, 320, 3) uint8 RGB and ``depth``
    (256, 320) float32 metres (NaN = invalid); ``meta`` holds the units, the camera
    intrinsics used to build the geometry and the scene's parameters from the manifest.
    """

    name = "samples"
    description = ("bundled procedural RGB-D rooms (8 scenes, 256x320, metric depth; "
                   "no --input)")

    def __init__(self, path: str | os.PathLike | None = None):
        text = "" if path is None else str(path)
        # "samples" may name a folder of that name here (a checkout's root): read that one
        if text in NO_INPUT and not (text and Path(text).is_dir()):
            path = default_samples_path()
        path = Path(path)
        if path.name == MANIFEST and path.is_file():
            path = path.parent
        super().__init__(path)
        manifest_path = self.path / MANIFEST
        if not manifest_path.is_file():
            raise SourceError(f"samples: no {MANIFEST} in {str(self.path)!r}; expected the "
                              "folder written by samples/make_samples.py")
        try:
            self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SourceError(f"samples: cannot read {str(manifest_path)!r}: {exc}") from exc
        self._check_manifest(manifest_path)

    def _check_manifest(self, manifest_path: Path) -> None:
        m = self.manifest
        for key in ("splits", "scenes", "units", "camera"):
            if key not in m:
                raise SourceError(f"samples: {str(manifest_path)!r} lacks the key {key!r}")
        for split, names in m["splits"].items():
            for name in names:
                scene = m["scenes"].get(name)
                if scene is None:
                    raise SourceError(f"samples: split {split!r} lists scene {name!r}, which "
                                      f"{str(manifest_path)!r} does not describe")
                for key in ("rgb", "depth"):
                    f = self.path / scene[key]
                    if not f.is_file():
                        raise SourceError(f"samples: scene {name!r} {key} file {str(f)!r} "
                                          "does not exist; rerun samples/make_samples.py")

    def splits(self) -> list[str]:
        return list(self.manifest["splits"])

    def sample_ids(self, split: str) -> list[str]:
        self._check_split(split)
        return list(self.manifest["splits"][split])

    def read(self, split: str, index: int) -> Sample:
        ids = self.sample_ids(split)
        if not 0 <= index < len(ids):
            raise SourceError(f"samples: index {index} out of range for split {split!r} "
                              f"({len(ids)} samples)")
        name = ids[index]
        scene = self.manifest["scenes"][name]
        aif = read_rgb(self.path / scene["rgb"])
        depth = read_depth_png_mm(self.path / scene["depth"])
        if depth.shape != aif.shape[:2]:
            raise SourceError(f"samples: scene {name!r}: depth size {depth.shape} does not "
                              f"match the image size {aif.shape[:2]}")
        meta: dict[str, Any] = {
            "source": self.name, "scene": name, "split": split,
            "units": {"depth": "metres", "depth_png": self.manifest["units"]["depth_png"],
                      "invalid": "NaN (stored as 0 in the PNG)"},
            "camera_intrinsics_px": {k: v for k, v in self.manifest["camera"].items()
                                     if k.endswith("_px")},
            "original_size": list(aif.shape[:2]),
            "scene_params": {k: v for k, v in scene.items() if k not in ("rgb", "depth")},
        }
        return Sample(sample_id=name, aif=aif, depth=depth, meta=meta)
