"""Inputs that decode to wrong pixels, or not at all, are one clear error naming the file
(a skipped sample under --on-error skip); a float TIFF in [0, 1] is read as it is."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from _helpers import TINY, tiny_split
from click.testing import CliRunner

from cli.defocuskit_cmd import main as defocuskit
from cli.trainer_cmd import trainer
from defocuskit.errors import SourceError
from defocuskit.sources._io import read_depth_npy, read_depth_png_mm, read_rgb, read_rgb_float
from defocuskit.sources.folder import FolderSource
from defocuskit.store import open_dataset, write_arrays


def texture(h=48, w=64, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def scrambled_jpeg(path: Path, rgb: np.ndarray) -> None:
    """A JPEG whose entropy-coded scan data (after the SOS segment) is partly overwritten:
    it still ends with its end-of-image marker, and OpenCV still returns a picture."""
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1])
    data = bytearray(buf.tobytes())
    sos = data.find(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")
    rng = np.random.default_rng(1)
    for i in rng.choice(np.arange(start, len(data) - 2), (len(data) - 2 - start) // 3,
                        replace=False):
        data[i] = int(rng.integers(0, 255))
    path.write_bytes(bytes(data))


def invoke(cli, *args):
    res = CliRunner().invoke(cli, [str(a) for a in args])
    return res.exit_code, res.output


def test_a_jpeg_with_scrambled_scan_data_is_corrupt_though_opencv_decodes_it(tmp_path):
    f = tmp_path / "a.jpg"
    scrambled_jpeg(f, texture())
    assert cv2.imdecode(np.fromfile(f, np.uint8), cv2.IMREAD_COLOR) is not None
    for reader in (read_rgb, read_rgb_float):
        with pytest.raises(SourceError, match=r"a\.jpg' is corrupt \(the JPEG decoder "
                                              r"reported: Corrupt JPEG data") as info:
            reader(f)
        assert "\n" not in str(info.value)


def test_an_intact_jpeg_reads_as_opencv_decodes_it_and_stderr_is_restored(tmp_path, capfd):
    f = tmp_path / "a.jpg"
    cv2.imwrite(str(f), texture()[..., ::-1])
    expected = cv2.imread(str(f), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    np.testing.assert_array_equal(read_rgb(f), expected[..., ::-1])
    scrambled_jpeg(tmp_path / "b.jpg", texture())
    with pytest.raises(SourceError):
        read_rgb(tmp_path / "b.jpg")
    os.write(2, b"still here\n")  # file descriptor 2 is the process's stderr again
    assert "still here" in capfd.readouterr().err


@pytest.mark.parametrize("reader", [read_rgb, read_rgb_float, read_depth_png_mm])
def test_an_empty_png_is_one_error_naming_the_file(tmp_path, reader):
    f = tmp_path / "z.png"
    f.write_bytes(b"")
    with pytest.raises(SourceError, match=r"z\.png' is empty \(0 bytes"):
        reader(f)


def test_complex_npy_depth_is_refused(tmp_path):
    f = tmp_path / "d.npy"
    np.save(f, np.full((4, 5), 2 + 1j, np.complex64))
    with pytest.raises(SourceError, match=r"d\.npy' holds complex numbers \(complex64\)"):
        read_depth_npy(f)


def test_a_float32_rgb_tiff_in_0_1_is_read(tmp_path):
    rgb = np.random.default_rng(3).random((16, 20, 3), dtype=np.float32)
    rgb[0, 0] = [0.0, 1.0, 0.5]
    tifffile.imwrite(tmp_path / "f.tif", rgb, photometric="rgb")  # as a paint program does
    np.testing.assert_array_equal(read_rgb_float(tmp_path / "f.tif"), rgb)
    expected = np.round(rgb.astype(np.float64) * 255).astype(np.uint8)
    np.testing.assert_array_equal(read_rgb(tmp_path / "f.tif"), expected)
    tifffile.imwrite(tmp_path / "g.tif", rgb * 2, photometric="rgb")
    with pytest.raises(SourceError, match=r"float image must hold values in \[0, 1\]"):
        read_rgb(tmp_path / "g.tif")


def folder(root: Path, images: dict[str, np.ndarray]) -> Path:
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    for stem, img in images.items():
        cv2.imwrite(str(root / "rgb" / f"{stem}.png"), img[..., ::-1])
        np.save(root / "depth" / f"{stem}.npy",
                np.full(img.shape[:2], 1.5 + len(stem), np.float32))
    return root


def test_synth_stops_at_a_corrupt_jpeg_or_skips_it(tmp_path):
    root = folder(tmp_path / "in", {"a": texture(seed=1), "c": texture(seed=2)})
    scrambled_jpeg(root / "rgb" / "b.jpg", texture(seed=3))
    np.save(root / "depth" / "b.npy", np.full((48, 64), 2.0, np.float32))
    base = ["synth", "--source", "folder", "--input", root, "--render-mode", "gather",
            "--focus", "fixed:1"]
    code, out = invoke(defocuskit, *base, "--output", tmp_path / "raise.zarr")
    assert code == 1 and "Traceback" not in out
    assert "b.jpg' is corrupt (the JPEG decoder reported: Corrupt JPEG data" in out
    code, out = invoke(defocuskit, *base, "--output", tmp_path / "skip.zarr",
                       "--on-error", "skip")
    assert code == 0, out
    assert "skipped 1 sample " in out and "all/b: image" in out and "is corrupt" in out
    ds = open_dataset(tmp_path / "skip.zarr", require_complete=False)
    assert ds["all"].skipped_indices() == {1}
    np.testing.assert_array_equal(ds["all"].read_array("aif", 0), texture(seed=1))


def test_synth_on_an_empty_png_is_one_line(tmp_path):
    root = folder(tmp_path / "in", {"a": texture()})
    (root / "rgb" / "a.png").write_bytes(b"")
    code, out = invoke(defocuskit, "synth", "--source", "folder", "--input", root,
                       "--output", tmp_path / "o.zarr", "--render-mode", "gather")
    assert code == 1 and "Traceback" not in out, out
    assert len(out.strip().splitlines()) == 1 and "a.png" in out and "empty" in out, out
    assert not (tmp_path / "o.zarr").exists()


def test_synth_reads_a_float_tiff_as_its_rounded_8_bit_values(tmp_path):
    root = folder(tmp_path / "in", {})
    rgb = np.random.default_rng(4).random((32, 40, 3), dtype=np.float32)
    tifffile.imwrite(root / "rgb" / "t.tif", rgb, photometric="rgb")
    np.save(root / "depth" / "t.npy", np.full((32, 40), 2.0, np.float32))
    code, out = invoke(defocuskit, "synth", "--source", "folder", "--input", root,
                       "--output", tmp_path / "o.zarr", "--render-mode", "scene-only")
    assert code == 0, out
    stored = open_dataset(tmp_path / "o.zarr")["all"].read_array("aif", 0)
    np.testing.assert_array_equal(stored, np.round(rgb.astype(np.float64) * 255))


@pytest.mark.parametrize("present", ["rgb", "depth"])
def test_a_split_folder_missing_rgb_or_depth_is_refused_not_left_out(tmp_path, present):
    folder(tmp_path / "train", {"a": texture()})
    (tmp_path / "test" / present).mkdir(parents=True)
    missing = "depth" if present == "rgb" else "rgb"
    with pytest.raises(SourceError, match=rf"split folder '.*test' has {present}/ but no "
                                          rf"{missing}/"):
        FolderSource(tmp_path)
    (tmp_path / "test" / missing).mkdir()  # now empty but whole: an ordinary layout error
    with pytest.raises(SourceError, match="holds no images"):
        FolderSource(tmp_path)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("corrupt_predict")
    write_arrays(root / "d.zarr", {"train": tiny_split(np.random.default_rng(0), 4)})
    cfg = root / "c.json"
    cfg.write_text(json.dumps({"model": TINY}))
    code, out = invoke(trainer, "fit", "--data", root / "d.zarr", "--run-dir", root / "run",
                       "--config", cfg, "--epochs", "1", "--batch-size", "2", "--crop", "32",
                       "--val-split", "none", "--workers", "0", "--device", "cpu",
                       "--no-progress")
    assert code == 0, out
    return root / "run" / "last.pt"


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["empty-png", "scrambled-jpeg"])
def test_trainer_predict_on_a_broken_image_is_one_line(checkpoint, tmp_path, kind):
    if kind == "empty-png":
        image = tmp_path / "z.png"
        image.write_bytes(b"")
        expected = "z.png' is empty (0 bytes"
    else:
        image = tmp_path / "j.jpg"
        scrambled_jpeg(image, texture())
        expected = "j.jpg' is corrupt (the JPEG decoder reported"
    code, out = invoke(trainer, "predict", "--checkpoint", checkpoint, "--output",
                       tmp_path / "out", "--device", "cpu", "--no-progress", image)
    assert code == 1 and "Traceback" not in out, out
    lines = out.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], out
