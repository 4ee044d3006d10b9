"""Named camera presets: the published settings of each source, with their sigma rule,
focus policy and render mode (``defocuskit cameras`` lists them with their citations), and
custom cameras given by their parameters.

A preset makes a :class:`~defocuskit.optics.Camera` for an image width (``make``), and may
adapt it per sample (SYNDOF's aperture rule, ``adapt``); :func:`get_preset` looks one up by
name, :func:`list_presets` lists them.

A *camera table* (:class:`CameraTable`; a ``[camera]`` table in a config file, or
``KEY=VALUE`` items of ``--camera``) describes a camera by its parameters (focal length,
f-number or aperture, pixel pitch or sensor width, CoC model, sigma rule, default focus
policy and render mode), optionally as single-field overrides of a named preset;
:func:`camera_table` checks one, :func:`custom_preset` turns it into a
:class:`CameraPreset`, and :func:`camera_text` writes it as the one-line form that
:func:`get_preset` reads back (the name a dataset records for its camera).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from defocuskit.errors import ConfigError
from defocuskit.optics import Camera
from defocuskit.typed import check_fields, parse_cli_value

__all__ = ["CameraPreset", "CameraTable", "CAMERA_RANGES", "FALLBACK_FOCUS", "FALLBACK_MODE",
           "camera_table", "camera_text", "custom_preset", "get_preset", "list_presets"]

SYNDOF_SENSOR_WIDTH_M = 0.036  # SYNDOF converts sensor millimetres to pixels as W / 36 mm
SYNDOF_FOCAL_LENGTHS_M = (0.050, 0.070, 0.085)
SYNDOF_FOCAL_WEIGHTS = (0.1, 0.4, 0.4)  # as written in SYNDOF's code; normalised when drawn
SYNDOF_MAX_COC_PX = 29.0
SYNDOF_COC_OFFSET_PX = 1.0  # sigma = (CoC - 1) / 4; a CoC <= 1 px is left sharp
SYNDOF_COC_STEP_PX = 0.1  # SYNDOF rounds the CoC to 0.1 px (int64(coc * 10) / 10)
# SYNDOF solves N with no bound (f/0.055 happens when the scene's depth range is small).
# f/1.0 is about the widest aperture made for 50-85 mm lenses (and where the paraxial
# thin-lens model stops being a fair description); f/22 is their smallest usual stop, past
# which diffraction, not defocus, sets the blur. A clamped sample has a largest CoC below
# (f/1.0) or above (f/22) 29 px.
SYNDOF_F_NUMBER_RANGE = (1.0, 22.0)
MDDNET_A = 800.0  # MDDNet eq. 7: A = a / (rho * s) = aperture diameter / output pixel pitch
FALLBACK_FOCUS = "histogram"  # for presets whose source names no focus rule
FALLBACK_MODE = "layered"  # for presets whose source names no compositing: the only mode
# right on both sides of an occlusion edge (docs/camera_model.md, "Render modes")


@dataclass(frozen=True)
class CameraPreset:
    """A named, cited camera setting with the sigma rule and defaults of its source.

    Attributes
    ----------
    name, description, source : str
        Registry key, one-line summary and the publication / repository it comes from.
    randomized : bool
        True if :meth:`make` draws parameters from ``rng``.
    factory : callable ``(image_width, rng) -> Camera``
        The geometry (focal length, aperture, pixel pitch); :meth:`make` adds the sigma rule.
    default_focus_m : float
        Placeholder focus distance (metres) until a focus policy calls ``with_focus``.
    max_coc_px : float or None
        If set, :meth:`adapt` rescales the f-number so the largest CoC over the valid depth
        of a sample equals this many pixels (SYNDOF's rule).
    f_number_range : (float, float) or None
        Bounds of the f-number that :meth:`adapt` solves.
    coc_model, coc_to_sigma, coc_offset_px, coc_step_px
        The CoC model and sigma rule of the source (see :class:`Camera`).
    focus, mode : str or None
        The source's focus policy and render mode, used when a run gives none; ``None``:
        the source states none (:data:`FALLBACK_FOCUS`, :data:`FALLBACK_MODE` apply).
    """

    name: str
    description: str
    source: str
    randomized: bool
    factory: Callable[[int, np.random.Generator], Camera]
    default_focus_m: float = 2.0
    max_coc_px: float | None = None
    f_number_range: tuple[float, float] | None = None
    coc_model: str = "exact"
    coc_to_sigma: float = 0.25
    coc_offset_px: float = 0.0
    coc_step_px: float = 0.0
    focus: str | None = None
    mode: str | None = None

    def make(self, *, image_width: int, rng: np.random.Generator,
             coc_model: str | None = None, coc_to_sigma: float | None = None) -> Camera:
        """Camera for images ``image_width`` pixels wide; fixed presets ignore ``rng``.

        ``coc_model`` replaces the preset's CoC model; ``coc_to_sigma`` replaces the
        preset's whole sigma rule by ``sigma = coc_to_sigma * CoC`` (no rounding, no offset).
        """
        cam = self.factory(int(image_width), rng)
        rule = (dict(coc_to_sigma=self.coc_to_sigma, coc_offset_px=self.coc_offset_px,
                     coc_step_px=self.coc_step_px) if coc_to_sigma is None else
                dict(coc_to_sigma=coc_to_sigma, coc_offset_px=0.0, coc_step_px=0.0))
        return dataclasses.replace(cam, coc_model=coc_model or self.coc_model, **rule)

    def sigma_rule(self, coc_to_sigma: float | None = None) -> dict:
        """The sigma rule :meth:`make` gives (plain JSON, see :meth:`Camera.sigma_rule`)."""
        rule = Camera(focal_length=0.05, f_number=2.0, focus_distance=2.0, pixel_pitch=1e-5,
                      coc_to_sigma=self.coc_to_sigma, coc_offset_px=self.coc_offset_px,
                      coc_step_px=self.coc_step_px)
        if coc_to_sigma is not None:
            rule = dataclasses.replace(rule, coc_to_sigma=coc_to_sigma, coc_offset_px=0.0,
                                       coc_step_px=0.0)
        return rule.sigma_rule()

    def adapt(self, camera: Camera, depth_m, focus_m=None) -> Camera:
        """Apply the per-sample rule of the preset: one f-number for the whole sample.

        For presets with ``max_coc_px`` the f-number is chosen so that the largest CoC over
        the finite, positive values of ``depth_m`` (metres) and over every focus distance in
        ``focus_m`` (metres; default: the camera's own) equals ``max_coc_px``, then clamped
        to ``f_number_range``. Solving once for all the distances of a focal stack keeps one
        aperture per sample. Other presets return ``camera`` unchanged.
        """
        if self.max_coc_px is None:
            return camera
        d = np.asarray(depth_m, dtype=np.float64)
        d = d[np.isfinite(d) & (d > 0)]
        if d.size == 0:
            return camera
        focus = [camera.focus_distance] if focus_m is None else np.atleast_1d(focus_m)
        current = max(camera.with_focus(float(s)).max_coc_px(float(d.min()), float(d.max()))
                      for s in focus)
        if current <= 0:
            return camera
        n = camera.f_number * current / self.max_coc_px  # the CoC scales as 1 / N
        if self.f_number_range is not None:
            n = min(max(n, self.f_number_range[0]), self.f_number_range[1])
        return camera.with_f_number(n)

    def describe(self) -> str:
        """One paragraph for ``defocuskit cameras``: name, description, defaults, source."""
        kind = "randomised per sample" if self.randomized else "fixed"
        return (f"{self.name} ({kind}): {self.description} CoC model {self.coc_model}; "
                f"{self.sigma_rule()['formula']}; default focus "
                f"{self.focus or FALLBACK_FOCUS + ' (none stated by the source)'}; default "
                f"mode {self.mode or FALLBACK_MODE + ' (none stated by the source)'}. "
                f"Source: {self.source}")


def _make_2hded(width: int, rng) -> Camera:
    return Camera.from_sensor_width(focal_length=0.070, aperture_diameter=0.0448,
                                    focus_distance=2.0, sensor_width=SYNDOF_SENSOR_WIDTH_M,
                                    image_width=width)


def _make_d3net(width: int, rng) -> Camera:
    return Camera(focal_length=0.015, f_number=2.8, focus_distance=2.0, pixel_pitch=5.6e-6)


def _make_idfd(width: int, rng) -> Camera:
    return Camera.from_sensor_width(focal_length=0.014, f_number=2.8, focus_distance=2.0,
                                    sensor_width=SYNDOF_SENSOR_WIDTH_M, image_width=width)


def _make_syndof(width: int, rng) -> Camera:
    w = np.asarray(SYNDOF_FOCAL_WEIGHTS) / np.sum(SYNDOF_FOCAL_WEIGHTS)
    f = float(SYNDOF_FOCAL_LENGTHS_M[int(rng.choice(len(w), p=w))])
    # f/2 is a placeholder: CameraPreset.adapt solves N per sample for a 29 px max CoC.
    return Camera.from_sensor_width(focal_length=f, f_number=2.0, focus_distance=2.0,
                                    sensor_width=SYNDOF_SENSOR_WIDTH_M, image_width=width)


def _make_mddnet(width: int, rng) -> Camera:
    f, n = 0.050, 1.4
    return Camera(focal_length=f, f_number=n, focus_distance=2.0,
                  pixel_pitch=(f / n) / MDDNET_A)


_SYNDOF_CITE = ("Lee et al., 'Deep Defocus Map Estimation using Domain Adaptation', CVPR 2019 "
                "(codeslake/SYNDOF, blur_by_depth.m)")
_PRESETS = {
    p.name: p
    for p in (
        CameraPreset(
            "2hded", "2HDED:NET setting: f = 70 mm, aperture D = 44.8 mm, pixel pitch = 36 mm "
            "sensor width / image width (SYNDOF convention), sigma = CoC / 4; the paper "
            "adopts SYNDOF's procedure: its focus rule and layered compositing.",
            "Nazir et al., 'Depth Estimation and Image Restoration by Deep Learning From "
            "Defocused Images' (2HDED:NET), IEEE Trans. Comput. Imaging 2023, "
            "doi:10.1109/TCI.2023.3288335, Sec. IV-A eq. 8 (parameters and procedure from "
            "SYNDOF, Lee et al., CVPR 2019)", False, _make_2hded,
            focus="syndof", mode="layered"),
        CameraPreset(
            "d3net-nyu", "D3-Net NYU-v2 setting: f = 15 mm, f/2.8, 5.6 um pixels, sigma = 0.3 "
            "CoC, focus fixed at 2 m (its code also uses 4 or 8 m), layered compositing.",
            "Carvalho et al., 'Deep Depth from Defocus: how can defocus blur improve 3D "
            "estimation using dense neural networks?', ECCV Workshops 2018 (the synthetic data "
            "D3-Net names; code marcelampc/d3net_depth_estimation, refoc_image.m)", False,
            _make_d3net, coc_to_sigma=0.3, focus="fixed:2.0", mode="layered"),
        CameraPreset(
            "syndof", "SYNDOF randomised camera: f drawn from {50, 70, 85} mm with weights "
            "(.1, .4, .4) normalised, pixel pitch = 36 mm / image width, f-number solved per "
            "sample so the largest CoC is 29 px (clamped to f/1.0-f/22, one aperture per "
            "sample across a focal stack), CoC rounded to 0.1 px, sigma = (CoC - 1) / 4 with "
            "a CoC <= 1 px left sharp, focus drawn by rank over the unique depths, layered "
            "compositing.", _SYNDOF_CITE, True, _make_syndof, max_coc_px=SYNDOF_MAX_COC_PX,
            f_number_range=SYNDOF_F_NUMBER_RANGE, coc_offset_px=SYNDOF_COC_OFFSET_PX,
            coc_step_px=SYNDOF_COC_STEP_PX, focus="syndof", mode="layered"),
        CameraPreset(
            "mddnet", "MDDNet setting: F = 50 mm, f/1.4, A = aperture / pixel pitch = 800 "
            "(pitch 44.6 um at any image size), sigma = CoC, scatter compositing (each source "
            "pixel spreads its own Gaussian).",
            "He, Hong, Fu and Liu, 'Multi-task Learning for Monocular Depth and Defocus "
            "Estimations with Real Images' (MDDNet), arXiv preprint, eq. 2 and 7-9", False,
            _make_mddnet, coc_to_sigma=1.0, mode="scatter"),
        CameraPreset(
            "idfd-nikon", "iDFD Nikon DSLR with a 14 mm lens at f/2.8 (the defocused shots); "
            "the sensor width is not published: 36 mm full frame is assumed.",
            "Nazir, thesis ch. 4 (iDFD dataset), 2023", False, _make_idfd),
    )
}


def list_presets() -> dict[str, CameraPreset]:
    """All named camera presets, by name."""
    return dict(_PRESETS)


def get_preset(spec: str | dict) -> CameraPreset:
    """The preset called ``spec``, or the custom camera ``spec`` describes.

    ``spec`` is a preset name, a camera table (dict, see :class:`CameraTable`) or its
    one-line text form (``"focal_mm=50,f_number=2.8,pitch_um=5.6"``, ``"2hded,f_number=4"``;
    see :func:`camera_table`). An unknown name raises ConfigError listing the known ones; a
    bad table raises ConfigError naming the key.
    """
    if isinstance(spec, str) and spec in _PRESETS:
        return _PRESETS[spec]
    table = camera_table(spec)
    if isinstance(table, str):
        return _PRESETS[table]
    return custom_preset(table)


# -- custom cameras --------------------------------------------------------------------------
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
        CoC formula (:class:`~defocuskit.optics.Camera`); default ``exact``.
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


_TABLE_KEYS = tuple(f.name for f in dataclasses.fields(CameraTable))


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
        if spec in _PRESETS:
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
    if base is not None:
        get_preset_by_name(base)
    for key, value in table.items():
        if key in CAMERA_RANGES:
            lo, hi = CAMERA_RANGES[key]
            above = lo < value if key in _OPEN_BELOW else lo <= value
            if not (math.isfinite(value) and above and value <= hi):
                low = f"> {lo:g}" if key in _OPEN_BELOW else f">= {lo:g}"
                raise ConfigError(f"{where}: {key} must be {low} and <= {hi:g}, got {value!r}")
    if base is not None and _PRESETS[base].max_coc_px is not None and (
            "f_number" in table or "aperture_mm" in table):
        raise ConfigError(f"{where}: preset {base!r} solves the f-number per sample (largest "
                          f"CoC {_PRESETS[base].max_coc_px:g} px); f_number and aperture_mm "
                          "cannot be set")
    if "aperture_mm" in table:
        d = table["aperture_mm"]
        f_mm = table.get("focal_mm")
        if f_mm is None and base is not None:
            f_mm = _PRESETS[base].factory(640, np.random.default_rng(0)).focal_length * 1e3
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
        from defocuskit.focus import make_focus_policy

        try:
            make_focus_policy(table["focus"])
        except ConfigError as exc:
            raise ConfigError(f"{where}: focus: {exc}") from None
    if set(table) == {"preset"}:
        return base
    return {k: table[k] for k in _TABLE_KEYS if k in table}


def get_preset_by_name(name: str) -> CameraPreset:
    """The named preset; an unknown name raises ConfigError listing the known ones."""
    try:
        return _PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown camera preset {name!r}; known presets: {', '.join(sorted(_PRESETS))}"
            "; or give the camera's parameters, e.g. focal_mm=50,f_number=2.8,pitch_um=5.6"
        ) from None


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
        return _PRESETS[table]
    base = _PRESETS.get(table.get("preset"))
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
