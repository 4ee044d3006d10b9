"""The folder reader's depth files are checked from their headers before synth writes
anything (bit depth of a PNG, dtype and shape of a .npy, size against the image); a bad
value found only when a sample is read mid-run says how to recover (--overwrite)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cli.defocuskit_cmd import main as defocuskit
from defocuskit.errors import SourceError
from defocuskit.sources import get_source
from defocuskit.sources.folder import FolderSource
from defocuskit.sources.headers import depth_file_size
from defocuskit.store import open_dataset

H, W = 16, 20
CAMERA = ["--camera", "focal_mm=35,f_number=2,pitch_um=30", "--render-mode", "gather"]


def depth_m(shape=(H, W)) -> np.ndarray:
    """A plausible depth ramp, 1..3 m."""
    return np.linspace(1.0, 3.0, shape[0] * shape[1], dtype=np.float32).reshape(shape)


def make_folder(root: Path, stems=("a", "b")) -> Path:
    """rgb/<stem>.png (random, H x W) and depth/<stem>.npy (metres)."""
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    for k, stem in enumerate(stems):
        img = np.random.default_rng(k).integers(0, 256, (H, W, 3), dtype=np.uint8)
        assert cv2.imwrite(str(root / "rgb" / f"{stem}.png"), img)
        np.save(root / "depth" / f"{stem}.npy", depth_m())
    return root


def set_depth(root: Path, stem: str, ext: str, data) -> Path:
    """Replace ``stem``'s depth file by ``data`` saved as ``ext``."""
    for old in (root / "depth").glob(f"{stem}.*"):
        old.unlink()
    path = root / "depth" / f"{stem}{ext}"
    if ext == ".npy":
        np.save(path, data)
    else:
        assert cv2.imwrite(str(path), data)
    return path


def synth(*args):
    return CliRunner().invoke(defocuskit, ["synth", *[str(a) for a in args]])


@pytest.fixture
def work(tmp_path) -> Path:
    """An output folder holding a file of the user's, which no run may touch."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    os.utime(work / "notes.txt", (1_000_000, 1_000_000))
    return work


def assert_untouched(work: Path) -> None:
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt"]
    assert (work / "notes.txt").read_text() == "mine"
    assert (work / "notes.txt").stat().st_mtime == 1_000_000


def grey16(shape=(H, W)) -> np.ndarray:
    return np.round(depth_m(shape) * 1000).astype(np.uint16)


BAD = {
    "8-bit grey png": (".png", lambda: np.full((H, W), 200, np.uint8),
                       "folder: depth depth/b.png is an 8-bit greyscale PNG; depth PNGs must be "
                       "16-bit greyscale in millimetres (or save metres as .npy)"),
    "8-bit rgb png": (".png", lambda: np.full((H, W, 3), 200, np.uint8),
                      "folder: depth depth/b.png is an 8-bit RGB PNG; depth PNGs must be 16-bit"),
    "8-bit rgba png": (".png", lambda: np.full((H, W, 4), 200, np.uint8),
                       "folder: depth depth/b.png is an 8-bit RGBA PNG"),
    "npy of 3 channels": (".npy", lambda: np.stack([depth_m()] * 3, axis=2),
                          "folder: depth depth/b.npy has shape (16, 20, 3); expected a 2-D "
                          "array (H, W) or (H, W, 1) in metres"),
    "1-d npy": (".npy", lambda: depth_m().ravel(),
                "folder: depth depth/b.npy has shape (320,); expected a 2-D array"),
    "bool npy": (".npy", lambda: np.ones((H, W), bool),
                 "folder: depth depth/b.npy holds dtype bool; expected a numeric (float) "
                 "array (H, W) in metres"),
    "str npy": (".npy", lambda: np.full((H, W), "2.0"),
                "folder: depth depth/b.npy holds dtype <U3; expected a numeric"),
    "object npy": (".npy", lambda: np.full((H, W), 2.0, dtype=object),
                   "folder: depth depth/b.npy holds Python objects; expected a numeric"),
    "npy of another size": (".npy", lambda: depth_m((H, W - 2)),
                            "folder: sample 'b': image rgb/b.png is 16x20 but depth "
                            "depth/b.npy is 16x18"),
    "png of another size": (".png", lambda: grey16((H + 2, W)),
                            "folder: sample 'b': image rgb/b.png is 16x20 but depth "
                            "depth/b.png is 18x20"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_depth_file_is_refused_before_anything_is_written(tmp_path, work, case):
    ext, make, message = BAD[case]
    root = make_folder(tmp_path / "f")
    set_depth(root, "b", ext, make())
    for out in (work / "out.zarr", work / "new" / "out.zarr"):
        res = synth("--source", "folder", "--input", root, "--output", out, *CAMERA)
        assert res.exit_code == 1, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1, res.output
        assert message in lines[0], res.output
        assert "Traceback" not in res.output and "--resume" not in res.output
        assert not out.exists()
    assert_untouched(work)


def test_a_truncated_npy_is_refused_before_writing(tmp_path, work):
    root = make_folder(tmp_path / "f")
    path = root / "depth" / "b.npy"
    data = path.read_bytes()
    path.write_bytes(data[:-40])     # the header promises 16*20*4 bytes of data
    res = synth("--source", "folder", "--input", root, "--output", work / "out.zarr", *CAMERA)
    assert res.exit_code == 1
    assert (f"folder: depth depth/b.npy is truncated ({len(data) - 40} bytes, its header "
            f"promises {len(data)}") in res.output, res.output
    assert_untouched(work)


def test_the_header_check_refuses_what_the_reader_refuses(tmp_path):
    """depth_file_size accepts a file exactly when FolderSource.read_depth reads it, for
    every problem a header shows (and returns the size the reader reads)."""
    d = tmp_path / "d"
    (d / "depth").mkdir(parents=True)
    rgb16 = np.repeat(grey16()[..., None], 3, axis=2)
    files = {
        "grey8.png": np.full((H, W), 200, np.uint8),
        "grey16.png": grey16(),
        "rgb8.png": np.full((H, W, 3), 200, np.uint8),
        "rgb16_equal.png": rgb16,
        "rgba16_equal.png": np.concatenate([rgb16, np.full((H, W, 1), 65535, np.uint16)], 2),
        "f32.npy": depth_m(),
        "f64_fortran.npy": np.asfortranarray(depth_m().astype(np.float64)),
        "f16_big_endian.npy": depth_m().astype(">f2"),
        "f32_hw1.npy": depth_m()[..., None],
        "u16.npy": np.full((H, W), 2, np.uint16),
        "i8.npy": np.full((H, W), 2, np.int8),
        "f32_hw3.npy": np.stack([depth_m()] * 3, axis=2),
        "f32_1hw.npy": depth_m()[None],
        "f32_1d.npy": depth_m().ravel(),
        "bool.npy": np.ones((H, W), bool),
        "str.npy": np.full((H, W), "2.0"),
        "bytes.npy": np.full((H, W), b"2"),
        "object.npy": np.full((H, W), 2.0, dtype=object),
        "datetime.npy": np.full((H, W), np.datetime64("2020-01-01")),
        "record.npy": np.zeros((H, W), [("z", "f4")]),
    }
    accepted = {"grey16.png", "rgb16_equal.png", "rgba16_equal.png", "f32.npy",
                "f64_fortran.npy", "f16_big_endian.npy", "f32_hw1.npy", "u16.npy", "i8.npy"}
    for name, data in files.items():
        set_depth(d, Path(name).stem, Path(name).suffix, data)
    for name in files:
        path = d / "depth" / name
        try:
            read = FolderSource.read_depth(path).shape
        except SourceError:
            read = None
        try:
            header = depth_file_size(path)
        except SourceError as exc:
            assert str(exc).startswith(f"folder: depth {path}"), exc
            header = None
        assert header == read, name
        assert (read is not None) == (name in accepted), name


def test_value_problems_pass_the_header_check(tmp_path):
    """What only the pixel values show is left to the reader: an RGB PNG whose channels
    differ, millimetres in a .npy, metres in a PNG."""
    d = tmp_path / "d"
    (d / "depth").mkdir(parents=True)
    rgb = np.stack([grey16(), grey16(), grey16() + 7], axis=2)
    cases = {"rgb.png": (rgb, "different channels"),
             "mm.npy": (depth_m() * 1000, "looks like millimetres"),
             "m.png": (np.full((H, W), 2, np.uint16), "implausibly near")}
    for name, (data, why) in cases.items():
        path = set_depth(d, Path(name).stem, Path(name).suffix, data)
        assert depth_file_size(path) == (H, W)
        with pytest.raises(SourceError, match=why):
            FolderSource.read_depth(path)


def test_a_valid_mixed_png_and_npy_folder_still_passes(tmp_path, work):
    root = make_folder(tmp_path / "f", ["a", "b", "c"])
    set_depth(root, "b", ".png", grey16())                                  # 16-bit grey mm
    set_depth(root, "c", ".png", np.repeat(grey16()[..., None], 3, axis=2))  # equal RGB, mm
    src = get_source("folder", root)
    src.check_frame_sizes("all")                                            # no error
    out = work / "out.zarr"
    res = synth("--source", "folder", "--input", root, "--output", out, *CAMERA,
                "--shard-size", "2")
    assert res.exit_code == 0, res.output
    split = open_dataset(out)["all"]
    assert len(split) == 3 and split.image_shape == (H, W)
    expected = np.round(depth_m() * 1000) / 1000
    for i in range(3):
        np.testing.assert_allclose(split.read(i)["depth"], expected, atol=1e-3)


def test_on_error_skip_still_skips_a_bad_depth_file_when_read(tmp_path, work):
    root = make_folder(tmp_path / "f", ["a", "b", "c"])
    set_depth(root, "b", ".png", np.full((H, W), 200, np.uint8))
    out = work / "out.zarr"
    res = synth("--source", "folder", "--input", root, "--output", out, *CAMERA,
                "--on-error", "skip")
    assert res.exit_code == 0, res.output
    assert "skipped 1 sample (" in res.output
    assert "all/b" in res.output and "is an uint8 PNG" in res.output


def test_millimetres_in_a_npy_mid_run_say_to_rerun_with_overwrite(tmp_path, work):
    root = make_folder(tmp_path / "f")
    set_depth(root, "b", ".npy", depth_m() * 1000)     # millimetres: found when read
    out = work / "out.zarr"
    args = ["--source", "folder", "--input", root, "--output", out, *CAMERA,
            "--shard-size", "1"]
    res = synth(*args)
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    line = lines[0]
    assert "all/b (index 1)" in line and "b.npy" in line and "looks like millimetres" in line
    assert (f"The dataset {str(out)!r} is left unfinished: fix that file, then rerun with "
            "--overwrite (--resume refuses an input that changed since the dataset was "
            "started)") in line, line
    assert out.exists()                                 # shard 0 was written
    # the advice holds: after the fix --resume is refused and --overwrite works
    fixed = set_depth(root, "b", ".npy", depth_m())
    later = fixed.stat().st_mtime + 60        # a fix made in the same second hashes alike
    os.utime(fixed, (later, later))
    res = synth(*args, "--resume")
    assert res.exit_code == 1 and "changed since the dataset was started" in res.output
    res = synth(*args, "--overwrite")
    assert res.exit_code == 0, res.output
    assert len(open_dataset(out)["all"]) == 2
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt", "out.zarr"]


def test_a_bad_value_while_overwriting_says_the_old_dataset_is_unchanged(tmp_path, work):
    root = make_folder(tmp_path / "f")
    out = work / "out.zarr"
    args = ["--source", "folder", "--input", root, "--output", out, *CAMERA,
            "--shard-size", "1"]
    assert synth(*args).exit_code == 0
    before = open_dataset(out)["all"].read(1)["defocused"]
    set_depth(root, "b", ".npy", depth_m() * 1000)
    res = synth(*args, "--overwrite")
    assert res.exit_code == 1
    assert (f"The existing dataset {str(out)!r} was not changed: fix that file, then rerun "
            "with --overwrite") in res.output, res.output
    np.testing.assert_array_equal(open_dataset(out)["all"].read(1)["defocused"], before)


def test_a_bad_value_in_the_first_sample_creates_nothing(tmp_path, work):
    """The first sample is read to plan the dataset, before it is created: nothing to
    recover, so no --overwrite advice."""
    root = make_folder(tmp_path / "f")
    set_depth(root, "a", ".npy", depth_m() * 1000)
    out = work / "out.zarr"
    res = synth("--source", "folder", "--input", root, "--output", out, *CAMERA)
    assert res.exit_code == 1
    assert "looks like millimetres" in res.output and "--overwrite" not in res.output
    assert_untouched(work)
