"""The root attributes a new synth dataset records: its resolved configuration and content
key, the render mode, PSF and view options, the camera, where each preset-supplied setting
came from, the source and its input identity, and the versions of the software."""

from __future__ import annotations

import sys
import time
from typing import Any

import numcodecs
import numpy as np
import zarr

from defocuskit import __version__
from defocuskit.camera.chromatic import CHROMATIC_MODEL
from defocuskit.pipeline.config import SynthConfig
from defocuskit.pipeline.plan import input_identity
from defocuskit.recipe import RenderSettings, psf_provenance
from defocuskit.sources import Source

__all__ = ["dataset_provenance", "jpeg_encoder"]


def dataset_provenance(source: Source, cfg: SynthConfig, render: RenderSettings,
                       strict_resume: bool = False) -> dict[str, Any]:
    """Root attributes of a new dataset; ``render`` holds the resolved settings and where
    each came from."""
    import numba  # loads Numba's package: a scene-only run needs no Numba

    preset, settings = render.preset, render.origin
    key = cfg.content_key()
    return {
        "producer": "defocuskit",
        "config": cfg.to_dict(),
        "content_key": key,
        "seed": cfg.seed,
        "render_mode": cfg.render_mode,
        "psf": cfg.psf,
        # the PSF in full (a polygon's blades, a bank's file hash) and the view options
        "psf_detail": psf_provenance(cfg.psf),
        "dual_pixel": bool(cfg.dual_pixel),
        "chromatic": ({"offsets_mm": list(cfg.chromatic), "channels": ["R", "G", "B"],
                       "model": CHROMATIC_MODEL} if cfg.chromatic is not None else None),
        "jpeg": ({"quality": cfg.jpeg, "encoder": jpeg_encoder()}
                 if cfg.jpeg is not None else None),
        "layered_levels": key.get("layered_levels"),  # None for the other modes
        # a custom camera's preset is its one-line text (camera_table.camera_text), which
        # `--camera` and `trainer fit --on-the-fly` read back as the same camera
        "camera": {"preset": preset.name, "description": preset.description,
                   "parameters": cfg.camera if isinstance(cfg.camera, dict) else None,
                   "coc_model": settings["coc_model"]["value"],
                   "sigma_rule": settings["sigma_rule"]["value"],
                   "f_number_range": (list(preset.f_number_range)
                                      if preset.f_number_range else None),
                   "source": preset.source, "randomized": bool(preset.randomized),
                   "coc_to_sigma_override": cfg.coc_to_sigma},
        # each setting a preset can supply: the value used and whether it came from the
        # user, the preset (its source's choice) or the fallback
        "settings": settings,
        "focus_policy": cfg.focus,
        "source": {"name": cfg.source, "options": source.options(),
                   "identity": input_identity(source, cfg, full=strict_resume)},
        "versions": {"defocuskit": __version__, "numpy": np.__version__,
                     "numba": numba.__version__, "zarr": zarr.__version__,
                     "numcodecs": numcodecs.__version__, "python": sys.version.split()[0]},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def jpeg_encoder() -> str:
    """The JPEG encoder of ``--jpeg`` (OpenCV's libjpeg), by version."""
    import cv2  # OpenCV (heavy): only for --jpeg

    return f"opencv {cv2.__version__}"
