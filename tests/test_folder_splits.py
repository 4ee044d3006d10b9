"""The folder reader's train/test split, the trainer's --train-split / --stack-index, and
mixed frame sizes refused before anything is written."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from _helpers import TINY
from click.testing import CliRunner

from cli.defocuskit_cmd import main as defocuskit
from defocuskit.errors import ConfigError, SourceError
from defocuskit.sources import get_source
from defocuskit.sources.folder import stem_split
from defocuskit.sources.headers import frame_size
from defocuskit.store import open_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def make_folder(root: Path, stems, size=(64, 64), *, depth_ext=".npy") -> Path:
    """``rgb/<stem>.png`` (a seeded random image) and ``depth/<stem>.npy`` (1..4 m)."""
    (root / "rgb").mkdir(parents=True, exist_ok=True)
    (root / "depth").mkdir(exist_ok=True)
    for k, stem in enumerate(stems):
        sz = size(k) if callable(size) else size
        rng = np.random.default_rng(k)
        cv2.imwrite(str(root / "rgb" / f"{stem}.png"),
                    rng.integers(0, 256, (*sz, 3), dtype=np.uint8))
        rows = np.mgrid[0:sz[0], 0:sz[1]][0]
        depth = (1 + 3 * rows / sz[0]).astype(np.float32)
        if depth_ext == ".npy":
            np.save(root / "depth" / f"{stem}.npy", depth)
        else:
            cv2.imwrite(str(root / "depth" / f"{stem}.png"), np.round(depth * 1000)
                        .astype(np.uint16))
    return root


def expected_split(stem: str, fraction: float) -> str:
    """The documented rule, written out: the first 4 bytes of SHA-256, big-endian."""
    u = int.from_bytes(hashlib.sha256(stem.encode()).digest()[:4], "big") / 2**32
    return "test" if u < fraction else "train"


STEMS = [f"img_{i:03d}" for i in range(50)]


# ------------------------------------------------------------------ the split itself
def test_stem_split_is_the_documented_hash_rule():
    stems = [*STEMS, "Bedroom_1", "ü-ß", "a b"]
    for f in (0.0, 0.1, 0.2, 0.5, 1.0):
        assert [stem_split(s, f) for s in stems] == [expected_split(s, f) for s in stems]


def test_fraction_is_roughly_right():
    stems = [f"frame{i}" for i in range(4000)]
    share = np.mean([stem_split(s, 0.2) == "test" for s in stems])
    assert abs(share - 0.2) < 0.025            # binomial sd 0.0063: 4 sd
    share = np.mean([stem_split(s, 0.5) == "test" for s in stems])
    assert abs(share - 0.5) < 0.03


def test_folder_split_is_deterministic_and_stable_when_files_are_added(tmp_path):
    root = make_folder(tmp_path / "f", STEMS, size=(8, 8))
    src = get_source("folder", root, test_fraction=0.2)
    assert src.splits() == ["train", "test"]
    test = src.sample_ids("test")
    assert test == [s for s in STEMS if expected_split(s, 0.2) == "test"]
    assert 4 <= len(test) <= 16                 # 10 expected of 50
    assert sorted(test + src.sample_ids("train")) == STEMS
    again = get_source("folder", root, test_fraction=0.2)
    assert again.sample_ids("test") == test and again.sample_ids("train") == src.sample_ids(
        "train")
    # new files land where their own hash says; none of the old ones moves
    added = [f"new_{i}" for i in range(30)]
    make_folder(root, added, size=(8, 8))
    grown = get_source("folder", root, test_fraction=0.2)
    assert [s for s in grown.sample_ids("test") if s in STEMS] == test
    assert [s for s in grown.sample_ids("test") if s in added] == [
        s for s in added if expected_split(s, 0.2) == "test"]
    # provenance: the fraction, the rule and the split sizes
    opts = grown.options()
    assert opts["test_fraction"] == 0.2 and "sha256(stem)" in opts["split_rule"]
    assert opts["split_sizes"] == {"train": 80 - len(grown.sample_ids("test")),
                                   "test": len(grown.sample_ids("test"))}


def test_default_is_unchanged_and_fractions_0_and_1_give_one_split(tmp_path):
    root = make_folder(tmp_path / "f", STEMS[:6], size=(8, 8))
    assert get_source("folder", root).splits() == ["all"]
    assert get_source("folder", root).options()["layout"] == "flat"
    assert get_source("folder", root, test_fraction=0).splits() == ["train"]
    assert get_source("folder", root, test_fraction=1).splits() == ["test"]


@pytest.mark.parametrize("name, content", [
    ("test.txt", "# held-out frames\nimg_003\n\nimg_007.png\n  img_011  \n"),
    ("test.json", json.dumps(["img_003", "img_007", "img_011"])),
    ("split.json", json.dumps({"test": ["img_011", "img_003.jpg", "img_007"]})),
], ids=["text", "json-list", "json-table"])
def test_split_file_lists_the_test_stems(tmp_path, name, content):
    root = make_folder(tmp_path / "f", STEMS[:12], size=(8, 8))
    listing = tmp_path / name
    listing.write_text(content)
    src = get_source("folder", root, split_file=str(listing))
    assert src.sample_ids("test") == ["img_003", "img_007", "img_011"]
    assert src.sample_ids("train") == [s for s in STEMS[:12]
                                       if s not in ("img_003", "img_007", "img_011")]
    opts = src.options()
    assert opts["test_stems"] == ["img_003", "img_007", "img_011"]
    assert opts["split_file_sha256"] == hashlib.sha256(listing.read_bytes()).hexdigest()
    # the list is part of the input's identity: editing it changes the hash a resume checks
    before = src.identity()["sha256"]
    listing.write_text(content.replace("img_011", "img_010"))
    assert get_source("folder", root, split_file=str(listing)).identity()["sha256"] != before


def _split_dirs(root):
    make_folder(root / "train", ["a"], size=(8, 8))
    make_folder(root / "test", ["b"], size=(8, 8))


@pytest.mark.parametrize("options, listing, error, match", [
    ({"test_fraction": 1.5}, None, ConfigError, r"test_fraction must be in \[0, 1\], got 1.5"),
    ({"test_fraction": "a lot"}, None, ConfigError, r"'test_fraction' expected a number"),
    ({"test_fraction": 0.2}, "img_000\n", ConfigError, "test_fraction or split_file, not both"),
    ({}, "img_000\nnope\nimg_999\n", SourceError, r"2 stem\(s\) without an image.*'nope'"),
    ({}, "\n".join(STEMS[:4]), SourceError, "leaves split 'train' empty"),
    ({"test_fraction": 0.005}, None, SourceError, "put none of the 4 pairs in 'test'"),
    ({"test_share": 0.2}, None, ConfigError,
     r"unknown option\(s\) \['test_share'\]; known options: \['split_file', 'test_fraction'\]"),
], ids=["fraction-out-of-range", "fraction-not-a-number", "both", "unknown-stems",
        "everything-listed", "empty-test-split", "unknown-option"])
def test_bad_split_options_are_one_clear_error(tmp_path, options, listing, error, match):
    root = make_folder(tmp_path / "f", STEMS[:4], size=(8, 8))
    assert all(expected_split(s, 0.005) == "train" for s in STEMS[:4])   # the premise
    if listing is not None:
        (tmp_path / "list.txt").write_text(listing)
        options = {**options, "split_file": str(tmp_path / "list.txt")}
    with pytest.raises(error, match=match):
        get_source("folder", root, **options)


def test_split_options_refuse_a_folder_that_has_split_folders(tmp_path):
    _split_dirs(tmp_path / "s")
    with pytest.raises(ConfigError, match=r"already has split folders \['train', 'test'\]"):
        get_source("folder", tmp_path / "s", test_fraction=0.2)


# ------------------------------------------------------------------ frame sizes from headers
def test_frame_size_reads_headers_as_the_decoder_sees_them(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    files = {"a.png": [], "b.jpg": [], "c.bmp": [], "d.tif": [],
             "e.jpg": [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]}
    for name, params in files.items():
        assert cv2.imwrite(str(tmp_path / name), img, params)
    cv2.imwrite(str(tmp_path / "grey16.png"), np.ones((21, 34), np.uint16))
    np.save(tmp_path / "d.npy", np.ones((19, 23), np.float32))
    np.save(tmp_path / "d1.npy", np.ones((19, 23, 1), np.float32))
    for name in (*files, "grey16.png"):
        decoded = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED).shape[:2]
        assert frame_size(tmp_path / name) == decoded, name
    assert frame_size(tmp_path / "d.npy") == (19, 23) == frame_size(tmp_path / "d1.npy")


# ------------------------------------------------------------------ mixed sizes in synth
def synth(*args):
    return CliRunner().invoke(defocuskit, ["synth", *[str(a) for a in args]])


def test_mixed_sizes_are_refused_before_anything_is_written(tmp_path):
    sizes = [(64, 64), (64, 64), (48, 80), (64, 64)]
    root = make_folder(tmp_path / "f", ["a", "b", "c", "d"], size=lambda k: sizes[k])
    work = tmp_path / "work"
    work.mkdir()
    foreign = work / "notes.txt"
    foreign.write_text("mine")
    os.utime(foreign, (1_000_000, 1_000_000))
    for out in (work / "out.zarr", work / "new" / "out.zarr"):
        res = synth("--source", "folder", "--input", root, "--output", out)
        assert res.exit_code == 1
        lines = res.output.strip().splitlines()
        assert len(lines) == 1, res.output
        assert ("rgb/a.png is 64x64 but rgb/c.png is 48x80" in lines[0]
                and "use --resize HxW" in lines[0]), res.output
        assert "Traceback" not in res.output and "--resume" not in res.output
        assert not out.exists()
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt"]   # no lock, no folder
    assert foreign.read_text() == "mine" and foreign.stat().st_mtime == 1_000_000
    # with --resize the same folder works, every frame at the one size
    out = work / "out.zarr"
    res = synth("--source", "folder", "--input", root, "--output", out, "--resize", "32x48",
                "--shard-size", "2")
    assert res.exit_code == 0, res.output
    ds = open_dataset(out)
    assert ds["all"].image_shape == (32, 48) and len(ds["all"]) == 4
    assert ds["all"].read(2)["aif"].shape == (32, 48, 3)


def test_a_depth_map_of_another_size_is_refused_before_writing(tmp_path):
    root = make_folder(tmp_path / "f", ["a", "b"])
    np.save(root / "depth" / "b.npy", np.ones((64, 60), np.float32))
    out = tmp_path / "out.zarr"
    res = synth("--source", "folder", "--input", root, "--output", out, "--resize", "32x32")
    assert res.exit_code == 1
    assert "image rgb/b.png is 64x64 but depth depth/b.npy is 64x60" in res.output
    assert not out.exists()


# ------------------------------------------------------------------ synth -> trainer
@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("folder_splits")
    stems = [f"shot{i}" for i in range(10)]
    return make_folder(root / "mine", stems, depth_ext=".png")


@pytest.fixture(scope="module")
def split_dataset(tiny_folder) -> Path:
    out = tiny_folder.parent / "mine.zarr"
    res = synth("--source", "folder", "--input", tiny_folder, "--output", out,
                "--option", "test_fraction=0.3", "--camera", "2hded", "--focus", "fixed:2",
                "--render-mode", "gather")
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> Path:
    cfg = tmp_path_factory.mktemp("tiny_cfg") / "tiny.toml"
    cfg.write_text("[model]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in TINY.items()))
    return cfg


def fit(data, run_dir, tiny_config, *extra):
    from cli.trainer_cmd import trainer

    return CliRunner().invoke(trainer, [
        "fit", "--data", str(data), "--run-dir", str(run_dir), "--preset", "demo",
        "--config", str(tiny_config), "--crop", "64", "--max-steps", "1", "--device", "cpu",
        "--val-split", "none", *[str(a) for a in extra]])


@pytest.mark.torch
def test_synth_records_the_split_and_fit_trains_on_it(split_dataset, tiny_config, tmp_path):
    ds = open_dataset(split_dataset)
    stems = [f"shot{i}" for i in range(10)]
    test = [s for s in stems if expected_split(s, 0.3) == "test"]
    assert ds.splits == ["train", "test"] and list(ds["test"].sample_ids) == test
    opts = ds.attrs["source"]["options"]
    assert opts["test_fraction"] == 0.3 and opts["layout"] == "flat, split by stem hash"
    assert ds.attrs["config"]["source_options"] == {"test_fraction": 0.3}
    run = tmp_path / "run"
    res = fit(split_dataset, run, tiny_config, "--train-split", "train")
    assert res.exit_code == 0, res.output
    saved = json.loads((run / "config.json").read_text())
    assert saved["train_split"] == "train" and saved["stack_index"] is None
    from trainer.checkpoint import load_checkpoint

    assert load_checkpoint(run / "last.pt")["step"] == 1
    # an unknown split names the dataset's splits and the option
    res = fit(split_dataset, tmp_path / "run2", tiny_config, "--train-split", "all")
    assert res.exit_code == 1
    assert ("train_split 'all'" in res.output and "['train', 'test']" in res.output
            and "--train-split" in res.output), res.output
    # a stack index on a dataset without stacks is refused
    res = fit(split_dataset, tmp_path / "run3", tiny_config, "--stack-index", "0")
    assert res.exit_code == 1
    assert "stack_index 0" in res.output and "not a focal stack" in res.output, res.output
    from cli.trainer_cmd import trainer

    res = CliRunner().invoke(trainer, ["eval", "--data", str(split_dataset), "--checkpoint",
                                       str(run / "last.pt"), "--device", "cpu",
                                       "--stack-index", "1"])
    assert res.exit_code == 1 and "not a focal stack" in res.output, res.output


@pytest.mark.torch
def test_a_flat_folder_trains_with_train_split_all(tiny_folder, tiny_config, tmp_path):
    out = tmp_path / "flat.zarr"
    res = synth("--source", "folder", "--input", tiny_folder, "--output", out, "--limit", "4",
                "--focus", "fixed:2")
    assert res.exit_code == 0, res.output
    res = fit(out, tmp_path / "r0", tiny_config)
    assert res.exit_code == 1 and "train_split 'train'" in res.output
    assert "has splits ['all']" in res.output
    res = fit(out, tmp_path / "r1", tiny_config, "--train-split", "all")
    assert res.exit_code == 0, res.output


@pytest.fixture(scope="module")
def stack_dataset(tiny_folder) -> Path:
    out = tiny_folder.parent / "stack.zarr"
    res = synth("--source", "folder", "--input", tiny_folder, "--output", out, "--limit", "4",
                "--focus", "stack:1.5,3", "--render-mode", "gather")
    assert res.exit_code == 0, res.output
    return out


@pytest.mark.torch
def test_stack_index_on_a_focal_stack(stack_dataset, tiny_config, tmp_path):
    assert open_dataset(stack_dataset)["all"].focal_stack == 2
    res = fit(stack_dataset, tmp_path / "r0", tiny_config, "--train-split", "all")
    assert res.exit_code == 1 and "focal stack of 2" in res.output
    assert "--stack-index" in res.output and "0..1" in res.output
    res = fit(stack_dataset, tmp_path / "r1", tiny_config, "--train-split", "all",
              "--stack-index", "2")
    assert res.exit_code == 1
    assert "stack_index 2" in res.output and "focal stacks of 2 images" in res.output
    res = fit(stack_dataset, tmp_path / "r2", tiny_config, "--train-split", "all",
              "--stack-index", "-1")
    assert res.exit_code == 2  # refused as the option is parsed
    assert "Invalid value for '--stack-index': expected an integer in [0, inf)" in res.output
    run = tmp_path / "r3"
    res = fit(stack_dataset, run, tiny_config, "--train-split", "all", "--stack-index", "1")
    assert res.exit_code == 0, res.output
    assert json.loads((run / "config.json").read_text())["stack_index"] == 1
    from cli.trainer_cmd import trainer

    def evaluate(*extra):
        return CliRunner().invoke(trainer, ["eval", "--data", str(stack_dataset),
                                            "--checkpoint", str(run / "last.pt"), "--split",
                                            "all", "--device", "cpu", "--json", *extra])

    res = evaluate("--stack-index", "5")
    assert res.exit_code == 1 and "focal stacks of 2 images" in res.output
    # the run's stack image by default, another one on request: different inputs, scores
    default, first, second = (evaluate(*a) for a in ([], ["--stack-index", "0"],
                                                     ["--stack-index", "1"]))
    for r in (default, first, second):
        assert r.exit_code == 0, r.output
    default, first, second = (json.loads(r.output) for r in (default, first, second))
    assert default["rmse"] == second["rmse"] and default["rmse"] != first["rmse"]


def test_folder_identity_sees_a_same_size_rewrite_within_one_second(tmp_path):
    """A file rewritten with the same size inside the same second changes the folder's
    identity (whole-second mtimes did not), so ``--resume`` cannot mix old and new data."""
    import os

    from defocuskit.sources.base import file_identity

    f = tmp_path / "a.png"
    f.write_bytes(b"0123")
    t = 1_700_000_000_000_000_000  # a whole second, in ns
    os.utime(f, ns=(t, t))
    before = file_identity(tmp_path)
    f.write_bytes(b"4567")  # same size
    os.utime(f, ns=(t + 400_000_000, t + 400_000_000))  # 0.4 s later: the same second
    after = file_identity(tmp_path)
    assert after["size"] == before["size"] and after["sha256"] != before["sha256"]
    os.utime(f, ns=(t, t))  # the listing alone decides: back to the old stamp, old hash
    assert file_identity(tmp_path)["sha256"] == before["sha256"]
