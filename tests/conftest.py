"""Shared fixtures: the bundled samples and a small dataset synthesised from them."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def samples_dataset(tmp_path_factory) -> Path:
    """A complete dataset made from the bundled samples: train (6) and test (2), 256x320."""
    from defocuskit.config import SynthConfig
    from defocuskit.synth import run_synth

    out = tmp_path_factory.mktemp("data") / "samples.zarr"
    cfg = SynthConfig(source="samples", input=str(SAMPLES), output=str(out), camera="2hded",
                      focus="histogram", mode="gather", seed=0, shard_size=4)
    run_synth(cfg, progress=False)
    return out
