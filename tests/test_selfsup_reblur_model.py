"""The self-supervised run warns (one line) when its training input was rendered otherwise
than the loss re-blurs (gather, Gaussian PSF, sRGB values)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _helpers import TINY, tiny_split

from defocuskit.store import write_arrays
from trainer.config import TrainConfig
from trainer.datasets import build_datasets
from trainer.selfsup import reblur_mismatch


def _dataset(path, attrs):
    arrays = tiny_split(np.random.default_rng(0), 2)
    arrays["sigma"] = np.ones_like(arrays["depth"])
    write_arrays(path, {"train": arrays}, attrs=attrs)
    return path


def _cfg(method="self-supervised"):
    return TrainConfig(method=method, heads=("defocus",), crop=32, sigma_max=8.0, val_split=None,
                       num_workers=0, plots=False, progress=False, model=dict(TINY))


@pytest.mark.parametrize("attrs, expect", [
    ({"engine_mode": "layered", "psf": "gaussian"}, "render mode 'layered'"),
    ({"engine_mode": "gather", "psf": "disc"}, "PSF 'disc'"),
    ({"engine_mode": "gather", "psf": "gaussian", "config": {"linear_light": True}},
     "linear light"),
])
def test_warns_on_another_render_model(tmp_path, attrs, expect):
    data = _dataset(tmp_path / "d.zarr", attrs)
    with pytest.warns(UserWarning, match="self-supervised") as rec:
        build_datasets(data, _cfg())
    msgs = [str(w.message) for w in rec if "self-supervised" in str(w.message)]
    assert len(msgs) == 1 and expect in msgs[0] and "\n" not in msgs[0]


@pytest.mark.parametrize("attrs, method", [
    ({"engine_mode": "gather", "psf": "gaussian"}, "self-supervised"),
    ({}, "self-supervised"),  # no render mode recorded: nothing to compare
    ({"engine_mode": "layered", "psf": "gaussian"}, "supervised"),
])
def test_no_warning_when_the_model_matches_or_is_unknown(tmp_path, attrs, method):
    data = _dataset(tmp_path / "d.zarr", attrs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_datasets(data, _cfg(method))


def test_reblur_mismatch_names_every_difference():
    assert reblur_mismatch("gather", "gaussian") is None
    assert reblur_mismatch("gather", None) is None
    msg = reblur_mismatch("scatter", "polygon:6", True)
    assert all(s in msg for s in ("'scatter'", "'polygon:6'", "linear light"))
