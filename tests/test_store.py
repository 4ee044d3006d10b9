"""The Zarr store: golden fixture, completeness, schema checks, shard-safe writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from defocuskit.errors import SchemaError
from defocuskit.store import (
    SplitSpec,
    create_dataset,
    done_shards,
    mark_complete,
    open_dataset,
    shard_ranges,
    write_arrays,
    write_shard,
)

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
from make_golden import SKIPPED, golden_arrays, golden_v2_arrays, write_golden_v2  # noqa: E402


def test_golden_v1_fixture_reads_value_for_value():
    ds = open_dataset(DATA / "golden_v1.zarr")
    want = golden_arrays()["train"]
    sp = ds["train"]
    assert len(sp) == 3 and sp.image_shape == (4, 6) and sp.focal_stack == 0
    for name, values in want.items():
        np.testing.assert_array_equal(np.asarray(sp.array(name)[:]), values, err_msg=name)
    np.testing.assert_array_equal(sp.array("source_index")[:], [0, 1, 2])
    assert sp.sample_ids == ["train-0", "train-1", "train-2"]
    # storage facts the schema promises: one sample per chunk, shards of shard_size
    aif = sp.array("aif")
    assert aif.chunks == (1, 4, 6, 3) and aif.shards == (2, 4, 6, 3)


@pytest.mark.parametrize("split", ["train", "stack", "real", "skipped"])
def test_golden_v2_fixture_reads_value_for_value(split):
    ds = open_dataset(DATA / "golden_v2.zarr")
    assert ds.attrs["schema_version"] == 2 and ds.splits == ["train", "stack", "real",
                                                             "skipped"]
    want = golden_v2_arrays()[split]
    sp = ds[split]
    arrays = sorted(k for k in sp._g.array_keys() if not k.startswith("_"))
    assert arrays == sorted({*want, "source_index"})
    for name, values in want.items():
        np.testing.assert_array_equal(np.asarray(sp.array(name)[:]), values, err_msg=name)
    assert sp.focal_stack == (2 if split == "stack" else 0)
    assert sp.has("sigma") is (split != "real")
    if split == "skipped":
        assert sp.attrs["skipped"] == SKIPPED
        assert sp.usable_indices() == [0, 2]
    else:
        assert sp.usable_indices() == list(range(len(sp)))


def test_rewriting_the_golden_v2_fixture_gives_the_same_metadata(tmp_path):
    write_golden_v2(tmp_path / "g.zarr")
    old_root, new_root = DATA / "golden_v2.zarr", tmp_path / "g.zarr"
    metas = sorted(p.relative_to(old_root) for p in old_root.rglob("zarr.json"))
    assert metas == sorted(p.relative_to(new_root) for p in new_root.rglob("zarr.json"))
    for rel in metas:
        new = json.loads((new_root / rel).read_text())
        old = json.loads((old_root / rel).read_text())
        assert new == old, rel


def test_every_chunk_carries_a_checksum():
    ds = open_dataset(DATA / "golden_v2.zarr")
    for split in ds.splits:
        for name in ds[split]._g.array_keys():
            meta = json.loads((DATA / "golden_v2.zarr" / split / name / "zarr.json")
                              .read_text())
            codecs = meta["codecs"]
            inner = codecs[0]["configuration"]["codecs"] if codecs[0]["name"] == \
                "sharding_indexed" else codecs
            assert inner[-1]["name"] == "crc32c", (split, name)


def _spec(n=5):
    return {"train": SplitSpec(n=n, height=3, width=4, sample_ids=tuple(map(str, range(n))))}


def test_a_shard_of_black_frames_reads_back_as_data(tmp_path):
    # every chunk equal to the fill value (aif 0, defocused 0): Zarr's default would write no
    # shard file for them, and a missing shard file reads as a damaged dataset
    out = tmp_path / "d.zarr"
    n, h, w = 4, 3, 5
    rng = np.random.default_rng(0)
    arrays = {"aif": np.zeros((n, h, w, 3), np.uint8),
              "defocused": np.zeros((n, h, w, 3), np.uint8),
              "depth": rng.uniform(1, 5, (n, h, w)).astype(np.float32),
              "sigma": np.full((n, h, w), np.nan, np.float32)}  # NaN: sigma's fill value
    write_arrays(out, {"train": arrays}, shard_size=2)
    assert sorted(p.name for p in (out / "train" / "aif" / "c").iterdir()) == ["0", "1"]
    sp = open_dataset(out)["train"]
    for i in range(n):
        got = sp.read(i, names=("aif", "defocused", "depth", "sigma"))
        for name, values in arrays.items():
            np.testing.assert_array_equal(got[name], values[i], err_msg=name)


def test_incomplete_dataset_never_looks_complete(tmp_path):
    out = tmp_path / "d.zarr"
    create_dataset(out, _spec(), attrs={}, shard_size=2)
    with pytest.raises(SchemaError, match="incomplete"):
        open_dataset(out)
    write_shard(out, "train", 0, {"depth": np.ones((2, 3, 4), np.float32)})
    np.testing.assert_array_equal(done_shards(out, "train"), [True, False, False])
    with pytest.raises(SchemaError, match=r"shards \[1, 2\]"):
        mark_complete(out)
    for i, (a, b) in enumerate(shard_ranges(5, 2)[1:], start=1):
        write_shard(out, "train", i, {"depth": np.full((b - a, 3, 4), i, np.float32)})
    mark_complete(out)
    depth = open_dataset(out)["train"].array("depth")[:]
    np.testing.assert_array_equal(depth[:, 0, 0], [1, 1, 1, 1, 2])


def test_missing_folder_is_not_a_zarr_dataset(tmp_path):
    with pytest.raises(SchemaError, match="not a Zarr dataset"):
        open_dataset(tmp_path / "missing.zarr")


def test_plain_zarr_group_is_not_a_defocuskit_dataset(tmp_path):
    zarr.open_group(tmp_path / "plain.zarr", mode="w")
    with pytest.raises(SchemaError, match="not a defocuskit dataset"):
        open_dataset(tmp_path / "plain.zarr")


def test_unknown_schema_version_is_refused(tmp_path):
    write_arrays(tmp_path / "v.zarr", golden_arrays())
    g = zarr.open_group(tmp_path / "v.zarr", mode="r+", use_consolidated=False)
    g.attrs["schema_version"] = 99
    zarr.consolidate_metadata(g.store)
    with pytest.raises(SchemaError, match="schema version 99"):
        open_dataset(tmp_path / "v.zarr")


@pytest.mark.parametrize("lookup, match", [
    (lambda ds: ds["test"], "no split 'test'"),
    (lambda ds: ds["train"].array("nope"), "no array 'nope'"),
], ids=["absent-split", "absent-array"])
def test_absent_split_or_array_is_named(lookup, match):
    ds = open_dataset(DATA / "golden_v1.zarr")
    with pytest.raises(SchemaError, match=match):
        lookup(ds)


def _write_one(out, i, a, b):
    write_shard(out, "train", i, {"depth": np.full((b - a, 3, 4), i + 1, np.float32)})


def test_parallel_shard_writers_lose_nothing(tmp_path):
    """One process per shard, all at once: every sample must land."""
    from joblib import Parallel, delayed

    out = tmp_path / "p.zarr"
    create_dataset(out, _spec(n=12), attrs={}, shard_size=2)
    Parallel(n_jobs=2)(delayed(_write_one)(out, i, a, b)
                       for i, (a, b) in enumerate(shard_ranges(12, 2)))
    mark_complete(out)
    depth = open_dataset(out)["train"].array("depth")[:]
    np.testing.assert_array_equal(depth[:, 1, 1], np.repeat(np.arange(1, 7), 2))
