"""synth's hidden siblings, lock, links and input identity never touch a foreign file.

Each case puts a user's file, folder or symbolic link where the program keeps its
leftovers or its lock (or lets a dataset live inside its own input) and checks that the
foreign data is still there byte for byte and that the run fails with a clear message or
succeeds correctly.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import samples_config as _cfg
from _helpers import snapshot as _snapshot
from click.testing import CliRunner

from cli.defocuskit_cmd import main
from defocuskit.errors import ConfigError
from defocuskit.lock import MAGIC, lock_path, reader_lock, writer_lock
from defocuskit.output import LEFTOVER_MARKER, staging_path
from defocuskit.store import open_dataset
from defocuskit.synth import run_synth

REPO = Path(__file__).resolve().parents[1]


def _user_folder(path: Path) -> dict[str, str]:
    path.mkdir(parents=True)
    (path / "thesis.tex").write_text("years of work\n")
    return _snapshot(path)


def _old(out: Path) -> Path:
    return out.parent / f".{out.name}.defocuskit-old"


# --- leftovers -------------------------------------------------------------------------

@pytest.mark.parametrize("dataset_there", [False, True])
def test_user_folder_named_like_the_old_leftover_is_refused_and_untouched(tmp_path,
                                                                          dataset_there):
    out = tmp_path / "d.zarr"
    if dataset_there:
        run_synth(_cfg(out, seed=1), progress=False)
        dataset_before = _snapshot(out)
    before = _user_folder(_old(out))
    with pytest.raises(ConfigError, match="without the marker .* left as it is"):
        run_synth(_cfg(out, seed=2), overwrite=dataset_there, progress=False)
    assert _snapshot(_old(out)) == before
    if dataset_there:
        assert _snapshot(out) == dataset_before
    else:
        assert not out.exists()  # the user's folder was not renamed into place


def test_user_folder_named_like_the_staging_leftover_is_refused_and_untouched(tmp_path):
    out = tmp_path / "d.zarr"
    stage = staging_path(out)
    stage.mkdir()  # even an empty one: only the marker proves it is ours
    (tmp_path / "keep").write_text("x")
    with pytest.raises(ConfigError, match="without the marker"):
        run_synth(_cfg(out), progress=False)
    assert stage.is_dir() and not any(stage.iterdir()) and not out.exists()


def test_a_marker_for_another_name_does_not_make_a_folder_ours(tmp_path):
    out = tmp_path / "d.zarr"
    old = _old(out)
    before = _user_folder(old)
    (old / LEFTOVER_MARKER).write_text('{"producer": "defocuskit", "role": "old", '
                                       '"of": "other.zarr"}\n')
    before = _snapshot(old)
    with pytest.raises(ConfigError, match="without the marker"):
        run_synth(_cfg(out), progress=False)
    assert _snapshot(old) == before


def test_our_old_leftover_is_put_back_when_the_swap_was_cut_short(tmp_path, monkeypatch):
    out = tmp_path / "d.zarr"
    run_synth(_cfg(out, seed=1), progress=False)
    before = _snapshot(out / "test")
    real_rename = os.rename

    def killed_after_first_rename(src, dst):
        real_rename(src, dst)
        if str(dst).endswith(".defocuskit-old"):
            raise KeyboardInterrupt  # a kill between the two renames

    monkeypatch.setattr(os, "rename", killed_after_first_rename)
    with pytest.raises(KeyboardInterrupt):
        run_synth(_cfg(out, seed=2), overwrite=True, progress=False)
    monkeypatch.setattr(os, "rename", real_rename)
    assert not out.exists() and _old(out).is_dir()
    # the next run puts the old dataset back (without the marker) and finishes
    s = run_synth(_cfg(out, seed=1), resume=True, progress=False)
    assert s.n_shards_reused == 2 and _snapshot(out / "test") == before
    assert sorted(os.listdir(tmp_path)) == ["d.zarr"]


# --- the lock --------------------------------------------------------------------------

def test_symlink_at_the_lock_path_is_refused_never_written_through(tmp_path):
    out = tmp_path / "d.zarr"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    lock_path(out).symlink_to(victim)
    r = CliRunner().invoke(main, ["synth", "--source", "samples", "--output", str(out),
                                  "--split", "test", "--no-progress"])
    assert r.exit_code == 1 and "symbolic link (never followed)" in r.output, r.output
    assert str(lock_path(out)) in r.output and "Traceback" not in r.output
    assert victim.read_text() == "precious"
    assert os.readlink(lock_path(out)) == str(victim) and not out.exists()


@pytest.mark.parametrize("content", [b"", b"my own notes\n", b"pid 123\n"])
def test_user_file_at_the_lock_path_is_neither_truncated_nor_deleted(tmp_path, content):
    out = tmp_path / "d.zarr"
    lock = lock_path(out)
    lock.write_bytes(content)
    with pytest.raises(ConfigError, match=f"{lock.name}: a file that defocuskit did not write"):
        run_synth(_cfg(out), progress=False)
    assert lock.read_bytes() == content and not out.exists()


def test_stale_lock_of_a_killed_run_is_taken_over_and_removed(tmp_path):
    out = tmp_path / "d.zarr"
    lock_path(out).write_bytes(MAGIC + b"pid 99999\n")  # no process holds its flock
    run_synth(_cfg(out), progress=False)
    assert sorted(os.listdir(tmp_path)) == ["d.zarr"]


def test_lock_removes_only_the_file_it_created(tmp_path):
    out = tmp_path / "d.zarr"
    with writer_lock(out) as lock:
        os.rename(lock, tmp_path / "moved")  # someone replaces the lock file meanwhile
        lock.write_text("a user's file now")
    assert lock.read_text() == "a user's file now"
    assert (tmp_path / "moved").read_bytes().startswith(MAGIC)


def test_output_dot_on_an_empty_folder_is_accepted(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    r = CliRunner().invoke(main, ["synth", "--source", "samples", "--output", ".",
                                  "--split", "test", "--no-progress", "--shard-size", "1"])
    assert r.exit_code == 0, r.output
    assert len(open_dataset(work)["test"]) == 2
    assert sorted(os.listdir(tmp_path)) == ["work"]  # the lock beside it is gone again


# --- links and foreign files in a dataset ----------------------------------------------

def test_overwrite_through_a_symlink_replaces_the_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "data" / "real.zarr"
    target.parent.mkdir()
    run_synth(_cfg(target, seed=1), progress=False)
    link = tmp_path / "link_ds.zarr"
    link.symlink_to(target)
    run_synth(_cfg(link, seed=2), overwrite=True, progress=False)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert open_dataset(target).attrs["seed"] == 2
    assert sorted(os.listdir(tmp_path)) == ["data", "link_ds.zarr"]
    assert sorted(os.listdir(target.parent)) == ["real.zarr"]
    s = run_synth(_cfg(link, seed=2), resume=True, progress=False)  # a follow-up run
    assert s.n_shards_reused == 2
    run_synth(_cfg(link, seed=3), overwrite=True, progress=False)
    assert open_dataset(link).attrs["seed"] == 3


def test_overwrite_refuses_a_dataset_holding_files_it_did_not_write(tmp_path):
    out = tmp_path / "d.zarr"
    run_synth(_cfg(out, seed=1), progress=False)
    run = out / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "last.pt").write_bytes(b"checkpoint")
    (out / "test" / "notes.txt").write_text("mine")
    other = out / "other.zarr"  # another Zarr group is not a split of the dataset
    other.mkdir()
    (other / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    before = _snapshot(out)
    r = CliRunner().invoke(main, ["synth", "--source", "samples", "--output", str(out),
                                  "--split", "test", "--no-progress", "--overwrite"])
    assert r.exit_code == 1 and "would delete files the dataset did not write" in r.output
    assert "(other.zarr/, runs/, test/notes.txt)" in r.output
    assert _snapshot(out) == before


# --- readers and writers ---------------------------------------------------------------

_HOLD = """
import fcntl, sys, time
from defocuskit.lock import reader_lock
held = reader_lock(sys.argv[1])
print("held" if held else "none", flush=True)
sys.stdin.readline()
"""


def test_writer_is_refused_while_a_reader_in_another_process_holds_the_dataset(tmp_path):
    out = tmp_path / "d.zarr"
    run_synth(_cfg(out, seed=1), progress=False)
    before = _snapshot(out)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    reader = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert reader.stdout.readline().strip() == "held"
        for flags in ({"overwrite": True}, {"resume": True}):
            with pytest.raises(ConfigError, match="is being read .*trainer fit"):
                run_synth(_cfg(out, seed=2), progress=False, **flags)
        assert _snapshot(out) == before
    finally:
        reader.communicate("\n", timeout=30)
    run_synth(_cfg(out, seed=2), overwrite=True, progress=False)  # released: it works
    assert open_dataset(out).attrs["seed"] == 2
    assert sorted(os.listdir(tmp_path)) == ["d.zarr"]


def test_readers_share_the_lock_and_a_reader_is_refused_while_synth_writes(tmp_path):
    out = tmp_path / "d.zarr"
    run_synth(_cfg(out), progress=False)
    a, b = reader_lock(out), reader_lock(out)
    assert a is not None and b is not None
    fd = os.open(lock_path(out), os.O_RDONLY)
    with pytest.raises(BlockingIOError):  # held shared: no exclusive lock now
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    a.release()
    assert lock_path(out).exists()  # b still holds it
    b.release()
    assert not lock_path(out).exists()
    os.close(fd)
    with writer_lock(out), pytest.raises(ConfigError,
                                         match="`defocuskit synth` .* is writing it"):
        reader_lock(out)


# --- the input's identity --------------------------------------------------------------

def _folder_input(tmp_path) -> Path:
    """A `folder` input (rgb/ and depth/) of two of the bundled scenes."""
    src = tmp_path / "input"
    for kind in ("rgb", "depth"):
        (src / kind).mkdir(parents=True)
        for i in (6, 7):
            shutil.copy(REPO / "samples" / "scenes" / f"room_0{i}_{kind}.png",
                        src / kind / f"room_0{i}.png")
    return src


def test_resume_of_a_dataset_inside_its_own_input_folder_is_accepted(tmp_path):
    src = _folder_input(tmp_path)
    out = src / "out.zarr"
    kw = dict(source="folder", input=str(src), splits=None, limit=2)
    run_synth(_cfg(out, **kw), progress=False)
    s = run_synth(_cfg(out, **kw), resume=True, progress=False)
    assert s.n_samples == 0 and s.n_shards_reused == 2
    (src / "notes.txt").write_text("a new file in the input folder")
    with pytest.raises(ConfigError, match="changed since the dataset was started"):
        run_synth(_cfg(out, **kw), resume=True, progress=False)  # a real change still counts


def _rewrite_keeping_size_and_mtime(f: Path, offset: int) -> None:
    st = f.stat()
    data = bytearray(f.read_bytes())
    data[offset] ^= 0xFF
    f.write_bytes(bytes(data))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_resume_notices_a_file_rewritten_with_the_same_size_and_mtime(tmp_path):
    src = _folder_input(tmp_path)
    out = tmp_path / "o.zarr"
    kw = dict(source="folder", input=str(src), splits=None, limit=2)
    run_synth(_cfg(out, **kw), progress=False)
    before = _snapshot(out)
    _rewrite_keeping_size_and_mtime(src / "depth" / "room_06.png", -10)  # in its last KiB
    with pytest.raises(ConfigError, match="sample_sha256 differ"):
        run_synth(_cfg(out, **kw), resume=True, progress=False)
    assert _snapshot(out) == before


def test_strict_resume_notices_a_change_in_the_middle_of_a_file(tmp_path):
    src = _folder_input(tmp_path)
    f = src / "rgb" / "room_06.png"
    assert f.stat().st_size > 4096
    out, strict = tmp_path / "s.zarr", tmp_path / "t.zarr"
    kw = dict(source="folder", input=str(src), splits=None, limit=2)
    run_synth(_cfg(out, **kw), progress=False)
    runner = CliRunner()
    args = ["synth", "--source", "folder", "--input", str(src), "--limit", "2", "--seed",
            "3", "--shard-size", "1", "--camera", "2hded", "--focus", "fixed:2.0", "--render-mode",
            "gather", "--no-progress"]
    r = runner.invoke(main, [*args, "--output", str(strict), "--strict-resume"])
    assert r.exit_code == 0, r.output
    _rewrite_keeping_size_and_mtime(f, f.stat().st_size // 2)
    # the cheap checks cannot see a change in the middle; the full hash does
    assert run_synth(_cfg(out, **kw), resume=True, progress=False).n_samples == 0
    before = _snapshot(strict)
    r = runner.invoke(main, [*args, "--output", str(strict), "--resume"])
    assert r.exit_code == 1 and "full_sha256 differ" in r.output, r.output
    assert _snapshot(strict) == before
    r = runner.invoke(main, [*args, "--output", str(out), "--resume", "--strict-resume"])
    assert r.exit_code == 1 and "started with --strict-resume" in r.output, r.output
