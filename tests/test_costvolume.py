"""The cost-volume sigma estimate and the self-supervised loss's anchor term.

Expectations come from defocuskit's exact gather (the Numba engine, not the torch level
blur the estimate uses), closed-form cases (a flat image carries no blur information) and a
plain re-computation of the anchor term."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from defocuskit.blur import render  # noqa: E402
from defocuskit.errors import ConfigError  # noqa: E402
from trainer.config import TrainConfig  # noqa: E402
from trainer.costvolume import cost_volume_sigma  # noqa: E402
from trainer.selfsup import SelfSupervisedConfig, SelfSupervisedLoss  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _t(hwc: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(hwc, np.float32)).permute(2, 0, 1)[None]


def _texture(h=96, w=96, seed=0):
    """Random blocks of 3 x 3 pixels: texture at every scale the estimate needs."""
    rng = np.random.default_rng(seed)
    blocks = rng.random((-(-h // 3), -(-w // 3), 3))
    return np.kron(blocks, np.ones((3, 3, 1)))[:h, :w].astype(np.float32)


def test_two_sigma_halves_from_the_exact_gather_are_recovered():
    aif = _texture()
    sigma = np.where(np.arange(96)[None, :] < 48, 1.5, 4.0).astype(np.float32)
    sigma = np.broadcast_to(sigma, (96, 96)).copy()
    blurred = render(aif, sigma, mode="gather", threads=1)
    blurred = np.round(blurred * 255) / 255  # 8-bit, as stored
    est, conf = cost_volume_sigma(_t(aif), _t(blurred), sigma_max=6.0, window=7)
    est = est[0, 0].numpy()
    rows = slice(20, 76)  # away from the reflected frame border
    assert abs(np.median(est[rows, 10:30]) - 1.5) < 0.15
    assert abs(np.median(est[rows, 66:86]) - 4.0) < 0.2
    assert np.mean(np.abs(est[rows, 10:30] - 1.5)) < 0.25
    assert np.mean(np.abs(est[rows, 66:86] - 4.0)) < 0.35
    assert float(conf[0, 0, rows, 10:86].min()) > 0.5


def test_the_aggregated_estimate_beats_the_per_pixel_argmin():
    """Per-pixel costs (window 1) have spurious minima; aggregation removes most of them."""
    aif = _texture(seed=1)
    yy, xx = np.mgrid[0:96, 0:96]
    sigma = (0.5 + 5.0 * (xx + yy) / 190.0).astype(np.float32)  # a smooth ramp 0.5..5.5
    blurred = np.round(render(aif, sigma, mode="gather", threads=1) * 255) / 255
    inner = (slice(16, 80), slice(16, 80))
    err = {w: np.abs(cost_volume_sigma(_t(aif), _t(blurred), sigma_max=6.0,
                                       window=w)[0][0, 0].numpy() - sigma)[inner].mean()
           for w in (1, 7)}
    assert err[7] < 0.35
    assert err[7] < 0.7 * err[1]


def test_a_flat_image_has_no_confidence():
    flat = np.full((48, 48, 3), 0.4, np.float32)
    _, conf = cost_volume_sigma(_t(flat), _t(flat), sigma_max=4.0)
    assert float(conf.max()) < 1e-3


def test_bad_arguments_are_refused():
    x = torch.zeros(1, 3, 32, 32)
    with pytest.raises(ConfigError, match="window must be odd"):
        cost_volume_sigma(x, x, sigma_max=2.0, window=4)
    with pytest.raises(ConfigError, match="shape"):
        cost_volume_sigma(x, x[..., :16], sigma_max=2.0)
    with pytest.raises(ConfigError, match="sigma_max and step"):
        cost_volume_sigma(x, x, sigma_max=0.0)


def test_the_anchor_term_is_the_confidence_weighted_l1_to_the_estimate():
    aif = _texture(64, 64)
    true = np.full((64, 64), 2.0, np.float32)
    blurred = render(aif, true, mode="gather", threads=1)
    a, b = _t(aif), _t(blurred)
    sigma = torch.full((1, 1, 64, 64), 1.0, requires_grad=True)
    cfg = SelfSupervisedConfig(sigma_max=4.0, anchor_weight=3.0, anchor_window=5)
    total, terms = SelfSupervisedLoss(cfg)({"defocus": sigma}, {"aif": a, "defocused": b})
    base, base_terms = SelfSupervisedLoss(SelfSupervisedConfig(sigma_max=4.0))(
        {"defocus": sigma}, {"aif": a, "defocused": b})
    est, conf = cost_volume_sigma(a, b, sigma_max=4.0, window=5)
    e, c = est.numpy(), conf.numpy()
    expected = float((c * np.abs(1.0 - e)).sum() / c.sum())
    assert float(terms["anchor"]) == pytest.approx(expected, rel=1e-5)
    assert float(total.detach()) == pytest.approx(float(base.detach()) + 3.0 * expected, rel=1e-5)
    assert "anchor" not in base_terms
    total.backward()  # the anchor pulls sigma up, towards the estimate (about 2 px)
    assert float(sigma.grad.sum()) < 0
    assert abs(float(np.median(e)) - 2.0) < 0.1


def test_config_checks_the_anchor():
    with pytest.raises(ConfigError, match="odd"):
        TrainConfig(method="self-supervised", heads=("defocus",), sigma_max=8.0,
                    selfsup_anchor_window=6)
    with pytest.raises(ConfigError, match="self-supervised"):
        TrainConfig(selfsup_anchor=1.0)
    with pytest.raises(ConfigError, match="selfsup_anchor"):
        TrainConfig(method="self-supervised", heads=("defocus",), selfsup_anchor=-1.0)


def test_fit_option_reaches_the_run_config(tmp_path):
    from _helpers import TINY, tiny_split

    from cli.trainer_cmd import trainer
    from defocuskit.store import write_arrays

    rng = np.random.default_rng(0)
    write_arrays(tmp_path / "d.zarr", {"train": tiny_split(rng, 4)})
    cfg = tmp_path / "c.toml"
    cfg.write_text("num_workers = 0\nplots = false\nsigma_max = 8.0\n[model]\n"
                   + "".join(f"{k} = {json.dumps(v)}\n" for k, v in TINY.items()))
    res = CliRunner().invoke(trainer, [
        "fit", "--data", str(tmp_path / "d.zarr"), "--run-dir", str(tmp_path / "run"),
        "--config", str(cfg), "--method", "self-supervised", "--selfsup-anchor", "2",
        "--epochs", "1", "--max-steps", "1", "--batch-size", "2", "--crop", "32",
        "--device", "cpu", "--val-split", "none"])
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["selfsup_anchor"] == 2.0 and saved["selfsup_anchor_window"] == 7
    log = (tmp_path / "run" / "log.csv").read_text()
    assert "anchor" in log.splitlines()[0]
