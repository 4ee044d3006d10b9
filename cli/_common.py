"""What both command-line programs share: context settings and the user-error wrapper."""

from __future__ import annotations

import functools

import click

from defocuskit.errors import DefocusKitError

__all__ = ["CONTEXT", "user_errors"]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def user_errors(fn):
    """Turn library errors on user input into one clear line and exit 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DefocusKitError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper
