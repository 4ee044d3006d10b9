"""Tests of trainer.model: shapes, size checks, parameter count, config, input joint layer."""

import pytest

torch = pytest.importorskip("torch")

from defocuskit.errors import ConfigError  # noqa: E402
from trainer.checkpoint import (  # noqa: E402
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from trainer.losses import TwoHeadedLoss  # noqa: E402
from trainer.model import ModelConfig, TwoHeadedNet, count_parameters  # noqa: E402

# torchvision's published size of densenet121 (all parameters, ImageNet classifier included)
TORCHVISION_DENSENET121_PARAMS = 7_978_856
CLASSIFIER_PARAMS = 1024 * 1000 + 1000
# one dense layer per block: the code paths of DenseNet-121 at a few thousand parameters
TINY = {"growth_rate": 4, "block_config": (1, 1, 1, 1), "num_init_features": 8}


def _bn(c):
    return 2 * c  # weight + bias


def densenet_features_params(k=32, blocks=(6, 12, 24, 16), c0=64, bn_size=4):
    """Hand count of DenseNet's feature extractor (stem conv7 + BN, blocks, transitions, BN)."""
    total = 3 * c0 * 49 + _bn(c0)
    c = c0
    for i, n in enumerate(blocks):
        for _ in range(n):
            total += _bn(c) + c * bn_size * k + _bn(bn_size * k) + bn_size * k * k * 9
            c += k
        if i < len(blocks) - 1:
            total += _bn(c) + c * (c // 2)
            c //= 2
    return total + _bn(c)


# Table I's "Input/C" column: the inputs of the five decoding blocks (skip already
# concatenated), and what each block must output for the next concatenation to give them
DECODER_IN = (1024, 1024, 512, 256, 128)
DECODER_OUT = (512, 256, 128, 64, 64)


def decoder_params(out_ch, ins=DECODER_IN, outs=DECODER_OUT):
    """Hand count of one head: 5 x (convT 4x4 + BN, conv 3x3 + BN), then a 3x3 conv with bias."""
    total = 0
    for cin, cout in zip(ins, outs, strict=True):
        total += cin * cout * 4 * 4 + _bn(cout) + cout * cout * 3 * 3 + _bn(cout)
    return total + outs[-1] * out_ch * 3 * 3 + out_ch


def test_densenet_hand_count_matches_published_figure():
    assert densenet_features_params() == TORCHVISION_DENSENET121_PARAMS - CLASSIFIER_PARAMS


def test_decoder_widths_follow_table_one():
    # skip widths 64, 128, 256, 512, 1024 (Conv1..Conv5) give Table I's block inputs
    skips = (64, 128, 256, 512, 1024)
    ins = [DECODER_OUT[i - 1] + skips[4 - i] if i else skips[4] for i in range(5)]
    assert tuple(ins) == DECODER_IN


def test_parameter_count_matches_hand_count():
    net = TwoHeadedNet()
    stem_swap = 64 * 64 * 4 * 4 + _bn(64)  # 4x4 strided conv + BN replacing the max-pool
    expected_encoder = densenet_features_params() + stem_swap
    expected = {"encoder": expected_encoder, "depth": decoder_params(1),
                "aif": decoder_params(3)}
    got = {"encoder": count_parameters(net.encoder),
           **{h: count_parameters(net.heads[h]) for h in ("depth", "aif")}}
    assert got == expected
    # the figures stated in the model docstring and docs/trainer.md
    assert expected == {"encoder": 7_019_520, "depth": 17_199_681, "aif": 17_200_835}
    assert count_parameters(net) == sum(expected.values()) == 41_420_036  # "41.4 M"
    depth_only = count_parameters(TwoHeadedNet(ModelConfig(heads=("depth",))))
    assert depth_only == expected_encoder + decoder_params(1)


@pytest.mark.parametrize("heads", [("depth", "aif"), ("depth",), ("aif",)])
def test_forward_shapes_non_square(heads):
    net = TwoHeadedNet(ModelConfig(heads=heads)).eval()
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        out = net(x)
    assert set(out) == set(heads)
    expected = {"depth": (2, 1, 64, 96), "aif": (2, 3, 64, 96)}
    for h in heads:
        assert tuple(out[h].shape) == expected[h]
        assert torch.isfinite(out[h]).all()


def _record_decoder_blocks(net):
    """Forward hooks that record (input, output) shapes (C, H, W) of every decoding block."""
    seen = {h: [] for h in net.heads}
    for name, head in net.heads.items():
        for block in head.blocks:
            block.register_forward_hook(
                lambda _m, args, out, name=name: seen[name].append(
                    (tuple(args[0].shape[1:]), tuple(out.shape[1:]))))
    return seen


def test_forward_shapes_256_per_level():
    net = TwoHeadedNet().eval()
    seen = _record_decoder_blocks(net)
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        skips = net.encoder(x)
        out = net(x)
    # Table I: Conv1..Conv5 sizes and channels for a 256 x 256 input
    assert [tuple(s.shape[1:]) for s in skips] == [
        (64, 128, 128),
        (128, 64, 64),
        (256, 32, 32),
        (512, 16, 16),
        (1024, 8, 8),
    ]
    # Table I's decoder rows: block inputs 1024@8, 1024@16, 512@32, 256@64, 128@128
    expected = [((1024, 8, 8), (512, 16, 16)), ((1024, 16, 16), (256, 32, 32)),
                ((512, 32, 32), (128, 64, 64)), ((256, 64, 64), (64, 128, 128)),
                ((128, 128, 128), (64, 256, 256))]
    assert seen == {"depth": expected, "aif": expected}
    assert tuple(out["depth"].shape) == (1, 1, 256, 256)
    assert tuple(out["aif"].shape) == (1, 3, 256, 256)


def test_reduced_width_decoder_follows_the_same_rule():
    # skips 8, 6, 5, 4, 8 (DenseNet with one layer per block, growth 4, 8 stem channels)
    net = TwoHeadedNet(ModelConfig(heads=("depth",), **TINY)).eval()
    assert net.encoder.skip_channels == [8, 6, 5, 4, 8]
    seen = _record_decoder_blocks(net)
    with torch.no_grad():
        net(torch.rand(2, 3, 64, 64))
    assert seen["depth"] == [((8, 2, 2), (4, 4, 4)), ((4 + 4, 4, 4), (5, 8, 8)),
                             ((5 + 5, 8, 8), (6, 16, 16)), ((6 + 6, 16, 16), (8, 32, 32)),
                             ((8 + 8, 32, 32), (8, 64, 64))]


@pytest.mark.parametrize("shape", [(1, 3, 64, 80), (1, 3, 48, 64), (1, 1, 64, 64), (3, 64, 64)])
def test_bad_input_shape_raises(shape):
    net = TwoHeadedNet(ModelConfig(heads=("depth",)))
    with pytest.raises(ValueError, match="TwoHeadedNet"):
        net(torch.rand(*shape))


def test_wrong_size_message_names_the_size():
    net = TwoHeadedNet(ModelConfig(heads=("aif",)))
    with pytest.raises(ValueError, match="64x80"):
        net(torch.rand(1, 3, 64, 80))


def test_input_joint_layer_is_a_residual():
    torch.manual_seed(0)
    net = TwoHeadedNet(ModelConfig(heads=("aif",), **TINY)).eval()
    x = torch.rand(2, 3, 32, 64)
    with torch.no_grad():
        assert torch.equal(net(x)["aif"], x)  # zero-initialised prediction: the identity
        torch.nn.init.normal_(net.heads["aif"].predict.weight)
        torch.nn.init.normal_(net.heads["aif"].predict.bias)
        decoded = net.heads["aif"](net.encoder(x))
        assert decoded.abs().max() > 0  # the check below is not trivially x == x
        torch.testing.assert_close(net(x)["aif"], decoded + x, rtol=0, atol=0)


def test_checkpoint_of_an_older_format_is_refused(tmp_path):
    net = TwoHeadedNet(ModelConfig(heads=("depth",), **TINY))
    state = {"model": net.state_dict(), "model_config": net.config.to_dict(), "epoch": 1,
             "step": 1}
    path = save_checkpoint(tmp_path / "new.pt", state)
    assert load_checkpoint(path)["format_version"] == FORMAT_VERSION == 2
    torch.save({**state, "format_version": 1}, tmp_path / "old.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "old.pt")
    msg = str(info.value)
    assert "format version 1" in msg and "version 2" in msg and "\n" not in msg


def test_config_round_trips_through_a_dict():
    cfg = ModelConfig(heads=("aif",), growth_rate=16)
    d = cfg.to_dict()
    assert d["heads"] == ["aif"] and d["block_config"] == [6, 12, 24, 16]
    assert ModelConfig.from_dict(d) == cfg


def test_config_from_dict_refuses_an_unknown_key():
    d = ModelConfig(heads=("aif",), growth_rate=16).to_dict()
    with pytest.raises(ConfigError, match="unknown key"):
        ModelConfig.from_dict({**d, "dropout": 0.1})


def test_config_heads_accept_a_comma_separated_string():
    assert ModelConfig(heads="depth, aif").heads == ("depth", "aif")


@pytest.mark.parametrize("options, match", [
    ({"heads": ("depth", "normals")}, "heads"),
    ({"heads": ()}, "heads"),
    ({"heads": "depth,depth"}, "heads"),
    ({"growth_rate": 0}, "growth_rate"),
    ({"block_config": (6, 12, 24)}, "block_config"),
], ids=["unknown-head", "no-heads", "repeated-head", "zero-growth-rate",
        "three-blocks"])
def test_config_bad_value_is_refused(options, match):
    with pytest.raises(ConfigError, match=match):
        ModelConfig(**options)


def test_channels_last_gives_same_output():
    torch.manual_seed(0)
    net = TwoHeadedNet(ModelConfig(heads=("depth",))).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = net(x)["depth"]
        net_cl = net.to(memory_format=torch.channels_last)
        got = net_cl(x.contiguous(memory_format=torch.channels_last))["depth"]
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)


def test_overfit_one_batch_loss_falls():
    # the same code path at reduced width/depth: the full 42 M model needs ~3 s a step on CPU
    torch.manual_seed(0)
    net = TwoHeadedNet(ModelConfig(growth_rate=12, block_config=(2, 3, 4, 3), num_init_features=32))
    x = torch.rand(2, 3, 64, 64)
    depth = 1.0 + 4.0 * torch.rand(2, 1, 64, 64)
    depth[0, 0, :5, :5] = float("nan")  # invalid pixels must not break training
    target = {"depth": depth, "aif": torch.rand(2, 3, 64, 64)}
    loss_fn = TwoHeadedLoss()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses, deblur = [], []
    for _ in range(15):
        opt.zero_grad()
        total, terms = loss_fn(net(x), target)
        total.backward()
        opt.step()
        losses.append(total.item())
        deblur.append(terms["deblur"].item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    assert min(losses[-3:]) < 0.5 * losses[0], f"loss did not fall: {losses}"
    assert deblur[-1] < 0.8 * deblur[0], f"deblurring loss did not fall: {deblur}"
