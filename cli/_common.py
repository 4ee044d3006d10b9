"""What both command-line programs share: context settings and the user-error wrapper."""

from __future__ import annotations

import contextlib
import functools
import warnings

import click

from defocuskit.dataset.output import describe_os_error
from defocuskit.errors import DefocusKitError
from defocuskit.typed import Range

__all__ = ["CONTEXT", "user_errors", "one_line", "ranged", "count"]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
# the packages whose errors are a remote store's answer (fsspec backends and their clients)
REMOTE_STORAGE_MODULES = ("botocore", "aiobotocore", "s3fs", "gcsfs", "google.", "adlfs",
                          "azure.", "aiohttp", "fsspec")


def count(n: int, noun: str) -> str:
    """``1 shard``, ``2 shards``: a number with its noun in the right number."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def one_line(exc: BaseException) -> str:
    """The error's own message, without the worker traceback a DataLoader wraps around it.

    An exception raised in a torch DataLoader worker is re-raised in the main process with
    "Caught X in DataLoader worker process N" and the worker's whole traceback as its
    message; the last line of that text is the original ``Type: message``.
    """
    text = str(exc)
    if "Original Traceback" not in text:
        return text
    last = [ln for ln in text.strip().splitlines() if ln.strip()][-1]
    prefix = f"{type(exc).__module__}.{type(exc).__name__}: "
    return last[len(prefix):] if last.startswith(prefix) else last


def _from_remote_storage(exc: BaseException) -> bool:
    """Whether ``exc`` is a remote store's (its type's module, or the module that raised
    it: fsspec's "Install s3fs to access S3" is a plain ImportError)."""
    if type(exc).__module__.startswith(REMOTE_STORAGE_MODULES):
        return True
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_globals.get("__name__", "").startswith(
        REMOTE_STORAGE_MODULES)


def user_errors(fn):
    """Turn library errors on user input into one clear line and exit 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with _notes():
                return fn(*args, **kwargs)
        except DefocusKitError as exc:
            raise click.ClickException(one_line(exc)) from None
        except OSError as exc:  # a read-only or full filesystem, a path under /proc, ...
            raise click.ClickException(describe_os_error(exc, "the output")) from None
        except Exception as exc:
            if not _from_remote_storage(exc):
                raise
            # a cloud store refused: no credentials, no such bucket, no network, ...
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise click.ClickException(f"remote storage: {type(exc).__name__}: {first} "
                                       "(check the URL, its credentials and the network)"
                                       ) from None

    return wrapper


class _Ranged(click.ParamType):
    """An int or float option with a valid :class:`~defocuskit.typed.Range` (NaN never,
    inf only where the range allows it); a value outside is refused naming the range."""

    def __init__(self, rng: Range):
        self.rng = rng
        self.name = "integer" if rng.integer else "float"

    def convert(self, value, param, ctx):
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                value = int(str(value).strip()) if self.rng.integer else float(value)
            except ValueError:
                self.fail(f"expected {self.rng.expected()}, got {value!r}", param, ctx)
        if not self.rng.contains(value):
            self.fail(f"expected {self.rng.expected()}, got {value!r}", param, ctx)
        return value


def ranged(lo: float | None = None, hi: float | None = None, **kwargs) -> click.ParamType:
    """A click type for a number in ``Range(lo, hi, **kwargs)`` (or a ``Range`` itself)."""
    return _Ranged(lo if isinstance(lo, Range) else Range(lo, hi, **kwargs))


@contextlib.contextmanager
def _notes():
    """Library notes for the user (a dataset without a manifest) as one plain line on
    stderr, instead of a warning with its source line; other warnings as usual."""
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            # by name: importing defocuskit.dataset.store (zarr) here would slow every --help
            if category.__name__ == "NoManifestWarning":
                click.echo(f"note: {message}", err=True)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield
