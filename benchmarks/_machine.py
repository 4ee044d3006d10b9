"""What every benchmark records about the machine it ran on (one reader of /proc/cpuinfo)."""

from __future__ import annotations

import platform
from pathlib import Path

__all__ = ["cpu_model"]


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
