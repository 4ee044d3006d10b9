"""Type-checked configuration: the one config-file loader and value checker of the project.

``defocuskit synth`` (:class:`~defocuskit.pipeline.config.SynthConfig`), the readers' options and
``trainer fit`` (:class:`trainer.config.TrainConfig`) all check their values here, against
the annotations of the dataclass or function that receives them. A boolean is only
``true``/``false`` (on a command line also ``True``/``False``, case-insensitively); a number
must be a number (a string "3" is refused); unknown keys are named with the known ones.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from defocuskit.errors import ConfigError

__all__ = ["Range", "check_ranges", "check_value", "check_fields", "check_options",
           "load_config_file", "parse_cli_value"]

_BOOL_WORDS = {"true": True, "false": False}


def parse_cli_value(text: str) -> Any:
    """A ``KEY=VALUE`` value from the command line: JSON if it parses, else the string.

    ``True``/``False`` in any case are booleans (``--option crop=False`` must not crop).
    """
    if text.strip().lower() in _BOOL_WORDS:
        return _BOOL_WORDS[text.strip().lower()]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _describe(tp: Any) -> str:
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is os.PathLike or tp is Path:
        return "a path"
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"a list of {_describe(args[0])}" if args else "a list"
    if tp is dict or origin is dict:
        return "a table of key/value pairs"
    if tp is type(None):
        return "nothing (null)"
    return getattr(tp, "__name__", str(tp))


def check_value(name: str, value: Any, tp: Any, where: str) -> Any:
    """Return ``value`` converted to the annotation ``tp``, or raise one ConfigError line.

    ``where`` names the file or option group, e.g. ``"config file run.toml"``.
    """
    def fail(expected: str) -> typing.NoReturn:
        raise ConfigError(f"{where}: {name!r} expected {expected}, got {value!r} "
                          f"({type(value).__name__})")

    if tp is Any or tp is inspect.Parameter.empty:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        alternatives = [a for a in args if a is not type(None)]
        if len(alternatives) == 1:  # X | None: X's own, more specific, message
            return check_value(name, value, alternatives[0], where)
        for a in alternatives:
            try:
                return check_value(name, value, a, where)
            except ConfigError:
                continue
        fail(" or ".join(dict.fromkeys(_describe(a) for a in alternatives)))
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            fail(f"one of {list(allowed)}")
        return value
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        inner = args[0] if args else Any
        if isinstance(value, str) and origin is tuple:  # "depth,aif" from a command line
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            fail(_describe(tp))
        items = [check_value(name, v, inner, where) for v in value]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if not isinstance(value, bool):
            fail("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail("an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            fail("a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            fail("a string")
        return value
    if tp in (os.PathLike, Path):
        if not isinstance(value, str | os.PathLike):
            fail("a path")
        return value
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            fail("a table of key/value pairs")
        args = typing.get_args(tp)
        if len(args) == 2:
            return {k: check_value(f"{name}.{k}", v, args[1], where) for k, v in value.items()}
        return dict(value)
    raise TypeError(f"unhandled config type {tp!r}")  # a programming error, not user input


def check_fields(cls: type, d: dict, where: str) -> dict:
    """Check the keys and values of ``d`` against the fields of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {unknown}; known options: "
                          f"{sorted(known)}")
    return {k: check_value(k, v, hints[k], where) for k, v in d.items()}


def check_options(func, options: dict, where: str) -> dict:
    """Check keyword options for ``func`` (a class: its ``__init__``) by its annotations.

    Only keyword arguments after the first positional one count as options.
    """
    target = func.__init__ if inspect.isclass(func) else func
    sig = inspect.signature(target)
    hints = typing.get_type_hints(target)
    params = {n: p for n, p in sig.parameters.items()
              if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n not in ("self",)}
    positional = [n for n, p in params.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    allowed = {n: p for n, p in params.items() if n not in positional[:1]}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        known = sorted(allowed) or ["(none)"]
        raise ConfigError(f"{where}: unknown option(s) {unknown}; known options: {known}")
    return {k: check_value(k, v, hints.get(k, Any), where) for k, v in options.items()}


def load_config_file(path: str | os.PathLike) -> dict:
    """Read a JSON (``.json``) or TOML (``.toml``) table of options.

    Raises
    ------
    ConfigError
        If the file is missing or unreadable, of another format (YAML is not supported),
        not parseable, or not a table.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".json", ".toml"):
        what = "YAML is not supported" if suffix in (".yaml", ".yml") else \
            f"{suffix or 'no extension'} is not a known format"
        raise ConfigError(f"config file {p}: {what}; write it as .json or .toml")
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file {p}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {p}: cannot be read ({exc})") from None
    try:
        data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {p}: not valid {suffix[1:].upper()} ({exc})") from None
    except RecursionError:
        raise ConfigError(f"config file {p}: nested too deeply to be a table of options; "
                          "expected a flat table (a few levels at most)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p}: expected a table of options, got "
                          f"{type(data).__name__}")
    return data


@dataclasses.dataclass(frozen=True)
class Range:
    """The valid range of a number: ``lo``/``hi`` bounds (``None``: unbounded), open or
    closed. NaN is never in range; an infinity only with ``inf_ok`` (e.g. a depth limit
    where ``inf`` means "none").

    ``str(Range(0, 10, lo_open=True))`` is ``"(0, 10]"``; :meth:`check` raises one
    ConfigError line naming the key and this range.
    """

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    inf_ok: bool = False
    integer: bool = False

    def __str__(self) -> str:
        def text(x: float) -> str:
            return str(int(x)) if self.integer else f"{x:g}"

        lo = "-inf" if self.lo is None else text(self.lo)
        hi = "inf" if self.hi is None else text(self.hi)
        left = "(" if self.lo_open or self.lo is None else "["
        right = ")" if self.hi_open or (self.hi is None and not self.inf_ok) else "]"
        out = f"{left}{lo}, {hi}{right}"
        return out + " or inf" if self.inf_ok and self.hi is not None else out

    def contains(self, value: float) -> bool:
        """Whether ``value`` (a number) lies in the range; NaN never does."""
        try:
            v = float(value)
        except OverflowError:  # an integer beyond float's range
            return False
        if math.isnan(v):
            return False
        if math.isinf(v):
            return self.inf_ok and v > 0
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return self.hi is None or (v < self.hi if self.hi_open else v <= self.hi)

    def expected(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        if self.inf_ok:
            kind = "a number"
        return f"{kind} in {self}"

    def check(self, name: str, value: Any, where: str = "") -> Any:
        """``value`` if it lies in the range (``None`` passes: "not set"), else ConfigError
        ``"<where>: <name>: expected a finite number in (0, 10], got inf"``."""
        if value is None or self.contains(value):
            return value
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}{name}: expected {self.expected()}, got {value!r}")


def check_ranges(obj: Any, ranges: dict[str, Range], where: str = "") -> None:
    """Check every field of ``obj`` named in ``ranges`` (sequences item by item, a table
    value by value)."""
    for name, rng in ranges.items():
        value = getattr(obj, name)
        if isinstance(value, dict):
            value = list(value.values())
        for v in value if isinstance(value, list | tuple) else (value,):
            rng.check(name, v, where)
