"""Focus policies: which focus distance(s), in metres, each sample is rendered at.

A policy is parsed from a CLI string by :func:`make_focus_policy`:

``"fixed:2.0"``
    always 2.0 m.
``"uniform"``
    uniform between the smallest and largest valid depth of the sample.
``"histogram"``
    weighted by the sample's pixel depth histogram (64 bins over the valid range), i.e. a
    depth is drawn as often as it occurs in the image, uniform within its bin. (This is
    *not* SYNDOF's rule: a wall that fills 90 % of the frame takes 90 % of the draws.)
``"syndof"``, ``"syndof:STEP"``
    SYNDOF's rule (``blur_by_depth.m``): one of the sample's *unique* depth values (depth
    rounded to STEP metres, default 0.001), drawn by rank with weights rising towards the
    nearest; how many pixels have a depth plays no part (:class:`SyndofFocus`).
``"stack:K"``
    a focal stack of K distances spread over the valid depth range, evenly in inverse depth
    (dioptres), because the CoC is linear in 1/x.
``"stack:1,2,4"``
    a focal stack at the listed distances.

Invalid depth (NaN, infinite or <= 0) is ignored by every draw. Randomness comes only from
the ``rng`` argument; :func:`sample_rng` gives each sample its own generator so sample ``i``
draws the same whatever the number of workers.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from defocuskit.errors import ConfigError

__all__ = [
    "FixedFocus", "HistogramFocus", "StackFocus", "SyndofFocus", "UniformFocus",
    "focus_policy_from_config", "make_focus_policy", "sample_rng", "syndof_rank_weights",
]

MAX_FOCUS_M = 1e6  # a focus distance beyond (metres) is refused: stored as float32
HISTOGRAM_BINS = 64
# SYNDOF weighs its L unique depths by the first half of a 2L-bin histogram of 10 000 draws
# of N(L, (L/2)^2); the histogram spans the draws' range, about +-3.85 standard deviations
# (the expected largest of 10 000 standard normal draws), so its first half runs from
# -3.85 sd (the farthest depth) to the mean (the nearest).
SYNDOF_RANK_TAIL_SD = 3.85
SYNDOF_DEPTH_STEP_M = 0.001  # unique depths of a float map: to the millimetre (16-bit PNG)


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Independent, deterministic generator for sample ``index`` of ``split``.

    Built from a SeedSequence over ``(seed, crc32(split), index)``, so it depends on nothing
    else (not on worker count or processing order).
    """
    if int(seed) < 0 or int(index) < 0:
        raise ConfigError(f"sample_rng: seed and index must be >= 0, got {seed}, {index}")
    key = zlib.crc32(str(split).encode("utf-8"))
    return np.random.default_rng(np.random.SeedSequence([int(seed), key, int(index)]))


def _valid_depth(depth_m) -> np.ndarray:
    d = np.asarray(depth_m, dtype=np.float64).ravel()
    d = d[np.isfinite(d) & (d > 0)]
    if d.size == 0:
        raise ConfigError("focus policy: the depth map has no valid value (all NaN, inf or <= 0)")
    return d


@dataclass(frozen=True)
class FixedFocus:
    """Always focus at ``distance_m`` metres."""

    distance_m: float
    k = 1

    def draw(self, depth_m, rng: np.random.Generator) -> np.ndarray:
        """Return ``[distance_m]``, float64 (1,), metres."""
        return np.array([self.distance_m], dtype=np.float64)

    def to_config(self) -> dict:
        return {"policy": "fixed", "distance_m": float(self.distance_m)}


@dataclass(frozen=True)
class UniformFocus:
    """Focus drawn uniformly in ``[min, max]`` of the sample's valid depth, metres."""

    k = 1

    def draw(self, depth_m, rng: np.random.Generator) -> np.ndarray:
        """Return one distance, float64 (1,), metres."""
        d = _valid_depth(depth_m)
        return np.array([rng.uniform(d.min(), d.max())], dtype=np.float64)

    def to_config(self) -> dict:
        return {"policy": "uniform"}


@dataclass(frozen=True)
class HistogramFocus:
    """Focus drawn from the depth histogram (``bins`` bins over the valid range), metres."""

    bins: int = HISTOGRAM_BINS
    k = 1

    def draw(self, depth_m, rng: np.random.Generator) -> np.ndarray:
        """Return one distance, float64 (1,), metres; likely depths are drawn more often."""
        d = _valid_depth(depth_m)
        lo, hi = d.min(), d.max()
        if hi <= lo:
            return np.array([lo], dtype=np.float64)
        counts, edges = np.histogram(d, bins=self.bins, range=(lo, hi))
        b = rng.choice(self.bins, p=counts / counts.sum())
        return np.array([rng.uniform(edges[b], edges[b + 1])], dtype=np.float64)

    def to_config(self) -> dict:
        return {"policy": "histogram", "bins": int(self.bins)}


def syndof_rank_weights(n: int) -> np.ndarray:
    """SYNDOF's focus weights of ``n`` unique depths, nearest first; float64 (n,), sum 1.

    The expectation of SYNDOF's histogram weights (see :data:`SYNDOF_RANK_TAIL_SD`): the
    depth of rank ``r`` (0 = nearest) weighs ``exp(-z**2 / 2)`` with
    ``z = 3.85 * (r + 1/2) / n``; the farthest weighs about 6e-4 of the nearest.
    """
    z = SYNDOF_RANK_TAIL_SD * (np.arange(n) + 0.5) / n
    w = np.exp(-0.5 * z * z)
    return w / w.sum()


@dataclass(frozen=True)
class SyndofFocus:
    """Focus at one of the sample's unique depths, drawn by rank towards the nearest.

    SYNDOF (Lee et al., CVPR 2019, ``blur_by_depth.m``) sorts the unique values of the
    depth map and draws one with :func:`syndof_rank_weights`: the weight depends on the
    rank only, so a far wall that fills most of the frame but spans few depth values is
    rarely chosen. A float depth map is first rounded to ``depth_step_m`` metres (SYNDOF
    read integer depth images); ``depth_step_m = 0`` takes the raw float values.
    """

    depth_step_m: float = SYNDOF_DEPTH_STEP_M
    k = 1

    def unique_depths(self, depth_m) -> np.ndarray:
        """The sorted unique valid depths (after rounding), float64 metres, nearest first."""
        d = _valid_depth(depth_m)
        if self.depth_step_m > 0:
            return np.unique(np.round(d / self.depth_step_m)) * self.depth_step_m
        return np.unique(d)

    def draw(self, depth_m, rng: np.random.Generator) -> np.ndarray:
        """Return one distance, float64 (1,), metres: a (rounded) depth of the sample."""
        u = self.unique_depths(depth_m)
        return np.array([u[rng.choice(u.size, p=syndof_rank_weights(u.size))]],
                        dtype=np.float64)

    def to_config(self) -> dict:
        return {"policy": "syndof", "depth_step_m": float(self.depth_step_m)}


@dataclass(frozen=True)
class StackFocus:
    """A focal stack: ``distances_m`` if given, else ``count`` distances even in 1/depth."""

    count: int = 0
    distances_m: tuple[float, ...] = ()

    @property
    def k(self) -> int:
        return len(self.distances_m) if self.distances_m else self.count

    def draw(self, depth_m, rng: np.random.Generator) -> np.ndarray:
        """Return the K focus distances, float64 (K,), metres, nearest first."""
        if self.distances_m:
            return np.array(self.distances_m, dtype=np.float64)
        d = _valid_depth(depth_m)
        inv = np.linspace(1.0 / d.min(), 1.0 / d.max(), self.count)
        return 1.0 / inv

    def to_config(self) -> dict:
        return {"policy": "stack", "count": int(self.k),
                "distances_m": [float(x) for x in self.distances_m]}


def _number(text: str, spec: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ConfigError(f"focus policy {spec!r}: {text!r} is not a number (metres)") from None
    if not np.isfinite(v) or not 0 < v <= MAX_FOCUS_M:
        raise ConfigError(f"focus policy {spec!r}: distances must be in (0, {MAX_FOCUS_M:g}] "
                          f"metres, got {text}")
    return v


def make_focus_policy(spec: str):
    """Parse a CLI focus-policy string (see the module docstring for the grammar).

    Raises
    ------
    ConfigError
        On an unknown policy name or a malformed argument.
    """
    if not isinstance(spec, str):
        raise ConfigError(f"focus policy must be a string, got {spec!r}")
    name, _, arg = spec.strip().partition(":")
    name = name.lower()
    if name == "fixed" and arg:
        return FixedFocus(_number(arg, spec))
    if name == "uniform" and not arg:
        return UniformFocus()
    if name == "histogram" and not arg:
        return HistogramFocus()
    if name == "syndof":
        if not arg:
            return SyndofFocus()
        step = _number(arg, spec) if arg not in ("0", "0.0") else 0.0
        return SyndofFocus(depth_step_m=step)
    if name == "stack" and arg:
        if "," in arg:
            return StackFocus(distances_m=tuple(_number(t, spec) for t in arg.split(",")))
        if arg.isdigit() and int(arg) >= 1:
            return StackFocus(count=int(arg))
    raise ConfigError(
        f"unknown focus policy {spec!r}; expected 'fixed:METRES', 'uniform', 'histogram', "
        "'syndof', 'syndof:STEP_METRES', 'stack:K' or 'stack:M1,M2,...'"
    )


def focus_policy_from_config(config: dict):
    """Rebuild a policy from its ``to_config()`` dict."""
    kind = config.get("policy") if isinstance(config, dict) else None
    if kind == "fixed":
        return FixedFocus(float(config["distance_m"]))
    if kind == "uniform":
        return UniformFocus()
    if kind == "histogram":
        return HistogramFocus(int(config.get("bins", HISTOGRAM_BINS)))
    if kind == "syndof":
        return SyndofFocus(float(config.get("depth_step_m", SYNDOF_DEPTH_STEP_M)))
    if kind == "stack":
        dist = tuple(float(x) for x in config.get("distances_m", ()))
        return StackFocus(count=0 if dist else int(config["count"]), distances_m=dist)
    raise ConfigError(f"focus policy config: unknown or missing 'policy' in {config!r}")
