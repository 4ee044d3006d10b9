"""benchmarks/oracle_aif.py on tiny settings (seconds): the AiF head, the oracle
deconvolution and the defocused input are scored on the same test frames; the input's
figures match a PSNR computed here from the stored arrays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _helpers import load_script

pytest.importorskip("torch")

from defocuskit.dataset.store import open_dataset  # noqa: E402

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "oracle_aif.py"
pytestmark = pytest.mark.usefixtures("one_thread")


def _load():
    return load_script(BENCH)


def test_tiny_oracle_row(tmp_path, capsys):
    bench = _load()
    out = tmp_path / "r.json"
    tiny = {"n_train": 5, "n_val": 1, "n_test": 2, "size": [64, 64], "rows_steps": 2,
            "batch_size": 2, "crop": 32, "curve_points": 1,
            "model": {"growth_rate": 4, "num_init_features": 8, "block_config": [1, 1, 1, 1]}}
    args = ["--quick", "--device", "cpu", "--threads", "1", "--out", str(out),
            "--workdir", str(tmp_path)]
    for k, v in tiny.items():
        args += ["--set", f"{k}={json.dumps(v)}"]
    bench.main(args)
    saved = json.loads(out.read_text())
    t = saved["twohded"]["test"]
    assert saved["twohded"]["steps"] == 2 and t["n_images"] == 2
    assert saved["twohded"]["train_config"]["heads"] == ["depth", "aif"]
    assert saved["machine"]["torch_threads"] == 1
    # the defocused input's PSNR against the AiF, from the stored uint8 arrays
    sp = open_dataset(tmp_path / "defocused.zarr")["test"]
    psnr = []
    for i in range(2):
        x = sp.read(i, ("defocused", "aif"))
        err = np.mean((x["defocused"] / 255.0 - x["aif"] / 255.0) ** 2)
        psnr.append(10 * np.log10(1.0 / err))
    assert t["input_psnr"] == pytest.approx(np.mean(psnr), abs=1e-3)
    assert np.isfinite([t["psnr"], t["ssim"], t["oracle_psnr"], t["oracle_ssim"]]).all()
    assert t["oracle_psf"] == "gaussian"
    table = capsys.readouterr().out
    assert "| oracle: deconvolution with the true σ map |" in table
    assert f"| {t['input_psnr']:.2f} |" in table
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--threads", "0"])
