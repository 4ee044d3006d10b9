"""Anwar et al.'s network can learn: its features depend on the input at initialisation, a
tiny one overfits one batch of keypoint labels, and the class mapping round-trips (class
depth -> label -> the network's read-out depth) in closed form."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.models.anwar import AnwarConfig, AnwarNet
from trainer.models.anwar_parts import AnwarLoss, class_depths, depth_to_class

pytestmark = pytest.mark.usefixtures("one_thread")

# learning_anwar.py --quick's reduced width
BENCH = {"widths": [16, 32, 64, 64, 64], "fc_width": 256, "pool_size": 3,
         "keypoint_stride": 8}


def _input_dependent_std(h: torch.Tensor) -> float:
    """Std of the part of ``h`` that changes from one image of the batch to another."""
    return (h - h.mean(0, keepdim=True)).std().item()


def test_network_a_keeps_the_input_signal_at_initialisation():
    # With PyTorch's default layer init each ReLU convolution scales the signal by about
    # 1/sqrt(6): 13 of them leave ~1e-6 of it (measured 1.2e-6 to 1.8e-6 over 4 seeds, and
    # ~2e-7 in the logits), and every image gives the same features. With VGG's init:
    # 0.025 to 0.048, and 0.9e-4 to 2e-4 in the logits (small by design: std 0.01 FCs).
    torch.manual_seed(0)
    model = AnwarNet(AnwarConfig(**BENCH)).eval()  # eval: no dropout noise in the logits
    x = torch.rand(4, 3, 64, 64)
    z = (x - model.mean_rgb) / model.std_rgb
    with torch.no_grad():
        ratio = _input_dependent_std(model.features(z)) / _input_dependent_std(z)
        logits = model.keypoint_logits(x)
    assert ratio > 0.01
    # ... and so do the logits: the keypoints' class scores differ from image to image
    assert _input_dependent_std(logits) > 2e-5


def _one_batch(n_classes: int = 21):
    """4 images of 64x64 in 16-px cells: each cell's grey level is its depth class / 20 and
    its depth that class's depth, so the class is visible at every keypoint."""
    g = torch.Generator().manual_seed(3)
    classes = torch.randint(0, n_classes, (4, 4, 4), generator=g)
    depths = class_depths(0.5, 10.0, n_classes)[classes]
    up = torch.nn.Upsample(scale_factor=16, mode="nearest")
    grey = up((classes.float() / (n_classes - 1))[:, None])
    image = (grey + 0.02 * torch.randn(4, 1, 64, 64, generator=g)).expand(4, 3, 64, 64)
    return image.clamp(0, 1).contiguous(), up(depths[:, None]), classes


def test_a_tiny_network_overfits_one_batch():
    torch.manual_seed(0)
    cfg = AnwarConfig(widths=(8, 8, 16, 16, 16), fc_width=64, pool_size=1,
                      keypoint_stride=16, patch_px=16, dropout=0.0)
    model = AnwarNet(cfg).train()
    loss_fn = AnwarLoss(cfg.depth_min, cfg.depth_max, cfg.n_classes, cfg.keypoint_stride)
    image, depth, classes = _one_batch()
    # the keypoint labels are the cells' classes (keypoints at the cells' centres)
    assert torch.equal(loss_fn.labels(depth, 4, 4), classes)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        opt.zero_grad()
        loss, terms = loss_fn(model(image), {"depth": depth})
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * math.log(21)
    with torch.no_grad():
        logits = model(image)["depth_logits"]
    assert (logits.argmax(1) == classes).float().mean().item() >= 0.9


@pytest.mark.parametrize("n", [2, 5, 21])
def test_class_depth_label_readout_round_trip(n):
    d = class_depths(0.7, 9.6, n)
    # class k's depth is labelled k; the log-midpoints between classes are the boundaries
    assert depth_to_class(d, 0.7, 9.6, n).tolist() == list(range(n))
    mid = torch.sqrt(d[:-1] * d[1:])
    assert depth_to_class(mid * 0.999, 0.7, 9.6, n).tolist() == list(range(n - 1))
    assert depth_to_class(mid * 1.001, 0.7, 9.6, n).tolist() == list(range(1, n))
    model = AnwarNet(AnwarConfig(widths=(1, 1, 1, 1, 1), fc_width=1, pool_size=1,
                                 n_classes=n, depth_min=0.7, depth_max=9.6))
    onehot = 30.0 * torch.eye(n).view(1, n, 1, n)  # keypoint k: class k dominates
    assert torch.allclose(model.keypoint_depth(onehot)[0, 0, 0], d, rtol=1e-5)
    model.config.readout = "expectation"
    assert torch.allclose(model.keypoint_depth(onehot)[0, 0, 0], d, rtol=1e-5)
    # equal scores: the mean of evenly spaced log depths, the geometric mean of the ends
    flat = model.keypoint_depth(torch.zeros(1, n, 1, 1)).item()
    assert flat == pytest.approx(math.sqrt(0.7 * 9.6), rel=1e-5)
