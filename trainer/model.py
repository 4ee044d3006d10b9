"""2HDED:NET: a DenseNet-121 encoder shared by a depth head and an all-in-focus (AiF) head.

Architecture (Nazir et al. 2023, Table I), written here because torchvision is not a
dependency; :mod:`trainer.pretrained` copies ImageNet DenseNet-121 weights from a local
torchvision-format file into the encoder, as the official code does.

Encoder (DenseNet-121, growth 32, blocks 6/12/24/16, bottleneck width 4 x growth). The stem's
3x3 max-pool is replaced by a 4x4 stride-2 convolution (64 -> 64 channels, then BN + ReLU).
The five skip tensors are taken where Table I places its Conv1..Conv5 rows; for a 256 x 256
input they are

=====  ====================================================  ========  ========
row    DenseNet tensor                                       size      channels
=====  ====================================================  ========  ========
Conv1  stem 7x7 stride-2 conv + BN + ReLU                    128^2     64
Conv2  transition 1, its 1x1 conv *before* the 2x2 avg-pool  64^2      128
Conv3  transition 2, 1x1 conv before its pool                32^2      256
Conv4  transition 3, 1x1 conv before its pool                16^2      512
Conv5  dense block 4 + final BN + ReLU                       8^2       1024
=====  ====================================================  ========  ========

Taking the transitions' 1x1 outputs before pooling gives Table I's sizes and channel counts
exactly, with no extra projection layers.

Decoders (one per head, identical except for the output channels), with the skip wiring
of the official code and its parent D3-Net (Carvalho et al., ECCV-W 2018) but none of the
official code's extra layers (attention gates on three skips, a 3x3 stem conv, LeakyReLU,
dropout; docs/trainer.md lists them): the skip tensor is
concatenated *before* each decoding block, and each block is a 4x4 stride-2 transposed
convolution then a 3x3 convolution, BN + ReLU after each (no bias: BN follows). Table I's
"Input/C" column gives the five block inputs:

=====  ==========================  ==========  ======  ========
block  input                       input size  out     out size
=====  ==========================  ==========  ======  ========
1      Conv5                       1024 @ 8^2   512    16^2
2      block 1 + Conv4 (512+512)   1024 @ 16^2  256    32^2
3      block 2 + Conv3 (256+256)    512 @ 32^2  128    64^2
4      block 3 + Conv2 (128+128)    256 @ 64^2   64    128^2
5      block 4 + Conv1 (64+64)      128 @ 128^2  64    256^2
=====  ==========================  ==========  ======  ========

then a separate 3x3 prediction convolution (64 -> 1 for depth, 64 -> 3 for the AiF; with
bias, no BN / ReLU). The AiF head adds the input image to its output (the "input joint
layer", a global residual), always the image in [0, 1]: ``input_range="centred"`` (the
official code's ``img * 2 - 1``) changes only what the encoder sees, so the AiF output and
its loss stay in the image's own range. A third, optional head, ``defocus`` (the defocus-map head of
the thesis's self-supervised variant and of MDDNet), has the depth head's shape and a
softplus on its output: the per-pixel Gaussian sigma in pixels, >= 0 (17,199,681
parameters like the depth head). A reduced-width :class:`ModelConfig` (tests) follows the same
rule: each block outputs the width of the skip it is concatenated with next
(:func:`decoder_channels`).

Parameter count (weights, biases and BN affine parameters; BN running statistics are
buffers): encoder 7,019,520 (DenseNet-121 features 6,953,856 plus the 4x4 stem conv and
its BN, 65,664), depth head 17,199,681, AiF head 17,200,835; 41,420,036 in all, the
"41.4 M" of this layout (the paper rounds to 41 M).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from defocuskit.errors import ConfigError
from trainer.camera_input import CameraFiLM
from trainer.model_config import DictConfig

__all__ = [
    "ModelConfig",
    "TwoHeadedNet",
    "count_parameters",
    "decoder_channels",
    "KNOWN_HEADS",
    "SIZE_MULTIPLE",
    "INPUT_RANGES",
]

KNOWN_HEADS = ("depth", "aif", "defocus")
# what the encoder sees of an image x in [0, 1]: "unit" x itself, "centred" 2x - 1 (the
# official code's data loader; the paper's "centred scaling")
INPUT_RANGES = ("unit", "centred")
SIZE_MULTIPLE = 32  # total downsampling of the encoder
_HEAD_CHANNELS = {"depth": 1, "aif": 3, "defocus": 1}


@dataclass
class ModelConfig(DictConfig):
    """Architecture hyper-parameters of :class:`TwoHeadedNet` (defaults = the paper's)."""

    heads: tuple[str, ...] = ("depth", "aif")  # any non-empty subset of KNOWN_HEADS
    growth_rate: int = 32  # channels each dense layer adds (DenseNet-121: 32)
    block_config: tuple[int, ...] = (6, 12, 24, 16)  # dense layers per block (must be 4 blocks)
    num_init_features: int = 64  # channels of the stem convolutions
    bn_size: int = 4  # bottleneck width of a dense layer, in multiples of growth_rate
    input_range: str = "unit"  # encoder input: "unit" x, or "centred" 2x - 1 (INPUT_RANGES)
    camera_input: bool = False  # FiLM from each sample's camera (trainer.camera_input)

    def __post_init__(self) -> None:
        if self.input_range not in INPUT_RANGES:
            raise ConfigError(f"model.input_range: expected one of {list(INPUT_RANGES)}, got "
                              f"{self.input_range!r}")
        if isinstance(self.heads, str):  # "depth,aif" as written on a command line
            self.heads = tuple(h.strip() for h in self.heads.split(",") if h.strip())
        self.heads = tuple(self.heads)
        self.block_config = tuple(self.block_config)
        bad = [h for h in self.heads if h not in KNOWN_HEADS]
        if not self.heads or bad or len(set(self.heads)) != len(self.heads):
            raise ConfigError(
                f"model.heads: expected a non-empty subset of {list(KNOWN_HEADS)} without "
                f"repeats, got {list(self.heads)}"
            )
        if not isinstance(self.camera_input, bool):
            raise ConfigError(f"model.camera_input: expected true or false, got "
                              f"{self.camera_input!r}")
        if len(self.block_config) != 4:
            raise ConfigError(
                f"model.block_config: expected 4 dense blocks (5 skip levels), got "
                f"{list(self.block_config)}"
            )
        for name in ("growth_rate", "num_init_features", "bn_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"model.{name}: expected a positive integer, got {value!r}")
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.block_config):
            raise ConfigError(
                f"model.block_config: expected positive integers, got {list(self.block_config)}"
            )


def _conv_bn_relu(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class _DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1 (bn_size * k) then BN-ReLU-Conv3x3 (k); output concatenated by caller."""

    def __init__(self, in_ch: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        mid = bn_size * growth_rate
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_ch, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, growth_rate, 3, padding=1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class _DenseBlock(nn.Module):
    def __init__(self, n_layers: int, in_ch: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            _DenseLayer(in_ch + i * growth_rate, growth_rate, bn_size) for i in range(n_layers)
        )
        self.out_channels = in_ch + n_layers * growth_rate

    def forward(self, x: Tensor) -> Tensor:
        feats = [x]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, 1)))
        return torch.cat(feats, 1)


class _Encoder(nn.Module):
    """DenseNet-121 with a strided 4x4 conv in place of the stem max-pool; returns 5 skips."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        k, c = cfg.growth_rate, cfg.num_init_features
        self.stem = _conv_bn_relu(nn.Conv2d(3, c, 7, stride=2, padding=3, bias=False), c)
        self.stem_down = _conv_bn_relu(nn.Conv2d(c, c, 4, stride=2, padding=1, bias=False), c)
        self.blocks = nn.ModuleList()
        self.transitions = nn.ModuleList()
        for i, n_layers in enumerate(cfg.block_config):
            block = _DenseBlock(n_layers, c, k, cfg.bn_size)
            self.blocks.append(block)
            c = block.out_channels
            if i < len(cfg.block_config) - 1:  # transition: BN-ReLU-1x1 halving the channels
                self.transitions.append(
                    nn.Sequential(
                        nn.BatchNorm2d(c),
                        nn.ReLU(inplace=True),
                        nn.Conv2d(c, c // 2, 1, bias=False),
                    )
                )
                c //= 2
        self.final = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.pool = nn.AvgPool2d(2, stride=2)
        # channels of Conv1..Conv5 (Table I: 64, 128, 256, 512, 1024 for DenseNet-121)
        self.skip_channels = (
            [cfg.num_init_features] + [t[2].out_channels for t in self.transitions] + [c]
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        skips = [self.stem(x)]
        y = self.stem_down(skips[0])
        for block, trans in zip(self.blocks[:-1], self.transitions, strict=True):
            y = trans(block(y))
            skips.append(y)
            y = self.pool(y)
        skips.append(self.final(self.blocks[-1](y)))
        return skips


class _DecodingBlock(nn.Module):
    """4x4 stride-2 transposed conv -> BN -> ReLU -> 3x3 conv -> BN -> ReLU (x2 upsampling)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.up = _conv_bn_relu(
            nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1, bias=False), out_ch
        )
        self.conv = _conv_bn_relu(nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), out_ch)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.up(x))


def decoder_channels(skip_channels: list[int]) -> list[tuple[int, int]]:
    """(input, output) channels of the five decoding blocks for encoder skips Conv1..Conv5.

    Block 1 reads Conv5 alone; block ``i > 1`` reads block ``i - 1``'s output concatenated
    with the skip of the same size, so each block outputs as many channels as that skip has,
    and the last block (at full resolution, no skip left) keeps Conv1's width.
    For DenseNet-121 (skips 64, 128, 256, 512, 1024) the inputs are 1024, 1024, 512, 256,
    128 (Table I's "Input/C" column) and the outputs 512, 256, 128, 64, 64.
    """
    s = list(skip_channels)
    outs = s[-2::-1] + [s[0]]  # [Conv4, Conv3, Conv2, Conv1, Conv1] widths
    ins = [s[-1]] + [o + k for o, k in zip(outs[:-1], s[-2::-1], strict=True)]
    return list(zip(ins, outs, strict=True))


class _Decoder(nn.Module):
    """Five decoding blocks from Conv5 to full resolution, skips concatenated before each
    block after the first, then a 3x3 prediction conv (with bias, no BN / ReLU)."""

    def __init__(self, skip_channels: list[int], out_channels: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            _DecodingBlock(cin, cout) for cin, cout in decoder_channels(skip_channels)
        )
        width = self.blocks[-1].conv[0].out_channels
        self.predict = nn.Conv2d(width, out_channels, 3, padding=1)

    def forward(self, skips: list[Tensor], film=None) -> Tensor:
        y = self.blocks[0](skips[-1])
        for block, skip in zip(self.blocks[1:], skips[-2::-1], strict=True):
            y = block(torch.cat([y, skip], 1))
        return self.predict(y if film is None else film(y))


class TwoHeadedNet(nn.Module):
    """2HDED:NET: one defocused image in, metric depth and the AiF image out.

    Parameters
    ----------
    config : ModelConfig, optional
        Architecture; the default is the paper's (both heads, DenseNet-121).

    Examples
    --------
    >>> net = TwoHeadedNet(ModelConfig(heads=("depth",)))
    >>> out = net(torch.rand(1, 3, 64, 96))
    >>> tuple(out["depth"].shape)
    (1, 1, 64, 96)
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else ModelConfig()
        self.encoder = _Encoder(self.config)
        self.heads = nn.ModuleDict(
            {h: _Decoder(self.encoder.skip_channels, _HEAD_CHANNELS[h]) for h in self.config.heads}
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if "aif" in self.heads:
            # The AiF head predicts a residual over its input (the input joint layer): a zero
            # last layer makes it start as the identity, i.e. at the input's own PSNR,
            # instead of adding random noise to the image.
            nn.init.zeros_(self.heads["aif"].predict.weight)
        self.camera = None
        if self.config.camera_input:  # after the init above: the other weights are unchanged
            width = self.heads[self.config.heads[0]].predict.in_channels
            self.camera = CameraFiLM({"conv5": self.encoder.skip_channels[-1],
                                      **{f"head_{h}": width for h in self.config.heads}})

    def forward(self, x: Tensor, camera: Tensor | None = None) -> dict[str, Tensor]:
        """Predict the configured heads.

        Parameters
        ----------
        x : (B, 3, H, W) float Tensor
            Defocused RGB image in [0, 1]; H and W must be multiples of 32. With
            ``input_range="centred"`` the encoder sees ``2x - 1``; the AiF residual adds
            ``x`` itself, so the AiF stays in [0, 1] either way.
        camera : (B, 3) float Tensor, optional
            The camera features (:func:`trainer.camera_input.camera_features`); required
            when the model was built with ``camera_input``, refused otherwise.

        Returns
        -------
        dict[str, Tensor]
            ``"depth"``: (B, 1, H, W), metres (unconstrained regression output);
            ``"aif"``: (B, 3, H, W), all-in-focus RGB in about [0, 1] (decoder output plus
            the input image); ``"defocus"``: (B, 1, H, W), the Gaussian blur sigma of each
            pixel, pixels, > 0 (softplus of the prediction conv). Only the configured heads
            are present.

        Raises
        ------
        ValueError
            If ``x`` is not (B, 3, H, W) with H and W multiples of 32.
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"TwoHeadedNet: expected input (B, 3, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE or h == 0 or w == 0:
            raise ValueError(
                f"TwoHeadedNet: input size {h}x{w} is not a multiple of {SIZE_MULTIPLE}; "
                f"crop or pad the image (e.g. to {-(-h // 32) * 32}x{-(-w // 32) * 32})"
            )
        skips = self.encoder(x * 2 - 1 if self.config.input_range == "centred" else x)
        film = {}
        if self.camera is not None:
            if camera is None:
                raise ValueError("TwoHeadedNet: built with camera_input; pass camera=")
            skips[-1] = self.camera(skips[-1], "conv5", camera)
            film = {h: (lambda y, h=h: self.camera(y, f"head_{h}", camera)) for h in self.heads}
        elif camera is not None:
            raise ValueError("TwoHeadedNet: camera given to a model built without camera_input")
        out = {}
        for name, head in self.heads.items():
            y = head(skips, film.get(name))
            if name == "aif":
                y = y + x  # input joint layer: global residual
            elif name == "defocus":
                # softplus, not ReLU: sigma must be >= 0 for the re-blur, and a ReLU would
                # give pixels predicted negative (about half of them at initialisation) no
                # gradient at all; softplus is smooth with a gradient everywhere and only
                # approaches 0 px (softplus(-5) = 0.007 px, far below any visible blur)
                y = F.softplus(y)
            out[name] = y
        return out


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``model`` (all, or only those requiring grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
