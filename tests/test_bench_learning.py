"""benchmarks/bench_learning.py (the study with controls) end to end on a tiny setting, and
the controls' defining properties."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from _helpers import load_script

pytest.importorskip("torch")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_learning.py"
TINY = {"n_train": 4, "n_val": 1, "n_test": 2, "size": [64, 64], "steps": 2, "batch_size": 2,
        "crop": 32, "curve_points": 1,
        "model": {"growth_rate": 4, "num_init_features": 8, "block_config": [1, 1, 1, 1]}}


def _load():
    return load_script(BENCH)


@pytest.mark.usefixtures("one_thread")
def test_tiny_study_end_to_end(tmp_path, capsys):
    bench = _load()
    out, fig = tmp_path / "r.json", tmp_path / "f.png"
    args = ["--quick", "--device", "cpu", "--seeds", "0,1", "--out", str(out), "--figure",
            str(fig), "--workdir", str(tmp_path / "work")]
    for k, v in TINY.items():
        args += ["--set", f"{k}={json.dumps(v)}"]
    bench.main(args)
    res = json.loads(out.read_text())
    assert fig.stat().st_size > 0 and res["seed_list"] == [0, 1]
    for seed in ("0", "1"):
        for setting, arms in (("ideal", ("sharp", "true", "other", "constant")),
                              ("real", ("sharp", "true", "other", "constant", "camera"))):
            r = res["seeds"][seed][setting]
            for arm in arms:
                assert r[arm]["steps"] == 2, (setting, arm)
                assert len(r[arm]["per_scene"]["rmse"]) == 2
                assert sum(r[arm]["blind_zone"]["n_pixels"]) > 0
            assert r["mean_depth"]["per_scene"]["rmse"][0] > 0
        probe = res["seeds"][seed]["ideal"]["probe"]
        # the sharp model's input is the AiF, which the re-render leaves alone
        assert probe["focus_20m"]["sharp"]["slope"] == 0.0
        assert probe["f_number_half"]["dfd"]["median_implied_log_change"] < 0
    rows = res["summary"]["rows"]
    assert set(rows["real"]) == {"mean_depth", "sharp", "true", "other", "constant", "camera"}
    r = rows["ideal"]["true"]["rmse"]
    assert r["lo"] <= r["mean"] <= r["hi"] and r["n"] == 4
    text = capsys.readouterr().out
    assert "| real | (c) + camera input (--camera-input) |" in text
    assert "causal probe" in text


def test_controls_keep_sigma_statistics_and_decorrelate(tmp_path):
    """(d) blurs with exactly the split's sigma values, but not with this scene's: its sigma
    no longer follows the scene's depth, whereas (c)'s is a function of it."""
    sys.path.insert(0, str(BENCH.parent))
    from learning.data import load_split, make_variant, synthesise

    s = dict(TINY, n_train=6, n_test=2, size=[96, 96])
    src = synthesise(tmp_path / "ideal.zarr", s, "ideal", seed=3, jobs=1)
    assert src["samples"] == 8
    other = make_variant(tmp_path / "ideal.zarr", tmp_path / "other.zarr", "other", "ideal",
                         seed=3)
    const = make_variant(tmp_path / "ideal.zarr", tmp_path / "const.zarr", "constant", "ideal",
                         seed=3)
    a, d, e = (load_split(p, "train") for p in (tmp_path / "ideal.zarr", other, const))
    np.testing.assert_allclose(np.sort(d["sigma"].ravel()), np.sort(a["sigma"].ravel()))
    np.testing.assert_array_equal(d["depth"], a["depth"])  # labels unchanged
    inv = 1 / a["depth"]

    def corr(x, y):
        pairs = zip(x, y, strict=True)
        return np.mean([np.corrcoef(xi.ravel(), yi.ravel())[0, 1] for xi, yi in pairs])

    assert corr(a["sigma"], inv) > 0.95  # ideal: sigma rises with 1/depth
    upright = np.stack([a["sigma"][(i + 1) % 6] for i in range(6)])
    assert corr(upright, inv) > 0.2  # the rooms' shared layout: why (d) turns the map
    assert abs(corr(d["sigma"], inv)) < 0.15
    assert np.allclose(e["sigma"], np.nanmean(a["sigma"]), rtol=1e-5)
    assert not np.array_equal(d["defocused"], a["defocused"])
