"""Library code leaves the process as it found it: no pyplot backend, no warnings filters,
no Numba vectoriser settings changed (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import sys, tempfile, warnings
import numba.core.config as nb
# third-party packages add their own filters at import: load them before the snapshot
import cv2, matplotlib, numcodecs, numpy, scipy.ndimage, torch, zarr, zarr.codecs  # noqa
filters = list(warnings.filters)
simd = (nb.SLP_VECTORIZE, nb.LOOP_VECTORIZE)
import numpy as np
import defocuskit, defocuskit.store, defocuskit.preview, defocuskit.verify
import trainer.fit, trainer.plots, trainer.predict, trainer.evaluate
from defocuskit import render
img = np.random.default_rng(0).uniform(0, 1, (24, 32, 3)).astype(np.float32)
sig = np.full((24, 32), 1.5, np.float32)
for mode in ("gather", "scatter"):
    render(img, sig, mode=mode)
out = tempfile.mkdtemp()
trainer.plots.plot_loss_curves([{"epoch": 1, "train_total": 1.0}], out + "/a.png")
trainer.plots.colormap_with_scale_bar(np.ones((8, 8)), label="depth [m]")
defocuskit.preview.preview_dataset(sys.argv[1], out + "/p.png", split="train", n=1)
assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
assert warnings.filters == filters, "warnings filters changed"
assert (nb.SLP_VECTORIZE, nb.LOOP_VECTORIZE) == simd, "numba vectoriser settings changed"
print("clean")
"""


@pytest.mark.slow
def test_library_changes_no_global_state():
    golden = REPO / "tests" / "data" / "golden_v2.zarr"
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(golden)], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.strip() == "clean", res.stderr[-2000:]
