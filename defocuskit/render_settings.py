"""The settings of a render, resolved once per run (:class:`RenderSettings`): the camera (a
named preset or a custom camera table, resolved to its
:class:`~defocuskit.camera.named.CameraPreset`), the focus policy, the render mode, the
PSF, the CoC model and sigma rule, light and noise; each setting a preset can supply
records where its value came from (:attr:`RenderSettings.origin`). Part of the render
recipe (:mod:`defocuskit.recipe`, which re-exports these names)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from defocuskit.camera.chromatic import parse_chromatic
from defocuskit.camera.focus import make_focus_policy
from defocuskit.camera.named import FALLBACK_FOCUS, FALLBACK_MODE, CameraPreset
from defocuskit.camera.presets import get_preset
from defocuskit.camera.table import camera_table
from defocuskit.errors import ConfigError
from defocuskit.psf_spec import parse_psf

__all__ = ["OLD_SCENE_ONLY", "PRESET_MODE", "RENDER_MODES", "SCENE_ONLY", "RenderSettings",
           "normalize_render_mode", "psf_provenance"]

RENDER_MODES = ("gather", "scatter", "layered")  # defocuskit.blur.MODES
SCENE_ONLY = "scene-only"  # the render mode of a run that renders nothing (scene only)
PRESET_MODE = None  # a render mode or focus not given: the camera preset's, else the fallback
OLD_SCENE_ONLY = "none"  # SCENE_ONLY's spelling in older datasets and config files


def normalize_render_mode(value: str | None) -> str | None:
    """A render mode as given (CLI, config file, a dataset's attributes), with the older
    spelling ``"none"`` of :data:`SCENE_ONLY` read as ``SCENE_ONLY``."""
    return SCENE_ONLY if value == OLD_SCENE_ONLY else value


@dataclass(frozen=True)
class RenderSettings:
    """How samples are rendered, resolved once per run.

    Parameters
    ----------
    camera : str or dict
        A preset name, a camera table or its one-line text (``defocuskit cameras``).
    focus, mode : str or None
        Focus policy and render mode (:data:`RENDER_MODES`, or :data:`SCENE_ONLY`); None
        (:data:`PRESET_MODE`): the camera preset's, else :data:`FALLBACK_FOCUS` /
        :data:`FALLBACK_MODE`.
    psf : str
        ``gaussian``, ``disc``, ``polygon:N[,ROTATION]`` or ``bank:PATH``
        (:mod:`defocuskit.psf_spec`); the last two render with gather or scatter only.
    coc_model : str or None
        ``exact`` or ``paper``; None: the preset's.
    coc_to_sigma : float or None
        Replaces the preset's sigma rule by ``sigma = K * CoC``; None: the preset's rule.
    linear_light : bool
    noise : dict or None
        Sensor noise parameters (:class:`defocuskit.blur.SensorNoise`), None: off.
    dual_pixel : bool
        Also render the left and right half-aperture views (gather or scatter, no noise,
        no linear light).
    jpeg : int or None
        JPEG quality 1..100 of a round trip of every rendered image; None: off.
    diffraction : float or None
        Wavelength (nm) of the diffraction floor (:attr:`Camera.diffraction_nm`), 0: off;
        None: the preset's (on only for a preset whose source models it), else off.
    chromatic : str or sequence of 3 floats, optional
        Longitudinal chromatic aberration: the R, G, B focal-length offsets in mm
        (:mod:`defocuskit.camera.chromatic`); each channel is rendered with its own sigma,
        and the sigma map gets a channel axis (H, W, 3). None: off.
    given_by : dict, optional
        Who gave each non-None setting (provenance), by name; default ``"user"``.

    Attributes set on construction: ``preset`` (the resolved CameraPreset), ``policy`` (the
    focus policy object), ``focus``, ``mode`` and ``coc_model`` resolved, and ``origin``:
    for ``focus``, ``mode``, ``coc_model``, ``diffraction`` and ``sigma_rule`` the value used
    and where it came from (``given_by``'s word, ``"preset"``, ``"camera"``: a custom
    camera's table, or ``"fallback"``).

    Raises
    ------
    ConfigError
        An unknown camera, focus policy, mode or PSF.
    """

    camera: str | dict
    focus: str | None = None
    mode: str | None = None
    psf: str = "gaussian"
    coc_model: str | None = None
    coc_to_sigma: float | None = None
    linear_light: bool = False
    noise: dict | None = None
    dual_pixel: bool = False
    jpeg: int | None = None
    diffraction: float | None = None
    chromatic: Any = None
    given_by: dict = field(default_factory=dict, compare=False, repr=False)
    preset: CameraPreset = field(init=False, compare=False, repr=False)
    policy: Any = field(init=False, compare=False, repr=False)
    origin: dict = field(init=False, compare=False, repr=False)
    requested: dict = field(init=False, compare=False, repr=False)  # the values given

    def __post_init__(self):
        object.__setattr__(self, "requested", {f.name: getattr(self, f.name)
                                               for f in dataclasses.fields(self) if f.init})
        preset = get_preset(self.camera)
        origin = _origins(self, preset)
        resolved = {k: origin[k]["value"] for k in ("focus", "mode", "coc_model")}
        if resolved["mode"] not in (*RENDER_MODES, SCENE_ONLY):
            raise ConfigError(f"unknown render mode {resolved['mode']!r}; choose one of "
                              f"{[*RENDER_MODES, SCENE_ONLY]}")
        _check_render_options(self, resolved["mode"])
        object.__setattr__(self, "chromatic", parse_chromatic(self.chromatic))
        for name, value in (*resolved.items(), ("preset", preset), ("origin", origin),
                            ("policy", make_focus_policy(resolved["focus"]))):
            object.__setattr__(self, name, value)

    def __reduce__(self):  # for worker processes: rebuilt (and resolved) from the given values
        return (_rebuild, (self.requested,))

    @property
    def stack_size(self) -> int:
        """K for a focal-stack policy, 0 for one image per sample."""
        k = self.policy.k
        return k if (k > 1 or self.focus.strip().lower().startswith("stack")) else 0

    def to_dict(self) -> dict:
        """Plain JSON (for logs, reports and provenance)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("preset", "policy", "given_by", "requested")}


def _check_render_options(s: RenderSettings, mode: str) -> None:
    """The PSF and the view options, against each other and the mode (ConfigError)."""
    spec = parse_psf(s.psf)
    table = s.dual_pixel or not spec.closed_form
    what = "--dual-pixel" if s.dual_pixel else f"--psf {s.psf}"
    if table and mode == "layered":
        raise ConfigError(f"{what} renders with mode gather or scatter (a kernel per pixel); "
                          "the layered mode takes the gaussian or disc psf only: give "
                          "--mode gather or --mode scatter")
    if s.dual_pixel and (s.noise is not None or s.linear_light):
        raise ConfigError("--dual-pixel does not take --noise or --linear-light (the two "
                          "views would no longer sum to the full image)")
    if s.jpeg is not None and (isinstance(s.jpeg, bool) or not isinstance(s.jpeg, int)
                               or not 1 <= s.jpeg <= 100):
        raise ConfigError(f"jpeg quality must be an integer 1..100, got {s.jpeg!r}")
    if spec.kind == "bank":
        from defocuskit.blur.shapes import load_bank  # loads Numba: only for a bank

        load_bank(spec.path)


def psf_provenance(psf: str) -> dict[str, Any]:
    """What a dataset records of its PSF: the name, its kind, a polygon's blades and
    rotation, a bank's file hash, kernel count and CoC range."""
    spec = parse_psf(psf)
    out: dict[str, Any] = {"name": str(psf), "kind": spec.kind}
    if spec.kind == "polygon":
        out.update(blades=spec.blades, rotation_deg=spec.rotation_deg)
    if spec.kind == "bank":
        from defocuskit.blur.shapes import load_bank  # loads Numba

        out["bank"] = load_bank(spec.path).provenance()
    return out


def _rebuild(given: dict) -> RenderSettings:
    return RenderSettings(**given)


def _origins(s: RenderSettings, preset: CameraPreset) -> dict[str, dict[str, Any]]:
    """The fallback chain of the settings a preset can supply: given, else the preset's
    (its source's, or a custom camera's table), else the fallback."""
    table = s.camera if isinstance(s.camera, dict) else {}
    if isinstance(s.camera, str) and ("=" in s.camera or "," in s.camera):
        table = camera_table(s.camera)
        table = table if isinstance(table, dict) else {}
    named = not table or "preset" in table

    def origin(*keys):
        if any(k in table for k in keys):
            return "camera"
        return "preset" if named else "fallback"

    def pick(key, given, preset_value, fallback):
        if given is not None:
            return {"value": given, "from": s.given_by.get(key, "user")}
        if preset_value is not None:
            return {"value": preset_value, "from": origin(key)}
        return {"value": fallback, "from": "fallback"}

    return {
        "focus": pick("focus", s.focus, preset.focus, FALLBACK_FOCUS),
        "mode": pick("mode", s.mode, preset.mode, FALLBACK_MODE),
        "coc_model": pick("coc_model", s.coc_model, preset.coc_model, None),
        "diffraction": pick("diffraction", s.diffraction, preset.diffraction_nm, 0.0),
        "sigma_rule": {"value": preset.sigma_rule(s.coc_to_sigma,
                                                  psf=parse_psf(s.psf).family),
                       "from": s.given_by.get("coc_to_sigma", "user")
                       if s.coc_to_sigma is not None else
                       origin("coc_to_sigma", "coc_offset_px", "coc_step_px")},
    }
