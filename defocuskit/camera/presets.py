"""A camera by name or by its parameters: :func:`get_preset`, the one lookup.

``spec`` is a named preset (:mod:`defocuskit.camera.named`), a camera table or its
one-line text (:mod:`defocuskit.camera.table`). The named presets' public names are
re-exported here, so ``from defocuskit.camera.presets import ...`` reaches all of them.
"""

from __future__ import annotations

from defocuskit.camera.named import (
    FALLBACK_FOCUS,
    FALLBACK_MODE,
    SYNDOF_F_NUMBER_RANGE,
    SYNDOF_MAX_COC_PX,
    CameraPreset,
    get_preset_by_name,
    list_presets,
)
from defocuskit.camera.table import camera_table, custom_preset

__all__ = ["CameraPreset", "FALLBACK_FOCUS", "FALLBACK_MODE", "SYNDOF_F_NUMBER_RANGE",
           "SYNDOF_MAX_COC_PX", "get_preset", "get_preset_by_name", "list_presets"]


def get_preset(spec: str | dict) -> CameraPreset:
    """The preset called ``spec``, or the custom camera ``spec`` describes.

    ``spec`` is a preset name, a camera table (dict, see
    :class:`~defocuskit.camera.table.CameraTable`) or its one-line text form
    (``"focal_mm=50,f_number=2.8,pitch_um=5.6"``, ``"2hded,f_number=4"``; see
    :func:`~defocuskit.camera.table.camera_table`). An unknown name raises ConfigError
    listing the known ones; a bad table raises ConfigError naming the key.
    """
    named = list_presets()
    if isinstance(spec, str) and spec in named:
        return named[spec]
    table = camera_table(spec)
    if isinstance(table, str):
        return named[table]
    return custom_preset(table)
