"""MDDNet's losses (eqs. 3-5), each term against a plain implementation: the
scale-invariant log error with loops over pixels, SSIM by scikit-image, the L2 consistency
with numpy and defocuskit's Camera; the total against the sum of its parts."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
skimage_metrics = pytest.importorskip("skimage.metrics")

from defocuskit.optics import Camera  # noqa: E402
from trainer.losses import LossConfig, TwoHeadedLoss, consistency_loss  # noqa: E402
from trainer.losses_mddnet import map_ssim, mddnet_map_loss, silog  # noqa: E402

CAMERAS = [dict(focal_length=0.05, f_number=1.4, focus_distance=2.5, pixel_pitch=6e-6,
                coc_to_sigma=0.25),
           dict(focal_length=0.07, f_number=2.8, focus_distance=1.2, pixel_pitch=2.5e-5,
                coc_to_sigma=0.5)]


def _camera_batch() -> dict:
    return {k: torch.tensor([c[k] for c in CAMERAS], dtype=torch.float64) for k in CAMERAS[0]}


def plain_silog(pred, target, valid, offset=0.0):
    """Eigen et al.'s D(y, y*) = 1/n sum d^2 - 1/(2 n^2) (sum d)^2 per image, by loops."""
    values = []
    for b in range(pred.shape[0]):
        ds = [np.log(target[b, 0, i, j] + offset) - np.log(pred[b, 0, i, j] + offset)
              for i in range(pred.shape[2]) for j in range(pred.shape[3]) if valid[b, 0, i, j]]
        if ds:
            n = len(ds)
            values.append(sum(d * d for d in ds) / n - sum(ds) ** 2 / (2 * n * n))
    return float(np.mean(values))


def _maps(seed=0, shape=(2, 1, 24, 28)):
    rng = np.random.default_rng(seed)
    target = rng.uniform(0.7, 9.0, shape)
    pred = target * rng.uniform(0.8, 1.3, shape)
    return pred, target


def test_silog_matches_eigens_formula_by_loops():
    pred, target = _maps()
    valid = np.ones_like(target, bool)
    valid[0, 0, :5] = False  # invalid rows leave the sums and the counts
    valid[1, 0, :, -3:] = False
    target_nan = np.where(valid, target, np.nan)
    got = silog(torch.from_numpy(pred), torch.from_numpy(target_nan), torch.from_numpy(valid))
    assert float(got) == pytest.approx(plain_silog(pred, target, valid), rel=1e-12)
    # a global factor k on the prediction shifts every d by c = -log k: with lambda = 1/2,
    # mean((d+c)^2) - (mean(d+c))^2 / 2 = D + c mean(d) + c^2 / 2 (half scale-invariant)
    scaled = silog(torch.from_numpy(pred * 3.0), torch.from_numpy(target_nan),
                   torch.from_numpy(valid))
    c = -np.log(3.0)
    mean_d = [np.mean(np.log(target[b][valid[b]]) - np.log(pred[b][valid[b]])) for b in (0, 1)]
    ref = float(got) + np.mean([c * m + c * c / 2 for m in mean_d])
    assert float(scaled) == pytest.approx(ref, rel=1e-9)
    # with the defocus map's 1 px offset, zero labels are finite
    zeros = np.zeros_like(target)
    ref = plain_silog(pred, zeros, np.ones_like(valid), offset=1.0)
    got = silog(torch.from_numpy(pred), torch.from_numpy(zeros),
                torch.from_numpy(np.ones_like(valid)), offset=1.0)
    assert float(got) == pytest.approx(ref, rel=1e-12)


def _sk_map_ssim(pred, target, valid):
    """scikit-image's SSIM map of each image over its label's maximum, averaged over the
    centres of its 11 x 11 windows that are valid pixels (the image border left out)."""
    values = []
    for b in range(pred.shape[0]):
        m = target[b, 0][valid[b, 0]].max()
        filled = np.where(valid[b, 0], target[b, 0], pred[b, 0])
        _, smap = skimage_metrics.structural_similarity(
            pred[b, 0] / m, filled / m, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=1.0, full=True)
        inner = (slice(5, -5), slice(5, -5))
        values.append(smap[inner][valid[b, 0][inner]])
    return float(np.concatenate(values).mean())


def test_map_ssim_matches_scikit_image():
    pred, target = _maps(1)
    valid = np.ones_like(target, bool)
    got = map_ssim(torch.from_numpy(pred), torch.from_numpy(target), torch.from_numpy(valid))
    assert float(got) == pytest.approx(_sk_map_ssim(pred, target, valid), abs=1e-10)
    valid[0, 0, 8:14, 10:20] = False
    got = map_ssim(torch.from_numpy(pred), torch.from_numpy(np.where(valid, target, np.nan)),
                   torch.from_numpy(valid))
    assert float(got) == pytest.approx(_sk_map_ssim(pred, target, valid), abs=1e-10)


@pytest.mark.parametrize("kind, offset", [("depth", 0.0), ("defocus", 1.0)])
def test_map_loss_is_eq_3_and_4(kind, offset):
    pred, target = _maps(2)
    if kind == "defocus":
        target[0, 0, :4] = 0.0  # the focal plane: sigma 0 px is a valid label
    valid = np.ones_like(target, bool)
    p = torch.from_numpy(pred).requires_grad_()
    loss, terms = mddnet_map_loss(p, torch.from_numpy(target), kind=kind, w_ssim=2.0,
                                  w_silog=0.5)
    s = _sk_map_ssim(pred, target, valid)
    ref = 2.0 * (1 - s) / 2 + 0.5 * plain_silog(pred, target, valid, offset=offset)
    assert float(loss.detach()) == pytest.approx(ref, rel=1e-9)
    assert float(terms["ssim"]) == pytest.approx(s, abs=1e-10)
    loss.backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def _consistency_case():
    rng = np.random.default_rng(3)
    depth = rng.uniform(0.2, 8.0, (2, 1, 5, 6))
    sigma = rng.uniform(0, 6, (2, 1, 5, 6))
    implied = np.stack([Camera(**c, coc_model="exact").sigma_px(depth[i])
                        for i, c in enumerate(CAMERAS)])
    return depth, sigma, np.minimum(implied, 32.0)


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_consistency_norms_match_numpy(norm):
    depth, sigma, implied = _consistency_case()
    r = sigma - implied
    ref = np.mean(np.abs(r)) if norm == "l1" else np.mean(r * r)
    got = consistency_loss(torch.from_numpy(sigma), torch.from_numpy(depth), _camera_batch(),
                           coc_model="exact", norm=norm)
    assert float(got) == pytest.approx(ref, rel=1e-10)
    with pytest.raises(ValueError, match="norm must be one of"):
        consistency_loss(torch.from_numpy(sigma), torch.from_numpy(depth), _camera_batch(),
                         coc_model="exact", norm="l3")


def test_the_mddnet_total_is_eq_6():
    """L = L_depth + L_defocus + lambda5 * L_pc, each part computed on its own."""
    depth_hat, depth = _maps(4, (2, 1, 16, 16))
    sigma_hat, _ = _maps(5, (2, 1, 16, 16))
    sigma = np.clip(sigma_hat * 0.9 - 0.5, 0, None)
    _, _, implied = _consistency_case()
    lam = (0.7, 1.3, 0.4, 2.0)
    crit = TwoHeadedLoss(LossConfig(loss="mddnet", mddnet_lambdas=lam, consistency=0.25,
                                    consistency_norm="l2", defocus_weight=1.0))
    pred = {"depth": torch.from_numpy(depth_hat), "defocus": torch.from_numpy(sigma_hat)}
    target = {"depth": torch.from_numpy(depth), "sigma": torch.from_numpy(sigma),
              **_camera_batch()}
    total, terms = crit(pred, target)
    ones = np.ones_like(depth, bool)
    l_depth = lam[0] * (1 - _sk_map_ssim(depth_hat, depth, ones)) / 2 + lam[1] * plain_silog(
        depth_hat, depth, ones)
    l_def = lam[2] * (1 - _sk_map_ssim(sigma_hat, sigma, ones)) / 2 + lam[3] * plain_silog(
        sigma_hat, sigma, ones, offset=1.0)
    implied = np.stack([np.minimum(Camera(**c).sigma_px(depth_hat[i]), 32.0)
                        for i, c in enumerate(CAMERAS)])
    l_pc = np.mean((sigma_hat - implied) ** 2)
    assert float(terms["depth"]) == pytest.approx(l_depth, rel=1e-9)
    assert float(terms["defocus"]) == pytest.approx(l_def, rel=1e-9)
    assert float(terms["consistency"]) == pytest.approx(l_pc, rel=1e-9)
    assert float(total) == pytest.approx(l_depth + l_def + 0.25 * l_pc, rel=1e-9)
    assert "depth_l1" not in terms  # 2HDED:NET's depth terms are not computed
