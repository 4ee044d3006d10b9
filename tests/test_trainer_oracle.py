"""``trainer eval``'s oracle baseline: the defocused input and its deconvolution with the
true sigma map, scored on the same frames as the AiF head."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
from _helpers import TINY  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from cli.trainer_cmd import trainer  # noqa: E402
from defocuskit import deconvolve  # noqa: E402
from defocuskit.store import open_dataset  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(samples_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("oracle_run") / "run"
    cfg = run_dir.parent / "tiny.toml"
    cfg.write_text("[model]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in TINY.items()))
    res = CliRunner().invoke(trainer, [
        "fit", "--data", str(samples_dataset), "--run-dir", str(run_dir), "--preset", "demo",
        "--config", str(cfg), "--epochs", "1", "--crop", "64", "--max-steps", "1",
        "--device", "cpu", "--seed", "4"])
    assert res.exit_code == 0, res.output
    return run_dir


def _psnr(x, ref):
    return float(10 * np.log10(1.0 / np.mean((np.clip(x, 0, 1) - ref) ** 2)))


def test_eval_reports_oracle_and_input_on_the_same_frames(samples_dataset, run):
    base = ["eval", "--data", str(samples_dataset), "--checkpoint", str(run / "best.pt"),
            "--json", "--device", "cpu"]
    res = CliRunner().invoke(trainer, base)
    assert res.exit_code == 0, res.output
    m = json.loads(res.output)
    ds = open_dataset(samples_dataset)
    sp = ds["test"]
    psf = ds.attrs.get("psf") or "gaussian"
    inp, orc = [], []
    for i in range(len(sp)):
        s = sp.read(i, names=("defocused", "aif", "sigma"))
        aif = s["aif"].astype(np.float64) / 255
        blurred = s["defocused"].astype(np.float32) / 255
        inp.append(_psnr(blurred, aif))
        orc.append(_psnr(deconvolve(blurred, s["sigma"], psf=psf), aif))
    assert m["n_images"] == len(sp) and m["oracle_psf"] == psf
    assert m["input_psnr"] == pytest.approx(np.mean(inp), abs=1e-4)
    assert m["oracle_psnr"] == pytest.approx(np.mean(orc), abs=1e-3)
    assert m["oracle_psnr"] > m["input_psnr"] + 0.3  # measured +0.7 dB (SSIM: -0.003)
    assert 0.0 < m["oracle_ssim"] <= 1.0 and 0.0 < m["input_ssim"] <= 1.0
    assert "psnr" in m  # the AiF head's, beside them
    off = CliRunner().invoke(trainer, [*base, "--no-oracle"])
    assert off.exit_code == 0 and "oracle_psnr" not in json.loads(off.output)

