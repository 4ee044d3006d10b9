"""benchmarks/learning_anwar.py on tiny settings (seconds, no learning to speak of): the
row runs, its constant baseline is the training split's mean depth, the JSON is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _helpers import load_script

pytest.importorskip("torch")

from defocuskit.dataset.store import open_dataset  # noqa: E402
from trainer.metrics import depth_metrics  # noqa: E402

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "learning_anwar.py"
pytestmark = pytest.mark.usefixtures("one_thread")


def _load():
    return load_script(BENCH)


def test_tiny_anwar_row(tmp_path, capsys):
    bench = _load()
    out = tmp_path / "r.json"
    tiny = {"n_train": 5, "n_val": 1, "n_test": 2, "size": [64, 64], "rows_steps": 2,
            "batch_size": 2, "crop": 32, "curve_points": 1,
            "anwar_model": {"widths": [4, 4, 8, 8, 8], "fc_width": 8, "pool_size": 2,
                            "keypoint_stride": 8}}
    args = ["--quick", "--device", "cpu", "--threads", "1", "--out", str(out),
            "--workdir", str(tmp_path), "--set", 'anwar_optimizer="adam"']
    for k, v in tiny.items():
        args += ["--set", f"{k}={json.dumps(v)}"]
    res = bench.main(args)
    saved = json.loads(out.read_text())
    assert saved["anwar"]["steps"] == 2 and saved["anwar"]["test"]["n_images"] == 2
    assert saved["anwar"]["train_config"]["model_name"] == "anwar"
    assert saved["anwar"]["train_config"]["optimizer"] == "adam"
    assert saved["machine"]["torch_threads"] == 1
    # the default read-out is the paper's arg-max; the expectation is scored beside it
    assert saved["anwar"]["readout"] == "argmax"
    assert saved["anwar"]["model_config"]["readout"] == "argmax"
    assert saved["anwar"]["test_expectation"]["n_images"] == 2
    assert saved["anwar"]["parameters"]["total"] > 0 and res["machine"]["cpu"]
    # the constant baseline, recomputed here from the stored arrays
    ds = open_dataset(tmp_path / "defocused.zarr")
    train = np.stack([ds["train"].read_array("depth", i) for i in range(5)])
    mean = float(np.nanmean(train.astype(np.float64)))
    rmse = np.mean([depth_metrics(np.full((64, 64), mean), ds["test"].read_array("depth", i))
                    ["rmse"] for i in range(2)])
    assert saved["constant"]["rmse"] == pytest.approx(rmse, rel=1e-9)
    table = capsys.readouterr().out
    assert "| (k) Anwar et al. (model anwar), argmax read-out |" in table
    assert "| (k) Anwar et al. (model anwar), expectation read-out |" in table
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--set", "nonsense=1"])
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--threads", "0"])
