"""benchmarks/learning/stats.py: bootstrap intervals against closed-form expectations."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from learning.stats import mean_ci, paired_ci  # noqa: E402


def test_interval_matches_normal_theory():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=400)
    r = mean_ci([x[:200], x[200:]], n_boot=4000)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert r["mean"] == pytest.approx(x.mean())
    assert r["hi"] - r["lo"] == pytest.approx(2 * half, rel=0.1)
    assert r["lo"] < x.mean() < r["hi"] and r["n"] == 400


def test_constant_values_and_paired_differences():
    r = mean_ci([[2.0] * 5, [2.0] * 7])
    assert r["mean"] == r["lo"] == r["hi"] == 2.0
    # scene difficulty is shared: the paired difference is exact, the unpaired one is not
    base = [np.linspace(0, 10, 30)]
    d = paired_ci([b + 0.5 for b in base], base)
    assert d["mean"] == pytest.approx(0.5) and d["hi"] - d["lo"] < 1e-9
    with pytest.raises(ValueError):
        mean_ci([[]])
