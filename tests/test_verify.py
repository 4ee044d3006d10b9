"""Damaged or missing data is found and named, never read as data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.defocuskit_cmd import main
from defocuskit.errors import DataError
from defocuskit.preview import preview_figure
from defocuskit.store import open_dataset
from defocuskit.verify import verify_dataset

GOLDEN = Path(__file__).parent / "data" / "golden_v2.zarr"


@pytest.fixture
def copy(tmp_path) -> Path:
    out = tmp_path / "g.zarr"
    shutil.copytree(GOLDEN, out)
    return out


def _shard_file(ds: Path, split: str, array: str, shard: int) -> Path:
    files = sorted((ds / split / array / "c" / str(shard)).rglob("*"))
    return next(f for f in files if f.is_file())


def _flip_byte(path: Path, offset: int = 20) -> None:
    b = bytearray(path.read_bytes())
    b[offset] ^= 0xFF
    path.write_bytes(bytes(b))


def test_clean_dataset_verifies(copy):
    assert verify_dataset(copy) == []
    r = CliRunner().invoke(main, ["inspect", str(copy), "--verify"])
    assert r.exit_code == 0 and "verified" in r.output


def test_flipped_byte_is_a_named_error_and_a_verify_finding(copy):
    _flip_byte(_shard_file(copy, "train", "depth", 0))
    sp = open_dataset(copy)["train"]
    with pytest.raises(DataError, match=r"split 'train', array 'depth', sample 0: damaged"):
        sp.read_array("depth", 0)
    np.testing.assert_array_equal(sp.read_array("depth", 2)[0], [2, 2.125, 2.25, 2.375,
                                                                  2.5, 2.625])  # shard 1 fine
    problems = verify_dataset(copy)
    assert [(p.split, p.array) for p in problems] == [("train", "depth")]
    assert problems[0].start == 0 and problems[0].stop <= 2
    r = CliRunner().invoke(main, ["inspect", str(copy), "--verify"])
    assert r.exit_code == 3 and "train/depth sample" in r.output


def test_missing_shard_file_is_not_read_as_fill_values(copy):
    _shard_file(copy, "stack", "sigma", 0).unlink()
    sp = open_dataset(copy)["stack"]
    with pytest.raises(DataError, match="array .sigma., sample 1: its shard file is missing or "
                       "empty"):
        sp.read_array("sigma", 1)
    problems = verify_dataset(copy)
    assert [str(p) for p in problems] == ["stack/sigma samples 0-1: shard file missing or empty"]
    r = CliRunner().invoke(main, ["inspect", str(copy), "--verify", "--json"])
    assert r.exit_code == 3
    assert json.loads(r.output)["problems"][0]["reason"] == "shard file missing or empty"


def test_skipped_samples_are_not_data(copy):
    sp = open_dataset(copy)["skipped"]
    assert sp.usable_indices() == [0, 2]
    with pytest.raises(DataError, match="skipped when the dataset was written"):
        sp.read_array("depth", 1)
    assert verify_dataset(copy) == []  # skipped samples are recorded, not damage


def test_preview_names_the_damage_in_one_line(copy, tmp_path):
    _shard_file(copy, "real", "aif", 0).unlink()
    r = CliRunner().invoke(main, ["preview", str(copy), "--split", "real", "-n", "3",
                                  "--output", str(tmp_path / "p.png")])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "split 'real', array 'aif', sample 0: its shard file is missing or empty" in r.output


def test_preview_leaves_out_skipped_samples(copy, tmp_path):
    sp = open_dataset(copy)["skipped"]
    assert len(sp) == 3 and sp.skipped_indices() == {1}  # the golden copy's skipped sample
    r = CliRunner().invoke(main, ["preview", str(copy), "--split", "skipped", "-n", "3",
                                  "--output", str(tmp_path / "p.png")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "p.png").stat().st_size > 0
    # asked for 3, shown are the 2 samples that hold data, each its own image
    fig = preview_figure(copy, split="skipped", n=3)
    shown = [ax for ax in fig.axes if ax.get_label() == "aif"]
    assert [ax.get_title() for ax in shown] == [f"skipped-{i}: all-in-focus" for i in (0, 2)]
    assert sp.sample_ids[1] == "skipped-1"  # the one left out
    for ax, i in zip(shown, (0, 2), strict=True):
        np.testing.assert_array_equal(ax.images[0].get_array(), sp.read_array("aif", i))


def test_read_all_reads_a_whole_split_checked(copy):
    sp = open_dataset(copy)["train"]
    whole = sp.read_all("depth")
    expected = np.stack([sp.read_array("depth", i) for i in range(len(sp))])
    np.testing.assert_array_equal(whole, expected)
    _flip_byte(_shard_file(copy, "train", "depth", 0))
    with pytest.raises(DataError, match=r"array 'depth', samples 0-1: damaged"):
        open_dataset(copy)["train"].read_all("depth")


def test_read_all_refuses_a_missing_shard_file_instead_of_fill_values(copy):
    _shard_file(copy, "stack", "sigma", 0).unlink()
    with pytest.raises(DataError, match="array 'sigma', samples 0-1: their shard file is "
                                        "missing"):
        open_dataset(copy)["stack"].read_all("sigma")


def test_read_all_leaves_out_skipped_samples(copy):
    sp = open_dataset(copy)["skipped"]
    whole = sp.read_all("depth")
    assert whole.shape[0] == 2
    np.testing.assert_array_equal(whole[1], sp.read_array("depth", 2))
