"""MDDNet (He et al., seed 003): a GLPN encoder shared by a depth decoder and a defocus decoder.

Encoder: GLPN's hierarchical vision transformer (Kim et al. 2022, the MiT of SegFormer),
MiT-b4 as in GLPN's NYU model: 4 stages of depths 3 / 8 / 27 / 3, widths 64 / 128 / 320 /
512, attention heads 1 / 2 / 5 / 8, sequence reduction 8 / 4 / 2 / 1, features at 1/4,
1/8, 1/16 and 1/32 of the input. Hugging Face ``transformers`` (the optional extra
``mddnet``: ``pip install -e ".[mddnet]"``) provides the encoder and GLPN's decoder, built
from a config here (nothing is downloaded).

Decoders (one per map, alike): GLPN's, a 1x1 projection of the 1/32 feature to
``decoder_hidden_size`` channels then three selective-feature-fusion (SFF) modules that fuse
it with the 1/16, 1/8 and 1/4 features, x2 bilinear upsampling after each stage and once
more at the end (full resolution), then GLPN's head: 3x3 conv, ReLU, 3x3 conv to 1 channel.
The depth map is ``sigmoid * max_depth`` (GLPN's output, 10 m for NYU); the defocus map is a
softplus, the Gaussian sigma in pixels (>= 0), as the 2HDED:NET defocus head.

Parameters (MiT-b4, decoder width 64; :func:`parameter_counts`, checked in the tests by the
hand-counted :func:`mit_encoder_parameters` and :func:`sff_decoder_parameters`): encoder
60,842,688, each decoder with its head 378,215, total 61,599,118 with both maps; GLPN's NYU
model (one decoder) has 61,220,903, the "about 62 M" of MiT-b4 GLPN.

The encoder starts from GLPN's NYU weights with ``--encoder-weights`` (a local file or
folder, :mod:`trainer.models.glpn_weights`); the decoders start from scratch, as the paper
says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from defocuskit.errors import ConfigError
from trainer.model_config import DictConfig
from trainer.models import ModelSpec
from trainer.models.glpn_weights import load_glpn_encoder_weights

__all__ = ["SPEC", "MDDNet", "MDDNetConfig", "parameter_counts", "mit_encoder_parameters",
           "sff_decoder_parameters", "EXTRA_MISSING", "import_glpn"]

HEADS = ("depth", "defocus")
SIZE_MULTIPLE = 32
PATCH_SIZES = (7, 3, 3, 3)  # GLPN's overlapping patch embeddings (stride 4, 2, 2, 2)
EXTRA_MISSING = ('model mddnet needs the optional package transformers: pip install -e '
                 '".[mddnet]" (pinned in constraints.txt)')


def import_glpn():
    """``transformers``' GLPN classes, or one line naming the extra that provides them."""
    try:
        # transformers: optional (the mddnet extra), slow to import
        from transformers import GLPNConfig
        from transformers.models.glpn.modeling_glpn import GLPNDecoder, GLPNModel
    except ImportError:
        raise ConfigError(EXTRA_MISSING) from None
    return GLPNConfig, GLPNModel, GLPNDecoder


@dataclass
class MDDNetConfig(DictConfig):
    """Architecture of :class:`MDDNet` (defaults: MiT-b4 and GLPN's NYU decoder)."""

    config_of: ClassVar[str] = "mddnet"

    heads: tuple[str, ...] = HEADS  # any non-empty subset of depth, defocus
    depths: tuple[int, ...] = (3, 8, 27, 3)  # transformer layers per stage
    hidden_sizes: tuple[int, ...] = (64, 128, 320, 512)  # channels per stage
    num_attention_heads: tuple[int, ...] = (1, 2, 5, 8)
    sr_ratios: tuple[int, ...] = (8, 4, 2, 1)  # key / value sequence reduction per stage
    mlp_ratios: tuple[int, ...] = (4, 4, 4, 4)  # Mix-FFN width, in multiples of the stage's
    decoder_hidden_size: int = 64  # channels of each SFF decoder (even)
    max_depth: float = 10.0  # metres: the depth map is sigmoid * max_depth (GLPN NYU: 10)
    drop_path_rate: float = 0.1  # stochastic depth of the encoder (transformers' default)

    def __post_init__(self) -> None:
        if isinstance(self.heads, str):
            self.heads = tuple(h.strip() for h in self.heads.split(",") if h.strip())
        self.heads = SPEC.check_heads(self.heads)
        for name in ("depths", "hidden_sizes", "num_attention_heads", "sr_ratios",
                     "mlp_ratios"):
            value = tuple(getattr(self, name)) if isinstance(getattr(self, name),
                                                              list | tuple) else None
            if value is None or len(value) != 4 or any(
                    isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
                raise ConfigError(f"model.{name}: expected 4 positive integers (one per "
                                  f"encoder stage), got {getattr(self, name)!r}")
            setattr(self, name, value)
        bad = [i for i in range(4) if self.hidden_sizes[i] % self.num_attention_heads[i]]
        if bad:
            raise ConfigError(f"model.hidden_sizes {list(self.hidden_sizes)}: each must be a "
                              f"multiple of its num_attention_heads "
                              f"{list(self.num_attention_heads)} (stage {bad[0] + 1} is not)")
        c = self.decoder_hidden_size
        if isinstance(c, bool) or not isinstance(c, int) or c < 2 or c % 2:
            raise ConfigError(f"model.decoder_hidden_size: expected an even integer >= 2 "
                              f"(the SFF halves it), got {c!r}")
        if isinstance(self.max_depth, bool) or not isinstance(self.max_depth, int | float) \
                or not 0 < self.max_depth < float("inf"):
            raise ConfigError(f"model.max_depth: expected a positive number of metres, got "
                              f"{self.max_depth!r}")
        if isinstance(self.drop_path_rate, bool) or not isinstance(
                self.drop_path_rate, int | float) or not 0 <= self.drop_path_rate < 1:
            raise ConfigError(f"model.drop_path_rate: expected a number in [0, 1), got "
                              f"{self.drop_path_rate!r}")

    def glpn_config(self):
        """The equivalent ``transformers.GLPNConfig``."""
        GLPNConfig, _, _ = import_glpn()
        return GLPNConfig(depths=list(self.depths), hidden_sizes=list(self.hidden_sizes),
                          num_attention_heads=list(self.num_attention_heads),
                          sr_ratios=list(self.sr_ratios), mlp_ratios=list(self.mlp_ratios),
                          patch_sizes=list(PATCH_SIZES), strides=[4, 2, 2, 2],
                          decoder_hidden_size=self.decoder_hidden_size,
                          drop_path_rate=float(self.drop_path_rate))


class _MapDecoder(nn.Module):
    """GLPN's SFF decoder and head: the full-resolution map before its activation."""

    def __init__(self, glpn_config, decoder_class) -> None:
        super().__init__()
        c = glpn_config.decoder_hidden_size
        self.decoder = decoder_class(glpn_config)
        self.head = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(c, 1, 3, padding=1))

    def forward(self, features) -> Tensor:
        return self.head(self.decoder(list(features))[-1])


class MDDNet(nn.Module):
    """MDDNet: one focused (defocused) image in, a depth map and a defocus map out.

    Parameters
    ----------
    config : MDDNetConfig, optional
        Architecture; the default is MiT-b4 with both maps.

    ``forward(x)`` takes (B, 3, H, W) RGB in [0, 1] (GLPN's input: its image processor only
    rescales to [0, 1]), H and W multiples of 32, and returns ``"depth"`` (B, 1, H, W)
    metres in (0, max_depth) and ``"defocus"`` (B, 1, H, W) sigma in pixels, >= 0, for the
    configured heads.
    """

    def __init__(self, config: MDDNetConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else MDDNetConfig()
        _, GLPNModel, GLPNDecoder = import_glpn()
        glpn_config = self.config.glpn_config()
        # GLPNModel applies transformers' initialisation; its encoder is what is kept
        self.encoder = GLPNModel(glpn_config).encoder
        self.heads = nn.ModuleDict({h: _MapDecoder(glpn_config, GLPNDecoder)
                                    for h in self.config.heads})

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"MDDNet: expected input (B, 3, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE or h == 0 or w == 0:
            raise ValueError(f"MDDNet: input size {h}x{w} is not a multiple of "
                             f"{SIZE_MULTIPLE}; crop or pad the image")
        features = self.encoder(x, output_hidden_states=True).hidden_states
        out = {}
        for name, head in self.heads.items():
            y = head(features)
            out[name] = (torch.sigmoid(y) * self.config.max_depth if name == "depth"
                         else F.softplus(y))
        return out


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def parameter_counts(model) -> dict[str, int]:
    """``encoder``, one entry per head (its SFF decoder and head) and ``total``."""
    counts = {"encoder": _count(model.encoder)}
    counts.update({h: _count(head) for h, head in model.heads.items()})
    counts["total"] = _count(model)
    return counts


def mit_encoder_parameters(depths, hidden_sizes, sr_ratios, mlp_ratios=(4, 4, 4, 4),
                           patch_sizes=PATCH_SIZES, in_channels: int = 3) -> int:
    """Parameters of a MiT (GLPN / SegFormer) encoder, counted by hand from its layers."""
    total, cin = 0, in_channels
    for depth, c, r, ratio, k in zip(depths, hidden_sizes, sr_ratios, mlp_ratios,
                                     patch_sizes, strict=True):
        total += cin * c * k * k + c + 2 * c  # overlapping patch embedding conv + LayerNorm
        m = c * ratio
        block = (2 * c  # LayerNorm before attention
                 + 3 * (c * c + c)  # query, key, value
                 + ((c * c * r * r + c) + 2 * c if r > 1 else 0)  # reduction conv + LayerNorm
                 + c * c + c  # attention output
                 + 2 * c  # LayerNorm before the Mix-FFN
                 + c * m + m + 9 * m + m + m * c + c)  # dense, 3x3 depthwise conv, dense
        total += depth * block + 2 * c  # the stage's closing LayerNorm
        cin = c
    return total


def sff_decoder_parameters(hidden_sizes, width: int) -> int:
    """Parameters of one GLPN decoder (1x1 projections, 3 SFF modules) and its head."""
    c, half = width, width // 2
    proj = sum(h * c + c for h in hidden_sizes if h != c)  # none where the widths agree
    sff = (2 * c * c * 9 + c + 2 * c) + (c * half * 9 + half + 2 * half) + (half * 2 * 9 + 2)
    head = (c * c * 9 + c) + (c * 9 + 1)
    return proj + 3 * sff + head


def _load_encoder_weights(model, path) -> dict:
    return load_glpn_encoder_weights(model, path)


SPEC = ModelSpec(
    name="mddnet", title="MDDNet", heads=HEADS, default_heads=HEADS, input_range="unit",
    preset="mddnet", size_multiple=SIZE_MULTIPLE,
    make_config=lambda heads, overrides: MDDNetConfig.from_dict(
        {**dict(overrides), "heads": tuple(heads)}),
    config_from_dict=MDDNetConfig.from_dict, build=MDDNet,
    load_encoder_weights=_load_encoder_weights, parameter_counts=parameter_counts,
    encoder_weights_help="GLPN's NYU model (transformers GLPNForDepthEstimation keys), a "
                         "file or a folder",
    # one transformer layer per stage, 8-channel decoders: every code path, about 122 k
    smoke_config={"depths": [1, 1, 1, 1], "hidden_sizes": [8, 16, 32, 64],
                  "num_attention_heads": [1, 1, 2, 2], "decoder_hidden_size": 8})
