"""Camera-conditioned input (trainer.camera_input) and the blind-zone metric (trainer.blindzone)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from trainer.blindzone import BlindZoneAccumulator, dioptres_from_focus  # noqa: E402
from trainer.camera_input import camera_features, model_forward  # noqa: E402
from trainer.model import ModelConfig, TwoHeadedNet  # noqa: E402

TINY = dict(growth_rate=4, num_init_features=8, block_config=(1, 1, 1, 1))


def _batch(focus=(2.0, 5.0)):
    n = len(focus)
    return {"focus_distance": torch.tensor(focus), "f_number": torch.full((n,), 2.8),
            "focal_length": torch.full((n,), 0.07), "pixel_pitch": torch.full((n,), 0.07 / 500)}


def test_camera_features_closed_form():
    f = camera_features(_batch((2.0, 0.5)))
    assert f.shape == (2, 3)
    np.testing.assert_allclose(f.numpy(), [[0.0, 0.0, 0.0], [1.5, 0.0, 0.0]], atol=1e-6)
    b = _batch((2.0,)) | {"f_number": torch.tensor([5.6])}
    assert camera_features(b)[0, 1].item() == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="lacks"):
        camera_features({"focus_distance": torch.tensor([1.0])})
    with pytest.raises(ValueError, match="positive"):
        camera_features(_batch((0.0,)))


def test_camera_input_shapes_start_and_effect():
    torch.manual_seed(0)
    plain = TwoHeadedNet(ModelConfig(heads=("depth", "aif"), **TINY)).eval()
    torch.manual_seed(0)
    net = TwoHeadedNet(ModelConfig(heads=("depth", "aif"), camera_input=True, **TINY)).eval()
    x = torch.rand(2, 3, 64, 64)
    batch = _batch()
    out = model_forward(net, x, batch)
    assert out["depth"].shape == (2, 1, 64, 64) and out["aif"].shape == (2, 3, 64, 64)
    # zero-initialised FiLM: the same function as the plain net of the same seed
    ref = plain(x)
    torch.testing.assert_close(out["depth"], ref["depth"])
    # once the FiLM weights move, the camera changes the prediction (and only it)
    with torch.no_grad():
        for p in net.camera.parameters():
            p.add_(0.05 * torch.randn_like(p))
    a = model_forward(net, x, batch)["depth"]
    b = model_forward(net, x, _batch((0.7, 9.0)))["depth"]
    assert (a - b).abs().max() > 1e-4
    same = model_forward(net, x, _batch())["depth"]
    torch.testing.assert_close(a, same)
    with pytest.raises(ValueError, match="camera"):
        net(x)
    with pytest.raises(ValueError, match="camera"):
        plain(x, camera=camera_features(batch))
    with pytest.raises(ValueError, match="camera"):
        model_forward(net, x)


def test_camera_input_config_checks():
    from defocuskit.errors import ConfigError

    with pytest.raises(ConfigError, match="camera_input"):
        ModelConfig(camera_input="yes")
    cfg = ModelConfig(camera_input=True, **TINY)
    assert ModelConfig.from_dict(cfg.to_dict()).camera_input is True


def test_camera_input_is_a_model_capability(tmp_path):
    """The registry says which models take the camera: 2hded builds it, mddnet refuses it
    in one line (config and CLI) and ignores an explicit off."""
    from click.testing import CliRunner

    from cli.trainer_cmd import trainer
    from defocuskit.errors import ConfigError
    from trainer.config import TrainConfig
    from trainer.models import get_spec

    assert get_spec("2hded").camera_input and not get_spec("mddnet").camera_input
    spec = get_spec("2hded")
    cfg = spec.make_config(("depth",), spec.config_overrides(
        {**TINY, "camera_input": True}, None))
    assert cfg.camera_input is True and spec.build(cfg).camera is not None
    with pytest.raises(ConfigError, match=r"camera_input: model mddnet \(MDDNet\) does not "
                                          r"take the camera.*\['2hded'\]"):
        TrainConfig(model_name="mddnet", heads=("depth", "defocus"),
                    model={"camera_input": True})
    mdd = get_spec("mddnet")
    assert "camera_input" not in mdd.config_overrides({"camera_input": False}, None)
    assert TrainConfig(model_name="mddnet", heads=("depth", "defocus"),
                       model={"camera_input": False}).model == {"camera_input": False}
    res = CliRunner().invoke(trainer, [
        "fit", "--data", str(tmp_path), "--run-dir", str(tmp_path / "run"),
        "--model", "mddnet", "--camera-input", "--device", "cpu"])
    assert res.exit_code != 0 and "does not take the camera" in res.output
    assert not (tmp_path / "run").exists()


def test_blind_zone_binning_closed_form():
    # focus 2 m: depths 2, 1.9, 1.0, 4.0 m are 0, 0.0263, 0.5, 0.25 dioptres away
    true = np.array([[[[2.0, 1.9], [1.0, 4.0]]]])
    pred = true + np.array([[[[0.1, -0.2], [0.5, 1.0]]]])
    np.testing.assert_allclose(dioptres_from_focus(true[0, 0], 2.0),
                               [[0, abs(1 / 1.9 - 0.5)], [0.5, 0.25]])
    acc = BlindZoneAccumulator(edges=(0, 0.02, 0.1, 0.3, math.inf))
    acc.update(pred, true, np.array([2.0]))
    r = acc.compute()
    assert r["n_pixels"] == [1, 1, 1, 1]
    np.testing.assert_allclose(r["mae_m"], [0.1, 0.2, 1.0, 0.5])
    np.testing.assert_allclose(r["abs_rel"], [0.05, 0.2 / 1.9, 0.25, 0.5])
    assert r["edges_dioptres"] == [0, 0.02, 0.1, 0.3, None]
    # pooled over images, invalid and out-of-range ground truth left out, an empty bin None
    acc2 = BlindZoneAccumulator(edges=(0, 0.02, 0.1, 0.3, math.inf), max_depth=3.0)
    acc2.update(np.ones((2, 1, 1, 2)), np.array([[[[2.0, np.nan]]], [[[1.0, 4.0]]]]),
                np.array([2.0, 1.0]))
    r2 = acc2.compute()
    assert r2["n_pixels"] == [2, 0, 0, 0] and r2["mae_m"][1] is None
    np.testing.assert_allclose(r2["mae_m"][0], 0.5)
    with pytest.raises(ValueError, match="edges"):
        BlindZoneAccumulator(edges=(0.1, 1.0))


@pytest.mark.usefixtures("one_thread")
def test_fit_camera_input_and_eval_json_blind_zone(samples_dataset, tmp_path):
    """--camera-input through the CLI: saved in the model config, trained, evaluated; the
    eval JSON carries the blind-zone bins, whose pixels add up to the scored pixels."""
    import json

    from click.testing import CliRunner

    from cli.trainer_cmd import trainer
    from trainer.checkpoint import build_model, load_checkpoint

    run = tmp_path / "run"
    cfg = tmp_path / "tiny.toml"
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in TINY.items()}
    cfg.write_text("[model]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in plain.items()))
    res = CliRunner().invoke(trainer, [
        "fit", "--data", str(samples_dataset), "--run-dir", str(run), "--preset", "demo",
        "--config", str(cfg), "--epochs", "1", "--crop", "64", "--max-steps", "2",
        "--device", "cpu", "--camera-input"])
    assert res.exit_code == 0, res.output
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["model_config"]["camera_input"] is True
    assert build_model(ckpt).camera is not None
    res = CliRunner().invoke(trainer, ["eval", "--data", str(samples_dataset), "--checkpoint",
                                       str(run / "last.pt"), "--json", "--device", "cpu",
                                       "--split", "test", "--no-progress"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    zone = out["blind_zone"]
    assert len(zone["mae_m"]) == len(zone["edges_dioptres"]) - 1
    assert sum(zone["n_pixels"]) > 0
    assert all(m is None or m >= 0 for m in zone["mae_m"])


def test_predict_refuses_a_camera_input_checkpoint(tmp_path):
    from defocuskit.errors import ConfigError
    from trainer.checkpoint import save_checkpoint
    from trainer.predict import predict_images

    net = TwoHeadedNet(ModelConfig(heads=("depth",), camera_input=True, **TINY))
    from trainer.checkpoint import _REQUIRED

    state = {"model": net.state_dict(), "model_config": net.config.to_dict(), "epoch": 0,
             "step": 0}
    state.update({k: {} for k in _REQUIRED if k not in state and k != "format_version"})
    save_checkpoint(tmp_path / "c.pt", state)
    img = tmp_path / "x.png"
    import cv2

    cv2.imwrite(str(img), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ConfigError, match="camera-input"):
        predict_images(tmp_path / "c.pt", [img], tmp_path / "out", device="cpu",
                       progress=False)
