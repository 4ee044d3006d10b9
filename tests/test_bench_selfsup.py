"""benchmarks/bench_selfsup.py end to end on a tiny setting, and its scoring helpers against
plain expectations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _helpers import load_script

pytest.importorskip("torch")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_selfsup.py"
TINY = {"n_train": 4, "n_val": 1, "n_test": 2, "size": [64, 64], "steps": 2, "batch_size": 2,
        "crop": 32, "curve_points": 1, "sigma_max": 4.0, "anchor_window": 5,
        "model": {"growth_rate": 4, "num_init_features": 8, "block_config": [1, 1, 1, 1]}}


def _load():
    return load_script(BENCH)


@pytest.mark.usefixtures("one_thread")
def test_tiny_study_end_to_end(tmp_path, capsys):
    bench = _load()
    out, fig = tmp_path / "r.json", tmp_path / "f.png"
    args = ["--quick", "--device", "cpu", "--seeds", "3", "--out", str(out), "--figure",
            str(fig)]
    for k, v in TINY.items():
        args += ["--set", f"{k}={json.dumps(v)}"]
    bench.main(args)
    res = json.loads(out.read_text())
    assert fig.stat().st_size > 0 and sorted(res["per_seed"]) == ["3"]
    for seed in ("3",):
        r = res["per_seed"][seed]
        assert set(r["per_scene"]) == set(bench.ROWS)
        for row in bench.ROWS:
            assert len(r["per_scene"][row]["mae_all"]) == 2
        for name in ("supervised", "selfsup", "selfsup_anchor"):
            assert r["runs"][name]["steps"] == 2
        cfg = r["runs"]["selfsup_anchor"]["train_config"]
        assert cfg["method"] == "self-supervised" and cfg["selfsup_anchor"] == 1.0
        assert r["runs"]["selfsup"]["train_config"]["selfsup_anchor"] == 0.0
        assert r["runs"]["supervised"]["train_config"]["method"] == "supervised"
    s = res["summary"]["rows"]["cost_volume"]["mae_textured"]
    assert s["lo"] <= s["mean"] <= s["hi"] and s["n"] == 2
    # the constants' paired difference with themselves is exactly zero
    zero = res["summary"]["vs_constant_median"]["constant_median"]["mae_all"]
    assert zero["mean"] == 0.0
    text = capsys.readouterr().out
    assert "| self-supervised + cost-volume anchor |" in text


def test_texture_mask_and_scene_errors():
    bench = _load()
    aif = np.zeros((8, 8, 3), np.float32)
    aif[:, 4:] = 1.0  # one vertical edge: central differences mark columns 3 and 4
    mask = bench.texture_mask(aif)
    assert mask[:, 3].all() and mask[:, 4].all() and mask.sum() == 16
    sigma = np.full((8, 8), 2.0)
    sigma[0, 0] = np.nan  # not scored
    pred = np.full((8, 8), 3.0)
    pred[:, 3:5] = 2.5
    e = bench.scene_errors(pred, sigma, mask)
    assert e["mae_textured"] == pytest.approx(0.5)
    assert e["mae_all"] == pytest.approx((47 * 1.0 + 16 * 0.5) / 63)  # 63 finite pixels
