"""Thin-lens camera model: circle of confusion (CoC) and Gaussian blur sigma per pixel.

Every length is in metres at the API. The exact thin-lens CoC diameter on the sensor for
an object at distance ``x`` when the lens (focal length ``f``, aperture diameter ``D``) is
focused at ``S`` is ``D * f / (S - f) * |x - S| / x``; the 2HDED:NET paper (eq. 8) uses the
approximation ``(f / S) * D * |x - S| / x``. The blur kernel is a Gaussian whose standard
deviation follows the camera's *sigma rule* (:meth:`Camera.sigma_px`): ``coc_to_sigma * CoC``
in pixels (default 1/4, as in the paper), optionally with SYNDOF's quantisation of the CoC
and its 1 px offset (``sigma = (CoC - 1) / 4``, a CoC <= 1 px left sharp).

Invalid depth policy: a depth that is NaN, infinite or <= 0 gives NaN (CoC and sigma); the
renderer then treats NaN sigma as 0, i.e. the pixel is copied through unblurred.

Named presets reproduce published settings: :mod:`defocuskit.camera.presets`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from defocuskit.errors import ConfigError

__all__ = ["Camera", "COC_MODELS"]

COC_MODELS = ("exact", "paper")


def _positive(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"Camera: {name} must be a number in SI units, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ConfigError(f"Camera: {name} must be a finite number > 0, got {value!r}")
    return v


def _non_negative(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"Camera: {name} must be a number of pixels, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ConfigError(f"Camera: {name} must be a finite number >= 0, got {value!r}")
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
    coc_offset_px : float, optional
        Pixels subtracted from the CoC before scaling; a CoC at or below it gives sigma 0.
        Default 0; SYNDOF uses 1 (``sigma = (CoC - 1) / 4``).
    coc_step_px : float, optional
        If > 0, the CoC is rounded to a multiple of this many pixels (half away from zero)
        before the offset. Default 0 (no rounding); SYNDOF uses 0.1.
    diffraction_nm : float, optional
        Wavelength (nm) of the diffraction floor: the Airy-equivalent Gaussian
        ``sigma_d = 0.42 lambda N / pixel_pitch`` pixels, added in quadrature to the
        defocus sigma (:meth:`sigma_px`). Default 0: off.

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
    coc_offset_px: float = 0.0
    coc_step_px: float = 0.0
    diffraction_nm: float = 0.0

    def __post_init__(self):
        for name in ("focal_length", "f_number", "focus_distance", "pixel_pitch", "coc_to_sigma"):
            object.__setattr__(self, name, _positive(name, getattr(self, name)))
        for name in ("coc_offset_px", "coc_step_px", "diffraction_nm"):
            object.__setattr__(self, name, _non_negative(name, getattr(self, name)))
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
        """Gaussian blur sigma in pixels by the camera's sigma rule; float64, NaN if invalid.

        ``sigma = coc_to_sigma * max(q(coc_px) - coc_offset_px, 0)``, where ``q`` rounds to a
        multiple of ``coc_step_px`` (identity when it is 0). With the defaults this is
        ``coc_to_sigma * coc_px``. With a diffraction floor, ``hypot(sigma,
        diffraction_sigma_px)``.
        """
        return self.sigma_of_coc_px(self.coc_px(depth))

    def sigma_of_coc_px(self, coc):
        """The sigma rule of :meth:`sigma_px` applied to CoC diameters (pixels, float64
        ndarray; NaN stays NaN)."""
        coc = np.asarray(coc, dtype=np.float64)
        if self.coc_step_px > 0:
            per_px = 1.0 / self.coc_step_px  # multiply then divide: 0.1 steps stay exact
            coc = np.floor(coc * per_px + 0.5) / per_px
        if self.coc_offset_px > 0:
            coc = np.maximum(coc - self.coc_offset_px, 0.0)  # NaN stays NaN
        sigma = self.coc_to_sigma * coc
        if self.diffraction_nm > 0:
            sigma = np.hypot(sigma, self.diffraction_sigma_px)
        return sigma

    @property
    def diffraction_sigma_px(self) -> float:
        """The diffraction floor's sigma, pixels: ``0.42 lambda N / pixel_pitch`` (the
        Gaussian that best fits the Airy disc's core); 0 when off."""
        return 0.42 * self.diffraction_nm * 1e-9 * self.f_number / self.pixel_pitch

    def sigma_rule(self) -> dict:
        """The CoC -> sigma rule as plain JSON: its parameters and a readable formula."""
        q = f"round(CoC, {self.coc_step_px:g} px)" if self.coc_step_px > 0 else "CoC"
        if self.coc_offset_px > 0:
            formula = (f"sigma = {self.coc_to_sigma:g} * max({q} - {self.coc_offset_px:g} px, "
                       "0)")
        else:
            formula = f"sigma = {self.coc_to_sigma:g} * {q}"
        return {"formula": formula, "coc_to_sigma": self.coc_to_sigma,
                "coc_offset_px": self.coc_offset_px, "coc_step_px": self.coc_step_px}

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
