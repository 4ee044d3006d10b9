"""Tests of trainer.metrics against plain numpy, closed forms and scikit-image."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
skimage_metrics = pytest.importorskip("skimage.metrics")
from skimage import data  # noqa: E402

from trainer.metrics import (  # noqa: E402
    BENCHMARK_MAX_DEPTH,
    DEPTH_KEYS,
    MAKE3D_RANGES,
    MetricAccumulator,
    benchmark_max_depth,
    depth_metrics,
    image_metrics,
)


def _reference_depth_metrics(pred, gt, lo=1e-3, hi=math.inf, clip=True):
    """Pixel-by-pixel loop over valid ground truth (finite, lo < gt <= hi).

    Predictions are floored at ``lo`` and, with ``clip``, capped at ``hi``.
    """
    sq = ab = sqr = lg = ln2 = 0.0
    thresholds = (1.05, 1.15, 1.25, 1.25**2, 1.25**3)
    hits = [0] * len(thresholds)
    n = 0
    for p, g in zip(np.ravel(pred), np.ravel(gt), strict=True):
        if not (np.isfinite(g) and lo < g <= hi):
            continue
        p = max(p, lo)
        if clip:
            p = min(p, hi)
        n += 1
        sq += (p - g) ** 2
        ab += abs(p - g) / g
        sqr += (p - g) ** 2 / g
        lg += abs(math.log10(p) - math.log10(g))
        ln2 += (math.log(p) - math.log(g)) ** 2
        r = max(p / g, g / p)
        for k, t in enumerate(thresholds):
            hits[k] += r < t
    out = {
        "rmse": math.sqrt(sq / n),
        "abs_rel": ab / n,
        "sq_rel": sqr / n,
        "rmse_log": math.sqrt(ln2 / n),
        "log10": lg / n,
        "n_pixels": n,
    }
    keys = ("delta105", "delta115", "delta1", "delta2", "delta3")
    return out | {k: h / n for k, h in zip(keys, hits, strict=True)}


def _depth_case(seed=0, shape=(2, 1, 20, 24), top=10.0):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0.5, top, shape)
    gt[..., :3, :4] = np.nan
    gt[..., 5, :] = 0.0
    gt[..., 6, :2] = np.inf
    pred = gt * rng.uniform(0.6, 1.6, shape)
    pred = np.where(np.isfinite(pred), pred, 3.0)
    pred[..., 7, :3] = -1.0  # negative predictions are clipped to min_depth
    return pred, gt


@pytest.mark.parametrize("max_depth, clip", [(None, True), (6.0, True), (6.0, False)])
def test_depth_metrics_match_reference_numpy_and_torch(max_depth, clip):
    pred, gt = _depth_case()
    ref = _reference_depth_metrics(pred, gt, hi=max_depth or math.inf, clip=clip)
    for p, g in [(pred, gt), (torch.from_numpy(pred).float(), torch.from_numpy(gt).float())]:
        got = depth_metrics(p, g, max_depth=max_depth, clip=clip)
        assert set(got) == {*DEPTH_KEYS, "n_pixels"}
        assert got["n_pixels"] == ref["n_pixels"]
        for k in DEPTH_KEYS:
            assert got[k] == pytest.approx(ref[k], rel=1e-5), k
    assert 0 < ref["delta105"] < ref["delta115"] < ref["delta1"] < ref["delta2"] < ref["delta3"]
    assert ref["delta3"] <= 1


def test_depth_metrics_closed_forms():
    gt = np.linspace(1.0, 5.0, 100)
    m = depth_metrics(1.2 * gt, gt)
    assert m["abs_rel"] == pytest.approx(0.2)
    assert m["log10"] == pytest.approx(math.log10(1.2))
    assert m["rmse"] == pytest.approx(0.2 * math.sqrt(np.mean(gt**2)))
    assert (m["delta1"], m["delta2"], m["delta3"]) == (1.0, 1.0, 1.0)
    m = depth_metrics(gt / 1.3, gt)  # ratio 1.3: fails 1.25, passes 1.5625
    assert (m["delta1"], m["delta2"], m["delta3"]) == (0.0, 1.0, 1.0)
    m = depth_metrics(gt * 1.6, gt)  # ratio 1.6: only passes 1.953
    assert (m["delta1"], m["delta2"], m["delta3"]) == (0.0, 0.0, 1.0)
    empty = depth_metrics(gt, np.full_like(gt, np.nan))
    assert empty["n_pixels"] == 0 and math.isnan(empty["rmse"])
    assert all(math.isnan(empty[k]) for k in DEPTH_KEYS)


def test_depth_metrics_ten_percent_too_far():
    """pred = 1.1 gt: every error is a closed form of gt, every ratio is 1.1."""
    gt = np.linspace(0.5, 9.0, 200)
    m = depth_metrics(1.1 * gt, gt, max_depth=10.0)
    assert m["rmse"] == pytest.approx(0.1 * math.sqrt(np.mean(gt**2)), rel=1e-12)
    assert m["abs_rel"] == pytest.approx(0.1, rel=1e-12)
    assert m["sq_rel"] == pytest.approx(0.01 * np.mean(gt), rel=1e-12)  # (0.1 g)^2 / g
    assert m["rmse_log"] == pytest.approx(math.log(1.1), rel=1e-12)
    assert m["log10"] == pytest.approx(math.log10(1.1), rel=1e-12)
    # 1.1 fails 1.05 and passes every other threshold
    assert [m[k] for k in ("delta105", "delta115", "delta1", "delta2", "delta3")] == [
        0.0, 1.0, 1.0, 1.0, 1.0]
    m = depth_metrics(gt / 1.1, gt)  # the same ratio from the other side
    assert m["rmse_log"] == pytest.approx(math.log(1.1), rel=1e-12)
    assert (m["delta105"], m["delta115"]) == (0.0, 1.0)


def test_predictions_are_clipped_to_the_evaluated_range():
    gt = np.full((8, 8), 8.0)
    pred = np.full((8, 8), 20.0)  # beyond the 10 m range
    clipped = depth_metrics(pred, gt, max_depth=10.0)
    assert clipped["rmse"] == pytest.approx(2.0)  # scored as 10 m
    assert clipped["abs_rel"] == pytest.approx(0.25)
    assert clipped["sq_rel"] == pytest.approx(0.5)
    assert clipped["rmse_log"] == pytest.approx(math.log(10 / 8))
    raw = depth_metrics(pred, gt, max_depth=10.0, clip=False)
    assert raw["rmse"] == pytest.approx(12.0) and raw["abs_rel"] == pytest.approx(1.5)
    assert depth_metrics(pred, gt)["rmse"] == pytest.approx(12.0)  # no range: nothing to clip
    # the floor at min_depth holds in both modes (ratios and logs need p > 0)
    low = np.full((8, 8), -3.0)
    for clip in (True, False):
        m = depth_metrics(low, gt, max_depth=10.0, clip=clip)
        assert m["abs_rel"] == pytest.approx((8.0 - 1e-3) / 8.0)


def test_benchmark_ranges_by_source():
    assert BENCHMARK_MAX_DEPTH == {"nyu": 10.0, "make3d": 80.0}
    assert benchmark_max_depth({"source": {"name": "nyu"}}) == 10.0
    assert benchmark_max_depth({"source": {"name": "make3d"}}) == MAKE3D_RANGES["c2"]
    assert benchmark_max_depth({"source": {"name": "samples"}}) is None
    assert benchmark_max_depth({}) is None


def test_make3d_ranges():
    assert MAKE3D_RANGES == {"c1": 70.0, "c2": 80.0}
    pred, gt = _depth_case(seed=1, shape=(1, 40, 50), top=100.0)
    c1 = depth_metrics(pred, gt, max_depth=MAKE3D_RANGES["c1"])
    c2 = depth_metrics(pred, gt, max_depth=MAKE3D_RANGES["c2"])
    assert c1["n_pixels"] == int(np.sum(np.isfinite(gt) & (gt > 1e-3) & (gt <= 70)))
    assert c2["n_pixels"] == int(np.sum(np.isfinite(gt) & (gt > 1e-3) & (gt <= 80)))
    assert c1["n_pixels"] < c2["n_pixels"]
    for got, hi in ((c1, 70.0), (c2, 80.0)):
        ref = _reference_depth_metrics(pred, gt, hi=hi)
        assert got["rmse"] == pytest.approx(ref["rmse"], rel=1e-9)
        assert got["abs_rel"] == pytest.approx(ref["abs_rel"], rel=1e-9)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shapes differ"):
        depth_metrics(np.ones((4, 4)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="shapes differ"):
        image_metrics(np.ones((3, 16, 16)), np.ones((3, 16, 17)))


def test_psnr_closed_form_and_clipping():
    gt = np.full((3, 16, 16), 0.5)
    gt[:, ::2] = 0.2
    assert image_metrics(gt + 0.1, gt)["psnr"] == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    assert image_metrics(gt + 0.01, gt)["psnr"] == pytest.approx(40.0)
    # pred is clipped to [0, 1]: an overshoot of 0.7 over gt = 0.5 counts as 0.5
    m = image_metrics(np.full((1, 16, 16), 1.2), np.full((1, 16, 16), 0.5))
    assert m["psnr"] == pytest.approx(10 * math.log10(1 / 0.25))
    assert image_metrics(gt, gt)["psnr"] == math.inf


def test_image_ssim_matches_skimage():
    rng = np.random.default_rng(0)
    sharp = data.astronaut()[:48, :64].astype(np.float64) / 255
    noisy = np.clip(sharp + rng.normal(0, 0.05, sharp.shape), 0, 1)
    ref = skimage_metrics.structural_similarity(
        sharp,
        noisy,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=-1,
    )
    got = image_metrics(torch.from_numpy(noisy.transpose(2, 0, 1)), sharp.transpose(2, 0, 1))
    assert got["ssim"] == pytest.approx(ref, abs=1e-9)
    assert got["psnr"] == pytest.approx(
        skimage_metrics.peak_signal_noise_ratio(sharp, noisy, data_range=1.0), rel=1e-9
    )


def test_accumulator_averages_per_image():
    rng = np.random.default_rng(3)
    pred_d, gt_d = _depth_case(seed=3, shape=(3, 1, 32, 32))
    gt_d[2] = np.nan  # an image without valid depth: left out of the depth means
    gt_a = rng.random((3, 3, 32, 32))
    pred_a = np.clip(gt_a + rng.normal(0, 0.05, gt_a.shape), 0, 1)
    acc = MetricAccumulator()
    for sl in (slice(0, 2), slice(2, 3)):  # two batches
        acc.update(
            {"depth": torch.from_numpy(pred_d[sl]), "aif": torch.from_numpy(pred_a[sl])},
            {"depth": torch.from_numpy(gt_d[sl]), "aif": torch.from_numpy(gt_a[sl])},
        )
    out = acc.compute()
    assert out["n_images"] == 3
    per = [_reference_depth_metrics(pred_d[i], gt_d[i]) for i in range(2)]
    for k in ("rmse", "abs_rel", "log10", "delta1"):
        assert out[k] == pytest.approx(np.mean([p[k] for p in per]), rel=1e-9)
    psnrs = [-10 * math.log10(np.mean((pred_a[i] - gt_a[i]) ** 2)) for i in range(3)]
    assert out["psnr"] == pytest.approx(np.mean(psnrs), rel=1e-9)
    assert 0 < out["ssim"] < 1
    acc.reset()
    assert acc.compute() == {"n_images": 0}


def test_accumulator_max_depth_and_missing_heads():
    pred, gt = _depth_case(seed=4, shape=(1, 1, 30, 30), top=100.0)
    acc = MetricAccumulator(max_depth=MAKE3D_RANGES["c1"])
    acc.update({"depth": torch.from_numpy(pred)}, {"depth": torch.from_numpy(gt)})
    out = acc.compute()
    assert "psnr" not in out
    assert out["rmse"] == pytest.approx(_reference_depth_metrics(pred, gt, hi=70.0)["rmse"])
    raw = MetricAccumulator(max_depth=MAKE3D_RANGES["c1"], clip=False)
    raw.update({"depth": torch.from_numpy(pred)}, {"depth": torch.from_numpy(gt)})
    ref = _reference_depth_metrics(pred, gt, hi=70.0, clip=False)
    assert raw.compute()["rmse"] == pytest.approx(ref["rmse"])
    assert ref["rmse"] != pytest.approx(out["rmse"])  # some predictions lie beyond 70 m
    with pytest.raises(ValueError, match="no head"):
        acc.update({"aif": torch.zeros(1, 3, 16, 16)}, {"depth": torch.from_numpy(gt)})
