"""Plumbing of benchmarks/learning/v1.py (the first study) on a tiny setting (no learning)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _helpers import load_script

pytest.importorskip("torch")

from defocuskit.dataset.store import open_dataset  # noqa: E402

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "learning" / "v1.py"


def _load():
    return load_script(BENCH)


def test_tiny_run_writes_json_figure_and_table(tmp_path, capsys):
    bench = _load()
    out, fig = tmp_path / "r.json", tmp_path / "f.png"
    tiny = {"n_train": 4, "n_val": 1, "n_test": 2, "size": [64, 64], "steps": 2,
            "batch_size": 2, "crop": 32, "curve_points": 1,
            "model": {"growth_rate": 4, "num_init_features": 8, "block_config": [1, 1, 1, 1]}}
    args = ["--quick", "--device", "cpu", "--rows", "depth", "--out", str(out), "--figure",
            str(fig), "--workdir", str(tmp_path / "work")]
    for k, v in tiny.items():
        args += ["--set", f"{k}={json.dumps(v)}"]
    res = bench.main(args)
    saved = json.loads(out.read_text())
    assert fig.stat().st_size > 0 and saved["settings"]["steps"] == 2
    for key in ("aif_input", "defocused_input"):
        assert saved[key]["steps"] == 2 and saved[key]["test"]["n_images"] == 2
        assert {"rmse", "abs_rel", "delta1"} <= set(saved[key]["test"])
    assert saved["constant"]["n_images"] == 2 and saved["constant"]["rmse"] > 0
    # the input's PSNR, per test image from the stored arrays in plain NumPy, then averaged
    test = open_dataset(tmp_path / "work" / "defocused.zarr")["test"]
    psnr = []
    for i in range(len(test)):
        d = test.read(i, ("defocused", "aif"))
        mse = np.mean((d["defocused"] / 255.0 - d["aif"] / 255.0) ** 2)
        psnr.append(10 * np.log10(1.0 / mse))
    assert len(psnr) == 2 and saved["input_quality"]["n_images"] == 2
    assert saved["input_quality"]["psnr"] == pytest.approx(np.mean(psnr), rel=1e-5)
    assert res["machine"]["cpu"]
    # the twin's input is the sharp image: the AiF head starts as the identity on it
    assert res["aif_input"]["test"]["psnr"] > res["defocused_input"]["test"]["psnr"]
    assert "| (c) 2HDED:NET on defocused input |" in capsys.readouterr().out


def test_tiny_selfsup_and_onthefly_rows(tmp_path, capsys):
    bench = _load()
    out = tmp_path / "rows.json"
    tiny = {"n_train": 4, "n_val": 1, "n_test": 2, "size": [64, 64], "steps": 2,
            "rows_steps": 2, "batch_size": 2, "crop": 32, "curve_points": 1,
            "model": {"growth_rate": 4, "num_init_features": 8, "block_config": [1, 1, 1, 1]}}
    args = ["--quick", "--device", "cpu", "--rows", "selfsup,onthefly", "--out", str(out),
            "--workdir", str(tmp_path / "work")]
    for k, v in tiny.items():
        args += ["--set", f"{k}={json.dumps(v)}"]
    bench.main(args)
    saved = json.loads(out.read_text())
    assert saved["rows"] == ["selfsup", "onthefly"]
    assert "defocused_input" not in saved and "aif_input" not in saved  # depth rows skipped
    ss = saved["selfsup"]
    # sigma_max covers every stored sigma and leaves the re-blur border inside the crop
    assert ss["sigma"]["max_px"] <= ss["sigma_max"] < 32 / 3
    assert ss["self_supervised"]["train_config"]["method"] == "self-supervised"
    assert ss["self_supervised"]["train_config"]["sigma_max"] == ss["sigma_max"]
    for key in ("supervised", "self_supervised"):
        assert ss[key]["steps"] == 2 and ss[key]["test"]["n_images"] == 2
        assert ss[key]["test"]["defocus_mae"] >= 0 and ss[key]["test"]["defocus_mse"] >= 0
    assert ss["constant_mean"]["value_px"] == ss["sigma"]["train_mean_px"]
    assert ss["constant_median"]["value_px"] == ss["sigma"]["train_median_px"]
    otf = saved["onthefly"]
    assert otf["synth"]["config"]["focus"] == "uniform"
    assert otf["on_the_fly"]["train_config"]["on_the_fly"] is True
    assert otf["fixed"]["train_config"]["on_the_fly"] is False
    for key in ("fixed", "on_the_fly"):
        assert otf[key]["steps"] == 2 and {"rmse", "delta1"} <= set(otf[key]["test"])
    text = capsys.readouterr().out
    assert "| (f) self-supervised" in text and "| (h) on-the-fly" in text


@pytest.mark.slow  # the rows' code paths are covered more cheaply in test_mddnet.py
def test_tiny_mddnet_rows(tmp_path, capsys):
    pytest.importorskip("transformers", reason="the [mddnet] extra is not installed")
    bench = _load()
    out = tmp_path / "mdd.json"
    tiny = {"n_train": 4, "n_val": 1, "n_test": 2, "size": [64, 64], "steps": 2,
            "rows_steps": 2, "batch_size": 2, "crop": 32, "curve_points": 1,
            "model": {"growth_rate": 4, "num_init_features": 8, "block_config": [1, 1, 1, 1]},
            "mddnet_model": {"depths": [1, 1, 1, 1], "hidden_sizes": [8, 16, 32, 64],
                             "num_attention_heads": [1, 1, 2, 2], "decoder_hidden_size": 8}}
    args = ["--quick", "--device", "cpu", "--rows", "mddnet", "--out", str(out),
            "--workdir", str(tmp_path / "work")]
    for k, v in tiny.items():
        args += ["--set", f"{k}={json.dumps(v)}"]
    bench.main(args)
    r = json.loads(out.read_text())["mddnet"]
    mdd = r["mddnet"]["train_config"]
    assert (mdd["model_name"], mdd["loss"], mdd["consistency_norm"], mdd["optimizer"]) == (
        "mddnet", "mddnet", "l2", "adam")
    assert r["twohded"]["train_config"]["model_name"] == "2hded"
    for key in ("twohded", "mddnet"):  # same budget, both maps scored
        assert r[key]["steps"] == 2 and r[key]["test"]["n_images"] == 2
        assert {"rmse", "delta1", "defocus_mae", "defocus_mse"} <= set(r[key]["test"])
    counts = r["mddnet_parameters"]
    assert counts["total"] == counts["encoder"] + counts["depth"] + counts["defocus"]
    assert "| (j) MDDNet, MDDNet's losses |" in capsys.readouterr().out
