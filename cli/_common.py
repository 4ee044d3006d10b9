"""What both command-line programs share: context settings and the user-error wrapper."""

from __future__ import annotations

import functools

import click

from defocuskit.errors import DefocusKitError

__all__ = ["CONTEXT", "user_errors", "one_line", "count"]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


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


def user_errors(fn):
    """Turn library errors on user input into one clear line and exit 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DefocusKitError as exc:
            raise click.ClickException(one_line(exc)) from None
        except OSError as exc:  # a read-only or full filesystem, a path under /proc, ...
            from defocuskit.output import describe_os_error

            raise click.ClickException(describe_os_error(exc, "the output")) from None

    return wrapper
