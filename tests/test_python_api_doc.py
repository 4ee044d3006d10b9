"""docs/python_api.md runs as written: its Python blocks, in order, in one namespace, from
a checkout's root (a temporary copy of what they read: samples/)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "python_api.md"

pytestmark = pytest.mark.usefixtures("one_thread")
HAS_TORCH = importlib.util.find_spec("torch") is not None


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_doc_has_a_block_per_step():
    blocks = python_blocks(DOC.read_text())
    calls = ["Camera(", "get_preset(", "run_synth(", "read_all(", "DataLoader(", "render_sample("]
    assert len(blocks) == len(calls)
    for block, call in zip(blocks, calls, strict=True):
        assert call in block


def test_every_python_block_runs_and_gives_what_the_text_says(tmp_path, capsys):
    shutil.copytree(REPO / "samples", tmp_path / "samples")
    ns: dict = {}
    before = Path.cwd()
    os.chdir(tmp_path)  # the doc's relative paths, and the checks below that read them
    try:
        blocks = python_blocks(DOC.read_text())
        # a toolkit-only install (no torch) runs every block but the trainer's loader
        for block in (b for b in blocks if HAS_TORCH or "import torch" not in b):
            exec(compile(block, str(DOC), "exec"), ns)  # noqa: S102 - our own doc
        _check(ns)
    finally:
        os.chdir(before)
    assert "sigma up to" in capsys.readouterr().out


def _check(ns: dict) -> None:
    # 1: the render has the input's shape and type; sigma 0 at the focus distance
    assert ns["defocused"].shape == ns["aif"].shape and ns["defocused"].dtype == np.uint8
    assert float(ns["Camera"](focal_length=0.05, f_number=2.0, focus_distance=2.0,
                              pixel_pitch=2e-5).sigma_px(2.0)) == 0.0
    # 2: the preset's pitch is 36 mm / frame width (SYNDOF's convention)
    assert ns["camera"].pixel_pitch == pytest.approx(0.036 / 320)
    assert ns["custom"].make(image_width=10, rng=None).pixel_pitch == pytest.approx(5.6e-6)
    # 4: read_all equals the sample-by-sample checked reads
    train = ns["train"]
    np.testing.assert_array_equal(
        ns["depth_all"], np.stack([train.read_array("depth", i) for i in range(len(train))]))
    # 5: a batch of 2 crops of 128 px with the two heads' labels
    if not HAS_TORCH:
        assert any("DataLoader(" in b for b in python_blocks(DOC.read_text()))
        return
    batch = ns["batch"]
    assert tuple(batch["defocused"].shape) == (2, 3, 128, 128)
    assert tuple(batch["depth"].shape) == (2, 1, 128, 128) and "aif" in batch
