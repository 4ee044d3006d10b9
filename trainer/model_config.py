"""The plain-dict round trip shared by the models' config dataclasses
(:class:`~trainer.model.ModelConfig`, :class:`~trainer.models.anwar.AnwarConfig`,
:class:`~trainer.models.mddnet.MDDNetConfig`)."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import ClassVar

from defocuskit.errors import ConfigError

__all__ = ["DictConfig"]


class DictConfig:
    """Mixin of a config dataclass: :meth:`to_dict` and its inverse :meth:`from_dict`."""

    # named in the unknown-key message ("for model NAME"); None: not named
    config_of: ClassVar[str | None] = None

    def to_dict(self) -> dict:
        """Plain JSON-able dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict):
        """Build from :meth:`to_dict` output; unknown keys raise :class:`ConfigError`."""
        if not isinstance(d, dict):
            raise ConfigError(f"model config: expected a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            named = f" for model {cls.config_of}" if cls.config_of else ""
            raise ConfigError(f"model config: unknown key(s) {unknown}{named}; known keys are "
                              f"{sorted(known)}")
        return cls(**d)
