"""The resolved configuration of a ``defocuskit synth`` run.

A run is fully described by :class:`SynthConfig`; it is stored with the dataset (root
attribute ``config``) and compared on ``--resume`` so that a resumed run cannot silently
mix two configurations. Config files are JSON or TOML with the same keys; command-line
options override them.

A camera preset may supply its source's focus policy, render mode, CoC model and sigma
rule; a ``None`` (:data:`~defocuskit.recipe.PRESET_MODE`) in ``focus``, ``render_mode``,
``coc_model`` or ``coc_to_sigma`` means "the preset's". ``render_mode`` is
:data:`~defocuskit.recipe.SCENE_ONLY` (``"scene-only"``) for a run that renders nothing;
older config files and datasets spell it ``mode`` with ``"none"``, read as the same.
:func:`resolve_preset_settings` is the one place that fills them in and says where each
value came from; the content key (compared on resume) holds the resolved values.

``camera`` is a preset name or a custom camera: a table of its parameters
(:class:`defocuskit.camera.table.CameraTable`, e.g. ``{"focal_mm": 50, "f_number": 2.8,
"pitch_um": 5.6}``) or the same as text (``"focal_mm=50,f_number=2.8,pitch_um=5.6"``).
Either is checked and stored in one canonical form (a dict; a bare preset name stays a
string), so the content key compares the camera itself, however it was written.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

from defocuskit.camera.chromatic import CHROMATIC_MAX_MM, parse_chromatic
from defocuskit.camera.focus import make_focus_policy
from defocuskit.camera.table import camera_table
from defocuskit.errors import ConfigError
from defocuskit.psf_spec import parse_psf
from defocuskit.recipe import RenderSettings, normalize_render_mode
from defocuskit.sources import NO_INPUT_SOURCES, SOURCES
from defocuskit.typed import Range, check_fields, check_ranges
from defocuskit.typed import load_config_file as _load_config_file

__all__ = ["SynthConfig", "RANGES", "load_config_file", "resolve_preset_settings",
           "resolve_synth_config", "upgrade_config_keys", "RUNTIME_KEYS"]

# Keys that change how a run executes but not what it writes: they may differ on resume.
RUNTIME_KEYS = ("jobs", "backend", "scheduler", "resume", "overwrite", "on_error", "progress")
# render options whose "off" value is left out of the content key
_OPTIONAL_RENDER = {"dual_pixel": False, "jpeg": None, "diffraction": None, "chromatic": None}

MAX_FRAME = 16384  # pixels per side of a resized frame
MAX_SHARD = 4096  # samples per shard: a task buffers its whole shard in memory
# The valid range of every number of SynthConfig (the items of resize and the values of
# noise one by one); NaN and inf are never valid. `defocuskit synth` options use the same.
RANGES: dict[str, Range] = {
    "coc_to_sigma": Range(0, 100, lo_open=True),
    "noise": Range(0, None),  # each sensor-noise parameter (gain, read_sigma)
    "resize": Range(8, MAX_FRAME, integer=True),
    "limit": Range(1, None, integer=True),
    "seed": Range(0, 2**63 - 1, integer=True),
    "shard_size": Range(1, MAX_SHARD, integer=True),
    "jobs": Range(1, 1024, integer=True),
    "jpeg": Range(1, 100, integer=True),
    "diffraction": Range(0, 2000),
    "chromatic": Range(-CHROMATIC_MAX_MM, CHROMATIC_MAX_MM),  # each of the R, G, B offsets, mm
}


@dataclass
class SynthConfig:
    source: str                                   # reader name, see `defocuskit sources`
    input: str                                    # the reader's input path
    output: str                                   # dataset path or fsspec URL
    source_options: dict[str, Any] = field(default_factory=dict)  # reader options
    camera: str | dict[str, Any] = "2hded"        # preset name, or a camera table / its
    #                                               text (camera_table.CameraTable); canonical
    coc_model: str | None = None                  # exact | paper; None = the preset's
    coc_to_sigma: float | None = None             # sigma = K * CoC; None = the preset's rule
    focus: str | None = None                      # fixed:S | uniform | histogram | syndof |
    #                                               stack:K; None = the preset's
    render_mode: str | None = None                # gather | scatter | layered |
    #                                               scene-only; None = the preset's
    psf: str = "gaussian"                         # gaussian | disc (radius 2 sigma) |
    #                                               polygon:N[,ROT] | bank:PATH
    linear_light: bool = False                    # blur in linear light (sRGB decode/encode)
    noise: dict[str, float] | None = None         # sensor noise parameters, None = off
    dual_pixel: bool = False                      # also the left / right half-aperture views
    jpeg: int | None = None                       # JPEG round-trip quality 1..100, None = off
    diffraction: float | None = None              # diffraction floor wavelength nm (0: off);
    #                                               None = the preset's (off unless it has one)
    chromatic: list[float] | None = None          # R,G,B focal-length offsets mm, None = off
    resize: list[int] | None = None               # [H, W] output frame size, None = as read
    splits: list[str] | None = None               # subset of the source's splits, None = all
    limit: int | None = None                      # at most this many samples per split
    seed: int = 0                                 # base seed; sample i draws from (seed, split, i)
    shard_size: int = 64                          # samples per shard (= one task)
    compressor: str = "lz4"                       # lz4 (fast reads) | zstd (smaller)
    jobs: int = 1                                 # worker processes
    backend: str = "loky"                         # loky (local processes) | dask (a cluster)
    scheduler: str | None = None                  # dask scheduler address for --backend dask
    on_error: str = "raise"                       # raise | skip (record and go on)
    storage_options: dict[str, Any] = field(default_factory=dict)  # fsspec options
    mode: InitVar[str | None] = None              # the older name of render_mode

    def __post_init__(self, mode: str | None = None):
        if mode is not None:
            if self.render_mode is not None and self.render_mode != mode:
                raise ConfigError("synth config: give render_mode or its older name mode, "
                                  "not both")
            self.render_mode = mode
        self.render_mode = normalize_render_mode(self.render_mode)
        self.validate()

    def validate(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"source: unknown source {self.source!r}; known sources: "
                              f"{', '.join(SOURCES)}")
        self.camera = camera_table(self.camera)  # a checked, canonical camera
        if self.resize is not None and len(self.resize) != 2:
            raise ConfigError(f"resize must be [H, W], got {self.resize}")
        check_ranges(self, RANGES)
        if self.focus is not None:
            make_focus_policy(self.focus)
        _check_output_protocol(self.output)
        if self.backend not in ("loky", "dask"):
            raise ConfigError(f"backend must be 'loky' or 'dask', got {self.backend!r}")
        if self.backend == "dask" and not self.scheduler:
            raise ConfigError("--backend dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
        if self.on_error not in ("raise", "skip"):
            raise ConfigError(f"on_error must be 'raise' or 'skip', got {self.on_error!r}")
        if self.coc_model is not None and self.coc_model not in ("exact", "paper"):
            raise ConfigError(f"coc_model must be 'exact' or 'paper', got {self.coc_model!r}")
        chromatic = parse_chromatic(self.chromatic)
        self.chromatic = list(chromatic) if chromatic is not None else None
        parse_psf(self.psf)  # the rest is checked with the mode (render_settings)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def render_settings(self) -> RenderSettings:
        """The run's render settings, resolved against the camera preset (the recipe's one
        fallback chain, :class:`defocuskit.recipe.RenderSettings`)."""
        return RenderSettings(camera=self.camera, focus=self.focus,
                              mode=self.render_mode,
                              psf=self.psf, coc_model=self.coc_model,
                              coc_to_sigma=self.coc_to_sigma,
                              linear_light=self.linear_light, noise=self.noise,
                              dual_pixel=self.dual_pixel, jpeg=self.jpeg,
                              diffraction=self.diffraction, chromatic=self.chromatic)

    def resolved(self, settings: RenderSettings | None = None) -> SynthConfig:
        """A copy with ``focus``, ``render_mode`` and ``coc_model`` filled in from the preset
        where they are ``None`` (``settings``: this config's :meth:`render_settings`)."""
        settings = settings or self.render_settings()
        return dataclasses.replace(self, focus=settings.focus, render_mode=settings.mode,
                                   coc_model=settings.coc_model)

    def content_key(self) -> dict[str, Any]:
        """The part of the config that determines the dataset's content, with the preset's
        defaults resolved (and its sigma rule), so a changed preset default is noticed."""
        settings = self.render_settings()
        d = self.resolved(settings).to_dict()
        for k in (*RUNTIME_KEYS, "output", "storage_options"):
            d.pop(k, None)
        for k, off in _OPTIONAL_RENDER.items():  # off: left out, as in datasets without it
            if d.get(k) == off:
                d.pop(k, None)
        d["sigma_rule"] = settings.origin["sigma_rule"]["value"]
        if settings.origin["diffraction"]["value"]:  # also a preset's floor
            d["diffraction"] = settings.origin["diffraction"]["value"]
        if d.get("render_mode") == "layered":  # its level spacing: a changed default is noticed too
            from defocuskit.blur.layered import level_rule  # loads Numba

            d["layered_levels"] = level_rule()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SynthConfig:
        d = upgrade_config_keys(d)
        if d.get("source") not in (None, "", *SOURCES):
            raise ConfigError(f"source: unknown source {d['source']!r}; known sources: "
                              f"{', '.join(SOURCES)}")
        if d.get("source") in NO_INPUT_SOURCES and d.get("input") in (None, ""):
            d = {**d, "input": "-"}  # a generated source: no input to name
        missing = [k for k in ("source", "input", "output") if d.get(k) in (None, "")]
        if missing:
            names = ", ".join(missing)
            options = ", ".join(f"--{k}" for k in missing)
            raise ConfigError(f"missing required setting{'s' if len(missing) > 1 else ''}: "
                              f"{names} (give {options}, or set it in the --config file)")
        return cls(**check_fields(cls, d, "synth config"))


def upgrade_config_keys(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` with the older key ``mode`` renamed ``render_mode`` and its value ``"none"``
    read as :data:`~defocuskit.recipe.SCENE_ONLY` (a config file, a stored config or
    content key of an older dataset); ConfigError if both keys are given."""
    if "mode" not in d:
        return d
    if "render_mode" in d:
        raise ConfigError("synth config: give render_mode or its older name mode, not both")
    d = {("render_mode" if k == "mode" else k): v for k, v in d.items()}
    d["render_mode"] = normalize_render_mode(d["render_mode"])
    return d


def _check_output_protocol(output: str) -> None:
    """An fsspec URL's protocol must be known and its package installed (``s3://`` needs
    s3fs); nothing is opened here, so no network is needed."""
    text = str(output)
    if "://" not in text or text.startswith("file://"):
        return
    import fsspec  # fsspec: only for a URL output

    protocol = text.split("://", 1)[0]
    try:
        fsspec.get_filesystem_class(protocol)
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"output {text!r}: cannot write to {protocol}:// here ({exc}); "
                          "install its fsspec package or write to a local path") from None


def resolve_preset_settings(cfg: SynthConfig) -> dict[str, dict[str, Any]]:
    """The settings a camera preset can supply, as a run uses them, and where each came from:
    :attr:`defocuskit.recipe.RenderSettings.origin` of :meth:`SynthConfig.render_settings`.

    Returns
    -------
    dict
        ``{"focus" | "mode" | "coc_model" | "sigma_rule": {"value": ..., "from": ...}}``;
        ``"from"`` is ``"user"`` (given in the config or on the command line), ``"preset"``
        (the camera preset's default, from its source), ``"camera"`` (a key of a custom
        camera's table) or ``"fallback"`` (the preset's source states none, or a custom
        camera leaves it out: ``FALLBACK_FOCUS`` / ``FALLBACK_MODE``, the ``exact``
        CoC, sigma = CoC / 4). The sigma rule's value is
        :meth:`defocuskit.camera.optics.Camera.sigma_rule`'s dict; a user's ``coc_to_sigma``
        makes it ``sigma = K * CoC``.

    Raises
    ------
    ConfigError
        If the camera preset is unknown.
    """
    return cfg.render_settings().origin


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON (``.json``) or TOML (``.toml``) config file into a plain dict.

    The one loader of the project (:func:`defocuskit.typed.load_config_file`).
    """
    return _load_config_file(path)


def resolve_synth_config(*, config_file: str | Path | None = None,
                         overrides: dict[str, Any] | None = None,
                         source_options: dict[str, Any] | None = None) -> SynthConfig:
    """The configuration of a run, as ``defocuskit synth`` resolves it.

    Later wins: the config file's keys, then ``overrides`` (a ``None`` value means "not
    given" and keeps the file's value), then ``source_options`` merged key by key into the
    file's ``source_options``. Every value is type-checked.
    """
    cfg = upgrade_config_keys(load_config_file(config_file)) if config_file else {}
    cfg.update({k: v for k, v in (overrides or {}).items() if v is not None})
    merged = dict(cfg.get("source_options") or {})
    merged.update(source_options or {})
    cfg["source_options"] = merged
    return SynthConfig.from_dict(cfg)
