"""The defocus-map head, MDDNet's consistency and the self-supervised loss, each term against
a plain numpy (or loop) implementation; the torch thin lens against defocuskit's Camera."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from defocuskit.errors import ConfigError, SchemaError  # noqa: E402
from defocuskit.optics import COC_MODELS, Camera  # noqa: E402
from defocuskit.store import write_arrays  # noqa: E402
from trainer.config import TrainConfig  # noqa: E402
from trainer.data import DefocusDataset, required_arrays  # noqa: E402
from trainer.defocus import reblur  # noqa: E402
from trainer.losses import consistency_loss, defocus_map_loss, ssim  # noqa: E402
from trainer.metrics import MetricAccumulator, defocus_metrics  # noqa: E402
from trainer.model import ModelConfig, TwoHeadedNet  # noqa: E402
from trainer.selfsup import (  # noqa: E402
    SelfSupervisedConfig,
    SelfSupervisedLoss,
    edge_aware_smoothness,
    reconstruction_loss,
)
from trainer.thinlens import sigma_px_from_depth  # noqa: E402

CAMERAS = [dict(focal_length=0.05, f_number=1.4, focus_distance=2.5, pixel_pitch=6e-6,
                coc_to_sigma=0.25),
           dict(focal_length=0.07, f_number=2.8, focus_distance=1.2, pixel_pitch=2.5e-5,
                coc_to_sigma=0.5)]


def _camera_batch(dtype=torch.float64) -> dict:
    return {k: torch.tensor([c[k] for c in CAMERAS], dtype=dtype) for k in CAMERAS[0]}


# ------------------------------------------------------------------ thin lens
def test_thin_lens_honours_a_sharp_below_offset_like_camera():
    """SYNDOF's rule: sigma = k * max(CoC - 1 px, 0) (rounding to 0.1 px left out)."""
    rng = np.random.default_rng(1)
    depth = rng.uniform(0.3, 12.0, (2, 1, 9, 11))
    ours = sigma_px_from_depth(torch.from_numpy(depth), _camera_batch(),
                               coc_offset_px=1.0).numpy()
    for i, c in enumerate(CAMERAS):
        ref = Camera(**c, coc_offset_px=1.0).sigma_px(depth[i, 0])
        np.testing.assert_allclose(ours[i, 0], ref, rtol=1e-12, atol=0)
    assert (ours == 0).any() and (ours > 0).any()


@pytest.mark.parametrize("coc_model", COC_MODELS)
def test_thin_lens_matches_camera_sigma_px(coc_model):
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.3, 12.0, (2, 1, 9, 11))
    depth[0, 0, 0, 0] = CAMERAS[0]["focus_distance"]  # in focus: exactly 0
    ours = sigma_px_from_depth(torch.from_numpy(depth), _camera_batch(),
                               coc_model=coc_model).numpy()
    for i, c in enumerate(CAMERAS):
        ref = Camera(**c, coc_model=coc_model).sigma_px(depth[i, 0])
        np.testing.assert_allclose(ours[i, 0], ref, rtol=1e-12, atol=0)
    assert ours[0, 0, 0, 0] == 0.0


def test_thin_lens_gradient_and_bad_inputs():
    depth = torch.tensor(np.random.default_rng(1).uniform(0.5, 5, (2, 1, 4, 5)),
                         requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda d: sigma_px_from_depth(d, _camera_batch(), coc_model="exact"), (depth,))
    with pytest.raises(ConfigError, match="coc_model"):
        sigma_px_from_depth(depth, _camera_batch(), coc_model="approx")
    with pytest.raises(ConfigError, match="pixel_pitch"):
        sigma_px_from_depth(depth, {k: v for k, v in _camera_batch().items()
                                    if k != "pixel_pitch"})
    floored = sigma_px_from_depth(torch.full((1, 1, 1, 1), -1.0), _camera_batch(torch.float32)
                                  | {k: v[:1] for k, v in _camera_batch(torch.float32).items()})
    assert torch.isfinite(floored).all()  # depth <= 0 is floored at 1 mm, never NaN


# ------------------------------------------------------------------ supervised terms
@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_defocus_map_loss_matches_numpy_over_valid_pixels(kind):
    rng = np.random.default_rng(2)
    pred = rng.uniform(0, 5, (2, 1, 6, 7))
    gt = rng.uniform(0, 5, (2, 1, 6, 7))
    gt[0, 0, :2] = np.nan
    ok = np.isfinite(gt)
    err = pred[ok] - gt[ok]
    ref = np.mean(np.abs(err)) if kind == "l1" else np.mean(err**2)
    p = torch.from_numpy(pred).requires_grad_(True)
    loss = defocus_map_loss(p, torch.from_numpy(gt), kind=kind)
    assert float(loss.detach()) == pytest.approx(ref, rel=1e-12)
    loss.backward()
    assert torch.isfinite(p.grad).all() and (p.grad[0, 0, :2] == 0).all()


@pytest.mark.parametrize("coc_model", COC_MODELS)
def test_consistency_loss_matches_numpy(coc_model):
    rng = np.random.default_rng(3)
    depth = rng.uniform(0.2, 8.0, (2, 1, 5, 6))
    sigma = rng.uniform(0, 6, (2, 1, 5, 6))
    implied = np.stack([Camera(**c, coc_model=coc_model).sigma_px(depth[i])
                        for i, c in enumerate(CAMERAS)])
    ref = np.mean(np.abs(sigma - np.minimum(implied, 32.0)))  # capped like the renderer
    got = consistency_loss(torch.from_numpy(sigma), torch.from_numpy(depth), _camera_batch(),
                           coc_model=coc_model)
    assert float(got) == pytest.approx(ref, rel=1e-10)


# ------------------------------------------------------------------ self-supervised terms
def _ssim_skimage(a, b):
    metrics = pytest.importorskip("skimage.metrics")
    return np.mean([metrics.structural_similarity(
        a[i].transpose(1, 2, 0), b[i].transpose(1, 2, 0), gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1.0, channel_axis=-1) for i in range(len(a))])


def test_reconstruction_loss_matches_skimage_and_numpy():
    rng = np.random.default_rng(4)
    a = rng.uniform(0, 1, (2, 3, 20, 24))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    ref = 0.85 / 2 * (1 - _ssim_skimage(a, b)) + 0.15 * np.mean(np.abs(a - b))
    got = reconstruction_loss(torch.from_numpy(a), torch.from_numpy(b), alpha=0.85)
    assert float(got) == pytest.approx(ref, rel=1e-9)


def _smoothness_loop(d, a, beta):
    """The thesis's edge-aware smoothness, one pixel at a time."""
    b, _, h, w = d.shape
    sx, nx, sy, ny = 0.0, 0, 0.0, 0
    for n in range(b):
        for y in range(h):
            for x in range(w):
                if x + 1 < w:
                    edge = np.mean(np.abs(a[n, :, y, x + 1] - a[n, :, y, x]))
                    sx += abs(d[n, 0, y, x + 1] - d[n, 0, y, x]) * np.exp(-beta * edge)
                    nx += 1
                if y + 1 < h:
                    edge = np.mean(np.abs(a[n, :, y + 1, x] - a[n, :, y, x]))
                    sy += abs(d[n, 0, y + 1, x] - d[n, 0, y, x]) * np.exp(-beta * edge)
                    ny += 1
    return sx / nx + sy / ny


def test_edge_aware_smoothness_matches_a_loop():
    rng = np.random.default_rng(5)
    d = rng.uniform(0, 4, (2, 1, 5, 7))
    a = rng.uniform(0, 1, (2, 3, 5, 7))
    got = edge_aware_smoothness(torch.from_numpy(d), torch.from_numpy(a), beta=2.5)
    assert float(got) == pytest.approx(_smoothness_loop(d, a, 2.5), rel=1e-12)
    flat = edge_aware_smoothness(torch.full((1, 1, 5, 7), 3.0), torch.rand(1, 3, 5, 7))
    assert float(flat) == 0.0


@pytest.mark.parametrize("with_aif", [True, False])
def test_self_supervised_total_is_the_weighted_sum(with_aif):
    rng = np.random.default_rng(6)
    aif = torch.from_numpy(rng.uniform(0, 1, (2, 3, 24, 24)))
    sigma = torch.from_numpy(rng.uniform(0.2, 3, (2, 1, 24, 24))).requires_grad_(True)
    blurred = reblur(aif, torch.full_like(sigma, 1.5))
    a_hat = aif + 0.05
    pred = {"defocus": sigma, **({"aif": a_hat} if with_aif else {})}
    loss = SelfSupervisedLoss(SelfSupervisedConfig(sigma_max=6.0))
    total, terms = loss(pred, {"aif": aif, "defocused": blurred})
    i_r = reblur(aif, sigma.detach(), sigma_max=6.0).numpy()
    l_re = 0.85 / 2 * (1 - _ssim_skimage(i_r, blurred.numpy())) + 0.15 * np.mean(
        np.abs(i_r - blurred.numpy()))
    l_smooth = _smoothness_loop(sigma.detach().numpy(), aif.numpy(), 2.5)
    l_deblur = np.mean(np.sqrt(0.05**2 + 1e-6))
    ref = 2 * l_re + 0.5 * l_smooth + (0.01 * l_deblur if with_aif else 0.0)
    assert float(total.detach()) == pytest.approx(ref, rel=1e-7)
    assert float(terms["recon"]) == pytest.approx(l_re, rel=1e-7)
    assert ("deblur" in terms) == with_aif
    total.backward()
    assert torch.isfinite(sigma.grad).all() and sigma.grad.abs().sum() > 0


@pytest.mark.parametrize("label", ["depth", "sigma"])
def test_self_supervised_loss_refuses_labels(label):
    x = torch.rand(1, 3, 16, 16)
    target = {"aif": x, "defocused": x, label: torch.rand(1, 1, 16, 16)}
    with pytest.raises(ValueError, match="without depth or sigma labels"):
        SelfSupervisedLoss()({"defocus": torch.rand(1, 1, 16, 16)}, target)


def test_ssim_is_the_shared_code():
    import trainer.selfsup as selfsup

    assert selfsup.ssim is ssim  # the supervised and self-supervised SSIM cannot drift


# ------------------------------------------------------------------ metrics, model, config
def test_defocus_metrics_match_numpy_and_average_per_image():
    rng = np.random.default_rng(7)
    pred = rng.uniform(0, 4, (2, 1, 6, 6))
    gt = rng.uniform(0, 4, (2, 1, 6, 6))
    gt[1, 0, 3:] = np.nan
    per = [defocus_metrics(pred[i], gt[i]) for i in range(2)]
    ok = np.isfinite(gt[1])
    assert per[1]["defocus_mae"] == pytest.approx(np.mean(np.abs(pred[1][ok] - gt[1][ok])))
    assert per[1]["defocus_mse"] == pytest.approx(np.mean((pred[1][ok] - gt[1][ok]) ** 2))
    acc = MetricAccumulator()
    acc.update({"defocus": torch.from_numpy(pred)}, {"sigma": torch.from_numpy(gt)})
    out = acc.compute()
    assert out["defocus_mae"] == pytest.approx(np.mean([p["defocus_mae"] for p in per]))
    assert np.isnan(defocus_metrics(pred[0], np.full_like(gt[0], np.nan))["defocus_mae"])


def test_defocus_head_is_non_negative_sigma():
    tiny = dict(growth_rate=4, block_config=(1, 1, 1, 1), num_init_features=8)
    net = TwoHeadedNet(ModelConfig(heads=("depth", "aif", "defocus"), **tiny))
    out = net(torch.rand(2, 3, 32, 64))
    assert tuple(out["defocus"].shape) == (2, 1, 32, 64) and (out["defocus"] >= 0).all()
    with pytest.raises(ConfigError, match="model.heads"):
        ModelConfig(heads=("defocus", "defocus"))


@pytest.mark.parametrize("bad, message", [
    ({"heads": ("depth", "normals")}, "heads"),
    ({"method": "unsupervised"}, "method"),
    ({"defocus_loss": "huber"}, "defocus_loss"),
    ({"consistency": 0.1, "heads": ("depth", "aif")}, "consistency"),
    ({"consistency": -1.0, "heads": ("depth", "defocus")}, "consistency"),
    ({"method": "self-supervised", "heads": ("aif",)}, "self-supervised"),
    ({"method": "self-supervised", "heads": ("depth", "defocus")}, "self-supervised"),
    ({"method": "self-supervised", "heads": ("defocus",), "crop": 64}, "sigma_max"),
    ({"sigma_max": 40.0}, "sigma_max"),
])
def test_config_refuses_bad_method_and_head_options(bad, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**bad)


# ------------------------------------------------------------------ data
@pytest.fixture(scope="module")
def stack_data(tmp_path_factory):
    """A focal stack of 2 per sample, 64 x 96, with sigma and the camera values."""
    rng = np.random.default_rng(8)
    n, k = 3, 2
    aif = rng.integers(0, 256, (n, 64, 96, 3), dtype=np.uint8)
    sigma = np.stack([np.full((k, 64, 96), 1.0 + j) for j in range(n)]).astype(np.float32)
    sigma[:, 1] *= 2  # stack image 1 is twice as blurred
    sigma[:, :, :4] = np.nan
    arrays = {"aif": aif, "defocused": np.stack([aif, aif], 1), "sigma": sigma,
              "depth": rng.uniform(1, 3, (n, 64, 96)).astype(np.float32)}
    for key, v in CAMERAS[0].items():
        arrays[key] = np.full((n, k), v, np.float32)
    arrays["pixel_pitch"][:, 1] = 1e-5
    path = tmp_path_factory.mktemp("stack") / "stack.zarr"
    write_arrays(path, {"train": arrays}, attrs={"camera": {"coc_model": "paper"}})
    return path


def test_loader_reads_sigma_and_camera_of_the_stack_image(stack_data):
    arrays = required_arrays(("depth", "defocus"), camera=True)[1:]
    ds = DefocusDataset(stack_data, "train", heads=("depth", "defocus"), stack_index=1,
                        arrays=arrays)
    item = ds[2]
    assert ds.coc_model == "paper"
    assert float(np.nanmax(item["sigma"].numpy())) == pytest.approx(6.0)  # (1 + 2) * 2
    assert float(item["pixel_pitch"]) == pytest.approx(1e-5)
    # an isotropic resize by 1/2 halves sigma and doubles the pitch (pixels got bigger)
    half = DefocusDataset(stack_data, "train", heads=("depth", "defocus"), stack_index=1,
                          arrays=arrays, resize=(32, 48), hflip=False)[2]
    assert float(np.nanmax(half["sigma"].numpy())) == pytest.approx(3.0, rel=1e-5)
    assert float(half["pixel_pitch"]) == pytest.approx(2e-5)
    with pytest.raises(SchemaError, match="elliptical"):
        DefocusDataset(stack_data, "train", heads=("defocus",), stack_index=1,
                       resize=(32, 32))


def test_self_supervised_training_arrays_hold_no_label():
    assert required_arrays(("aif", "defocus"), method="self-supervised") == ("defocused", "aif")
    assert "sigma" in required_arrays(("aif", "defocus"))
