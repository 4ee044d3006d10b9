"""Named camera presets: the published settings of each source, with their sigma rule,
focus policy and render mode (``defocuskit cameras`` lists them with their citations).

A preset makes a :class:`~defocuskit.camera.optics.Camera` for an image width (``make``), and may
adapt it per sample (SYNDOF's aperture rule, ``adapt``); :func:`get_preset_by_name` looks one
up by name and :func:`list_presets` lists them. A camera given by name *or* by a parameter
table is looked up with :func:`defocuskit.camera.presets.get_preset`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from defocuskit.camera.optics import Camera
from defocuskit.errors import ConfigError

__all__ = ["CameraPreset", "FALLBACK_FOCUS", "FALLBACK_MODE", "get_preset_by_name",
           "list_presets"]

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
# ... of MDDNet's frames: its ALL-in-3D images, depth and defocus maps are 2452 x 2056 (sec.
# 4); A scales with the image width, so sigma keeps its size relative to the frame
MDDNET_REFERENCE_WIDTH_PX = 2452
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
    reference_width_px: int | None = None  # a fixed pitch's source frame width (see frame_note)
    # the sigma slope when the PSF is a disc (the engine's disc has radius 2 sigma), for a
    # source whose disc radius is not 2 x its Gaussian sigma; None: the same rule as Gaussian
    disc_coc_to_sigma: float | None = None
    # the wavelength (nm) of a diffraction floor, for a source that models one; None: off
    diffraction_nm: float | None = None

    def frame_note(self, width: int) -> str | None:
        """What a fixed pixel pitch does on frames ``width`` px wide, when they differ from
        the source's frames (``reference_width_px``) by more than 2x; else None.

        A fixed pitch keeps sigma in pixels as on the source's frames, whatever the frame
        size: on frames k times smaller (a downscaled image of the same scene) the blur is
        k times larger relative to the frame than in the source.
        """
        ref = self.reference_width_px
        if ref is None or not width > 0 or 0.5 <= ref / width <= 2.0:
            return None
        pitch_um = self.factory(int(width), np.random.default_rng(0)).pixel_pitch * 1e6
        ratio = ref / width
        size, blur = ((f"{ratio:.1f}x narrower", f"{ratio:.1f}x larger") if ratio > 1 else
                      (f"{1 / ratio:.1f}x wider", f"{1 / ratio:.1f}x smaller"))
        return (f"camera {self.name}: its fixed {pitch_um:g} um pixel pitch comes from "
                f"{ref} px wide frames; these are {width} px wide ({size}), so sigma in "
                f"pixels stays as on {ref} px frames and the blur is {blur} relative to the "
                f"frame than in the source; to keep the source's blur relative to the "
                f"frame, give --camera {self.name},pitch_um={pitch_um * ratio:.3g}")

    def _rule(self, coc_to_sigma: float | None, psf: str | None) -> dict:
        """The sigma rule's Camera fields: the preset's (for ``psf``) or the given slope."""
        if coc_to_sigma is not None:
            return dict(coc_to_sigma=coc_to_sigma, coc_offset_px=0.0, coc_step_px=0.0)
        slope = self.coc_to_sigma
        # the disc's rule also for the PSFs drawn at the disc's size (polygon:N, bank:PATH)
        if psf not in (None, "gaussian") and self.disc_coc_to_sigma is not None:
            slope = self.disc_coc_to_sigma
        return dict(coc_to_sigma=slope, coc_offset_px=self.coc_offset_px,
                    coc_step_px=self.coc_step_px)

    def make(self, *, image_width: int, rng: np.random.Generator,
             coc_model: str | None = None, coc_to_sigma: float | None = None,
             psf: str | None = None) -> Camera:
        """Camera for images ``image_width`` pixels wide; fixed presets ignore ``rng``.

        ``coc_model`` replaces the preset's CoC model; ``coc_to_sigma`` replaces the
        preset's whole sigma rule by ``sigma = coc_to_sigma * CoC`` (no rounding, no offset).
        ``psf="disc"`` selects the preset's disc rule (``disc_coc_to_sigma``) where it has
        one.
        """
        cam = self.factory(int(image_width), rng)
        return dataclasses.replace(cam, coc_model=coc_model or self.coc_model,
                                   **self._rule(coc_to_sigma, psf))

    def sigma_rule(self, coc_to_sigma: float | None = None, psf: str | None = None) -> dict:
        """The sigma rule :meth:`make` gives (plain JSON, see :meth:`Camera.sigma_rule`)."""
        return Camera(focal_length=0.05, f_number=2.0, focus_distance=2.0, pixel_pitch=1e-5,
                      **self._rule(coc_to_sigma, psf)).sigma_rule()

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
        disc = ("" if self.disc_coc_to_sigma is None else
                f" (with --psf disc: {self.sigma_rule(psf='disc')['formula']})")
        return (f"{self.name} ({kind}): {self.description} CoC model {self.coc_model}; "
                f"{self.sigma_rule()['formula']}{disc}; default focus "
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
    a_here = MDDNET_A * width / MDDNET_REFERENCE_WIDTH_PX  # A of frames `width` px wide
    return Camera(focal_length=f, f_number=n, focus_distance=2.0, pixel_pitch=(f / n) / a_here)


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
            "CoC (Gaussian); with --psf disc a disc of radius CoC / 2 as D3-Net's code draws "
            "it (sigma = CoC / 4, the engine's disc being of radius 2 sigma), focus fixed at "
            "2 m (its code also uses 4 or 8 m), layered compositing.",
            "Carvalho et al., 'Deep Depth from Defocus: how can defocus blur improve 3D "
            "estimation using dense neural networks?', ECCV Workshops 2018 (the synthetic data "
            "D3-Net names; code marcelampc/d3net_depth_estimation, refoc_image.m)", False,
            _make_d3net, coc_to_sigma=0.3, focus="fixed:2.0", mode="layered",
            reference_width_px=640, disc_coc_to_sigma=0.25),  # NYU-v2's 640 x 480 frames
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
            "mddnet", "MDDNet setting: F = 50 mm, f/1.4, A = aperture / pixel pitch = 800 on "
            f"its {MDDNET_REFERENCE_WIDTH_PX} px wide frames, scaled with the image width "
            f"(A = 800 W / {MDDNET_REFERENCE_WIDTH_PX}: pitch 44.6 um x "
            f"{MDDNET_REFERENCE_WIDTH_PX} / W, e.g. 171 um at 640 px), so the blur keeps its "
            "size relative to the frame; sigma = CoC, scatter compositing (each source pixel "
            "spreads its own Gaussian).",
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


def get_preset_by_name(name: str) -> CameraPreset:
    """The named preset; an unknown name raises ConfigError listing the known ones."""
    try:
        return _PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown camera preset {name!r}; known presets: {', '.join(sorted(_PRESETS))}"
            "; or give the camera's parameters, e.g. focal_mm=50,f_number=2.8,pitch_um=5.6"
        ) from None
