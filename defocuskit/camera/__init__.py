"""The camera: thin-lens optics, named presets, custom camera tables and focus policies.

Module graph (no cycles): :mod:`~defocuskit.camera.optics` (the thin lens,
:class:`Camera`) <- :mod:`~defocuskit.camera.named` (the published presets) <-
:mod:`~defocuskit.camera.table` (custom cameras, given by their parameters) <-
:mod:`~defocuskit.camera.presets` (:func:`get_preset`: a camera by name or table);
:mod:`~defocuskit.camera.focus` (focus policies) stands beside them.
"""

from defocuskit.camera.focus import make_focus_policy, sample_rng
from defocuskit.camera.named import CameraPreset, list_presets
from defocuskit.camera.optics import Camera
from defocuskit.camera.presets import get_preset
from defocuskit.camera.table import camera_table, camera_text

__all__ = ["Camera", "CameraPreset", "camera_table", "camera_text", "get_preset",
           "list_presets", "make_focus_policy", "sample_rng"]
