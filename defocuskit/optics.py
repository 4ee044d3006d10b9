"""Thin-lens camera model: circle of confusion (CoC) and Gaussian blur sigma per pixel.

Every length is in metres at the API. The exact thin-lens CoC diameter on the sensor for
an object at distance ``x`` when the lens (focal length ``f``, aperture diameter ``D``) is
focused at ``S`` is ``D * f / (S - f) * |x - S| / x``; the 2HDED:NET paper (eq. 8) uses the
approximation ``(f / S) * D * |x - S| / x``. The blur kernel is a Gaussian whose standard
deviation is ``coc_to_sigma * CoC`` in pixels (default 1/4, as in the paper).

Invalid depth policy: a depth that is NaN, infinite or <= 0 gives NaN (CoC and sigma); the
renderer then treats NaN sigma as 0, i.e. the pixel is copied through unblurred.

Named presets reproduce published settings: :func:`list_presets`, :func:`get_preset`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from defocuskit.errors import ConfigError

__all__ = ["Camera", "CameraPreset", "COC_MODELS", "get_preset", "list_presets"]

COC_MODELS = ("exact", "paper")


def _positive(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"Camera: {name} must be a number in SI units, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ConfigError(f"Camera: {name} must be a finite number > 0, got {value!r}")
    return v


@dataclass(frozen=True)
class Camera:
    """A thin-lens camera; all lengths in metres.

    Parameters
    ----------
    focal_length : float
        Focal length ``f``, metres (e.g. 0.07 for 70 mm).
    f_number : float
        Aperture f-number ``N``; the aperture diameter is ``f / N``, metres.
    focus_distance : float
        Distance ``S`` of the in-focus plane from the lens, metres; must exceed ``f``.
    pixel_pitch : float
        Size of one output pixel on the sensor, metres (e.g. 5.6e-6).
    coc_to_sigma : float, optional
        Gaussian sigma = ``coc_to_sigma`` * CoC diameter, both in pixels. Default 0.25.
    coc_model : {"exact", "paper"}, optional
        ``"exact"``: ``D f / (S - f) |x - S| / x``; ``"paper"``: ``(f / S) D |x - S| / x``.

    Raises
    ------
    ConfigError
        If a value is not a positive finite number, ``S <= f`` or the model is unknown.

    Examples
    --------
    >>> cam = Camera(focal_length=0.015, f_number=2.8, focus_distance=2.0, pixel_pitch=5.6e-6)
    >>> float(cam.sigma_px(2.0))
    0.0
    """

    focal_length: float
    f_number: float
    focus_distance: float
    pixel_pitch: float
    coc_to_sigma: float = 0.25
    coc_model: str = "exact"

    def __post_init__(self):
        for name in ("focal_length", "f_number", "focus_distance", "pixel_pitch", "coc_to_sigma"):
            object.__setattr__(self, name, _positive(name, getattr(self, name)))
        if self.coc_model not in COC_MODELS:
            raise ConfigError(
                f"Camera: coc_model must be one of {COC_MODELS}, got {self.coc_model!r}"
            )
        if self.focus_distance <= self.focal_length:
            raise ConfigError(
                f"Camera: focus_distance ({self.focus_distance} m) must be larger than "
                f"focal_length ({self.focal_length} m)"
            )

    # -- alternative constructors ---------------------------------------------------------
    @classmethod
    def from_aperture(cls, *, focal_length: float, aperture_diameter: float, **kwargs) -> Camera:
        """Build a camera from the aperture diameter ``D`` (metres) instead of the f-number."""
        f = _positive("focal_length", focal_length)
        d = _positive("aperture_diameter", aperture_diameter)
        return cls(focal_length=f, f_number=f / d, **kwargs)

    @classmethod
    def from_sensor_width(
        cls,
        *,
        focal_length: float,
        sensor_width: float,
        image_width: int,
        f_number: float | None = None,
        aperture_diameter: float | None = None,
        **kwargs,
    ) -> Camera:
        """Build a camera whose pixel pitch is ``sensor_width / image_width`` (metres/pixel).

        Give exactly one of ``f_number`` and ``aperture_diameter`` (metres).
        """
        if (f_number is None) == (aperture_diameter is None):
            raise ConfigError("Camera.from_sensor_width: give exactly one of f_number and "
                              "aperture_diameter")
        if not isinstance(image_width, (int, np.integer)) or image_width <= 0:
            raise ConfigError(f"Camera: image_width must be a positive integer (pixels), "
                              f"got {image_width!r}")
        pitch = _positive("sensor_width", sensor_width) / int(image_width)
        if aperture_diameter is not None:
            return cls.from_aperture(focal_length=focal_length,
                                     aperture_diameter=aperture_diameter,
                                     pixel_pitch=pitch, **kwargs)
        return cls(focal_length=focal_length, f_number=f_number, pixel_pitch=pitch, **kwargs)

    # -- derived quantities ---------------------------------------------------------------
    @property
    def aperture_diameter(self) -> float:
        """Aperture diameter ``D = f / N``, metres."""
        return self.focal_length / self.f_number

    def with_focus(self, distance_m: float) -> Camera:
        """Return a copy focused at ``distance_m`` metres."""
        return dataclasses.replace(self, focus_distance=distance_m)

    def with_f_number(self, f_number: float) -> Camera:
        """Return a copy with another f-number."""
        return dataclasses.replace(self, f_number=f_number)

    def coc_m(self, depth):
        """CoC diameter on the sensor.

        Parameters
        ----------
        depth : float or ndarray, metres
            Object distance ``x``; NaN, infinite or <= 0 is invalid.

        Returns
        -------
        float64 ndarray (same shape as ``depth``), metres
            NaN where the depth is invalid.
        """
        x = np.asarray(depth, dtype=np.float64)
        f, s, d = self.focal_length, self.focus_distance, self.aperture_diameter
        scale = d * f / (s - f) if self.coc_model == "exact" else (f / s) * d
        valid = np.isfinite(x) & (x > 0)
        safe = np.where(valid, x, 1.0)
        coc = scale * np.abs(safe - s) / safe
        return np.where(valid, coc, np.nan)

    def coc_px(self, depth):
        """CoC diameter in pixels (``coc_m / pixel_pitch``); float64, NaN for invalid depth."""
        return self.coc_m(depth) / self.pixel_pitch

    def sigma_px(self, depth):
        """Gaussian blur sigma in pixels (``coc_to_sigma * coc_px``); float64, NaN if invalid."""
        return self.coc_to_sigma * self.coc_px(depth)

    def max_coc_px(self, depth_min: float, depth_max: float) -> float:
        """Largest CoC (pixels) over depths in ``[depth_min, depth_max]`` metres.

        The CoC falls monotonically towards the focus plane on both sides, so the maximum is
        at one of the two ends.
        """
        return float(np.nanmax(self.coc_px(np.array([depth_min, depth_max]))))

    # -- provenance -----------------------------------------------------------------------
    def to_config(self) -> dict:
        """Plain-JSON dict of every parameter (metres); inverse of :meth:`from_config`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_config(cls, config: dict) -> Camera:
        """Rebuild a camera from :meth:`to_config` output; unknown keys raise ConfigError."""
        if not isinstance(config, dict):
            raise ConfigError(f"Camera config must be a dict, got {type(config).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(f"Camera config: unknown keys {unknown}; expected {sorted(known)}")
        return cls(**config)


# -- presets ------------------------------------------------------------------------------
SYNDOF_SENSOR_WIDTH_M = 0.036  # SYNDOF converts sensor millimetres to pixels as W / 36 mm
SYNDOF_FOCAL_LENGTHS_M = (0.050, 0.070, 0.085)
SYNDOF_FOCAL_WEIGHTS = (0.1, 0.4, 0.4)  # as written in SYNDOF's code; normalised when drawn
SYNDOF_MAX_COC_PX = 29.0


@dataclass(frozen=True)
class CameraPreset:
    """A named, cited camera setting.

    Attributes
    ----------
    name, description, source : str
        Registry key, one-line summary and the publication / repository it comes from.
    randomized : bool
        True if :meth:`make` draws parameters from ``rng``.
    default_focus_m : float
        Placeholder focus distance (metres) until a focus policy calls ``with_focus``.
    max_coc_px : float or None
        If set, :meth:`adapt` rescales the f-number so the largest CoC over the valid depth
        of a sample equals this many pixels (SYNDOF's rule).
    """

    name: str
    description: str
    source: str
    randomized: bool
    factory: Callable[[int, np.random.Generator], Camera]
    default_focus_m: float = 2.0
    max_coc_px: float | None = None

    def make(self, *, image_width: int, rng: np.random.Generator) -> Camera:
        """Camera for images ``image_width`` pixels wide; fixed presets ignore ``rng``."""
        return self.factory(int(image_width), rng)

    def adapt(self, camera: Camera, depth_m) -> Camera:
        """Apply the per-sample rule of the preset (after the focus is set).

        For presets with ``max_coc_px`` the f-number is chosen so that the largest CoC over
        the finite, positive values of ``depth_m`` (metres) equals ``max_coc_px``; other
        presets return ``camera`` unchanged.
        """
        if self.max_coc_px is None:
            return camera
        d = np.asarray(depth_m, dtype=np.float64)
        d = d[np.isfinite(d) & (d > 0)]
        if d.size == 0:
            return camera
        current = camera.max_coc_px(float(d.min()), float(d.max()))
        if current <= 0:
            return camera
        return camera.with_f_number(camera.f_number * current / self.max_coc_px)

    def describe(self) -> str:
        """One paragraph for ``defocuskit cameras``: name, description and source."""
        kind = "randomised per sample" if self.randomized else "fixed"
        return f"{self.name} ({kind}): {self.description} Source: {self.source}"


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


_PRESETS = {
    p.name: p
    for p in (
        CameraPreset(
            "2hded", "2HDED:NET setting: f = 70 mm, aperture D = 44.8 mm, pixel pitch = 36 mm "
            "sensor width / image width (SYNDOF convention), sigma = CoC / 4.",
            "Nazir et al., 'Depth Estimation and Image Restoration by Deep Learning From "
            "Defocused Images' (2HDED:NET), IEEE Trans. Comput. Imaging 2023, "
            "doi:10.1109/TCI.2023.3288335, Sec. IV-A eq. 8 (parameters from "
            "SYNDOF, Lee et al., CVPR 2019)", False, _make_2hded),
        CameraPreset(
            "d3net-nyu", "D3-Net NYU-v2 setting: f = 15 mm, f/2.8, 5.6 um pixels; the paper "
            "focuses at 2, 4 or 8 m.",
            "Carvalho et al., 'On regression losses for deep depth estimation' / D3-Net, "
            "ICIP 2018 (marcelampc/d3net_depth_estimation)", False, _make_d3net),
        CameraPreset(
            "syndof", "SYNDOF randomised camera: f drawn from {50, 70, 85} mm with weights "
            "(.1, .4, .4) normalised, pixel pitch = 36 mm / image width, f-number solved per "
            "sample so the largest CoC is 29 px (call adapt() after the focus is set).",
            "Lee et al., 'Deep Defocus Map Estimation using Domain Adaptation', CVPR 2019 "
            "(codeslake/SYNDOF)", True, _make_syndof, max_coc_px=SYNDOF_MAX_COC_PX),
        CameraPreset(
            "idfd-nikon", "iDFD Nikon DSLR with a 14 mm lens at f/2.8 (the defocused shots); "
            "the sensor width is not published: 36 mm full frame is assumed.",
            "Nazir, thesis ch. 4 (iDFD dataset), 2023", False, _make_idfd),
    )
}


def list_presets() -> dict[str, CameraPreset]:
    """All named camera presets, by name."""
    return dict(_PRESETS)


def get_preset(name: str) -> CameraPreset:
    """The preset called ``name``; an unknown name raises ConfigError listing the known ones."""
    try:
        return _PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown camera preset {name!r}; known presets: {', '.join(sorted(_PRESETS))}"
        ) from None
