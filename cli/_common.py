"""What both command-line programs share: context settings and the user-error wrapper."""

from __future__ import annotations

import contextlib
import functools
import warnings

import click

from defocuskit.errors import DefocusKitError

__all__ = ["CONTEXT", "user_errors", "one_line"]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


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
            with _notes():
                return fn(*args, **kwargs)
        except DefocusKitError as exc:
            raise click.ClickException(one_line(exc)) from None
        except OSError as exc:  # a read-only or full filesystem, a path under /proc, ...
            from defocuskit.output import describe_os_error

            raise click.ClickException(describe_os_error(exc, "the output")) from None

    return wrapper


@contextlib.contextmanager
def _notes():
    """Library notes for the user (a dataset without a manifest) as one plain line on
    stderr, instead of a warning with its source line; other warnings as usual."""
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            # by name: importing defocuskit.store (zarr) here would slow every --help
            if category.__name__ == "NoManifestWarning":
                click.echo(f"note: {message}", err=True)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield
