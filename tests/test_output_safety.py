"""synth never deletes, empties or overwrites what defocuskit did not write.

Every case puts a foreign file where a careless implementation would destroy it and checks
that it is still there, byte for byte, afterwards.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import zarr
from _helpers import samples_config as _cfg
from _helpers import snapshot as _snapshot
from click.testing import CliRunner

from cli.defocuskit_cmd import main
from defocuskit import shard as shard_module  # where each shard is written
from defocuskit.errors import ConfigError, SchemaError
from defocuskit.output import mark_staging, probe_output, staging_path, writer_lock
from defocuskit.store import open_dataset
from defocuskit.synth import run_synth

REPO = Path(__file__).resolve().parents[1]


def _foreign_folder(path: Path) -> dict[str, str]:
    path.mkdir(parents=True)
    (path / "thesis.tex").write_text("years of work\n")
    (path / "figs").mkdir()
    (path / "figs" / "plot.png").write_bytes(b"\x89PNG not really")
    return _snapshot(path)


@pytest.mark.parametrize("flags", [{}, {"resume": True}, {"overwrite": True}])
def test_non_empty_foreign_folder_is_refused_and_untouched(tmp_path, flags):
    out = tmp_path / "mine"
    before = _foreign_folder(out)
    with pytest.raises(ConfigError, match="not empty .* not a defocuskit dataset"):
        run_synth(_cfg(out), progress=False, **flags)
    assert _snapshot(out) == before
    assert sorted(os.listdir(tmp_path)) == ["mine"]  # no lock or staging left beside it


def test_output_dot_is_refused_from_the_cli(tmp_path, monkeypatch):
    before = _foreign_folder(tmp_path / "work")
    monkeypatch.chdir(tmp_path / "work")
    for extra in ([], ["--resume"], ["--overwrite"]):
        r = CliRunner().invoke(main, ["synth", "--source", "samples", "--input",
                                      str(REPO / "samples"), "--output", ".", "--split",
                                      "test", "--no-progress", *extra])
        assert r.exit_code == 1, r.output
        assert "not a defocuskit dataset" in r.output and "Traceback" not in r.output
        assert _snapshot(tmp_path / "work") == before


def test_output_that_is_a_file_is_refused(tmp_path):
    out = tmp_path / "data.zarr"
    out.write_text("a file the user wrote")
    with pytest.raises(ConfigError, match="is a file"):
        run_synth(_cfg(out), overwrite=True, progress=False)
    assert out.read_text() == "a file the user wrote"


def test_foreign_zarr_group_is_refused_even_with_overwrite(tmp_path):
    out = tmp_path / "other.zarr"
    g = zarr.open_group(str(out), mode="w", attributes={"made_by": "another tool"})
    g.create_array("x", shape=(3,), dtype="int8")[:] = [1, 2, 3]
    before = _snapshot(out)
    with pytest.raises(ConfigError, match="did not write"):
        run_synth(_cfg(out), overwrite=True, progress=False)
    assert _snapshot(out) == before


def test_empty_folder_receives_the_dataset_and_stays_the_same_folder(tmp_path):
    out = tmp_path / "empty.zarr"
    out.mkdir()
    inode = out.stat().st_ino
    run_synth(_cfg(out), progress=False)
    assert out.stat().st_ino == inode
    assert len(open_dataset(out)["test"]) == 2
    assert sorted(os.listdir(tmp_path)) == ["empty.zarr"]


@pytest.mark.parametrize("flags", [{}, {"resume": True}, {"overwrite": True}])
def test_damaged_metadata_is_reported_not_taken_as_empty(tmp_path, flags):
    out = tmp_path / "d.zarr"
    run_synth(_cfg(out), progress=False)
    meta = out / "zarr.json"
    meta.write_bytes(meta.read_bytes()[:40])  # truncated, as by a full disk or a crash
    before = _snapshot(out)
    with pytest.raises(SchemaError, match="damaged Zarr metadata"):
        run_synth(_cfg(out), progress=False, **flags)
    assert _snapshot(out) == before


def test_overwrite_replaces_our_dataset_and_leaves_neighbours(tmp_path):
    out = tmp_path / "o.zarr"
    neighbour = tmp_path / "notes.txt"
    neighbour.write_text("keep me")
    run_synth(_cfg(out, seed=1), progress=False)
    run_synth(_cfg(out, seed=2), overwrite=True, progress=False)
    assert open_dataset(out).attrs["seed"] == 2
    assert neighbour.read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "o.zarr"]


def test_overwrite_that_fails_midway_keeps_the_old_dataset(tmp_path, monkeypatch):
    out = tmp_path / "o.zarr"
    run_synth(_cfg(out, seed=1), progress=False)
    old = np.asarray(open_dataset(out)["test"].array("defocused")[:])
    before = _snapshot(out)
    calls = []
    real_write = shard_module.write_shard

    def full_disk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(out / "test"))
        return real_write(*args, **kwargs)

    monkeypatch.setattr(shard_module, "write_shard", full_disk)
    with pytest.raises(ConfigError, match="no space left .* existing dataset was not changed"):
        run_synth(_cfg(out, seed=2), overwrite=True, progress=False)
    assert _snapshot(out) == before
    np.testing.assert_array_equal(old, open_dataset(out)["test"].array("defocused")[:])
    assert not staging_path(out).exists()
    assert sorted(os.listdir(tmp_path)) == ["o.zarr"]


def test_our_stale_staging_is_cleared_a_foreign_one_is_not(tmp_path):
    out = tmp_path / "s.zarr"
    stage = staging_path(out)
    # what a kill after creation leaves: our root metadata, our marker, no data yet
    zarr.open_group(str(stage), mode="w-", attributes={"producer": "defocuskit",
                                                       "schema_version": 1})
    mark_staging(stage, out)
    run_synth(_cfg(out), progress=False)
    assert not stage.exists() and len(open_dataset(out)["test"]) == 2

    out2 = tmp_path / "t.zarr"
    before = _foreign_folder(staging_path(out2))
    with pytest.raises(ConfigError, match="without the marker .* left as it is"):
        run_synth(_cfg(out2), progress=False)
    assert _snapshot(staging_path(out2)) == before and not out2.exists()


def test_half_created_dataset_is_refused_by_resume_without_deleting(tmp_path):
    out = tmp_path / "h.zarr"
    run_synth(_cfg(out), progress=False)
    # an older version killed during creation: root attributes written, a split missing
    meta = json.loads((out / "zarr.json").read_text())
    meta["attributes"]["splits"] = ["test", "train"]
    meta.pop("consolidated_metadata", None)
    (out / "zarr.json").write_text(json.dumps(meta))
    before = _snapshot(out)
    with pytest.raises(SchemaError, match="never created"):
        run_synth(_cfg(out), resume=True, progress=False)
    assert _snapshot(out) == before


def test_resume_finishes_without_deleting_written_shards(tmp_path):
    out = tmp_path / "r.zarr"
    run_synth(_cfg(out), progress=False)
    before = _snapshot(out / "test" / "defocused")
    s = run_synth(_cfg(out), resume=True, progress=False)
    assert s.n_samples == 0 and s.n_shards_reused == 2
    assert _snapshot(out / "test" / "defocused") == before


def test_second_writer_fails_at_once(tmp_path):
    out = tmp_path / "l.zarr"
    with writer_lock(out):
        with pytest.raises(ConfigError, match="another `defocuskit synth`.*pid"):
            run_synth(_cfg(out), progress=False)
        assert not out.exists()
    run_synth(_cfg(out), progress=False)  # the lock is released and its file removed
    assert sorted(os.listdir(tmp_path)) == ["l.zarr"]


def test_unwritable_location_gives_one_line(tmp_path):
    r = CliRunner().invoke(main, ["synth", "--source", "samples", "--input",
                                  str(REPO / "samples"), "--output", "/proc/self/x.zarr",
                                  "--split", "test", "--no-progress"])
    assert r.exit_code == 1
    assert "/proc/self" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_probe_only_counts_missing_as_absent(tmp_path):
    assert probe_output(tmp_path / "nope") == "absent"
    (tmp_path / "empty").mkdir()
    assert probe_output(tmp_path / "empty") == "absent"
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "x").write_text("x")
    if os.geteuid() != 0:  # root reads anything: the permission case needs a normal user
        locked.chmod(0)
        try:
            with pytest.raises(ConfigError, match="cannot list"):
                probe_output(locked)
        finally:
            locked.chmod(0o755)


def test_remote_store_refuses_foreign_data_and_replaces_its_own():
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/safety-foreign/notes.txt", b"keep me")
    with pytest.raises(ConfigError, match="not empty"):
        run_synth(_cfg("memory://safety-foreign"), overwrite=True, progress=False)
    assert fs.cat("/safety-foreign/notes.txt") == b"keep me"
    run_synth(_cfg("memory://safety-own.zarr", seed=1), progress=False)
    run_synth(_cfg("memory://safety-own.zarr", seed=2), overwrite=True, progress=False)
    assert open_dataset("memory://safety-own.zarr").attrs["seed"] == 2
    fs.rm("/safety-foreign", recursive=True)
    fs.rm("/safety-own.zarr", recursive=True)


def test_resume_refuses_a_changed_input(tmp_path):
    import shutil

    src = tmp_path / "input"
    shutil.copytree(REPO / "samples", src)
    out = tmp_path / "c.zarr"
    run_synth(_cfg(out, input=str(src), shard_size=1), progress=False)
    before = _snapshot(out)
    (src / "scenes" / "room_07_rgb.png").write_bytes(
        (src / "scenes" / "room_06_rgb.png").read_bytes())
    with pytest.raises(ConfigError, match="input .* changed since the dataset was started"):
        run_synth(_cfg(out, input=str(src), shard_size=1), resume=True, progress=False)
    assert _snapshot(out) == before
