"""Plumbing of benchmarks/bench_learning.py on a tiny setting (a few seconds, no learning)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_learning.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_learning", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_writes_json_figure_and_table(tmp_path, capsys):
    bench = _load()
    out, fig = tmp_path / "r.json", tmp_path / "f.png"
    tiny = {"n_train": 4, "n_val": 1, "n_test": 2, "size": [64, 64], "steps": 2,
            "batch_size": 2, "crop": 32, "curve_points": 1,
            "model": {"growth_rate": 4, "num_init_features": 8, "block_config": [1, 1, 1, 1]}}
    args = ["--quick", "--device", "cpu", "--out", str(out), "--figure", str(fig),
            "--workdir", str(tmp_path / "work")]
    for k, v in tiny.items():
        args += ["--set", f"{k}={json.dumps(v)}"]
    res = bench.main(args)
    saved = json.loads(out.read_text())
    assert fig.stat().st_size > 0 and saved["settings"]["steps"] == 2
    for key in ("aif_input", "defocused_input"):
        assert saved[key]["steps"] == 2 and saved[key]["test"]["n_images"] == 2
        assert {"rmse", "abs_rel", "delta1"} <= set(saved[key]["test"])
    assert saved["constant"]["n_images"] == 2 and saved["constant"]["rmse"] > 0
    assert 10 < saved["input_quality"]["psnr"] < 60
    assert res["machine"]["cpu"]
    # the twin's input is the sharp image: the AiF head starts as the identity on it
    assert res["aif_input"]["test"]["psnr"] > res["defocused_input"]["test"]["psnr"]
    assert "| (c) 2HDED:NET on defocused input |" in capsys.readouterr().out
