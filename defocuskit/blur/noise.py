"""Seeded Poisson-Gaussian sensor noise.

Model (Foi et al., 2008): for a clean signal ``x`` in [0, 1] (linear light when the render
runs in linear light), ``y = gain * Poisson(x / gain) + Normal(0, read_sigma^2)``, so the
variance is ``gain * x + read_sigma^2``. Off unless a :class:`SensorNoise` is given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from defocuskit.errors import ConfigError

__all__ = ["SensorNoise", "add_sensor_noise"]


@dataclass(frozen=True)
class SensorNoise:
    """Poisson-Gaussian noise parameters (signal units: full scale = 1).

    Parameters
    ----------
    gain : float
        Signal per photo-electron (1 / full-well in electrons); 0 disables shot noise.
    read_sigma : float
        Standard deviation of the Gaussian read noise, full-scale units.
    """

    gain: float = 0.01
    read_sigma: float = 0.002

    def __post_init__(self):
        for name in ("gain", "read_sigma"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
                raise ConfigError(f"SensorNoise: {name} must be a finite number >= 0, got {v!r}")

    def to_config(self) -> dict:
        return asdict(self)

    @classmethod
    def from_config(cls, config) -> SensorNoise:
        """Accept a SensorNoise or a dict with keys ``gain`` and ``read_sigma``."""
        if isinstance(config, cls):
            return config
        if not isinstance(config, dict) or set(config) - {"gain", "read_sigma"}:
            raise ConfigError(f"noise must be None, a SensorNoise or a dict with keys gain, "
                              f"read_sigma; got {config!r}")
        return cls(**config)


def add_sensor_noise(img: np.ndarray, noise: SensorNoise, rng: np.random.Generator) -> np.ndarray:
    """Return ``img`` (float32, [0, 1]) with Poisson-Gaussian noise drawn from ``rng``."""
    x = np.clip(img, 0.0, None).astype(np.float64)
    y = noise.gain * rng.poisson(x / noise.gain) if noise.gain > 0 else x
    if noise.read_sigma > 0:
        y = y + rng.normal(0.0, noise.read_sigma, size=x.shape)
    return y.astype(np.float32)
