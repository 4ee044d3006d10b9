"""The ``trainer`` CLI end to end: fit -> eval -> predict, and its error messages."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from _helpers import TINY
from click.testing import CliRunner

from cli.trainer_cmd import trainer
from trainer.checkpoint import build_model, load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(samples_dataset) -> Path:
    """The bundled samples synthesised by defocuskit (conftest): the real chain, no stand-in."""
    return samples_dataset


@pytest.fixture(scope="module")
def run(data, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("trainer_cli_run") / "run"
    cfg = run_dir.parent / "tiny.toml"
    cfg.write_text("[model]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in TINY.items()))
    res = CliRunner().invoke(trainer, [
        "fit", "--data", str(data), "--run-dir", str(run_dir), "--preset", "demo",
        "--config", str(cfg), "--epochs", "2", "--crop", "64", "--max-steps", "3",
        "--device", "cpu", "--seed", "4"])
    assert res.exit_code == 0, res.output
    return run_dir


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    for args in ([], ["fit"], ["eval"], ["predict"]):
        res = runner.invoke(trainer, [*args, "--help"])
        assert res.exit_code == 0 and "Example" in res.output, args
    assert "version" in runner.invoke(trainer, ["--version"]).output


def test_fit_writes_the_run(run):
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"] == TINY and saved["seed"] == 4 and saved["crop"] == 64
    assert saved["epochs"] == 2 and saved["lr"] == 2e-3  # demo preset, then the CLI
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["step"] == 3
    for name in ("log.csv", "best.pt", "loss_curves.png", "val_panel.png"):
        assert (run / name).is_file(), name


def test_resume_through_the_cli_reuses_the_saved_config(data, run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = load_checkpoint(copy / "last.pt")
    from defocuskit.store import open_dataset

    # training uses the split minus its validation holdout; demo batch 2, and a trailing
    # single sample is dropped, so an epoch has n // 2 steps
    held_out = json.loads((run / "config.json").read_text())["val_indices"]
    per_epoch = (len(open_dataset(data)["train"]) - len(held_out)) // 2
    steps = min(3, 2 * per_epoch)  # --max-steps 3 of 2 epochs
    # last.pt counts the epochs completed by then; a partial one is redone
    assert (before["epoch"], before["step"]) == (steps // per_epoch, steps)
    res = CliRunner().invoke(trainer, ["fit", "--data", str(data), "--run-dir", str(copy),
                                       "--resume", "--max-steps", "100"])
    assert res.exit_code == 0, res.output
    after = load_checkpoint(copy / "last.pt")
    assert after["model_config"] == before["model_config"]  # tiny model from config.json
    assert after["epoch"] == 2
    assert after["step"] == steps + (2 - before["epoch"]) * per_epoch
    assert [r["epoch"] for r in after["history"]] == [1, 2]


def reference_rmse(data, run):
    """RMSE per image by hand: reflect-pad to 32, predict, crop, numpy over finite gt.

    Predictions are clipped below at 1 mm, the documented convention of depth_metrics.
    """
    from defocuskit.store import open_dataset

    model = build_model(load_checkpoint(run / "best.pt")).eval()
    sp = open_dataset(data)["test"]
    values = []
    for i in range(len(sp)):
        s = sp.read(i)
        h, w = s["depth"].shape
        x = torch.from_numpy(s["defocused"]).permute(2, 0, 1)[None].float() / 255
        ph, pw = -h % 32, -w % 32
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="reflect")
        with torch.no_grad():
            d = model(x)["depth"][0, 0, :h, :w].numpy().astype(np.float64)
        d = np.maximum(d, 1e-3)
        gt = s["depth"].astype(np.float64)
        ok = np.isfinite(gt) & (gt > 1e-3)
        values.append(np.sqrt(np.mean((d[ok] - gt[ok]) ** 2)))
    return float(np.mean(values))


def test_eval_json_matches_a_hand_computed_rmse(data, run):
    res = CliRunner().invoke(trainer, ["eval", "--data", str(data), "--checkpoint",
                                       str(run / "best.pt"), "--json", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.output)
    for key in ("rmse", "abs_rel", "sq_rel", "rmse_log", "log10", "delta105", "delta115",
                "delta1", "delta2", "delta3", "psnr", "ssim"):
        assert key in metrics
    # the protocol used is part of the result: the samples have no benchmark depth range
    assert (metrics["max_depth"], metrics["clip"], metrics["resize"]) == (None, True, None)
    assert metrics["n_images"] == 2
    assert metrics["rmse"] == pytest.approx(reference_rmse(data, run), rel=1e-4)
    table = CliRunner().invoke(trainer, ["eval", "--data", str(data), "--checkpoint",
                                         str(run / "best.pt"), "--make3d"])
    assert table.exit_code == 0 and "c1_rmse" in table.output and "abs_rel" in table.output


def test_eval_protocol_options(data, run):
    runner = CliRunner()
    base = ["eval", "--data", str(data), "--checkpoint", str(run / "best.pt"), "--json",
            "--device", "cpu", "--limit", "1"]
    res = runner.invoke(trainer, [*base, "--resize", "64x96", "--max-depth", "2.5",
                                  "--no-clip"])
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.output)
    assert (metrics["resize"], metrics["max_depth"], metrics["clip"]) == ([64, 96], 2.5, False)
    res = runner.invoke(trainer, [*base, "--resize", "64", "--max-depth", "inf"])
    metrics = json.loads(res.output)
    assert (metrics["resize"], metrics["max_depth"], metrics["clip"]) == ([64, 64], None, True)
    assert json.loads(runner.invoke(trainer, [*base, "--resize", "none"]).output)["resize"] is None
    bad = runner.invoke(trainer, [*base, "--resize", "64by96"])
    assert bad.exit_code == 2 and "expected N, HxW or none" in bad.output


def _predict(run, out, *images, extra=()):
    return CliRunner().invoke(trainer, ["predict", "--checkpoint", str(run / "last.pt"),
                                        "--output", str(out), "--device", "cpu", *extra,
                                        *map(str, images)])


def test_predict_reads_float_tiff_by_its_dtype(run, tmp_path):
    rgb = np.random.default_rng(3).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), rgb[..., ::-1])
    cv2.imwrite(str(tmp_path / "b.tiff"), (rgb[..., ::-1] / np.float32(255)).astype(np.float32))
    res = _predict(run, tmp_path / "out", tmp_path / "a.png", tmp_path / "b.tiff")
    assert res.exit_code == 0, res.output
    a = cv2.imread(str(tmp_path / "out" / "a_depth.png"), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(tmp_path / "out" / "b_depth.png"), cv2.IMREAD_UNCHANGED)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # the same picture, either way
    cv2.imwrite(str(tmp_path / "c.tiff"), np.full((40, 60, 3), 200.0, np.float32))
    res = _predict(run, tmp_path / "out2", tmp_path / "c.tiff")
    assert res.exit_code == 1 and "float image must hold values in [0, 1], got 200..200" \
        in res.output


def test_predict_same_names_in_two_folders_keep_both_outputs(run, tmp_path):
    rng = np.random.default_rng(4)
    for folder in ("left", "right"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "img.png"),
                    rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    res = _predict(run, tmp_path / "out", tmp_path / "left" / "img.png",
                   tmp_path / "right" / "img.png", tmp_path / "left" / "img.png")
    assert res.exit_code == 0, res.output
    depths = sorted(p.name for p in (tmp_path / "out").glob("*_depth.png"))
    assert depths == sorted(["img_depth.png", "right_img_depth.png", "left_img_depth.png"])
    a = cv2.imread(str(tmp_path / "out" / "img_depth.png"), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(tmp_path / "out" / "right_img_depth.png"), cv2.IMREAD_UNCHANGED)
    assert not np.array_equal(a, b)


def test_unwritable_outputs_are_one_line(data, run, tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((40, 60, 3), np.uint8))
    res = _predict(run, "/proc/self/out", tmp_path / "a.png")
    assert res.exit_code == 1 and "/proc/self" in res.output
    assert res.output.count("\n") == 1 and "Traceback" not in res.output
    res = CliRunner().invoke(trainer, ["fit", "--data", str(data), "--run-dir",
                                       "/proc/self/run", "--preset", "demo", "--device", "cpu"])
    assert res.exit_code == 1 and "/proc/self/run" in res.output
    assert res.output.count("\n") == 1 and "Traceback" not in res.output


def test_predict_refuses_an_image_over_the_pixel_limit(run, tmp_path):
    cv2.imwrite(str(tmp_path / "big.png"), np.zeros((64, 96, 3), np.uint8))
    res = _predict(run, tmp_path / "out", tmp_path / "big.png", extra=("--max-pixels", "5000"))
    assert res.exit_code == 1
    assert "96x64 = 6144 pixels is more than the limit of 5000 (--max-pixels)" in res.output


def test_predict_writes_depth_mm_colour_and_aif(run, tmp_path):
    rgb = np.random.default_rng(2).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    img = tmp_path / "photo.png"
    cv2.imwrite(str(img), rgb[..., ::-1])
    out = tmp_path / "out"
    res = CliRunner().invoke(trainer, ["predict", "--checkpoint", str(run / "last.pt"),
                                       "--output", str(out), "--device", "cpu", str(img)])
    assert res.exit_code == 0, res.output
    depth = cv2.imread(str(out / "photo_depth.png"), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16 and depth.shape == (50, 70)
    colour = cv2.imread(str(out / "photo_depth_color.png"))
    aif = cv2.imread(str(out / "photo_aif.png"))
    assert aif.shape == (50, 70, 3)
    assert colour.shape == (160, 170, 3)  # the map with its colour bar at the right
    model = build_model(load_checkpoint(run / "last.pt")).eval()
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.pad(x, (0, 26, 0, 14), mode="reflect")
    with torch.no_grad():
        d = model(x)["depth"][0, 0, :50, :70].numpy()
    expected = np.where(d > 0, np.clip(np.rint(d * 1000), 1, 65535), 0)
    assert np.abs(depth.astype(np.int64) - expected).max() <= 1  # millimetres


def test_user_errors_are_one_clear_line(data, run, tmp_path):
    runner = CliRunner()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    res = runner.invoke(trainer, ["eval", "--data", str(data), "--checkpoint", str(bad)])
    assert res.exit_code == 1 and "unreadable or corrupt" in res.output
    assert "Traceback" not in res.output and res.output.count("\n") == 1
    cfg = tmp_path / "c.json"
    cfg.write_text('{"epochz": 3}')
    res = runner.invoke(trainer, ["fit", "--data", str(data), "--run-dir", str(tmp_path / "r"),
                                  "--config", str(cfg)])
    assert res.exit_code == 1 and "unknown option(s) ['epochz']" in res.output
    res = runner.invoke(trainer, ["fit", "--data", str(data), "--run-dir", str(run)])
    assert res.exit_code == 1 and "holds an earlier run" in res.output
    res = runner.invoke(trainer, ["eval", "--data", str(data), "--checkpoint",
                                  str(run / "best.pt"), "--split", "val"])
    assert res.exit_code == 1 and "no split 'val'" in res.output


def test_every_command_and_option_is_documented():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "trainer.md").read_text()
    for name, command in trainer.commands.items():
        assert f"trainer {name}" in docs, name
        for param in command.params:
            for opt in param.opts + param.secondary_opts:
                if opt.startswith("--") and opt != "--help":
                    assert opt in docs, f"trainer {name} {opt} is not in docs/trainer.md"
