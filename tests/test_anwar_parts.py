"""Anwar et al.'s network pieces (trainer.models.anwar, anwar_parts): the parameter count
against a count by hand and VGG16's published 138,357,544, patch pooling and the joint
bilateral upsampling against plain loop implementations, the log-spaced classes and the
softmax loss against hand-made labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from defocuskit.errors import ConfigError
from trainer.models.anwar import AnwarConfig, AnwarNet, hand_count, parameter_counts
from trainer.models.anwar_parts import (
    IGNORE_INDEX,
    AnwarLoss,
    class_depths,
    depth_to_class,
    joint_bilateral_upsample,
    keypoint_positions,
    patch_pool,
    patch_windows,
)

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"widths": [4, 4, 8, 8, 8], "fc_width": 16, "pool_size": 2, "keypoint_stride": 8}
# torchvision's vgg16(): the indices of its 13 convolutions and 3 linear layers
VGG16_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_full_size_count_is_vgg16_less_its_imagenet_layer():
    with torch.device("meta"):
        model = AnwarNet(AnwarConfig())
    counts = parameter_counts(model)
    assert counts == hand_count() == {"encoder": 14_714_688, "depth": 119_631_893,
                                      "total": 134_346_581}
    # VGG16 (Simonyan & Zisserman; torchvision's vgg16 has 138,357,544 parameters) has the
    # same layers with a 1000-way last layer instead of 21-way
    vgg16 = counts["total"] - (4096 * 21 + 21) + (4096 * 1000 + 1000)
    assert vgg16 == 138_357_544
    names = [n for n, _ in model.named_parameters() if n.endswith(".weight")]
    assert names == [f"features.{i}.weight" for i in VGG16_CONVS] + [
        f"classifier.{i}.weight" for i in (0, 3, 6)]


@pytest.mark.parametrize("cfg", [TINY, {**TINY, "widths": [3, 5, 7, 9, 11], "pool_size": 3,
                                        "n_classes": 5, "fc_width": 10}])
def test_hand_count_matches_built_models(cfg):
    c = AnwarConfig(**cfg)
    assert parameter_counts(AnwarNet(c)) == hand_count(c.widths, c.fc_width, c.pool_size,
                                                       c.n_classes)


def test_patch_windows_round_outwards_and_clip():
    # keypoints every 8 px of a 64-px axis: 4, 12, ..., 60; 32-px patches on stride 16
    pos = keypoint_positions(64, 8)
    assert pos == [4, 12, 20, 28, 36, 44, 52, 60]
    win = patch_windows(pos, 32, 16, 4)
    # 4 -> [-12, 20) px -> cells floor(-0.75)=-1 (clipped to 0) .. ceil(1.25)=2
    assert win[0] == (0, 2) and win[1] == (0, 2) and win[2] == (0, 3)
    assert win[3] == (0, 3) and win[-1] == (2, 4)


def _naive_patch_pool(feat, rows, cols, out):
    b, c = feat.shape[:2]
    res = torch.empty(b, len(rows), len(cols), c * out * out)
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            win = F.adaptive_max_pool2d(feat[:, :, r0:r1, c0:c1], out)
            res[:, i, j] = win.reshape(b, -1)
    return res


@pytest.mark.parametrize("out", [1, 2, 3, 7])
def test_patch_pool_matches_adaptive_max_pool_per_window(out):
    torch.manual_seed(0)
    feat = torch.randn(2, 3, 5, 6)
    rows = patch_windows(keypoint_positions(80, 8), 40, 16, 5)
    cols = patch_windows(keypoint_positions(96, 12), 24, 16, 6)
    got = patch_pool(feat, rows, cols, out)
    assert torch.equal(got, _naive_patch_pool(feat, rows, cols, out))


def test_patch_pool_gradient_follows_the_argmax():
    feat = torch.zeros(1, 1, 4, 4)
    feat[0, 0, 1, 2] = 5.0  # the maximum of every window that holds it
    feat.requires_grad_(True)
    pooled = patch_pool(feat, [(0, 4)], [(0, 4)], 1)
    pooled.sum().backward()
    expect = torch.zeros(1, 1, 4, 4)
    expect[0, 0, 1, 2] = 1.0
    assert torch.equal(feat.grad, expect)


def test_classes_are_log_spaced_and_labels_are_the_nearest_in_log_depth():
    d = class_depths(0.5, 10.0, 21)
    ratio = (d[1:] / d[:-1]).numpy()
    assert d[0].item() == pytest.approx(0.5) and d[-1].item() == pytest.approx(10.0)
    assert np.allclose(ratio, 20 ** (1 / 20), rtol=1e-5)  # (10 / 0.5) ** (1/20) = 1.162
    depth = torch.tensor([0.1, 0.5, 0.54, 0.58, 10.0, 50.0, float("nan"), 0.0, -1.0])
    # the boundary of classes 0 and 1 is their log midpoint sqrt(0.5 * 0.581) = 0.539 m
    assert math.sqrt(d[0].item() * d[1].item()) == pytest.approx(0.539, abs=1e-3)
    labels = depth_to_class(depth, 0.5, 10.0, 21).tolist()
    assert labels == [0, 0, 1, 1, 20, 20, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]
    brute = [int(np.argmin(np.abs(np.log(d.numpy()) - np.log(x)))) for x in (0.7, 2.0, 7.3)]
    assert depth_to_class(torch.tensor([0.7, 2.0, 7.3]), 0.5, 10.0, 21).tolist() == brute


def test_loss_is_cross_entropy_of_the_keypoint_labels():
    torch.manual_seed(0)
    logits = torch.randn(1, 21, 2, 3, requires_grad=True)
    depth = torch.full((1, 1, 16, 24), float("nan"))
    # keypoint pixels at stride 8: rows 4, 12; columns 4, 12, 20
    values = {(4, 4): 0.5, (4, 12): 10.0, (4, 20): 2.0, (12, 4): 1.0, (12, 12): 3.0}
    for (y, x), v in values.items():
        depth[0, 0, y, x] = v
    loss_fn = AnwarLoss(0.5, 10.0, 21, 8)
    loss, terms = loss_fn({"depth_logits": logits}, {"depth": depth})
    d = np.log(class_depths(0.5, 10.0, 21).numpy())
    labels = [int(np.argmin(np.abs(d - np.log(v)))) for v in values.values()]
    cells = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]  # (12, 20) is NaN: left out
    logp = torch.log_softmax(logits.detach(), 1)
    expect = -np.mean([logp[0, k, i, j].item() for k, (i, j) in zip(labels, cells,
                                                                     strict=True)])
    assert loss.item() == pytest.approx(expect, rel=1e-6)
    assert terms["total"].item() == pytest.approx(expect, rel=1e-6)
    loss.backward()
    assert logits.grad[0, :, 1, 2].abs().sum() == 0  # the unlabelled keypoint
    none, _ = loss_fn({"depth_logits": logits}, {"depth": torch.full_like(depth, np.nan)})
    assert none.item() == 0 and none.requires_grad


def _naive_jbu(values, guide, stride, ss, sr, radius):
    gh, gw = values.shape
    h, w = guide.shape[1:]
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            cy, cx = min(y // stride, gh - 1), min(x // stride, gw - 1)
            num = den = 0.0
            for i in range(cy - radius, cy + radius + 1):
                for j in range(cx - radius, cx + radius + 1):
                    if not (0 <= i < gh and 0 <= j < gw):
                        continue
                    ky, kx = stride * i + stride // 2, stride * j + stride // 2
                    ws = math.exp(-((y - ky) ** 2 + (x - kx) ** 2) / (2 * (ss * stride) ** 2))
                    dc = float(((guide[:, y, x] - guide[:, ky, kx]) ** 2).sum())
                    wgt = ws * math.exp(-dc / (2 * sr ** 2))
                    num, den = num + wgt * values[i, j], den + wgt
            out[y, x] = num / den
    return out


def test_joint_bilateral_upsampling_matches_the_loop():
    rng = np.random.default_rng(1)
    values = rng.uniform(1, 5, (3, 4))
    guide = rng.uniform(0, 1, (3, 12, 17))  # 17 columns: the last one past the grid
    got = joint_bilateral_upsample(torch.from_numpy(values)[None, None],
                                   torch.from_numpy(guide)[None], 4, sigma_spatial=0.8,
                                   sigma_range=0.3, radius=1)
    assert np.allclose(got[0, 0].numpy(), _naive_jbu(values, guide, 4, 0.8, 0.3, 1),
                       rtol=1e-10)


def test_upsampling_keeps_a_depth_edge_on_the_colour_edge():
    # left half dark and 1 m, right half bright and 4 m: the edge stays a step
    guide = torch.zeros(1, 3, 32, 32)
    guide[..., 16:] = 1.0
    values = torch.ones(1, 1, 4, 4)
    values[..., 2:] = 4.0
    dense = joint_bilateral_upsample(values, guide, 8, sigma_range=0.1)[0, 0]
    assert torch.allclose(dense[:, :16], torch.tensor(1.0), atol=1e-6)
    assert torch.allclose(dense[:, 16:], torch.tensor(4.0), atol=1e-6)
    # without a colour edge the same keypoints blend across it
    flat = joint_bilateral_upsample(values, torch.zeros(1, 3, 32, 32), 8)[0, 0]
    assert 1.5 < flat[0, 15].item() < 3.5


def test_network_outputs_and_input_checks():
    model = AnwarNet(AnwarConfig(**TINY))
    x = torch.rand(2, 3, 48, 64)
    logits = model.train()(x)["depth_logits"]
    assert logits.shape == (2, 21, 6, 8)
    with torch.no_grad():
        depth = model.eval()(x)["depth"]
    assert depth.shape == (2, 1, 48, 64)
    # the keypoint depths are class depths; the dense map stays within their range
    assert depth.min() >= 0.5 - 1e-6 and depth.max() <= 10.0 + 1e-5
    with pytest.raises(ValueError, match="multiples of 16"):
        model(torch.rand(1, 3, 40, 64))
    with pytest.raises(ConfigError, match="model.depth_min 3 must be below"):
        AnwarConfig(depth_min=3, depth_max=2)
    with pytest.raises(ConfigError, match="model.readout"):
        AnwarConfig(readout="mean")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['width'\]"):
        AnwarConfig.from_dict({"width": 3})


def test_no_gradient_chunks_give_the_same_logits(monkeypatch):
    from trainer.models import anwar

    torch.manual_seed(0)
    model = AnwarNet(AnwarConfig(**TINY)).eval()
    x = torch.rand(1, 3, 64, 64)
    whole = model.keypoint_logits(x)
    monkeypatch.setattr(anwar, "KEYPOINT_CHUNK", 9)  # one keypoint row per pass
    with torch.no_grad():
        chunked = model.keypoint_logits(x)
    assert torch.allclose(whole, chunked, atol=1e-6)
