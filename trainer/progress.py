"""Progress of the trainer's loops (training epochs, validation, ``eval``, ``predict``).

On a terminal a loop shows a tqdm bar on stderr. Without one (a batch job writing to a log
file) a tqdm bar would be either silent or a stream of carriage returns, so instead a plain
line goes to stderr at most every ``every_s`` seconds, e.g.
``eval test  12/50 images  3.10 img/s  ETA 12s``; a loop shorter than that prints
nothing. A :class:`Ticker` shared between loops (``trainer fit`` shares one across its
epochs and validations) keeps that pace across loop boundaries.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from tqdm import tqdm

from defocuskit.errors import ConfigError

__all__ = ["Progress", "Ticker", "format_duration", "DEFAULT_EVERY_S"]

DEFAULT_EVERY_S = 30.0  # seconds between plain progress lines without a terminal


def format_duration(seconds: float) -> str:
    """``45s``, ``3m20s``, ``2h05m`` (``?`` for an unknown or infinite time)."""
    if not seconds >= 0 or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Ticker:
    """Says when the next plain line is due: ``every_s`` seconds after the last one.

    Parameters
    ----------
    every_s : float
        Seconds between lines; 0 makes every :meth:`due` call true.
    clock : callable
        Monotonic seconds (replaceable in tests).
    """

    def __init__(self, every_s: float = DEFAULT_EVERY_S, *,
                 clock: Callable[[], float] = time.monotonic):
        if not every_s >= 0:
            raise ConfigError(f"progress interval: expected >= 0 seconds, got {every_s}")
        self.every_s = float(every_s)
        self.clock = clock
        self.last = clock()

    def due(self) -> bool:
        """True (and the interval restarts) when ``every_s`` seconds have passed."""
        now = self.clock()
        if now - self.last >= self.every_s:
            self.last = now
            return True
        return False


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """Progress of one loop over ``total`` items (see the module doc).

    Parameters
    ----------
    total : int or None
        Items in the loop (None: unknown, no ETA).
    desc : str
        What runs, the start of every line (``"eval test"``).
    unit : str
        Singular name of an item; lines say ``<n>/<total> <unit>s`` and the rate per
        second (``img/s`` for images).
    enabled : bool
        False: show nothing at all.
    ticker : Ticker, optional
        The pace of plain lines (default: a new one, :data:`DEFAULT_EVERY_S`).
    line : callable, optional
        Builds a plain line instead of the default (called only when one is due).
    stream : file, optional
        Where to write; default ``sys.stderr`` at construction.
    """

    def __init__(self, total: int | None, desc: str, *, unit: str = "image",
                 enabled: bool = True, ticker: Ticker | None = None,
                 line: Callable[[Progress], str] | None = None, stream=None):
        self.total, self.desc, self.unit = total, desc, unit
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream
        self.ticker = ticker or Ticker()
        self._line = line
        self.n = 0
        self.t0 = time.perf_counter()
        self.bar = None
        if enabled and _is_terminal(self.stream):
            self.bar = tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True,
                            file=self.stream)

    @property
    def rate(self) -> float:
        """Items per second since the loop started."""
        return self.n / max(time.perf_counter() - self.t0, 1e-9)

    def eta(self) -> float:
        """Seconds left at the rate so far (inf when unknown)."""
        if self.total is None or self.n == 0:
            return float("inf")
        return max(self.total - self.n, 0) / self.rate

    def default_line(self) -> str:
        count = f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"
        short = {"image": "img"}.get(self.unit, self.unit)
        return (f"{self.desc}  {count} {self.unit}s  {self.rate:.2f} {short}/s  "
                f"ETA {format_duration(self.eta())}")

    def update(self, n: int = 1) -> None:
        """``n`` more items done; a bar moves, or a plain line is written when due."""
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and self.ticker.due():
            text = self._line(self) if self._line else self.default_line()
            print(text, file=self.stream, flush=True)

    def set_postfix(self, **values) -> None:
        """Extra values after a bar (plain lines build their own, see ``line``)."""
        if self.bar is not None:
            self.bar.set_postfix(**values)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
