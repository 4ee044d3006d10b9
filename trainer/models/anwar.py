"""Anwar et al. (seed 001): depth from one defocused image by patch-pooled classification.

Network A: VGG16's 13 convolutions (3x3, padding 1, ReLU; widths 64, 64 | 128, 128 | 256 x 3
| 512 x 3 | 512 x 3) with a 2x2 max pool after each of the first four blocks (the paper's
Table 1: four max pools, then the patch pooling in place of the fifth), so the feature map
is 1/16 of the input. The input is mean-RGB normalised: ``(x - mean_rgb) / std_rgb`` with
``mean_rgb`` the training split's mean colour (the paper: "computed separately" per
dataset) and ``std_rgb`` ImageNet's, which torchvision's VGG16 weights were trained with.

Patch pooling: one keypoint per ``keypoint_stride`` pixels on a regular grid; each
keypoint's ``patch_px`` x ``patch_px`` window of the feature map is max-pooled to
``pool_size`` x ``pool_size`` (:mod:`trainer.models.anwar_parts`).

Network B: three fully connected layers on each pooled patch, ``C * pool^2 -> fc_width ->
fc_width -> n_classes`` with ReLU and dropout after the first two (VGG16's classifier, with
21 classes instead of 1000), giving the logits of the depth classes (log-spaced from
``depth_min`` to ``depth_max``). Trained with the softmax loss of
:class:`~trainer.models.anwar_parts.AnwarLoss`.

Dense depth (eval mode): each keypoint's depth (its arg-max class depth, or with
``readout = "expectation"`` the softmax-weighted mean in log depth) is upsampled to every
pixel by joint bilateral upsampling guided by the input image.

Initialisation: torchvision's VGG16 (``torchvision.models.vgg._initialize_weights``):
convolutions Kaiming-normal (fan out, ReLU gain), linear layers normal with std 0.01,
biases zero. PyTorch's default layer init scales each layer's signal by about 1/sqrt(6)
(gain 1/3 on the variance, halved again by the ReLU), so after 13 convolutions from scratch
the features hardly depend on the input and the classifier sees one vector everywhere.

Parameters (defaults; :func:`parameter_counts`, checked in the tests against
:func:`hand_count`): network A 14,714,688 (VGG16's convolutions), network B 119,631,893,
total 134,346,581; VGG16 has 138,357,544 (its last layer has 1000 outputs, not 21).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from defocuskit.errors import ConfigError
from trainer.model_config import DictConfig
from trainer.models import ModelSpec, anwar_io
from trainer.models.anwar_parts import (
    AnwarLoss,
    class_depths,
    joint_bilateral_upsample,
    keypoint_positions,
    patch_pool,
    patch_windows,
)

__all__ = ["SPEC", "AnwarNet", "AnwarConfig", "parameter_counts", "hand_count",
           "VGG16_BLOCKS", "FEATURE_STRIDE"]

VGG16_BLOCKS = (2, 2, 3, 3, 3)  # convolutions per block: 13
FEATURE_STRIDE = 16  # four 2x2 max pools
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
READOUTS = ("argmax", "expectation")
KEYPOINT_CHUNK = 4096  # keypoints per pass through network B without gradients


@dataclass
class AnwarConfig(DictConfig):
    """Architecture of :class:`AnwarNet` (defaults: the paper's, VGG16 widths)."""

    config_of: ClassVar[str] = "anwar"

    heads: tuple[str, ...] = ("depth",)
    widths: tuple[int, ...] = (64, 128, 256, 512, 512)  # channels of the 5 conv blocks
    fc_width: int = 4096  # network B's two hidden layers
    pool_size: int = 7  # each patch max-pooled to pool_size x pool_size (VGG's 7x7)
    n_classes: int = 21
    keypoint_stride: int = 4  # pixels between keypoints (NYU 420x640: 16,800, the paper 15K)
    patch_px: int = 64  # the paper's 64x64 neighbourhood of a keypoint
    depth_min: float = 0.5  # metres: the first and last class depths (a run on a dataset
    depth_max: float = 10.0  # takes its training split's range unless set)
    mean_rgb: tuple[float, ...] = IMAGENET_MEAN  # a run takes its training split's mean
    std_rgb: tuple[float, ...] = IMAGENET_STD
    dropout: float = 0.5  # after network B's hidden layers (VGG16's classifier)
    readout: str = "argmax"  # keypoint depth: arg-max class, or "expectation" in log depth
    sigma_spatial: float = 1.0  # upsampling: keypoint spacings
    sigma_range: float = 0.1  # upsampling: RGB in [0, 1]
    upsample_radius: int = 2  # upsampling: keypoint cells either side
    camera: dict | None = None  # the training data's camera, for the pipeline's AiF

    def __post_init__(self) -> None:
        if isinstance(self.heads, str):
            self.heads = tuple(h.strip() for h in self.heads.split(",") if h.strip())
        self.heads = SPEC.check_heads(self.heads)
        self.widths = _ints("widths", self.widths, 5)
        self.mean_rgb = _floats("mean_rgb", self.mean_rgb, 3)
        self.std_rgb = _floats("std_rgb", self.std_rgb, 3, positive=True)
        for name, lo in (("fc_width", 1), ("pool_size", 1), ("n_classes", 2),
                         ("keypoint_stride", 1), ("patch_px", 1), ("upsample_radius", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ConfigError(f"model.{name}: expected an integer >= {lo}, got {v!r}")
        for name in ("depth_min", "depth_max", "sigma_spatial", "sigma_range"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 1e9:
                raise ConfigError(f"model.{name}: expected a positive number, got {v!r}")
        if not self.depth_min < self.depth_max:
            raise ConfigError(f"model.depth_min {self.depth_min} must be below depth_max "
                              f"{self.depth_max} (metres)")
        if isinstance(self.dropout, bool) or not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout: expected a number in [0, 1), got "
                              f"{self.dropout!r}")
        if self.readout not in READOUTS:
            raise ConfigError(f"model.readout: expected one of {list(READOUTS)}, got "
                              f"{self.readout!r}")
        if self.camera is not None and not isinstance(self.camera, dict):
            raise ConfigError(f"model.camera: expected a mapping or null, got "
                              f"{type(self.camera).__name__}")


def _ints(name, value, n) -> tuple[int, ...]:
    ok = isinstance(value, list | tuple) and len(value) == n and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    if not ok:
        raise ConfigError(f"model.{name}: expected {n} positive integers, got {value!r}")
    return tuple(value)


def _floats(name, value, n, positive=False) -> tuple[float, ...]:
    ok = isinstance(value, list | tuple) and len(value) == n and all(
        isinstance(v, int | float) and not isinstance(v, bool) and (v > 0 or not positive)
        for v in value)
    if not ok:
        raise ConfigError(f"model.{name}: expected {n} {'positive ' if positive else ''}"
                          f"numbers, got {value!r}")
    return tuple(float(v) for v in value)


def _vgg_features(widths) -> nn.Sequential:
    """Network A, laid out as torchvision's ``vgg16().features`` without its last pool, so
    the indices (and ``features.N.weight`` keys) are torchvision's."""
    layers: list[nn.Module] = []
    cin = 3
    for block, (n, c) in enumerate(zip(VGG16_BLOCKS, widths, strict=True)):
        for _ in range(n):
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.ReLU(inplace=True)]
            cin = c
        if block < 4:
            layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


def _init_weights(model: nn.Module) -> None:
    """torchvision's VGG initialisation (module doc), in place."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


class AnwarNet(nn.Module):
    """Anwar et al.'s depth network (module doc).

    ``forward(x)`` takes (B, 3, H, W) RGB in [0, 1], H and W multiples of 16 and at least
    ``keypoint_stride``. In train mode it returns ``{"depth_logits": (B, n_classes, gh,
    gw)}`` (one keypoint per ``keypoint_stride`` pixels); in eval mode ``{"depth": (B, 1,
    H, W)}`` metres, the dense upsampled depth.
    """

    def __init__(self, config: AnwarConfig | None = None) -> None:
        super().__init__()
        self.config = c = config if config is not None else AnwarConfig()
        self.features = _vgg_features(c.widths)
        width = c.widths[-1] * c.pool_size ** 2
        self.classifier = nn.Sequential(
            nn.Linear(width, c.fc_width), nn.ReLU(inplace=True), nn.Dropout(c.dropout),
            nn.Linear(c.fc_width, c.fc_width), nn.ReLU(inplace=True), nn.Dropout(c.dropout),
            nn.Linear(c.fc_width, c.n_classes))
        _init_weights(self)
        self.register_buffer("mean_rgb", torch.tensor(c.mean_rgb).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std_rgb", torch.tensor(c.std_rgb).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("log_class_depths",
                             class_depths(c.depth_min, c.depth_max, c.n_classes).log(),
                             persistent=False)

    def _check(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"AnwarNet: expected input (B, 3, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        s = self.config.keypoint_stride
        if h % FEATURE_STRIDE or w % FEATURE_STRIDE or min(h, w) < max(s, FEATURE_STRIDE):
            raise ValueError(f"AnwarNet: input size {h}x{w} must be multiples of "
                             f"{FEATURE_STRIDE}, at least {max(s, FEATURE_STRIDE)}; crop or "
                             "pad the image")

    def keypoint_logits(self, x: Tensor) -> Tensor:
        """(B, n_classes, gh, gw) class logits of the keypoints of ``x``."""
        self._check(x)
        c = self.config
        feat = self.features((x - self.mean_rgb) / self.std_rgb)
        ys = keypoint_positions(x.shape[-2], c.keypoint_stride)
        xs = keypoint_positions(x.shape[-1], c.keypoint_stride)
        rows = patch_windows(ys, c.patch_px, FEATURE_STRIDE, feat.shape[-2])
        cols = patch_windows(xs, c.patch_px, FEATURE_STRIDE, feat.shape[-1])
        # without gradients, network B runs over a few keypoint rows at a time (memory)
        step = len(rows) if torch.is_grad_enabled() else max(1, KEYPOINT_CHUNK // len(cols))
        parts = [self.classifier(patch_pool(feat, rows[i:i + step], cols, c.pool_size))
                 for i in range(0, len(rows), step)]
        return torch.cat(parts, 1).permute(0, 3, 1, 2)

    def keypoint_depth(self, logits: Tensor) -> Tensor:
        """(B, 1, gh, gw) metres from the logits (``readout``)."""
        logd = self.log_class_depths.to(logits.dtype)
        if self.config.readout == "argmax":
            return logd[logits.argmax(1, keepdim=True)].exp()
        p = torch.softmax(logits, 1)
        return (p * logd.view(1, -1, 1, 1)).sum(1, keepdim=True).exp()

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        logits = self.keypoint_logits(x)
        if self.training:
            return {"depth_logits": logits}
        c = self.config
        depth = joint_bilateral_upsample(
            self.keypoint_depth(logits.float()), x.float(), c.keypoint_stride,
            sigma_spatial=c.sigma_spatial, sigma_range=c.sigma_range,
            radius=c.upsample_radius)
        return {"depth": depth}


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def parameter_counts(model: AnwarNet) -> dict[str, int]:
    """``encoder`` (network A), ``depth`` (network B) and ``total``."""
    return {"encoder": _count(model.features), "depth": _count(model.classifier),
            "total": _count(model)}


def hand_count(widths=(64, 128, 256, 512, 512), fc_width: int = 4096, pool_size: int = 7,
               n_classes: int = 21) -> dict[str, int]:
    """The parameters of :func:`parameter_counts`, counted from the layer list."""
    conv, cin = 0, 3
    for n, c in zip(VGG16_BLOCKS, widths, strict=True):
        for _ in range(n):
            conv += 9 * cin * c + c  # 3x3 kernel and bias
            cin = c
    d = cin * pool_size * pool_size
    fc = (d * fc_width + fc_width) + (fc_width * fc_width + fc_width) \
        + (fc_width * n_classes + n_classes)
    return {"encoder": conv, "depth": fc, "total": conv + fc}


def _make_criterion(cfg, model_cfg: AnwarConfig):
    """The softmax loss of the keypoint classes (replaces the trainer's map losses)."""
    if cfg.method != "supervised":
        raise ConfigError(f"method {cfg.method}: model anwar trains by supervised depth "
                          "classification only")
    return AnwarLoss(model_cfg.depth_min, model_cfg.depth_max, model_cfg.n_classes,
                     model_cfg.keypoint_stride)


def _load(name):
    def call(*args, **kwargs):
        return getattr(anwar_io, name)(*args, **kwargs)
    return call


SPEC = ModelSpec(
    name="anwar", title="Anwar et al.", heads=("depth",), default_heads=("depth",),
    input_range="unit", preset="anwar", size_multiple=FEATURE_STRIDE,
    make_config=lambda heads, overrides: AnwarConfig.from_dict(
        {**dict(overrides), "heads": tuple(heads)}),
    config_from_dict=AnwarConfig.from_dict, build=AnwarNet,
    load_encoder_weights=_load("load_vgg16_weights"), parameter_counts=parameter_counts,
    encoder_weights_help="a torchvision VGG16 state dict file (ImageNet; features.N and "
                         "classifier.0 / classifier.3 are loaded)",
    make_criterion=_make_criterion, data_overrides=_load("data_overrides"),
    # the pipeline's AiF: the input deconvolved with the predicted depth's blur
    derived_outputs=("aif",), derive=_load("derive_aif"),
    smoke_config={"widths": [4, 4, 8, 8, 8], "fc_width": 16, "pool_size": 2,
                  "keypoint_stride": 8})
