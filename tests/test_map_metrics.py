"""The defocus-map scores (MDDNet's depth-style ones, the thesis's MAE, a normalised MAE)
and the iBims-1 depth-boundary errors, on closed-form cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from trainer.edges import MAX_DIST, depth_edge_metrics, depth_edges  # noqa: E402
from trainer.metrics import (  # noqa: E402
    DEFOCUS_KEYS,
    MIN_SIGMA,
    MetricAccumulator,
    defocus_metrics,
)

H, W = 48, 64


def _sigma_map():
    rng = np.random.default_rng(3)
    g = rng.uniform(0.5, 6.0, (H, W))
    g[:4, :4] = np.nan  # no depth there: not scored
    return g


def test_sigma_scaled_by_one_point_one_gives_known_scores():
    g = _sigma_map()
    m = defocus_metrics(1.1 * g, g)
    ok = np.isfinite(g)
    # every ratio is exactly 1.1: below 1.15 and 1.25^k, not below 1.05
    assert m["defocus_delta105"] == 0.0
    assert m["defocus_delta115"] == m["defocus_delta1"] == m["defocus_delta3"] == 1.0
    assert m["defocus_abs_rel"] == pytest.approx(0.1, rel=1e-12)
    assert m["defocus_rmse"] == pytest.approx(0.1 * math.sqrt(np.mean(g[ok] ** 2)), rel=1e-12)
    assert m["defocus_mae"] == pytest.approx(0.1 * np.mean(g[ok]), rel=1e-12)
    assert m["defocus_mse"] == pytest.approx(0.01 * np.mean(g[ok] ** 2), rel=1e-12)
    # normalised MAE: the MAE over the largest stored sigma of the image
    assert m["defocus_nmae"] == pytest.approx(0.1 * np.mean(g[ok]) / g[ok].max(), rel=1e-12)
    assert m["n_pixels"] == H * W - 16


def test_in_focus_pixels_are_left_out_of_the_ratio_scores_only():
    g = np.array([[0.0, 0.05, 2.0, 4.0]])  # two pixels at or below MIN_SIGMA
    p = np.array([[1.0, 0.0, 2.2, 2.0]])
    m = defocus_metrics(p, g)
    assert MIN_SIGMA == 0.1
    assert m["defocus_abs_rel"] == pytest.approx((0.1 + 0.5) / 2)
    # ratios 1.1 and 2.0: the second is above even 1.25^3 = 1.95
    assert m["defocus_delta115"] == 0.5 and m["defocus_delta3"] == 0.5
    assert m["defocus_mae"] == pytest.approx((1.0 + 0.05 + 0.2 + 2.0) / 4)
    flat = defocus_metrics(np.ones((2, 2)), np.zeros((2, 2)))  # all in focus
    assert math.isnan(flat["defocus_abs_rel"]) and math.isnan(flat["defocus_nmae"])
    assert flat["defocus_mae"] == 1.0
    assert set(DEFOCUS_KEYS) <= set(flat)


def _step(column, near=2.0, far=5.0):
    d = np.full((H, W), near)
    d[:, column:] = far
    return d


@pytest.mark.parametrize("shift", [0, 1, 3, 7])
def test_shifted_step_edge_gives_the_shift_both_ways(shift):
    m = depth_edge_metrics(_step(30 + shift), _step(30))
    assert m == {"edge_acc": float(shift), "edge_comp": float(shift)}
    # the edge itself: one full column at the step, whatever the depth values
    assert np.array_equal(np.nonzero(depth_edges(_step(30, 0.7, 9.0)))[1], np.full(H, 29))


def test_edges_far_or_missing_give_the_truncation_distance():
    assert depth_edge_metrics(_step(30 + 12), _step(30)) == dict.fromkeys(
        ("edge_acc", "edge_comp"), MAX_DIST)
    assert depth_edge_metrics(np.full((H, W), 3.0), _step(30))["edge_comp"] == MAX_DIST
    flat = depth_edge_metrics(_step(30), np.full((H, W), 3.0))  # no true edge: not scored
    assert math.isnan(flat["edge_acc"]) and math.isnan(flat["edge_comp"])


def test_edge_distances_match_a_brute_force_nearest_edge_search():
    yy, xx = np.mgrid[:H, :W]
    gt = np.where((yy - 24) ** 2 + (xx - 30) ** 2 < 14**2, 1.5, 4.0)  # a disc in front
    pred = np.where((yy - 26) ** 2 + (xx - 33) ** 2 < 11**2, 1.6, 3.8)
    gt[40:, :8] = np.nan  # a hole in the true depth: no edge there
    e_true, e_pred = depth_edges(gt), depth_edges(pred, np.isfinite(gt))
    assert not e_true[40:, :8].any()
    pt, pp = np.argwhere(e_true), np.argwhere(e_pred)
    dist = np.sqrt(((pp[:, None, :] - pt[None, :, :]) ** 2).sum(-1))  # pred x true
    to_true, to_pred = dist.min(1), dist.min(0)
    near = to_true < MAX_DIST
    m = depth_edge_metrics(pred, gt)
    assert m["edge_acc"] == pytest.approx(to_true[near].mean(), rel=1e-12)
    assert m["edge_comp"] == pytest.approx(to_pred.mean(), rel=1e-12)
    assert 1.0 < m["edge_comp"] < MAX_DIST


def test_accumulator_reports_the_new_keys_per_head():
    acc = MetricAccumulator()
    depth = torch.from_numpy(_step(30)).float()[None, None]
    sigma = torch.from_numpy(np.nan_to_num(_sigma_map(), nan=1.0)).float()[None, None]
    acc.update({"depth": depth.roll(2, dims=-1), "defocus": 1.1 * sigma},
               {"depth": depth, "sigma": sigma})
    out = acc.compute()
    assert out["edge_acc"] == out["edge_comp"] == pytest.approx(2.0)
    assert out["defocus_delta105"] == 0.0 and out["defocus_abs_rel"] == pytest.approx(0.1)
    no_edges = MetricAccumulator(edges=False)
    no_edges.update({"depth": depth}, {"depth": depth})
    assert "edge_acc" not in no_edges.compute()
