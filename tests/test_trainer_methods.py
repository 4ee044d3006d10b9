"""Every method and head combination through the CLI: a few CPU steps of fit, then eval
(and predict), on a tiny dataset with sigma maps and per-sample cameras."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from _helpers import TINY, tiny_split
from click.testing import CliRunner

from cli.trainer_cmd import trainer
from defocuskit.optics import Camera
from defocuskit.store import write_arrays
from trainer.checkpoint import build_model, load_checkpoint

CAMERA = dict(focal_length=0.05, f_number=2.0, focus_distance=2.0, pixel_pitch=2e-5,
              coc_to_sigma=0.25)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """train 4 / test 2 samples, 64 x 64, depth 1..5 m, sigma from the 'paper' thin lens."""
    rng = np.random.default_rng(0)
    cam = Camera(**CAMERA, coc_model="paper")

    def split(n):
        arrays = tiny_split(rng, n)
        arrays["depth"][:, :2] = np.nan
        scalars = {k: np.full(n, v, np.float32) for k, v in CAMERA.items()}
        return {**arrays, "sigma": cam.sigma_px(arrays["depth"]).astype(np.float32), **scalars}

    path = tmp_path_factory.mktemp("methods") / "tiny.zarr"
    write_arrays(path, {"train": split(4), "test": split(2)},
                 attrs={"camera": {"coc_model": "paper"}})
    return path


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("methods_cfg") / "tiny.toml"
    path.write_text("num_workers = 0\nplots = false\nsigma_max = 8.0\n[model]\n"
                    + "".join(f"{k} = {json.dumps(v)}\n" for k, v in TINY.items()))
    return path


def _fit(data, config, run_dir, *args):
    res = CliRunner().invoke(trainer, [
        "fit", "--data", str(data), "--run-dir", str(run_dir), "--config", str(config),
        "--epochs", "1", "--max-steps", "2", "--batch-size", "2", "--crop", "32",
        "--lr", "0.005", "--device", "cpu", "--val-split", "none", *args])
    assert res.exit_code == 0, res.output
    return run_dir


def _eval(data, run_dir) -> dict:
    res = CliRunner().invoke(trainer, ["eval", "--data", str(data), "--checkpoint",
                                       str(run_dir / "last.pt"), "--json", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


KEYS = {"depth": ("rmse", "abs_rel", "delta1"), "aif": ("psnr", "ssim"),
        "defocus": ("defocus_mse", "defocus_mae")}


@pytest.mark.parametrize("method, heads, extra", [
    ("supervised", "depth", []),
    ("supervised", "aif", []),
    ("supervised", "defocus", []),
    ("supervised", "depth,aif", []),
    ("supervised", "depth,defocus", []),
    ("supervised", "aif,defocus", []),
    ("supervised", "depth,aif,defocus", []),
    ("supervised", "depth,defocus", ["--consistency", "0.5"]),
    ("self-supervised", "defocus", []),
    ("self-supervised", "aif,defocus", []),
])
def test_fit_and_eval_every_method_and_head_combination(data, tiny_config, tmp_path, method,
                                                        heads, extra):
    run = _fit(data, tiny_config, tmp_path / "run", "--method", method, "--heads", heads,
               *extra)
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["step"] == 2
    assert ckpt["train_config"]["method"] == method  # eval / predict rebuild from these
    assert ckpt["model_config"]["heads"] == heads.split(",")
    terms = {k for k in ckpt["history"][-1] if k.startswith("train_")}
    if method == "self-supervised":
        assert {"train_recon", "train_smooth"} <= terms
        assert ("train_deblur" in terms) == ("aif" in heads)
    if extra:
        assert "train_consistency" in terms
    metrics = _eval(data, run)
    for head in ("depth", "aif", "defocus"):
        for key in KEYS[head]:
            assert (key in metrics) == (head in heads.split(",")), (key, metrics)
            if head in heads:
                assert metrics[key] is not None and np.isfinite(metrics[key])


def test_self_supervised_fit_reads_no_label(data, tmp_path, monkeypatch):
    """Training reads only the input and the AiF; sigma is read by evaluation alone."""
    from trainer.config import TrainConfig
    from trainer.data import DefocusDataset
    from trainer.fit import fit

    read: list[str] = []
    real = DefocusDataset._read

    def spy(self, name, i):
        read.append(name)
        return real(self, name, i)

    monkeypatch.setattr(DefocusDataset, "_read", spy)
    cfg = TrainConfig(method="self-supervised", heads=("aif", "defocus"), epochs=1,
                      batch_size=2, crop=32, sigma_max=8.0, val_split=None, num_workers=0,
                      plots=False, progress=False, model=dict(TINY))
    fit(data, tmp_path / "ss", cfg, log=lambda _m: None)
    assert set(read) == {"defocused", "aif"}
    read.clear()
    metrics = _eval(data, tmp_path / "ss")
    assert "sigma" in read and np.isfinite(metrics["defocus_mae"])  # evaluation may read labels


def test_consistency_needs_the_dataset_coc_model(tmp_path, tiny_config):
    rng = np.random.default_rng(1)
    aif = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    arrays = {"aif": aif, "defocused": aif, "depth": np.full((3, 64, 64), 2.0, np.float32),
              "sigma": np.ones((3, 64, 64), np.float32),
              **{k: np.full(3, v, np.float32) for k, v in CAMERA.items()}}
    path = tmp_path / "nocam.zarr"
    write_arrays(path, {"train": arrays})  # no camera attributes
    res = CliRunner().invoke(trainer, [
        "fit", "--data", str(path), "--run-dir", str(tmp_path / "r"), "--config",
        str(tiny_config), "--heads", "depth,defocus", "--consistency", "1", "--crop", "32",
        "--device", "cpu", "--val-split", "none"])
    assert res.exit_code == 1 and "coc_model" in res.output and res.output.count("\n") == 1


def test_predict_writes_the_sigma_map(data, tiny_config, tmp_path):
    run = _fit(data, tiny_config, tmp_path / "run", "--heads", "depth,defocus")
    rgb = np.random.default_rng(2).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    img = tmp_path / "photo.png"
    cv2.imwrite(str(img), rgb[..., ::-1])
    out = tmp_path / "out"
    res = CliRunner().invoke(trainer, ["predict", "--checkpoint", str(run / "last.pt"),
                                       "--output", str(out), "--device", "cpu", str(img)])
    assert res.exit_code == 0, res.output
    sigma = np.load(out / "photo_sigma.npy")
    assert sigma.dtype == np.float32 and sigma.shape == (40, 50) and (sigma >= 0).all()
    assert cv2.imread(str(out / "photo_sigma_color.png")).shape == (160, 150, 3)  # + its bar
    assert (out / "photo_depth.png").is_file() and not (out / "photo_aif.png").exists()
    model = build_model(load_checkpoint(run / "last.pt")).eval()
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.pad(x, (0, 14, 0, 24), mode="reflect")
    with torch.no_grad():
        expected = model(x)["defocus"][0, 0, :40, :50].numpy()
    np.testing.assert_allclose(sigma, expected, rtol=1e-5, atol=1e-6)
