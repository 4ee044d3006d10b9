"""Procedural indoor scenes made on the fly: any number, any size, identical for a seed.

No files are read: every sample is drawn from ``(seed, split, index)`` and ray-cast when it
is read, by the same generator that made the bundled ``samples/`` scenes
(:mod:`defocuskit.sources._procedural_scenes`): a room (floor, ceiling, side walls, back
wall 6-9.6 m away) with four textured boxes at metric depths from 0.7 m to the back wall, a
poster, one point light with hard shadows, and real occlusion edges (the depth of an edge
pixel belongs to one surface, never a blend).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np

from defocuskit.errors import SourceError
from defocuskit.sources._procedural_scenes import draw_scene, pinhole, render_scene
from defocuskit.sources.base import Sample, Source

__all__ = ["ProceduralSource", "scene_seed", "GENERATOR_VERSION", "NO_INPUT"]

# Bump when a change to the scene generator changes the pixels of a given seed: it is part
# of the source's identity, stored with every dataset.
GENERATOR_VERSION = 1
# What ``--input`` may be for this source (it reads no file): left out, or one of these.
NO_INPUT = ("", "-", "procedural")


def scene_seed(seed: int, split: str, index: int) -> int:
    """The generator seed of scene ``index`` of ``split`` (a 63-bit integer).

    A hash of ``(seed, split, index)``, so a scene does not depend on how many scenes the
    splits hold: the first 10 test scenes of a run with ``n_test=10`` are those of a run with
    ``n_test=1000``.
    """
    key = f"defocuskit-procedural:{int(seed)}:{split}:{int(index)}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


def _positive_int(name: str, value: Any, minimum: int, maximum: int = 2**63 - 1) -> int:
    if (isinstance(value, bool) or not isinstance(value, int | np.integer)
            or not minimum <= value <= maximum):
        raise SourceError(f"procedural: option {name} must be an integer in [{minimum}, "
                          f"{maximum}], got {value!r}")
    return int(value)


class ProceduralSource(Source):
    """Seeded procedural indoor scenes with exact metric depth, generated when read.

    Parameters
    ----------
    path : None, "", "-" or "procedural"
        Ignored placeholder: this source reads no file.
    n_train, n_test : int, keyword-only
        Scenes in the ``train`` and ``test`` splits (a split with 0 scenes is left out).
    height, width : int, keyword-only
        Image size in pixels (>= 16). The pinhole camera keeps the bundled samples' field
        of view: ``fx = fy = 0.8125 * width`` (NYU-v2's focal length scaled to the width).
    seed : int, keyword-only
        Base seed (>= 0); scene ``i`` of a split is drawn from ``scene_seed(seed, split, i)``.
    supersample : int, keyword-only
        Colour rays per pixel along each axis: 1 (default, one ray per pixel, about 40 ms
        per 256 x 256 scene on one core; edges are aliased like a sensor without an
        anti-aliasing filter) up to 4 (16 rays, about 16x the cost).

    Notes
    -----
    ``read`` returns a :class:`Sample` with ``aif`` (height, width, 3) uint8 RGB and
    ``depth`` (height, width) float32 metres (about 0.7-9.6 m, every pixel valid); ``meta``
    holds the units, the intrinsics, the scene seed and the scene's parameters (room
    planes, boxes, materials, light). The same options give the same arrays, bit for bit.
    """

    name = "procedural"
    description = ("procedural RGB-D rooms made on the fly (any number and size, seeded; "
                   "no --input)")

    def __init__(self, path: str | os.PathLike | None = None, *, n_train: int = 1000,
                 n_test: int = 200, height: int = 256, width: int = 256, seed: int = 0,
                 supersample: int = 1):
        if path is not None and str(path) not in NO_INPUT:
            raise SourceError(f"procedural: this source reads no file; leave --input out (or "
                              f"pass '-'), got {str(path)!r}")
        self.path = "-"  # not a filesystem path: the base-class existence check is moot
        self.n = {"train": _positive_int("n_train", n_train, 0),
                  "test": _positive_int("n_test", n_test, 0)}
        self.height = _positive_int("height", height, 16, 8192)
        self.width = _positive_int("width", width, 16, 8192)
        self.seed = _positive_int("seed", seed, 0)
        self.supersample = _positive_int("supersample", supersample, 1)
        if self.supersample > 4:
            raise SourceError(f"procedural: option supersample must be 1-4, got {supersample}")
        if not any(self.n.values()):
            raise SourceError("procedural: n_train and n_test are both 0; ask for some scenes")
        self.camera = pinhole(self.height, self.width)

    def splits(self) -> list[str]:
        return [s for s, n in self.n.items() if n > 0]

    def sample_ids(self, split: str) -> list[str]:
        self._check_split(split)
        return [f"{split}-{i:06d}" for i in range(self.n[split])]

    def scene(self, split: str, index: int) -> dict:
        """The parameters of scene ``index`` of ``split`` (plain JSON, lengths in metres)."""
        self._check_split(split)
        self._check_index(split, index, self.n[split])
        return draw_scene(scene_seed(self.seed, split, index), camera=self.camera)

    def read(self, split: str, index: int) -> Sample:
        params = self.scene(split, index)
        rgb, depth = render_scene(params, height=self.height, width=self.width,
                                  camera=self.camera, supersample=self.supersample)
        meta: dict[str, Any] = {
            "source": self.name, "split": split, "index": int(index),
            "units": {"depth": "metres", "geometry": "metres", "intrinsics": "pixels"},
            "camera_intrinsics_px": dict(self.camera), "original_size": [self.height,
                                                                         self.width],
            "scene_params": params,
        }
        return Sample(sample_id=f"{split}-{index:06d}", aif=rgb,
                      depth=depth.astype(np.float32), meta=meta)

    def options(self) -> dict[str, Any]:
        return {"n_train": self.n["train"], "n_test": self.n["test"], "height": self.height,
                "width": self.width, "seed": self.seed, "supersample": self.supersample}

    def identity(self, *, exclude=(), full: bool = False) -> dict[str, Any]:
        """Provenance: the generator (module and version) and the options; no file (``exclude``
        and ``full`` do not apply)."""
        opts = self.options()
        key = f"procedural-v{GENERATOR_VERSION}:{sorted(opts.items())}".encode()
        return {"path": "(generated: defocuskit.sources.procedural)",
                "generator_version": GENERATOR_VERSION, "options": opts, "size": 0,
                "sha256": hashlib.sha256(key).hexdigest(),
                "hashed": "generator version + options (the scenes are a function of them)"}
