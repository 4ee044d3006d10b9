"""Model anwar through the trainer: VGG16 weights from a local file, what a run takes from
its dataset, fit / resume / eval / predict on the bundled samples (CPU, tiny widths), and
the pipeline's AiF by deconvolution."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli.trainer_cmd import trainer
from defocuskit.dataset.store import open_dataset
from trainer.checkpoint import CheckpointError, load_checkpoint
from trainer.models import get_spec
from trainer.models.anwar import AnwarConfig, AnwarNet
from trainer.models.anwar_io import data_overrides, load_vgg16_weights

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"widths": [4, 4, 8, 8, 8], "fc_width": 16, "pool_size": 2, "keypoint_stride": 8}
VGG16_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def _vgg_file(path, widths=(4, 4, 8, 8, 8), fc=16, pool=2, extra=None):
    """A state dict in torchvision's vgg16 layout and key names, made by hand."""
    chans = [w for w, n in zip(widths, (2, 2, 3, 3, 3), strict=True) for _ in range(n)]
    g = torch.Generator().manual_seed(3)
    state, cin = {}, 3
    for i, c in zip(VGG16_CONVS, chans, strict=True):
        state[f"features.{i}.weight"] = torch.randn(c, cin, 3, 3, generator=g)
        state[f"features.{i}.bias"] = torch.randn(c, generator=g)
        cin = c
    for i, (a, b) in zip((0, 3, 6), ((cin * pool * pool, fc), (fc, fc), (fc, 1000)),
                         strict=True):
        state[f"classifier.{i}.weight"] = torch.randn(b, a, generator=g)
        state[f"classifier.{i}.bias"] = torch.randn(b, generator=g)
    state.update(extra or {})
    torch.save(state, path)
    return state


def test_vgg16_weights_load_and_the_imagenet_layer_is_listed(tmp_path):
    state = _vgg_file(tmp_path / "vgg16.pth")
    model = AnwarNet(AnwarConfig(**TINY))
    last = model.classifier[6].weight.detach().clone()
    info = load_vgg16_weights(model, tmp_path / "vgg16.pth")
    for k, v in model.state_dict().items():
        if not k.startswith("classifier.6."):
            assert torch.equal(v, state[k]), k
    assert torch.equal(model.classifier[6].weight, last)
    assert info["tensors"] == 26 + 4 and info["source"] == "ImageNet VGG16"
    assert info["missing"] == ["classifier.6.weight", "classifier.6.bias"]
    assert info["unused"] == ["classifier.6.bias", "classifier.6.weight"]
    assert get_spec("anwar").load_encoder_weights is not None


def test_vgg16_weights_that_do_not_fit_are_refused_and_nothing_is_loaded(tmp_path):
    _vgg_file(tmp_path / "bn.pth", extra={"features.1.running_mean": torch.zeros(4)})
    _vgg_file(tmp_path / "wide.pth", widths=(8, 4, 8, 8, 8))
    model = AnwarNet(AnwarConfig(**TINY))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"unexpected 1 \[features\.1\.running_mean\]"):
        load_vgg16_weights(model, tmp_path / "bn.pth")
    shaped = r"mis-shaped \(file vs model\) \d+ \[features\.0\.weight \(8, 3, 3, 3\) vs"
    with pytest.raises(CheckpointError, match=shaped):
        load_vgg16_weights(model, tmp_path / "wide.pth")
    torch.save({"features.0.weight": torch.zeros(4, 3, 3, 3)}, tmp_path / "part.pth")
    with pytest.raises(CheckpointError, match=r"missing 25 \[features\.0\.bias"):
        load_vgg16_weights(model, tmp_path / "part.pth")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_run_takes_the_class_range_mean_and_camera_from_its_training_split(
        samples_dataset):
    reader = open_dataset(samples_dataset)
    got = data_overrides(reader, "train")
    sp = reader["train"]  # 6 samples: every one is read
    depth = np.stack([sp.read_array("depth", i) for i in range(len(sp))]).astype(np.float64)
    rgb = np.stack([sp.read_array("defocused", i) for i in range(len(sp))]) / 255.0
    assert got["depth_min"] == pytest.approx(np.nanmin(depth), abs=1e-6)
    assert got["depth_max"] == pytest.approx(np.nanmax(depth), abs=1e-6)
    assert got["mean_rgb"] == pytest.approx(rgb.reshape(-1, 3).mean(0), abs=1e-6)
    cam = got["camera"]
    assert cam["focal_length"] == pytest.approx(np.median(sp.read_all("focal_length")))
    assert cam["focus_distance"] == pytest.approx(np.median(sp.read_all("focus_distance")))
    assert cam["psf"] == reader.attrs["psf"] and cam["coc_model"] in ("exact", "paper")


@pytest.fixture(scope="module")
def anwar_run(samples_dataset, tmp_path_factory):
    """A 2-epoch tiny anwar run on the samples, and the same run made in 1 + 1 epochs."""
    tmp = tmp_path_factory.mktemp("anwar")
    cfg = tmp / "tiny.json"
    cfg.write_text(json.dumps({"model": TINY, "crop": 64, "batch_size": 2,
                               "num_workers": 0, "lr": 0.01, "plots": False}))
    runner = CliRunner()
    base = ["fit", "--data", str(samples_dataset), "--model", "anwar", "--config", str(cfg),
            "--device", "cpu", "--no-progress"]
    straight = runner.invoke(trainer, base + ["--run-dir", str(tmp / "a"), "--epochs", "2"])
    assert straight.exit_code == 0, straight.output
    first = runner.invoke(trainer, base + ["--run-dir", str(tmp / "b"), "--epochs", "1"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(trainer, base + ["--run-dir", str(tmp / "b"), "--epochs", "2",
                                           "--resume"])
    assert again.exit_code == 0, again.output
    return tmp, straight.output


def test_fit_trains_the_classes_and_resumes_exactly(anwar_run):
    tmp, output = anwar_run
    a, b = load_checkpoint(tmp / "a" / "last.pt"), load_checkpoint(tmp / "b" / "last.pt")
    assert a["model_name"] == "anwar" and a["epoch"] == b["epoch"] == 2
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    row = a["history"][-1]
    assert row["train_ce"] > 0 and 0 <= row["train_keypoint_acc"] <= 1
    assert "val_rmse" in row and "train_depth_l1" not in row
    assert a["model_config"]["depth_min"] == pytest.approx(0.764, abs=1e-3)
    assert a["train_config"]["optimizer"] == "sgd"  # the anwar preset


def test_eval_scores_the_dense_depth(anwar_run, samples_dataset):
    tmp, _ = anwar_run
    res = CliRunner().invoke(trainer, ["eval", "--data", str(samples_dataset), "--checkpoint",
                                       str(tmp / "a" / "last.pt"), "--json", "--device",
                                       "cpu", "--no-progress"])
    assert res.exit_code == 0, res.output
    scores = json.loads(res.output[res.output.index("{"):])
    assert scores["n_images"] == 2 and scores["rmse"] > 0 and 0 <= scores["delta1"] <= 1
    assert "psnr" not in scores


def test_predict_writes_the_depth_map(anwar_run, samples_dir):
    tmp, _ = anwar_run
    out = tmp / "pred"
    image = samples_dir / "scenes" / "room_06_rgb.png"
    res = CliRunner().invoke(trainer, ["predict", "--checkpoint", str(tmp / "a" / "best.pt"),
                                       "--output", str(out), "--device", "cpu",
                                       "--no-progress", str(image)])
    assert res.exit_code == 0, res.output
    ckpt = load_checkpoint(tmp / "a" / "best.pt")
    model = AnwarNet(AnwarConfig.from_dict(ckpt["model_config"])).eval()
    model.load_state_dict(ckpt["model"])
    rgb = cv2.imread(str(image))[..., ::-1].astype(np.float32) / 255
    with torch.no_grad():
        depth = model(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None])["depth"][0, 0]
    written = cv2.imread(str(out / "room_06_rgb_depth.png"), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16 and written.shape == (256, 320)
    assert np.abs(written.astype(float) - depth.numpy() * 1000).max() <= 0.5 + 1e-3


def test_predict_aif_is_the_real_deconvolution_of_the_input(anwar_run, samples_dir):
    """With the real ``defocuskit.deconvolve``: the AiF written is the input deconvolved
    with the sigma the written depth implies through the checkpoint's camera."""
    import defocuskit
    from defocuskit.camera.optics import Camera

    tmp, _ = anwar_run
    image = samples_dir / "scenes" / "room_06_rgb.png"
    res = CliRunner().invoke(trainer, ["predict", "--checkpoint", str(tmp / "a" / "best.pt"),
                                       "--device", "cpu", "--no-progress", str(image),
                                       "--output", str(tmp / "real")])
    assert res.exit_code == 0, res.output
    depth_mm = cv2.imread(str(tmp / "real" / "room_06_rgb_depth.png"), cv2.IMREAD_UNCHANGED)
    cam = load_checkpoint(tmp / "a" / "best.pt")["model_config"]["camera"]
    ref = Camera(**{k: cam[k] for k in ("focal_length", "f_number", "focus_distance",
                                        "pixel_pitch", "coc_to_sigma", "coc_model",
                                        "coc_offset_px")})
    sigma = ref.sigma_px(depth_mm / 1000.0).astype(np.float32)
    rgb = cv2.imread(str(image))[..., ::-1].astype(np.float32) / 255.0
    expect = defocuskit.deconvolve(np.ascontiguousarray(rgb), sigma, psf=cam["psf"],
                                   method="levels")
    aif = cv2.imread(str(tmp / "real" / "room_06_rgb_aif.png"))[..., ::-1].astype(float)
    diff = np.abs(aif - np.clip(np.asarray(expect) * 255.0, 0, 255))
    # the depth PNG rounds to 1 mm, which moves sigma a little: close, not bit-equal
    assert diff.mean() < 0.5 and np.percentile(diff, 99) < 3, (diff.mean(), diff.max())
    assert np.abs(aif - rgb * 255.0).mean() > 0.2  # and it is not the input itself


def test_predict_writes_the_aif_deconvolved_with_the_depths_blur(anwar_run, samples_dir,
                                                                monkeypatch):
    """The pipeline's wiring, with a stand-in for defocuskit.deconvolve that records what
    it is given: the sigma map is the camera's (``Camera.sigma_px``, numpy) of the
    predicted depth, with the checkpoint's camera or the one on the command line."""
    import dataclasses

    import defocuskit
    from defocuskit.camera.optics import Camera
    from defocuskit.camera.presets import get_preset
    from trainer.models import anwar, anwar_io

    calls = []

    def fake_deconvolve(blurred, sigma_px, *, psf, method):
        calls.append({"sigma": sigma_px, "psf": psf, "method": method})
        return 1.0 - blurred  # a result the test can tell from the input

    monkeypatch.setattr(defocuskit, "deconvolve", fake_deconvolve, raising=False)
    monkeypatch.setattr(anwar, "SPEC", dataclasses.replace(
        anwar.SPEC, derive=anwar_io.derive_aif))
    tmp, _ = anwar_run
    image = samples_dir / "scenes" / "room_06_rgb.png"
    runner = CliRunner()
    base = ["predict", "--checkpoint", str(tmp / "a" / "best.pt"), "--device", "cpu",
            "--no-progress", str(image)]
    res = runner.invoke(trainer, base + ["--output", str(tmp / "p1")])
    assert res.exit_code == 0, res.output
    depth_mm = cv2.imread(str(tmp / "p1" / "room_06_rgb_depth.png"), cv2.IMREAD_UNCHANGED)
    cam = load_checkpoint(tmp / "a" / "best.pt")["model_config"]["camera"]
    ref = Camera(**{k: cam[k] for k in ("focal_length", "f_number", "focus_distance",
                                        "pixel_pitch", "coc_to_sigma", "coc_model",
                                        "coc_offset_px")})
    expect = ref.sigma_px(depth_mm / 1000.0)
    # the PNG rounds depth to 1 mm: compare where that changes sigma by little
    assert np.allclose(calls[0]["sigma"], expect, rtol=2e-3, atol=2e-3)
    assert calls[0]["psf"] == cam["psf"] and calls[0]["method"] == "levels"
    aif = cv2.imread(str(tmp / "p1" / "room_06_rgb_aif.png"))
    rgb = cv2.imread(str(image))
    assert np.abs(aif.astype(int) - (255 - rgb.astype(int))).max() <= 1
    # a camera from the command line, at the focus distance given there
    res = runner.invoke(trainer, base + ["--output", str(tmp / "p2"), "--camera", "2hded",
                                         "--focus-distance", "2.5"])
    assert res.exit_code == 0, res.output
    other = get_preset("2hded").make(image_width=320, rng=np.random.default_rng(0),
                                     psf=cam["psf"]).with_focus(2.5)
    assert np.allclose(calls[1]["sigma"], other.sigma_px(depth_mm / 1000.0), rtol=2e-3,
                       atol=2e-3)
    res = runner.invoke(trainer, base + ["--output", str(tmp / "p3"), "--camera", "2hded"])
    assert res.exit_code == 1 and "--focus-distance" in res.output
