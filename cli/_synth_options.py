"""Click callbacks of ``defocuskit synth``'s options: each value checked where it is given,
so that a bad one is a usage error naming its option."""

from __future__ import annotations

import click

from defocuskit.camera.chromatic import parse_chromatic
from defocuskit.errors import ConfigError
from defocuskit.pipeline.config import MAX_FRAME, RANGES
from defocuskit.psf_spec import parse_psf
from defocuskit.typed import parse_cli_value


def parse_kv(ctx, param, values):
    out = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", ctx, param)
        k, v = item.split("=", 1)
        out[k] = parse_cli_value(v)
    return out


def parse_chromatic_option(ctx, param, value):
    """R,G,B focal-length offsets (mm) as a list, checked here (a usage error)."""
    try:
        offsets = parse_chromatic(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return None if offsets is None else list(offsets)


def parse_psf_option(ctx, param, value):
    """A PSF name, checked here so that a bad one is a usage error naming --psf."""
    if value is not None:
        try:
            parse_psf(value)
        except ConfigError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    return value


def parse_size(ctx, param, value):
    if value is None:
        return None
    try:
        h, w = (int(x) for x in value.lower().split("x"))
    except ValueError:
        h = w = -1
    if not all(RANGES["resize"].contains(v) for v in (h, w)):
        raise click.BadParameter(f"expected HxW in pixels from 8 to {MAX_FRAME} such as "
                                 f"256x320, got {value!r}", ctx, param)
    return [h, w]
