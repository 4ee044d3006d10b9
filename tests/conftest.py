"""Shared fixtures: the bundled samples, a small dataset synthesised from them, one thread.

On a toolkit-only install (``pip install -e ".[dev]"``, no torch) a test module that needs
torch is reported as skipped, with the reason, instead of failing to collect.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
HAS_TORCH = importlib.util.find_spec("torch") is not None
NEEDS_TORCH = ("needs torch, which a toolkit-only install lacks (the trainer's extra: "
               "pip install -e \".[train]\")")


def pytest_collection_modifyitems(config, items):
    """Without torch, tests marked ``torch`` are skipped with the reason."""
    if HAS_TORCH:
        return
    skip = pytest.mark.skip(reason=NEEDS_TORCH)
    for item in items:
        if item.get_closest_marker("torch"):
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """Without torch, a test module whose import fails for want of torch is skipped."""
    outcome = yield
    report = outcome.get_result()
    if HAS_TORCH or not report.failed or not isinstance(collector, pytest.Module):
        return
    if "No module named 'torch" in str(report.longrepr):  # torch or torchvision
        report.outcome = "skipped"
        report.longrepr = (str(collector.path), 0, f"Skipped: {NEEDS_TORCH}")


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
                      focus="histogram", render_mode="gather", seed=0, shard_size=4)
    run_synth(cfg, progress=False)
    return out


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a whole module (``pytestmark = usefixtures("one_thread")``).

    On a shared 2-core machine, 2 OpenMP threads of a tiny model spin-wait for seconds.
    Module scope, so that module-scoped fixtures that train run with the same thread count
    as the tests that compare against them. Without torch (a toolkit-only install) nothing
    to set.
    """
    if not HAS_TORCH:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
