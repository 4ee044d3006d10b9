"""The options a CUDA run uses (bf16 autocast, channels_last, torch.compile), run on the CPU.

Each test runs one optimiser step of ``fit`` (tiny DenseNet, 64 x 64, batch 2, SGD) with one
option and compares it with the float32 reference from the same initialisation and batch:
the step's loss (relative difference) and the parameter update ``w1 - w0`` (relative L2
error over all parameters). Tolerances, against what was measured on this machine:

=================  ===============  =====================  =============================
option             loss rel. diff.  update rel. L2 error   measured (loss / update)
=================  ===============  =====================  =============================
amp (bf16)         2e-2             0.25                   3e-4 / 0.08
channels_last      1e-5             1e-3                   2e-7 / 3e-5
compile            1e-4             1e-3                   1e-7 / 2e-5
=================  ===============  =====================  =============================

bf16 keeps 8 mantissa bits, so the loss (computed in float32 from bf16 activations) moves
little while the gradients, a product through every layer, move by several percent.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from _helpers import TINY, tiny_split

from defocuskit.store import write_arrays
from trainer.checkpoint import load_checkpoint
from trainer.config import TrainConfig
from trainer.evaluate import autocast_for
from trainer.fit import fit, seed_everything
from trainer.model import ModelConfig, TwoHeadedNet

SEED = 3


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """One batch: 2 training samples of 64 x 64 (crop = frame, no flip)."""
    path = tmp_path_factory.mktemp("cpu_paths") / "one_batch.zarr"
    write_arrays(path, {"train": tiny_split(np.random.default_rng(0), 2)})
    return path


def one_step(data, run_dir, heads=("depth", "aif"), **options):
    """(loss of the step, parameters after it) of a one-step ``fit`` on the CPU."""
    cfg = TrainConfig(epochs=1, max_steps=1, batch_size=2, crop=64, hflip=False, lr=0.01,
                      val_split=None, plots=False, num_workers=0, progress=False,
                      device="cpu", seed=SEED, heads=heads, model=dict(TINY), **options)
    summary = fit(data, run_dir, cfg, log=lambda _msg: None)
    return summary["last"]["train_total"], load_checkpoint(run_dir / "last.pt")["model"]


def initial_parameters(heads) -> dict[str, torch.Tensor]:
    seed_everything(SEED)  # what fit does before building the model
    net = TwoHeadedNet(ModelConfig(heads=heads, **TINY))
    return {k: v.detach().clone() for k, v in net.named_parameters()}


def _reference(data, tmp_path_factory, heads):
    run = tmp_path_factory.mktemp("reference") / "run"
    return one_step(data, run, heads, amp=False, channels_last=False, compile=False)


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """The float32, contiguous, eager step with both heads."""
    return _reference(data, tmp_path_factory, ("depth", "aif"))


@pytest.fixture(scope="module")
def reference_depth(data, tmp_path_factory):
    """The same with the depth head only."""
    return _reference(data, tmp_path_factory, ("depth",))


def compare(got, ref, heads=("depth", "aif")) -> tuple[float, float]:
    """(loss relative difference, parameter-update relative L2 error)."""
    w0 = initial_parameters(heads)
    d_got = torch.cat([(got[1][k] - w0[k]).flatten() for k in w0])
    d_ref = torch.cat([(ref[1][k] - w0[k]).flatten() for k in w0])
    assert d_ref.norm() > 0  # the step did move the weights
    loss_rel = abs(got[0] - ref[0]) / abs(ref[0])
    return loss_rel, float((d_got - d_ref).norm() / d_ref.norm())


def test_autocast_for_is_bf16_on_the_cpu_when_asked():
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.rand(1, 3, 8, 8)
    with autocast_for(torch.device("cpu"), True):
        assert conv(x).dtype == torch.bfloat16
    with autocast_for(torch.device("cpu"), False):
        assert conv(x).dtype == torch.float32


def test_defaults_keep_the_cpu_in_float32(data, tmp_path, reference):
    # amp = channels_last = None: the CUDA speed settings, off on the CPU
    cfg = TrainConfig()
    assert cfg.amp is None and cfg.channels_last is None and cfg.compile is False
    loss, params = one_step(data, tmp_path / "run")
    ref_loss, ref_params = reference
    assert loss == ref_loss
    assert all(torch.equal(v, ref_params[k]) for k, v in params.items())


def test_amp_bf16_step_on_the_cpu(data, tmp_path, reference):
    got = one_step(data, tmp_path / "run", amp=True)
    loss_rel, update_err = compare(got, reference)
    assert got[0] != reference[0]  # bf16 did run
    assert loss_rel < 2e-2 and update_err < 0.25, (loss_rel, update_err)


def test_channels_last_step_on_the_cpu(data, tmp_path, reference):
    got = one_step(data, tmp_path / "run", channels_last=True)
    # the weights were NHWC during the step (torch.save keeps strides)
    stem = got[1]["encoder.stem.0.weight"]
    assert stem.is_contiguous(memory_format=torch.channels_last) and not stem.is_contiguous()
    loss_rel, update_err = compare(got, reference)
    assert loss_rel < 1e-5 and update_err < 1e-3, (loss_rel, update_err)


def test_amp_and_channels_last_together(data, tmp_path, reference):
    got = one_step(data, tmp_path / "run", amp=True, channels_last=True)
    loss_rel, update_err = compare(got, reference)
    assert loss_rel < 2e-2 and update_err < 0.25, (loss_rel, update_err)


_CXX = next((c for c in ("c++", "g++", "clang++") if shutil.which(c)), None)


@pytest.mark.slow  # inductor compiles C++ (forward, backward): 50-150 s cold, ~10 s cached
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")  # inside torch
@pytest.mark.skipif(_CXX is None, reason="torch.compile on the CPU (inductor) needs a C++ "
                                         "compiler (c++, g++ or clang++); none on PATH")
def test_compile_step_on_the_cpu(data, tmp_path, reference_depth, monkeypatch):
    heads = ("depth",)  # one head: the same code, half the graph to compile
    compiled = []
    real_compile = torch.compile

    def spy(model, *args, **kwargs):
        compiled.append(model)
        return real_compile(model, *args, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    try:
        got = one_step(data, tmp_path / "run", heads, compile=True)
    finally:
        torch._dynamo.reset()  # leave no compiled graphs to later tests
    assert len(compiled) == 1
    loss_rel, update_err = compare(got, reference_depth, heads)
    assert loss_rel < 1e-4 and update_err < 1e-3, (loss_rel, update_err)
