"""trainer.data: crops stay aligned across arrays, augmentation is seeded, workers work."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr
from torch.utils.data import DataLoader

from defocuskit.errors import ConfigError, SchemaError
from defocuskit.manifest import MANIFEST_NAME
from defocuskit.store import mark_complete, write_arrays
from trainer.data import (
    DefocusDataset,
    crop_to,
    holdout_indices,
    pad_to_multiple,
    to_device_batch,
)

H, W = 64, 96


def coded_split(n: int, *, stack: int = 0) -> dict:
    """Images whose pixels say where they are: R = row, G = col, B = sample index.

    Depth is 1 + row / 100 + col / 1000 metres with one invalid (NaN) pixel per sample.
    """
    rows, cols = np.mgrid[0:H, 0:W]
    aif = np.stack([np.stack([rows, cols, np.full_like(rows, i)], -1) for i in range(n)])
    aif = aif.astype(np.uint8)
    depth = np.broadcast_to(1 + rows / 100 + cols / 1000, (n, H, W)).astype(np.float32).copy()
    depth[:, 0, 0] = np.nan
    defocused = aif.copy()
    if stack:  # image k of the stack has k added to its blue channel
        defocused = np.stack([aif + np.array([0, 0, 10 * k], np.uint8) for k in range(stack)], 1)
    arrays = {"aif": aif, "defocused": defocused, "depth": depth}
    arrays["sigma"] = np.ones(defocused.shape[:-1], np.float32)
    return arrays


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    path = tmp_path_factory.mktemp("trainer_data") / "coded.zarr"
    write_arrays(path, {"train": coded_split(5), "test": coded_split(2)})
    return path


def where(item):
    """(top, left, flipped) implied by a coded item, checking the crop is a clean window."""
    img = item["defocused"].numpy()
    r, c = img[0], img[1]
    top, cols = int(r[0, 0]), c[0].astype(int)
    flipped = cols[0] > cols[-1]
    left = int(cols.min())
    exp_cols = np.arange(left, left + img.shape[2])
    assert np.array_equal(cols, exp_cols[::-1] if flipped else exp_cols)
    assert np.array_equal(r[:, 0], np.arange(top, top + img.shape[1]))
    return top, left, flipped


def test_crop_keeps_input_aif_and_depth_aligned(coded):
    ds = DefocusDataset(coded, "train", crop=32, seed=3)
    assert len(ds) == 5
    for i in range(len(ds)):
        item = ds[i]
        assert item["defocused"].dtype == torch.uint8 and item["defocused"].shape == (3, 32, 32)
        assert item["depth"].dtype == torch.float32 and item["depth"].shape == (1, 32, 32)
        top, left, flipped = where(item)
        assert np.all(item["defocused"].numpy()[2] == i)
        assert torch.equal(item["aif"], item["defocused"])
        rows, cols = np.mgrid[top:top + 32, left:left + 32]
        exp = (1 + rows / 100 + cols / 1000).astype(np.float32)
        if top == 0 and left == 0:
            exp[0, 0] = np.nan
        if flipped:
            exp = exp[:, ::-1]
        np.testing.assert_array_equal(item["depth"].numpy()[0], exp)


def test_augmentation_is_seeded_per_epoch_and_flips_half(coded):
    ds = DefocusDataset(coded, "train", crop=32, seed=7)
    again = DefocusDataset(coded, "train", crop=32, seed=7)
    draws = []
    for epoch in range(40):
        ds.set_epoch(epoch)
        again.set_epoch(epoch)
        for i in range(len(ds)):
            a = where(ds[i])
            assert a == where(again[i])
            draws.append(a)
    flips = np.mean([d[2] for d in draws])
    assert 0.35 < flips < 0.65  # p = 0.5 over 200 draws
    assert len({d[:2] for d in draws}) > 50  # the windows really move
    ds.set_epoch(0)
    other = DefocusDataset(coded, "train", crop=32, seed=8)
    assert [where(ds[i]) for i in range(5)] != [where(other[i]) for i in range(5)]


def test_full_frames_pad_and_crop_back(coded):
    ds = DefocusDataset(coded, "test", crop=None)
    item = ds[1]
    assert item["defocused"].shape == (3, H, W)
    batch = to_device_batch({k: v[None] for k, v in item.items() if k != "index"}, "cpu")
    assert batch["defocused"].dtype == torch.float32
    np.testing.assert_allclose(batch["aif"].numpy() * 255, item["aif"][None].numpy(), atol=1e-4)
    x = torch.arange(2 * 3 * 50 * 70, dtype=torch.float32).reshape(2, 3, 50, 70)
    padded, size = pad_to_multiple(x)
    assert padded.shape == (2, 3, 64, 96) and size == (50, 70)
    assert torch.equal(padded[..., :50, :70], x)
    assert torch.equal(padded[..., 50, :70], x[..., 48, :])  # reflection about the last row
    back = crop_to({"depth": padded}, size)
    assert torch.equal(back["depth"], x)


def test_loader_with_two_workers_matches_main_process(coded):
    ds = DefocusDataset(coded, "train", crop=32, seed=1)
    ds.set_epoch(2)

    def batches(workers):
        g = torch.Generator().manual_seed(5)
        dl = DataLoader(ds, batch_size=2, shuffle=True, generator=g, num_workers=workers)
        return list(dl)

    serial, parallel = batches(0), batches(2)
    assert len(serial) == 3
    for a, b in zip(serial, parallel, strict=True):
        for k in ("defocused", "aif", "depth", "index"):
            assert torch.equal(a[k], b[k]) or torch.allclose(a[k], b[k], equal_nan=True)


@pytest.fixture(scope="module")
def no_depth(tmp_path_factory):
    """Two coded training samples whose depth array has been deleted."""
    path = tmp_path_factory.mktemp("trainer_data_nodepth") / "nodepth.zarr"
    write_arrays(path, {"train": coded_split(2)})
    g = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    del g["train"]["depth"]
    zarr.consolidate_metadata(g.store)
    (path / MANIFEST_NAME).unlink()  # a dataset made so on purpose: list its files anew
    mark_complete(path)
    return path


@pytest.fixture(scope="module")
def focal_stack(tmp_path_factory):
    """Two coded training samples, each with a focal stack of 3 defocused images."""
    path = tmp_path_factory.mktemp("trainer_data_stack") / "stack.zarr"
    write_arrays(path, {"train": coded_split(2, stack=3)})
    return path


def test_aif_head_alone_needs_no_depth(no_depth):
    """An aif-only model reads a dataset without depth: every sample comes whole, its
    images as stored, and no depth is made up for it."""
    ds = DefocusDataset(no_depth, "train", heads=("aif",), hflip=False)
    assert len(ds) == 2
    stored = coded_split(2)
    for i in range(2):
        item = ds[i]
        assert "depth" not in item and item["index"] == i
        for name in ("defocused", "aif"):
            assert item[name].dtype == torch.uint8 and item[name].shape == (3, H, W)
            np.testing.assert_array_equal(item[name].permute(1, 2, 0).numpy(), stored[name][i])
    with pytest.raises(IndexError):
        ds[2]


def test_depth_head_without_a_depth_array_is_refused(no_depth):
    with pytest.raises(SchemaError, match=r"need.*\['depth'\]"):
        DefocusDataset(no_depth, "train", heads=("depth", "aif"))


@pytest.mark.parametrize("split, options, match", [
    ("train", {"crop": 128}, "crop 128"),
    ("val", {}, "no split 'val'"),
], ids=["crop-larger-than-image", "absent-split"])
def test_bad_split_or_crop_is_refused(coded, split, options, match):
    with pytest.raises(SchemaError, match=match):
        DefocusDataset(coded, split, **options)


@pytest.mark.parametrize("options, match", [
    ({}, "focal stack of 3"),
    ({"stack_index": 3}, "stack_index 3"),
], ids=["no-stack-index", "stack-index-out-of-range"])
def test_focal_stack_needs_a_valid_stack_index(focal_stack, options, match):
    with pytest.raises(SchemaError, match=match):
        DefocusDataset(focal_stack, "train", **options)


def test_stack_index_picks_that_image_of_the_stack(focal_stack):
    item = DefocusDataset(focal_stack, "train", stack_index=2)[1]
    assert np.all(item["defocused"].numpy()[2] == 1 + 20)


# ------------------------------------------------------------------ holdout and subsets
@pytest.mark.parametrize("n, fraction, k", [(795, 0.05, 40), (20, 0.05, 1), (2, 0.05, 1),
                                            (10, 0.3, 3)])
def test_holdout_is_disjoint_complete_and_seeded(n, fraction, k):
    train, val = holdout_indices(n, fraction, seed=0)
    assert len(val) == k and sorted(train + val) == list(range(n))
    assert not set(train) & set(val)
    assert holdout_indices(n, fraction, seed=0) == (train, val)  # deterministic
    if n > 10:
        assert holdout_indices(n, fraction, seed=1)[1] != val  # the seed decides


@pytest.mark.parametrize("n, fraction", [(1, 0.05), (10, 0.0), (10, 1.0)])
def test_holdout_refuses_impossible_splits(n, fraction):
    with pytest.raises(ConfigError, match="val_fraction"):
        holdout_indices(n, fraction, seed=0)


def test_indices_select_samples_and_key_the_augmentation(coded):
    sub = DefocusDataset(coded, "train", crop=32, seed=3, indices=[4, 1])
    whole = DefocusDataset(coded, "train", crop=32, seed=3)
    assert len(sub) == 2 and [sub[k]["index"] for k in range(2)] == [4, 1]
    for k, i in enumerate([4, 1]):
        assert np.all(sub[k]["defocused"].numpy()[2] == i)
        assert where(sub[k]) == where(whole[i])  # the same crop as in the whole split
    assert len(DefocusDataset(coded, "train", indices=[4, 1, 0], max_samples=2)) == 2
    with pytest.raises(SchemaError, match=r"indices \[5\] out of range"):
        DefocusDataset(coded, "train", indices=[0, 5])


# ------------------------------------------------------------------ resize protocol
def test_resize_gives_whole_frames_flipped_only_when_asked(coded):
    ds = DefocusDataset(coded, "train", resize=(32, 48), seed=2)
    plain = DefocusDataset(coded, "train", resize=(32, 48), hflip=False)
    flips = []
    for epoch in range(6):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item, ref = ds[i], plain[i]
            assert item["defocused"].shape == (3, 32, 48) and item["depth"].shape == (1, 32, 48)
            flipped = not torch.equal(item["defocused"], ref["defocused"])
            if flipped:
                assert torch.equal(item["defocused"], ref["defocused"].flip(-1))
                assert torch.equal(item["aif"], ref["aif"].flip(-1))
            flips.append(flipped)
    assert 0 < np.mean(flips) < 1
    # the whole frame: column codes span 0..95 at half resolution, rows 0..63
    cols, rows = plain[0]["aif"][1].float(), plain[0]["aif"][0].float()
    assert cols[:, 0].max() < 3 and cols[:, -1].min() > 92
    assert rows[0].max() < 3 and rows[-1].min() > 60
    depth = plain[0]["depth"][0].numpy()
    assert np.isfinite(depth[1:, 1:]).all()  # the single NaN pixel does not spread
    # depth = 1 + row/100 + col/1000 is linear, so the resized depth samples it at the
    # output pixel centres away from the borders, where the filter is cut and renormalised
    # (and from the NaN corner pixel, which only shifts its own neighbours)
    r, c = np.mgrid[0:32, 0:48]
    exp = 1 + (2 * r + 0.5) / 100 + (2 * c + 0.5) / 1000
    np.testing.assert_allclose(depth[2:-1, 2:-1], exp[2:-1, 2:-1], rtol=1e-6)
    with pytest.raises(SchemaError, match="larger than the resized frames"):
        DefocusDataset(coded, "train", resize=(32, 48), crop=40)


GOLDEN_V2 = __import__("pathlib").Path(__file__).parent / "data" / "golden_v2.zarr"


def test_skipped_samples_are_never_served():
    ds = DefocusDataset(GOLDEN_V2, "skipped", heads=("depth", "aif"))
    assert ds.indices == [0, 2] and len(ds) == 2
    assert [int(ds[k]["index"]) for k in range(len(ds))] == [0, 2]
    assert all(np.isfinite(ds[k]["depth"].numpy()).any() for k in range(len(ds)))


def test_damaged_shard_in_a_worker_is_one_clear_line(tmp_path):
    import shutil

    import click

    from cli._common import user_errors

    copy = tmp_path / "g.zarr"
    shutil.copytree(GOLDEN_V2, copy)
    shard = next(f for f in sorted((copy / "train" / "depth" / "c" / "1").rglob("*"))
                 if f.is_file())
    shard.unlink()  # samples 2.. of train/depth: Zarr alone would return NaN
    ds = DefocusDataset(copy, "train", heads=("depth", "aif"))

    @user_errors
    def load_all():
        for _ in DataLoader(ds, batch_size=1, num_workers=1):
            pass

    with pytest.raises(click.ClickException) as info:
        load_all()
    msg = info.value.message
    assert msg.endswith("split 'train', array 'depth', sample 2: its shard file is missing or "
                        "empty; the dataset is damaged (check it with `defocuskit inspect "
                        "--verify`)")
    assert "\n" not in msg and "Traceback" not in msg


def test_a_dataset_being_read_is_not_replaced_until_the_reader_lets_go(tmp_path, samples_dir):
    from defocuskit.config import SynthConfig
    from defocuskit.lock import lock_path
    from defocuskit.synth import run_synth

    out = tmp_path / "d.zarr"
    cfg = SynthConfig(source="samples", input=str(samples_dir), output=str(out),
                      camera="2hded", focus="fixed:2.0", mode="gather", splits=["test"],
                      shard_size=1)
    run_synth(cfg, progress=False)
    ds = DefocusDataset(out, "test", crop=None)
    # a DataLoader's forked workers end without letting the parent's hold go
    loader = DataLoader(ds, batch_size=1, num_workers=1, multiprocessing_context="fork")
    assert len(list(loader)) == 2
    for flags in ({"overwrite": True}, {"resume": True}):
        with pytest.raises(ConfigError, match="is being read"):
            run_synth(cfg, progress=False, **flags)
    ds.lock.release()
    assert not lock_path(out).exists()
    assert run_synth(cfg, resume=True, progress=False).n_samples == 0
