"""Custom cameras: a camera given by its parameters rather than by a preset's name.

A *camera table* (:class:`CameraTable`; a ``[camera]`` table in a config file, or
``KEY=VALUE`` items of ``--camera``) describes a camera by its parameters (focal length,
f-number or aperture, pixel pitch or sensor width, CoC model, sigma rule, default focus
policy and render mode), optionally as single-field overrides of a named preset
(:mod:`defocuskit.camera.named`). :func:`camera_table` checks one against the physical ranges
(:data:`CAMERA_RANGES`) and returns its canonical form, :func:`camera_text` writes it as
the one-line form that :func:`~defocuskit.camera.presets.get_preset` reads back (the name a
dataset records for its camera), and :func:`custom_preset` turns it into a
:class:`~defocuskit.camera.named.CameraPreset`. :data:`TABLE_KEYS` are the keys a table
accepts, in canonical order.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from defocuskit.camera.focus import make_focus_policy
from defocuskit.camera.named import CameraPreset, get_preset_by_name, list_presets
from defocuskit.camera.optics import Camera
from defocuskit.errors import ConfigError
from defocuskit.typed import check_fields, parse_cli_value

__all__ = ["CAMERA_RANGES", "CUSTOM_SOURCE", "TABLE_KEYS", "CameraTable", "camera_table",
           "camera_text", "custom_preset"]

# Physical ranges of a camera table's values (closed intervals).
CAMERA_RANGES: dict[str, tuple[float, float]] = {
    "focal_mm": (1.0, 2000.0),        # phone modules (~2 mm) to long telephoto lenses
    # f/0.5 is the bound of a lens in air (N = 1 / (2 NA), NA <= 1); f/128 the smallest
    # stop of large-format lenses
    "f_number": (0.5, 128.0),
    "aperture_mm": (0.0, 4000.0),     # > 0; it must also give an f-number in range
    "pitch_um": (0.1, 1000.0),        # one *output* pixel: downscaled frames have large ones
    "sensor_width_mm": (1.0, 500.0),
    "coc_to_sigma": (0.0, 2.0),       # > 0; sigma = K * CoC, 1/4 for a uniform disc's sd
    "coc_offset_px": (0.0, 100.0),
    "coc_step_px": (0.0, 10.0),
}
_OPEN_BELOW = ("aperture_mm", "coc_to_sigma")  # these must be > their lower bound
CUSTOM_SOURCE = "custom camera, given by its parameters"


@dataclass(frozen=True)
class CameraTable:
    """The keys of a camera table; every one is optional on its own.

    A table without ``preset`` is a whole camera: ``focal_mm``, exactly one of
    ``f_number`` and ``aperture_mm``, and exactly one of ``pitch_um`` and
    ``sensor_width_mm`` (pitch = sensor width / image width). With ``preset`` each given
    key replaces that one value of the preset's camera (the others stay the preset's, e.g.
    a new focal length keeps the f-number); at most one of each pair.

    Attributes
    ----------
    preset : str
        A named preset to start from (``defocuskit cameras``).
    focal_mm, f_number, aperture_mm, pitch_um, sensor_width_mm : float
        Focal length (mm), f-number, aperture diameter (mm), output pixel pitch (µm),
        sensor width (mm); ranges in :data:`CAMERA_RANGES` (an aperture must give an
        f-number in range).
    coc_model : {"exact", "paper"}
        CoC formula (:class:`~defocuskit.camera.optics.Camera`); default ``exact``.
    coc_to_sigma, coc_offset_px, coc_step_px : float
        The sigma rule ``sigma = K * max(round(CoC, step) - offset, 0)``; defaults 0.25, 0, 0
        (sigma = CoC / 4). With a preset each replaces only its own part of the rule.
    focus, mode : str
        Default focus policy and render mode of the camera, as a preset's; ``--focus`` and
        ``--mode`` override them (otherwise ``histogram`` and ``layered`` apply).
    """

    preset: str | None = None
    focal_mm: float | None = None
    f_number: float | None = None
    aperture_mm: float | None = None
    pitch_um: float | None = None
    sensor_width_mm: float | None = None
    coc_model: Literal["exact", "paper"] | None = None
    coc_to_sigma: float | None = None
    coc_offset_px: float | None = None
    coc_step_px: float | None = None
    focus: str | None = None
    mode: Literal["gather", "scatter", "layered"] | None = None


# the keys a camera table accepts, in the order of its canonical form and its text
TABLE_KEYS = tuple(f.name for f in dataclasses.fields(CameraTable))


def _split_text(text: str) -> dict[str, Any]:
    """``"2hded,f_number=4"`` or ``"focal_mm=50,f_number=2.8"`` as a table (unchecked).

    Items are separated by commas; an item without ``=`` names the preset, except a bare
    number, which continues the item before it (``focus=stack:1.5,3.0``).
    """
    items: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        try:
            float(piece)
            is_number = True
        except ValueError:
            is_number = False
        if is_number and items and "=" in items[-1]:
            items[-1] += "," + piece
        elif piece:
            items.append(piece)
    table: dict[str, Any] = {}
    for item in items:
        key, value = item.split("=", 1) if "=" in item else ("preset", item)
        key = key.strip()
        if key in table:
            what = ("two presets named; give one and change its values with KEY=VALUE"
                    if key == "preset" else f"{key!r} given twice")
            raise ConfigError(f"camera {text!r}: {what}")
        table[key] = parse_cli_value(value.strip()) if key != "preset" else value.strip()
    return table


def camera_table(spec: Any, where: str = "camera") -> str | dict[str, Any]:
    """Check a camera given by name, table or text; return its canonical form.

    Returns
    -------
    str or dict
        The preset name when ``spec`` names a preset and changes nothing; otherwise a dict
        of the given keys (floats for numbers, in :class:`CameraTable` order), so that the
        same camera given on the command line or in a config file compares equal.

    Raises
    ------
    ConfigError
        One line: an unknown preset or key (named with the known ones), a value of the wrong
        type or out of its physical range (:data:`CAMERA_RANGES`), both or neither of
        ``f_number`` / ``aperture_mm`` or of ``pitch_um`` / ``sensor_width_mm``, a
        per-sample aperture rule (``syndof``) given an aperture, an unknown focus policy.
    """
    if isinstance(spec, str):
        if spec in list_presets():
            return spec
        if "=" not in spec and "," not in spec:
            get_preset_by_name(spec)  # raises: unknown preset
        table = _split_text(spec)
    elif isinstance(spec, dict):
        table = dict(spec)
    else:
        raise ConfigError(f"{where}: expected a preset name or a table of camera parameters, "
                          f"got {spec!r} ({type(spec).__name__})")
    table = {k: v for k, v in check_fields(CameraTable, table, where).items() if v is not None}
    base = table.get("preset")
    named = get_preset_by_name(base) if base is not None else None  # raises: unknown preset
    for key, value in table.items():
        if key in CAMERA_RANGES:
            lo, hi = CAMERA_RANGES[key]
            above = lo < value if key in _OPEN_BELOW else lo <= value
            if not (math.isfinite(value) and above and value <= hi):
                low = f"> {lo:g}" if key in _OPEN_BELOW else f">= {lo:g}"
                raise ConfigError(f"{where}: {key} must be {low} and <= {hi:g}, got {value!r}")
    if named is not None and named.max_coc_px is not None and (
            "f_number" in table or "aperture_mm" in table):
        raise ConfigError(f"{where}: preset {base!r} solves the f-number per sample (largest "
                          f"CoC {named.max_coc_px:g} px); f_number and aperture_mm "
                          "cannot be set")
    if "aperture_mm" in table:
        d = table["aperture_mm"]
        f_mm = table.get("focal_mm")
        if f_mm is None and named is not None:
            f_mm = named.factory(640, np.random.default_rng(0)).focal_length * 1e3
        lo, hi = CAMERA_RANGES["f_number"]
        if f_mm is not None and not lo <= f_mm / d <= hi:
            raise ConfigError(f"{where}: aperture_mm={d:g} with focal length {f_mm:g} mm is "
                              f"f/{f_mm / d:.3g}; the f-number must be in f/{lo:g}-f/{hi:g}")
    for pair in (("f_number", "aperture_mm"), ("pitch_um", "sensor_width_mm")):
        given = [k for k in pair if k in table]
        if len(given) == 2:
            raise ConfigError(f"{where}: give one of {pair[0]} and {pair[1]}, not both")
        if base is None and not given:
            raise ConfigError(f"{where}: a camera without a preset needs {pair[0]} or "
                              f"{pair[1]}; got keys {sorted(table)}")
    if base is None and "focal_mm" not in table:
        raise ConfigError(f"{where}: a camera without a preset needs focal_mm; got keys "
                          f"{sorted(table)}")
    if "focus" in table:
        try:
            make_focus_policy(table["focus"])
        except ConfigError as exc:
            raise ConfigError(f"{where}: focus: {exc}") from None
    if set(table) == {"preset"}:
        return base
    return {k: table[k] for k in TABLE_KEYS if k in table}


def _number(v: float) -> str:
    text = repr(float(v))  # exact: the text reads back as the same float
    return text[:-2] if text.endswith(".0") else text


def camera_text(spec: str | dict) -> str:
    """The one-line form of a camera (a preset name, or ``[preset,]key=value,...``).

    :func:`get_preset` reads it back to the same camera; a dataset records it as its
    ``camera.preset``, so ``trainer fit --on-the-fly`` renders with the same camera.
    """
    table = camera_table(spec)
    if isinstance(table, str):
        return table
    items = [table["preset"]] if "preset" in table else []
    items += [f"{k}={_number(v) if isinstance(v, float) else v}"
              for k, v in table.items() if k != "preset"]
    return ",".join(items)


def _geometry(table: dict[str, Any]) -> str:
    parts = []
    if "focal_mm" in table:
        parts.append(f"f = {table['focal_mm']:g} mm")
    if "f_number" in table:
        parts.append(f"f/{table['f_number']:g}")
    if "aperture_mm" in table:
        parts.append(f"aperture D = {table['aperture_mm']:g} mm")
    if "pitch_um" in table:
        parts.append(f"pixel pitch {table['pitch_um']:g} um")
    if "sensor_width_mm" in table:
        parts.append(f"pixel pitch = {table['sensor_width_mm']:g} mm sensor width / image width")
    for k in ("coc_model", "coc_to_sigma", "coc_offset_px", "coc_step_px", "focus", "mode"):
        if k in table:
            parts.append(f"{k} {table[k]:g}" if isinstance(table[k], float) else
                         f"{k} {table[k]}")
    return ", ".join(parts)


def custom_preset(spec: str | dict) -> CameraPreset:
    """The :class:`CameraPreset` of a camera table (checked by :func:`camera_table`).

    Without ``preset`` the camera is fixed (the same for every sample), its sigma rule and
    defaults those of the table or the module defaults (sigma = CoC / 4, ``exact``, no focus
    policy or render mode: the fallbacks apply). With ``preset`` it is that preset with the
    given values replaced; a randomised preset stays randomised in what is not replaced.
    """
    table = camera_table(spec)
    if isinstance(table, str):
        return get_preset_by_name(table)
    base = get_preset_by_name(table["preset"]) if "preset" in table else None
    f_m = table["focal_mm"] / 1e3 if "focal_mm" in table else None
    n = table.get("f_number")
    d_m = table["aperture_mm"] / 1e3 if "aperture_mm" in table else None
    pitch_m = table["pitch_um"] / 1e6 if "pitch_um" in table else None
    width_m = table["sensor_width_mm"] / 1e3 if "sensor_width_mm" in table else None

    def factory(width: int, rng: np.random.Generator) -> Camera:
        cam = base.factory(width, rng) if base is not None else None
        focal = f_m if f_m is not None else cam.focal_length
        f_number = (n if n is not None else focal / d_m if d_m is not None
                    else cam.f_number)
        pitch = (pitch_m if pitch_m is not None else width_m / int(width)
                 if width_m is not None else cam.pixel_pitch)
        focus = cam.focus_distance if cam is not None else 2.0
        # the placeholder focus until a focus policy sets it must lie beyond the lens
        return Camera(focal_length=focal, f_number=f_number, pixel_pitch=pitch,
                      focus_distance=max(focus, 4 * focal))

    text = camera_text(table)
    given = {k: table[k] for k in ("coc_model", "coc_to_sigma", "coc_offset_px",
                                   "coc_step_px", "focus", "mode") if k in table}
    if base is None:
        return CameraPreset(text, f"Custom camera: {_geometry(table)}.", CUSTOM_SOURCE,
                            False, factory, **given)
    return dataclasses.replace(
        base, name=text, factory=factory, **given,
        description=f"{base.description} Changed here: {_geometry(table)}.")
