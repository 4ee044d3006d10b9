"""The model registry: every network ``trainer fit --model NAME`` can train.

Each model lives in one module of this package that defines a :class:`ModelSpec` named
``SPEC``; :data:`MODELS` maps the name used on the command line (and recorded in every
checkpoint) to that module. The rest of the trainer (loss, metrics, checkpoints, eval,
predict, on-the-fly rendering, the self-supervised method) only talks to a spec, so a new
model is one module plus one line in :data:`MODELS` (docs/trainer.md, "Adding a model").

A model module is imported when its name is first looked up, so a model whose network
needs an optional package (MDDNet: ``transformers``) costs nothing until it is used; the
heavy import itself happens in the spec's ``build`` only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from defocuskit.errors import ConfigError

__all__ = ["ModelSpec", "MODELS", "DEFAULT_MODEL", "get_spec", "model_names",
           "ALL_HEADS", "INPUT_RANGES"]

# name -> module defining SPEC; one line per model
MODELS: dict[str, str] = {
    "2hded": "trainer.models.twohded",
    "mddnet": "trainer.models.mddnet",
    "anwar": "trainer.models.anwar",
}
DEFAULT_MODEL = "2hded"
ALL_HEADS = ("depth", "aif", "defocus")  # every head a model may declare, in output order
INPUT_RANGES = {"unit": "RGB in [0, 1]", "centred": "RGB in [-1, 1]"}


@dataclass(frozen=True)
class ModelSpec:
    """What the trainer needs to know about one network.

    Attributes
    ----------
    name, title : str
        Registry name (``--model``) and the name in messages (``"2HDED:NET"``).
    heads : tuple of str
        The heads the network can have (a subset of :data:`ALL_HEADS`); a run trains any
        non-empty subset of them.
    default_heads : tuple of str
        The heads of a supervised run that names none.
    input_range : str
        A key of :data:`INPUT_RANGES`: the range of the RGB input the network expects
        when a run names none.
    preset : str
        Its default recipe, a key of :data:`trainer.config.PRESETS`, used when a run names
        the model but no preset.
    size_multiple : int
        Height and width of an input must be multiples of it.
    make_config : callable
        ``(heads, overrides dict) -> config``; the config has ``heads`` and ``to_dict()``.
        Raises :class:`ConfigError` for unknown or bad overrides.
    config_from_dict : callable
        ``dict -> config``, the inverse of ``config.to_dict()`` (checkpoints).
    build : callable
        ``config -> torch.nn.Module``; ``module(x)`` returns a dict with one (B, C, H, W)
        tensor per configured head, and ``module.config`` is the config.
    load_encoder_weights : callable
        ``(module, path) -> dict`` (``path``, ``sha256``, ``tensors``, ``source``): copy
        pretrained encoder weights from a local file or folder, all or nothing.
    parameter_counts : callable
        ``module -> dict``: ``encoder``, one entry per head, ``total``.
    encoder_weights_help : str
        One line: what ``--encoder-weights`` expects for this model.
    smoke_config : dict
        Config overrides of a tiny version of the network (the same code paths, a few
        thousand to a few hundred thousand parameters): what CPU checks build
        (``benchmarks/gpu_check.py --tiny``).
    input_ranges : tuple of str
        Every range the network can be built for (``--input-range``); empty: only
        ``input_range``. A model with more than one gets the chosen range as the
        ``input_range`` key of its config overrides.
    camera_input : bool
        Whether the network can take each sample's camera as a second input
        (``--camera-input``, :mod:`trainer.camera_input`): its config then has a
        ``camera_input`` flag and the built module takes ``module(x, camera=features)``.
    make_criterion : callable, optional
        ``(train config, model config) -> loss module`` for a model trained with its own
        loss (called with ``(pred, batch)``, returning ``(loss, terms)`` with a ``total``
        term); None: the trainer's map losses (:func:`trainer.run.build_criterion`).
    data_overrides : callable, optional
        ``(dataset reader, training split) -> dict``: config overrides a run takes from its
        dataset (the run's own ``model`` settings win); None: nothing.
    derived_outputs : tuple of str
        Outputs ``trainer predict`` also writes that no head predicts (keys of
        :data:`trainer.predict.OUTPUT_SUFFIXES`), computed by ``derive``.
    derive : callable, optional
        ``(module, image (1, 3, H, W) in [0, 1], outputs, options dict) -> dict`` of the
        ``derived_outputs`` (1, C, H, W).
    """

    name: str
    title: str
    heads: tuple[str, ...]
    default_heads: tuple[str, ...]
    input_range: str
    preset: str
    size_multiple: int
    make_config: Callable[..., Any]
    config_from_dict: Callable[[dict], Any]
    build: Callable[[Any], Any]
    load_encoder_weights: Callable[[Any, Any], dict]
    parameter_counts: Callable[[Any], dict]
    encoder_weights_help: str
    input_ranges: tuple[str, ...] = ()
    smoke_config: dict = field(default_factory=dict)
    camera_input: bool = False
    make_criterion: Callable[..., Any] | None = None
    data_overrides: Callable[..., dict] | None = None
    derived_outputs: tuple[str, ...] = ()
    derive: Callable[..., dict] | None = None

    def resolve_input_range(self, requested: str | None) -> str:
        """The range a run uses: ``requested``, or this model's own when None;
        :class:`ConfigError` if the model cannot take it."""
        allowed = self.input_ranges or (self.input_range,)
        chosen = self.input_range if requested is None else requested
        if chosen not in allowed:
            raise ConfigError(f"input_range: model {self.name} ({self.title}) takes "
                              f"{' or '.join(allowed)} input, got {chosen!r}")
        return chosen

    def check_camera_input(self, overrides: dict) -> None:
        """:class:`ConfigError` if ``overrides`` turn on ``camera_input`` for a model that
        cannot take the camera."""
        if overrides.get("camera_input") and not self.camera_input:
            raise ConfigError(f"camera_input: model {self.name} ({self.title}) does not take "
                              "the camera as input; drop --camera-input (models that do: "
                              f"{[n for n in MODELS if get_spec(n).camera_input]})")

    def config_overrides(self, overrides: dict, input_range: str | None) -> dict:
        """``overrides`` for :attr:`make_config`, with the chosen input range where the
        model has a choice (and without a ``camera_input`` it cannot take, when off)."""
        self.check_camera_input(overrides)
        chosen = self.resolve_input_range(input_range)
        out = dict(overrides)
        if not self.camera_input:
            out.pop("camera_input", None)
        return {**out, "input_range": chosen} if self.input_ranges else out

    def method_heads(self, method: str) -> tuple[str, ...]:
        """The heads a run of ``method`` trains when nothing names them: the default
        heads (supervised), or the model's defocus head with its AiF head if it has one
        (self-supervised: no depth head)."""
        if method == "self-supervised":
            return tuple(h for h in ("aif", "defocus") if h in self.heads)
        return self.default_heads

    def check_heads(self, heads) -> tuple[str, ...]:
        """``heads`` as a tuple, or :class:`ConfigError` if they are not a non-empty
        subset of this model's heads without repeats."""
        heads = tuple(heads)
        bad = [h for h in heads if h not in self.heads]
        if not heads or bad or len(set(heads)) != len(heads):
            raise ConfigError(f"heads: model {self.name} ({self.title}) has heads "
                              f"{list(self.heads)}; expected a non-empty subset without "
                              f"repeats, got {list(heads)}")
        return heads


def model_names() -> tuple[str, ...]:
    """The registered model names, in registry order."""
    return tuple(MODELS)


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of model ``name``; :class:`ConfigError` if unknown."""
    if not isinstance(name, str) or name not in MODELS:
        raise ConfigError(f"model {name!r}: unknown; choose one of {list(MODELS)}")
    spec = importlib.import_module(MODELS[name]).SPEC
    if spec.name != name:  # a registry line pointing at the wrong module
        raise ConfigError(f"model {name!r}: module {MODELS[name]} defines model "
                          f"{spec.name!r}")
    return spec
