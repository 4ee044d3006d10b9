"""Tests of trainer.losses against scikit-image and plain numpy formulas."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
skimage_metrics = pytest.importorskip("skimage.metrics")
from scipy.ndimage import gaussian_filter  # noqa: E402
from skimage import data  # noqa: E402

from trainer.losses import (  # noqa: E402
    LossConfig,
    TwoHeadedLoss,
    charbonnier,
    depth_loss,
    ssim,
)


def _sk_ssim(a, b):
    """scikit-image SSIM of (H, W, C) floats with the paper's window settings."""
    return skimage_metrics.structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=-1,
    )


@pytest.fixture(scope="module")
def astronaut_pair():
    """(sharp, blurred) crops of skimage's astronaut, (H, W, 3) float64 in [0, 1]."""
    img = data.astronaut()[100:164, 180:276].astype(np.float64) / 255.0  # 64 x 96
    blurred = gaussian_filter(img, sigma=(2.0, 2.0, 0.0))
    return img, blurred


def _to_t(a, dtype=torch.float64):
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].to(dtype)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-9), (torch.float32, 1e-5)])
def test_ssim_matches_skimage(astronaut_pair, dtype, tol):
    sharp, blurred = astronaut_pair
    ref = _sk_ssim(sharp, blurred)
    got = ssim(_to_t(sharp, dtype), _to_t(blurred, dtype)).item()
    assert 0.2 < ref < 0.95  # a real, non-trivial comparison
    assert got == pytest.approx(ref, abs=tol)


def test_ssim_reductions(astronaut_pair):
    sharp, blurred = astronaut_pair
    noisy = np.clip(sharp + np.random.default_rng(0).normal(0, 0.05, sharp.shape), 0, 1)
    x = torch.cat([_to_t(sharp), _to_t(sharp)])
    y = torch.cat([_to_t(blurred), _to_t(noisy)])
    per_image = ssim(x, y, reduction="image")
    expected = [_sk_ssim(sharp, blurred), _sk_ssim(sharp, noisy)]
    np.testing.assert_allclose(per_image.numpy(), expected, atol=1e-9)
    smap = ssim(x, y, reduction="none")
    assert tuple(smap.shape) == (2, 3, 64 - 10, 96 - 10)
    assert ssim(x, y).item() == pytest.approx(np.mean(expected), abs=1e-9)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("shape_a, shape_b, options, match", [
    ((1, 3, 8, 8), (1, 3, 8, 8), {}, "ssim"),  # smaller than the window
    ((1, 3, 16, 16), (1, 3, 16, 17), {}, "ssim"),
    ((1, 3, 16, 16), (1, 3, 16, 16), {"reduction": "sum"}, "reduction"),
], ids=["smaller-than-window", "shapes-differ", "unknown-reduction"])
def test_ssim_bad_input_raises(shape_a, shape_b, options, match):
    with pytest.raises(ValueError, match=match):
        ssim(torch.rand(*shape_a), torch.rand(*shape_b), **options)


def test_ssim_term_has_gradient(astronaut_pair):
    sharp, blurred = astronaut_pair
    x = _to_t(blurred, torch.float32).requires_grad_(True)
    loss = 1 - ssim(x, _to_t(sharp, torch.float32))
    loss.backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    # a small step against the gradient raises SSIM
    with torch.no_grad():
        stepped = x - 0.01 * x.grad / x.grad.abs().max()
        assert ssim(stepped, _to_t(sharp, torch.float32)) > 1 - loss


def test_ssim_gradcheck():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 2, 6, 7, dtype=torch.float64, generator=gen, requires_grad=True)
    y = torch.rand(1, 2, 6, 7, dtype=torch.float64, generator=gen)
    assert torch.autograd.gradcheck(lambda a: ssim(a, y, window_size=3, sigma=1.0), (x,))


def test_charbonnier_matches_numpy_with_mask():
    rng = np.random.default_rng(1)
    p, t = rng.random((2, 3, 8, 9)), rng.random((2, 3, 8, 9))
    t[0, :, :2] = np.nan  # masked out below
    mask = np.isfinite(t)
    eps = 1e-3
    expected = np.mean(np.sqrt((p[mask] - t[mask]) ** 2 + eps**2))
    pt = torch.from_numpy(p).requires_grad_(True)
    got = charbonnier(pt, torch.from_numpy(t), eps=eps, mask=torch.from_numpy(mask))
    assert got.item() == pytest.approx(expected, rel=1e-12)
    got.backward()
    assert torch.isfinite(pt.grad).all()
    unmasked = charbonnier(torch.from_numpy(p), torch.from_numpy(np.nan_to_num(t)), eps=0.1)
    assert unmasked.item() == pytest.approx(np.mean(np.sqrt((p - np.nan_to_num(t)) ** 2 + 0.01)))


def _np_depth_loss(p, g, mu):
    """Paper eqs. 1-3 written out with explicit loops over valid pixels and valid pairs."""
    valid = np.isfinite(g) & (g > 0)
    r = np.where(valid, p - np.nan_to_num(g), 0.0)
    n = valid.sum()
    l1 = np.abs(r[valid]).sum() / n
    grad = 0.0
    b, c, h, w = p.shape
    for i in range(b):
        for y in range(h):
            for x in range(w):
                if not valid[i, 0, y, x]:
                    continue
                if x + 1 < w and valid[i, 0, y, x + 1]:
                    grad += abs(r[i, 0, y, x + 1] - r[i, 0, y, x])
                if y + 1 < h and valid[i, 0, y + 1, x]:
                    grad += abs(r[i, 0, y + 1, x] - r[i, 0, y, x])
    grad /= n
    return l1 + mu * grad, l1, grad


def _depth_pair(seed=2, shape=(2, 1, 7, 9)):
    rng = np.random.default_rng(seed)
    g = rng.uniform(0.7, 10.0, shape)
    g[0, 0, 1:3, 2:5] = np.nan
    g[-1, 0, shape[2] // 2, :] = 0.0  # zero = invalid too
    p = g + rng.normal(0, 0.3, shape)
    p = np.where(np.isfinite(p), p, 5.0)
    return p, g


def test_depth_loss_matches_loop_reference_and_ignores_nan():
    p, g = _depth_pair()
    expected, l1, grad = _np_depth_loss(p, g, mu=0.5)
    pt = torch.from_numpy(p).requires_grad_(True)
    got, terms = depth_loss(pt, torch.from_numpy(g), mu=0.5)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    assert terms["l1"].item() == pytest.approx(l1, rel=1e-12)
    assert terms["grad"].item() == pytest.approx(grad, rel=1e-12)
    got.backward()
    assert torch.isfinite(pt.grad).all()
    invalid = ~(np.isfinite(g) & (g > 0))
    assert np.all(pt.grad.numpy()[invalid] == 0)  # invalid pixels get no gradient


def test_depth_loss_extra_mask_and_empty():
    p, g = _depth_pair()
    keep = np.zeros_like(g, dtype=bool)
    keep[..., :4] = True
    g_masked = np.where(keep, g, np.nan)
    expected, _, _ = _np_depth_loss(p, g_masked, mu=0.001)
    got, _ = depth_loss(torch.from_numpy(p), torch.from_numpy(g), mask=torch.from_numpy(keep))
    assert got.item() == pytest.approx(expected, rel=1e-12)
    pt = torch.ones(1, 1, 4, 4, requires_grad=True)
    empty, _ = depth_loss(pt, torch.full((1, 1, 4, 4), float("nan")))
    assert empty.item() == 0.0
    empty.backward()
    assert torch.equal(pt.grad, torch.zeros_like(pt))


def test_total_loss_by_hand(astronaut_pair):
    sharp, blurred = astronaut_pair
    p, g = _depth_pair(seed=3, shape=(1, 1, 64, 96))
    pred = {"depth": torch.from_numpy(p).float(), "aif": _to_t(blurred, torch.float32)}
    pred = {k: v.requires_grad_(True) for k, v in pred.items()}
    target = {"depth": torch.from_numpy(g).float(), "aif": _to_t(sharp, torch.float32)}
    total, terms = TwoHeadedLoss()(pred, target)
    l_depth, l1, grad = _np_depth_loss(p, g, mu=0.001)
    charb = np.mean(np.sqrt((blurred - sharp) ** 2 + 1e-6))
    s = _sk_ssim(sharp, blurred)
    expected = l_depth + 0.01 * (charb + 4 * (1 - s))
    assert total.dtype == torch.float32 and total.requires_grad
    assert total.item() == pytest.approx(expected, rel=1e-5)
    assert terms["depth_l1"].item() == pytest.approx(l1, rel=1e-5)
    assert terms["depth_grad"].item() == pytest.approx(grad, rel=1e-5)
    assert terms["aif_charbonnier"].item() == pytest.approx(charb, rel=1e-5)
    assert terms["aif_ssim"].item() == pytest.approx(s, abs=1e-5)
    assert terms["deblur"].item() == pytest.approx(charb + 4 * (1 - s), rel=1e-5)
    assert terms["total"].item() == total.item()
    assert all(not t.requires_grad for t in terms.values())
    total.backward()
    assert all(torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0 for v in pred.values())


def test_single_head_losses_and_weights(astronaut_pair):
    sharp, blurred = astronaut_pair
    p, g = _depth_pair(seed=4, shape=(1, 1, 16, 16))
    pred_d = {"depth": torch.from_numpy(p)}
    target = {"depth": torch.from_numpy(g), "aif": _to_t(sharp)}
    total_d, terms_d = TwoHeadedLoss()(pred_d, target)
    assert set(terms_d) == {"depth_l1", "depth_grad", "depth", "total"}
    assert total_d.item() == pytest.approx(_np_depth_loss(p, g, 0.001)[0], rel=1e-12)
    cfg = LossConfig(psi=2.0, charbonnier_eps=0.01)
    total_a, terms_a = TwoHeadedLoss(cfg)({"aif": _to_t(blurred)}, target)
    assert set(terms_a) == {"aif_charbonnier", "aif_ssim", "deblur", "total"}
    expected = np.mean(np.sqrt((blurred - sharp) ** 2 + 1e-4)) + 2 * (1 - _sk_ssim(sharp, blurred))
    assert total_a.item() == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="target lacks"):
        TwoHeadedLoss()({"aif": _to_t(blurred)}, {"depth": target["depth"]})


def test_loss_under_bf16_inputs_is_float32(astronaut_pair):
    sharp, blurred = astronaut_pair
    p, g = _depth_pair(seed=5, shape=(1, 1, 64, 96))
    target = {"depth": torch.from_numpy(g).float(), "aif": _to_t(sharp, torch.float32)}
    pred32 = {"depth": torch.from_numpy(p).float(), "aif": _to_t(blurred, torch.float32)}
    pred16 = {k: v.bfloat16() for k, v in pred32.items()}
    total16, _ = TwoHeadedLoss()(pred16, target)
    total32, _ = TwoHeadedLoss()({k: v.float() for k, v in pred16.items()}, target)
    assert total16.dtype == torch.float32
    assert total16.item() == pytest.approx(total32.item(), rel=1e-6)


def test_ssim_inside_autocast_stays_float32(astronaut_pair):
    sharp, blurred = astronaut_pair
    x, y = _to_t(blurred, torch.float32), _to_t(sharp, torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = ssim(x, y)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(_sk_ssim(sharp, blurred), abs=1e-5)
