"""What every benchmark records about the machine it ran on (one reader of /proc/cpuinfo),
and the settings table the learning benchmarks share (``--quick`` / full plus ``--set``)."""

from __future__ import annotations

import json
import platform
from pathlib import Path

__all__ = ["cpu_model", "chosen_settings"]


def cpu_model(*, simd: bool = False) -> str:
    """The CPU's model name (``/proc/cpuinfo``), with its AVX2/FMA/AVX-512F flags if asked."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine() or "unknown"
    lines = info.splitlines()
    name = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")),
                "unknown")
    if not simd:
        return name
    flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
    return f"{name} ({', '.join(f for f in ('avx2', 'fma', 'avx512f') if f in flags)})"


def chosen_settings(parser, table: dict, quick: bool, overrides) -> dict:
    """A copy of ``table["quick"]`` or ``table["full"]`` with each ``KEY=JSON`` of
    ``overrides`` applied; an unknown key is a usage error of ``parser``."""
    s = json.loads(json.dumps(table["quick" if quick else "full"]))
    for item in overrides:
        key, _, value = item.partition("=")
        if key not in s:
            parser.error(f"--set {key}: unknown setting; known: {sorted(s)}")
        s[key] = json.loads(value)
    return s
