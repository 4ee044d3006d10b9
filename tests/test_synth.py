"""The synth pipeline: determinism, resume after SIGKILL, backends, bad input, provenance."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from defocuskit.config import SynthConfig
from defocuskit.errors import ConfigError, SchemaError, SourceError
from defocuskit.store import done_shards, open_dataset
from defocuskit.synth import fill_invalid_depth, run_synth

REPO = Path(__file__).resolve().parents[1]
ARRAYS = ("aif", "defocused", "depth", "sigma", "focus_distance", "focal_length", "f_number",
          "pixel_pitch", "coc_to_sigma", "source_index")


def _cfg(out, **kw) -> SynthConfig:
    base = dict(source="samples", input=str(REPO / "samples"), output=str(out), seed=3,
                shard_size=2, camera="2hded", focus="histogram", mode="gather")
    base.update(kw)
    return SynthConfig(**base)


def _assert_same(a_path, b_path, names=ARRAYS):
    a, b = open_dataset(a_path), open_dataset(b_path)
    assert a.splits == b.splits
    for split in a.splits:
        for name in names:
            if not a[split].has(name):
                continue
            x, y = np.asarray(a[split].array(name)[:]), np.asarray(b[split].array(name)[:])
            np.testing.assert_array_equal(x, y, err_msg=f"{split}/{name}")


def test_samples_dataset_layout_and_provenance(samples_dataset):
    ds = open_dataset(samples_dataset)
    assert ds.splits == ["train", "test"]
    assert len(ds["train"]) == 6 and len(ds["test"]) == 2
    sp = ds["train"]
    assert sp.array("aif").shape == (6, 256, 320, 3) and sp.array("aif").dtype == np.uint8
    assert sp.array("sigma").dtype == np.float32
    a = ds.attrs
    assert a["schema_version"] == 2 and a["complete"] is True
    assert a["config"]["camera"] == "2hded" and a["seed"] == 0
    assert a["render_mode"] == "gather"
    ident = a["source"]["identity"]
    assert len(ident["sha256"]) == 64 and ident["size"] > 0
    assert {"numpy", "numba", "zarr", "defocuskit"} <= set(a["versions"])
    assert a["last_run"]["samples"] == 8


def test_stored_sigma_and_image_follow_the_stored_camera(samples_dataset):
    """Recompute sigma from the per-sample camera and re-render: both must match."""
    from defocuskit.blur import render
    from defocuskit.optics import Camera

    sp = open_dataset(samples_dataset)["test"]
    for i in range(len(sp)):
        d = sp.read(i, names=("aif", "defocused", "depth", "sigma"))
        cam = Camera(focal_length=float(sp.array("focal_length")[i]),
                     f_number=float(sp.array("f_number")[i]),
                     focus_distance=float(sp.array("focus_distance")[i]),
                     pixel_pitch=float(sp.array("pixel_pitch")[i]),
                     coc_to_sigma=float(sp.array("coc_to_sigma")[i]))
        valid = np.isfinite(d["depth"])
        np.testing.assert_allclose(d["sigma"][valid], cam.sigma_px(d["depth"][valid]),
                                   rtol=1e-4, atol=1e-4)
        assert np.isnan(d["sigma"][~valid]).all()
        again = render(d["aif"], np.where(valid, d["sigma"], 0).astype(np.float32),
                       mode="gather", depth=fill_invalid_depth(d["depth"]))
        if valid.all():
            assert np.abs(again.astype(int) - d["defocused"].astype(int)).max() <= 1
        # a defocused image really is blurred: fewer fine gradients than the AiF
        grad = lambda im: np.abs(np.diff(im.astype(float), axis=1)).mean()  # noqa: E731
        assert grad(d["defocused"]) < grad(d["aif"])


def test_same_arrays_whatever_the_number_of_jobs(tmp_path):
    run_synth(_cfg(tmp_path / "j1.zarr", jobs=1), progress=False)
    run_synth(_cfg(tmp_path / "j2.zarr", jobs=2), progress=False)
    _assert_same(tmp_path / "j1.zarr", tmp_path / "j2.zarr")


def test_seed_changes_the_draws(tmp_path):
    run_synth(_cfg(tmp_path / "a.zarr", seed=1, splits=["test"]), progress=False)
    run_synth(_cfg(tmp_path / "b.zarr", seed=2, splits=["test"]), progress=False)
    fa = open_dataset(tmp_path / "a.zarr")["test"].array("focus_distance")[:]
    fb = open_dataset(tmp_path / "b.zarr")["test"].array("focus_distance")[:]
    assert not np.array_equal(fa, fb)


def test_existing_output_needs_resume_or_overwrite(tmp_path):
    out = tmp_path / "o.zarr"
    run_synth(_cfg(out, splits=["test"]), progress=False)
    before = np.asarray(open_dataset(out)["test"].array("defocused")[:])
    with pytest.raises(ConfigError, match="already exists"):
        run_synth(_cfg(out, splits=["test"]), progress=False)
    # nothing already written was touched
    np.testing.assert_array_equal(before, open_dataset(out)["test"].array("defocused")[:])
    with pytest.raises(ConfigError, match="another configuration"):
        run_synth(_cfg(out, splits=["test"], seed=99), resume=True, progress=False)
    s = run_synth(_cfg(out, splits=["test"]), resume=True, progress=False)
    assert s.n_samples == 0 and s.n_shards_reused == 1
    run_synth(_cfg(out, splits=["test"], seed=5), overwrite=True, progress=False)
    assert open_dataset(out).attrs["seed"] == 5


def _synth_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "cli.defocuskit_cmd", "synth", "--source", "samples",
            "--input", str(REPO / "samples"), "--output", str(out), "--seed", "7",
            "--shard-size", "1", "--focus", "stack:6", "--resize", "512x640",
            "--no-progress", *extra]


@pytest.mark.slow
def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path):
    killed = tmp_path / "killed.zarr"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(_synth_cmd(killed), cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    n_done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            n_done = int(done_shards(killed, "train").sum())
        except Exception:  # noqa: BLE001 - not created yet
            n_done = 0
        if n_done >= 2:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "synth finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = done_shards(killed, "train")
    assert 2 <= done.sum() < done.size
    with pytest.raises(SchemaError, match="incomplete"):
        open_dataset(killed)
    res = subprocess.run(_synth_cmd(killed, "--resume"), cwd=REPO, env=env,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "already complete" in res.stdout
    full = tmp_path / "full.zarr"
    res = subprocess.run(_synth_cmd(full), cwd=REPO, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    _assert_same(killed, full)
    assert open_dataset(killed)["train"].array("defocused").shape == (6, 6, 512, 640, 3)


def test_focal_stack_shapes_and_distances(tmp_path):
    out = tmp_path / "stack.zarr"
    run_synth(_cfg(out, focus="stack:1,2,4", splits=["test"]), progress=False)
    sp = open_dataset(out)["test"]
    assert sp.focal_stack == 3
    assert sp.array("defocused").shape == (2, 3, 256, 320, 3)
    assert sp.array("sigma").shape == (2, 3, 256, 320)
    np.testing.assert_allclose(sp.array("focus_distance")[:], [[1, 2, 4]] * 2)
    sig = np.asarray(sp.array("sigma")[0])
    depth = np.asarray(sp.array("depth")[0])
    # each slice is sharpest where the scene is nearest its focus distance
    for k, s in enumerate((1.0, 2.0, 4.0)):
        near = np.abs(depth - s) < 0.05
        if near.any():
            assert np.nanmean(sig[k][near]) < np.nanmean(sig[k])


def test_fsspec_url_output(tmp_path):
    out = tmp_path / "url.zarr"
    run_synth(_cfg("file://" + str(out), splits=["test"]), progress=False)
    run_synth(_cfg(tmp_path / "plain.zarr", splits=["test"]), progress=False)
    _assert_same(out, tmp_path / "plain.zarr")


@pytest.mark.slow
def test_dask_backend_on_a_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        run_synth(_cfg(tmp_path / "dask.zarr", backend="dask", scheduler=cluster.scheduler_address,
                       splits=["test"], shard_size=1), progress=False)
    run_synth(_cfg(tmp_path / "loky.zarr", splits=["test"], shard_size=1), progress=False)
    _assert_same(tmp_path / "dask.zarr", tmp_path / "loky.zarr")


def _folder_copy(tmp_path) -> Path:
    """The bundled samples rearranged into the generic `folder` layout."""
    import json

    root = tmp_path / "folder"
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    manifest = json.loads((REPO / "samples" / "manifest.json").read_text())
    for name, scene in manifest["scenes"].items():
        shutil.copy(REPO / "samples" / scene["rgb"], root / "rgb" / f"{name}.png")
        shutil.copy(REPO / "samples" / scene["depth"], root / "depth" / f"{name}.png")
    return root


def test_bad_sample_raises_naming_it_or_is_skipped_and_recorded(tmp_path):
    root = _folder_copy(tmp_path)
    victim = sorted((root / "rgb").iterdir())[1]
    victim.write_bytes(b"not a png at all")
    cfg = dict(source="folder", input=str(root), shard_size=3)
    with pytest.raises(SourceError, match=victim.stem):
        run_synth(_cfg(tmp_path / "raise.zarr", **cfg), progress=False)
    s = run_synth(_cfg(tmp_path / "skip.zarr", on_error="skip", **cfg), progress=False)
    assert s.n_skipped == 1 and s.skipped[0]["sample_id"] == victim.stem
    ds = open_dataset(tmp_path / "skip.zarr")
    split = ds.splits[0]
    rec = ds[split].attrs["skipped"]
    assert rec[0]["sample_id"] == victim.stem and rec[0]["error"]
    idx = np.asarray(ds[split].array("source_index")[:])
    assert (idx == -1).sum() == 1 and idx[rec[0]["index"]] == -1


@pytest.mark.parametrize("bad", [0, 3, 7], ids=["first-shard", "second-shard", "short-last"])
def test_a_shard_whose_first_sample_fails_keeps_the_others_in_place(tmp_path, bad):
    """A shard's arrays are allocated from its first good sample and filled as samples come;
    a bad sample gets the fill values (NaN floats, zeros, source index -1) and the others
    are where and what a clean run writes. Shards of 3: sample 0 opens the first shard,
    3 the second (whose arrays reuse the first one's buffers: nothing of it may show) and 7
    is the last of the short last shard (2 samples)."""
    clean = _folder_copy(tmp_path / "clean")
    cfg = dict(source="folder", input=str(clean), shard_size=3)
    run_synth(_cfg(tmp_path / "clean.zarr", **cfg), progress=False)
    root = _folder_copy(tmp_path / "bad")
    victim = sorted((root / "rgb").iterdir())[bad]
    victim.write_bytes(b"not a png at all")
    cfg = dict(source="folder", input=str(root), shard_size=3, on_error="skip")
    s = run_synth(_cfg(tmp_path / "skip.zarr", **cfg), progress=False)
    assert s.n_skipped == 1 and s.skipped[0]["index"] == bad
    a, b = open_dataset(tmp_path / "clean.zarr"), open_dataset(tmp_path / "skip.zarr")
    split = b.splits[0]
    assert b[split].attrs["skipped"][0]["sample_id"] == victim.stem
    good = [i for i in range(len(b[split])) if i != bad]
    assert len(good) == 7
    for name in ("defocused", "aif", "depth", "sigma"):
        got, ref = np.asarray(b[split].array(name)[:]), np.asarray(a[split].array(name)[:])
        np.testing.assert_array_equal(got[good], ref[good])
        assert np.isnan(got[bad]).all() if got.dtype.kind == "f" else not got[bad].any()
    idx = np.asarray(b[split].array("source_index")[:])
    assert idx[bad] == -1 and list(idx[good]) == good


def test_shard_buffers_are_reused_only_where_they_fit():
    from defocuskit import shard

    row = {"aif": np.ones((4, 5, 3), np.uint8), "depth": np.ones((4, 5), np.float32)}
    try:
        a = shard._shard_arrays(row, 3)
        assert a["aif"].shape == (3, 4, 5, 3) and a["depth"].dtype == np.float32
        b = shard._shard_arrays(row, 2)  # a shorter shard: views into the same memory
        assert np.shares_memory(a["aif"], b["aif"]) and b["aif"].shape == (2, 4, 5, 3)
        c = shard._shard_arrays(row, 5)  # a longer one: new buffers
        assert not np.shares_memory(a["aif"], c["aif"]) and c["aif"].shape[0] == 5
        other = {"aif": np.ones((6, 5, 3), np.uint8)}  # another frame size: new, others dropped
        d = shard._shard_arrays(other, 2)
        assert not np.shares_memory(c["aif"], d["aif"])
        assert list(shard._POOL.buffers) == [("aif", "|u1", (6, 5, 3))]
        done = []  # another thread has buffers of its own
        t = threading.Thread(target=lambda: done.append(shard._shard_arrays(other, 2)))
        t.start()
        t.join()
        assert not np.shares_memory(done[0]["aif"], d["aif"])
    finally:
        shard.release_shard_buffers()
    assert shard._POOL.buffers == {}


def test_missing_input_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        run_synth(_cfg(tmp_path / "x.zarr", input=str(tmp_path / "nope")), progress=False)
    assert not (tmp_path / "x.zarr").exists()


@pytest.mark.parametrize("options, match", [
    ({"shard_size": 0}, "shard_size"),
    ({"backend": "dask"}, "scheduler"),
], ids=["zero-shard-size", "dask-without-scheduler"])
def test_bad_config_value_is_refused(options, match):
    with pytest.raises(ConfigError, match=match):
        _cfg("x", **options)


def test_unknown_config_option_is_refused():
    with pytest.raises(ConfigError, match=r"unknown option\(s\)"):
        SynthConfig.from_dict({"source": "samples", "input": "a", "output": "b", "sede": 1})


def test_fill_invalid_depth_matches_brute_force_nearest():
    rng = np.random.default_rng(0)
    depth = rng.uniform(1, 5, (17, 23)).astype(np.float32)
    depth[rng.random(depth.shape) < 0.3] = np.nan
    filled = fill_invalid_depth(depth)
    vy, vx = np.nonzero(np.isfinite(depth))
    for y, x in zip(*np.nonzero(~np.isfinite(depth)), strict=True):
        d2 = (vy - y) ** 2 + (vx - x) ** 2
        candidates = depth[vy[d2 == d2.min()], vx[d2 == d2.min()]]
        assert filled[y, x] in candidates
    assert np.isfinite(filled).all()
    np.testing.assert_array_equal(filled[np.isfinite(depth)], depth[np.isfinite(depth)])
