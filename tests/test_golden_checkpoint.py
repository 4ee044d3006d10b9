"""The committed format-2 checkpoint loads, rebuilds and computes what it computed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.checkpoint import FORMAT_VERSION, build_model, load_checkpoint

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
from make_golden_checkpoint import TINY, fixed_input  # noqa: E402

GOLDEN = DATA / "golden_ckpt_v2"


@pytest.fixture(scope="module")
def ckpt():
    return load_checkpoint(GOLDEN / "last.pt")


def test_golden_checkpoint_fields(ckpt):
    assert ckpt["format_version"] == FORMAT_VERSION == 2
    assert (ckpt["epoch"], ckpt["step"]) == (0, 1)  # stopped by max_steps inside epoch 1
    assert ckpt["model_config"]["heads"] == ["depth", "aif", "defocus"]
    assert {k: ckpt["model_config"][k] for k in TINY} == TINY
    tc = ckpt["train_config"]
    assert (tc["seed"], tc["max_steps"], tc["crop"], tc["method"]) == (5, 1, 32, "supervised")
    assert {"optimizer", "scheduler", "rng", "history", "best", "monitor"} <= set(ckpt)
    assert len(ckpt["history"]) == 1 and np.isfinite(ckpt["history"][0]["train_total"])
    assert set(ckpt["rng"]) >= {"python", "numpy", "torch"}


def test_golden_checkpoint_computes_the_same_outputs(ckpt):
    torch.set_num_threads(1)
    model = build_model(ckpt).eval()
    expected = np.load(GOLDEN / "expected.npz")
    with torch.no_grad():
        out = model(torch.from_numpy(fixed_input()))
    assert sorted(out) == sorted(expected.files) == ["aif", "defocus", "depth"]
    for k in expected.files:
        np.testing.assert_allclose(out[k].numpy(), expected[k], rtol=1e-4, atol=1e-5,
                                   err_msg=k)
