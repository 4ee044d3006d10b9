"""Damage that chunk checksums cannot see is found through the dataset's manifest.

Each kind of damage is made on a copy of a small dataset and must be reported by
`inspect` (one line per problem, exit 3, no statistics), `inspect --verify` (exit 3) and
refused by every reader on open: `preview`, the trainer's dataset (fit) and `trainer eval`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from cli.defocuskit_cmd import main
from defocuskit.errors import DataError
from defocuskit.manifest import MANIFEST_NAME, read_manifest
from defocuskit.store import mark_complete, open_dataset, write_arrays
from defocuskit.verify import verify_dataset

GOLDEN = Path(__file__).parent / "data" / "golden_v2.zarr"
ADVICE = "defocuskit inspect --verify"


def _arrays(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """64 x 64 frames; depth of shard 0 (samples 0, 1) a smooth ramp, of shard 1 random
    (so the two depth shard files differ in size)."""
    aif = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    rows = np.mgrid[0:64, 0:64][0].astype(np.float32)
    depth = np.stack([1 + rows / 32 if i < 2 else rng.uniform(1, 5, (64, 64))
                      for i in range(n)]).astype(np.float32)
    return {"aif": aif, "defocused": aif // 2 + 64, "depth": depth}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("manifest") / "base.zarr"
    rng = np.random.default_rng(0)
    write_arrays(path, {"train": _arrays(rng, 4), "test": _arrays(rng, 2)}, shard_size=2)
    return path


@pytest.fixture
def copy(base, tmp_path) -> Path:
    out = tmp_path / "d.zarr"
    shutil.copytree(base, out)
    return out


def _shard(ds: Path, array: str, shard: int, split: str = "train") -> Path:
    return next(f for f in sorted((ds / split / array / "c" / str(shard)).rglob("*"))
                if f.is_file())


def _swap(ds: Path, array: str = "depth") -> None:
    a, b = _shard(ds, array, 0), _shard(ds, array, 1)
    ta, tb = a.read_bytes(), b.read_bytes()
    a.write_bytes(tb)
    b.write_bytes(ta)


def _edit_meta(ds: Path, **change) -> None:
    p = ds / "train" / "depth" / "zarr.json"
    meta = json.loads(p.read_text())
    meta.update(change)
    p.write_text(json.dumps(meta, indent=2))


def _flip(ds: Path) -> None:
    p = _shard(ds, "depth", 1)
    b = bytearray(p.read_bytes())
    b[20] ^= 0xFF
    p.write_bytes(bytes(b))


def _resize(ds: Path, delta: int) -> None:
    p = _shard(ds, "depth", 1)
    data = p.read_bytes()
    p.write_bytes(data[:delta] if delta < 0 else data + b"\0" * delta)


# kind -> (damage, what `inspect` and the readers name, what `inspect --verify` names)
SHARD1 = "train/depth/c/1/0/0"
DAMAGE = {
    "zero-byte shard": (lambda d: _shard(d, "depth", 1).write_bytes(b""),
                        f"{SHARD1}: empty, the manifest says", f"{SHARD1}: empty"),
    "swapped shards": (_swap, "train/depth/c/0/0/0: ", "train/depth/c/0/0/0: "),
    "dtype edited": (lambda d: _edit_meta(d, data_type="int32"),
                     "train/depth/zarr.json: ", "train/depth/zarr.json: "),
    "shape edited": (lambda d: _edit_meta(d, shape=[3, 64, 64]),
                     "train/depth/zarr.json: ", "train/depth/zarr.json: "),
    "flipped byte": (_flip, "array 'depth', sample 2: damaged data",
                     f"{SHARD1}: content differs"),
    "truncated shard": (lambda d: _resize(d, -10), f"{SHARD1}: ", f"{SHARD1}: "),
    "appended shard": (lambda d: _resize(d, 7), f"{SHARD1}: ", f"{SHARD1}: "),
    "truncated root zarr.json": (
        lambda d: (d / "zarr.json").write_bytes((d / "zarr.json").read_bytes()[:100]),
        " zarr.json: 100 bytes", " zarr.json: 100 bytes"),
    "missing shard": (lambda d: _shard(d, "depth", 1).unlink(),
                      f"{SHARD1}: missing", f"{SHARD1}: missing"),
}


def test_manifest_lists_every_file_with_its_size_and_blake2b(base):
    m = json.loads((base / MANIFEST_NAME).read_text())
    files = sorted(str(p.relative_to(base)) for p in base.rglob("*")
                   if p.is_file() and p.name != MANIFEST_NAME)
    assert sorted(m["files"]) == files
    assert "train/depth/c/1/0/0" in files and "zarr.json" in files
    for rel in files:
        data = (base / rel).read_bytes()
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        assert m["files"][rel] == {"size": len(data), "blake2b": digest}, rel
    assert m["samples"] == {"train": 4, "test": 2}
    text = json.dumps({"samples": m["samples"], "files": m["files"]}, sort_keys=True,
                      separators=(",", ":"))
    assert m["identity"] == hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    assert open_dataset(base).manifest["identity"] == m["identity"]


def test_an_edited_manifest_is_refused(copy):
    p = copy / MANIFEST_NAME
    m = json.loads(p.read_text())
    m["files"]["train/depth/c/1/0/0"]["size"] += 1
    p.write_text(json.dumps(m))
    with pytest.raises(DataError, match="does not match its own identity hash"):
        open_dataset(copy)
    p.write_text("{not json")
    with pytest.raises(DataError, match=f"{MANIFEST_NAME} is damaged"):
        read_manifest(copy)


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_inspect_reports_the_damage_in_one_line_and_exits_3(copy, kind):
    damage, named, _ = DAMAGE[kind]
    damage(copy)
    r = CliRunner().invoke(main, ["inspect", str(copy)])
    assert r.exit_code == 3, r.output
    assert "Traceback" not in r.output and r.exception is None or \
        isinstance(r.exception, SystemExit)
    assert named in r.output and ADVICE in r.output
    assert "complete  yes" not in r.output
    assert "complete  NO (damaged" in r.output
    assert " m (mean " not in r.output  # no statistics over fill values
    if kind != "truncated root zarr.json":
        assert "depth           n/a (not computed, the dataset is damaged" in r.output


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_inspect_verify_finds_the_damage(copy, kind):
    damage, _, named = DAMAGE[kind]
    damage(copy)
    r = CliRunner().invoke(main, ["inspect", str(copy), "--verify"])
    assert r.exit_code == 3, r.output
    assert named in r.output and "problem(s) found" in r.output


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_preview_refuses_the_damage_in_one_line(copy, kind, tmp_path):
    damage, named, _ = DAMAGE[kind]
    damage(copy)
    png = tmp_path / "p.png"
    r = CliRunner().invoke(main, ["preview", str(copy), "-n", "4", "--output", str(png)])
    assert r.exit_code == 1, r.output
    assert r.output.startswith("Error: ") and r.output.count("\n") == 1
    assert named.strip() in r.output and ADVICE in r.output
    assert not png.exists()


def test_clean_dataset_inspects_and_verifies(base):
    r = CliRunner().invoke(main, ["inspect", str(base)])
    assert r.exit_code == 0 and "complete  yes" in r.output and "problem" not in r.output
    r = CliRunner().invoke(main, ["inspect", str(base), "--verify"])
    assert r.exit_code == 0
    assert "every file matches the manifest (size and checksum)" in r.output


def test_equal_size_swap_is_found_by_verify_only(copy):
    """Two random (incompressible) AiF shards have the same size: the open check (sizes)
    cannot tell them apart, the content checksum can."""
    assert _shard(copy, "aif", 0).stat().st_size == _shard(copy, "aif", 1).stat().st_size
    _swap(copy, "aif")
    open_dataset(copy)  # sizes match: accepted on open
    problems = [str(p) for p in verify_dataset(copy)]
    assert problems == [f"train/aif/c/{k}/0/0/0: content differs (replaced, swapped or "
                        "damaged): its checksum does not match the manifest" for k in (0, 1)]


def test_lost_shard_done_flag_is_not_reported_as_complete(copy):
    g = zarr.open_group(str(copy), mode="r+", use_consolidated=False)
    g["train"]["_shard_done"][1] = 0  # the data of shard 1 are intact
    r = CliRunner().invoke(main, ["inspect", str(copy)])
    assert r.exit_code == 3 and "complete  yes" not in r.output
    assert "shards [1] are not marked done although the dataset is marked complete" in r.output
    r = CliRunner().invoke(main, ["inspect", str(copy), "--verify"])
    assert r.exit_code == 3
    assert "train/* samples 2-3: not marked done although the dataset is marked complete" \
        in r.output


def test_completing_again_rewrites_the_manifest_but_never_seals_damage(copy):
    before = read_manifest(copy)
    mark_complete(copy)  # what a resumed run ends with
    assert read_manifest(copy) == before
    _resize(copy, -3)
    with pytest.raises(DataError, match=f"{SHARD1}: .*rebuild it with .*--overwrite"):
        mark_complete(copy)


def test_remote_dataset_gets_a_manifest_and_is_checked():
    url = "memory://manifest-remote.zarr"
    write_arrays(url, {"train": _arrays(np.random.default_rng(1), 2)}, shard_size=2)
    m = read_manifest(url)
    assert "train/depth/c/0/0/0" in m["files"] and m["samples"] == {"train": 2}
    assert verify_dataset(url) == []


# datasets written before manifests: read as before, with a note; zero-byte shards found


@pytest.fixture
def legacy(tmp_path) -> Path:
    out = tmp_path / "g.zarr"
    shutil.copytree(GOLDEN, out)
    assert not (out / MANIFEST_NAME).exists()
    return out


def test_no_manifest_is_said_and_the_dataset_still_works(legacy, tmp_path):
    r = CliRunner().invoke(main, ["inspect", str(legacy), "--verify"])
    assert r.exit_code == 0 and "no manifest (written before manifests)" in r.output
    r = CliRunner().invoke(main, ["inspect", str(legacy)])
    assert r.exit_code == 0 and "manifest  none (written before manifests)" in r.output
    r = CliRunner().invoke(main, ["preview", str(legacy), "--output", str(tmp_path / "p.png")])
    assert r.exit_code == 0
    assert r.stderr.count("note: dataset") == 1 and "has no manifest" in r.stderr
    assert "Warning" not in r.stderr


def test_zero_byte_shard_without_a_manifest_is_damage_not_fill_values(legacy):
    _shard(legacy, "depth", 1).write_bytes(b"")
    with pytest.raises(DataError, match="sample 2: its shard file is missing or empty"):
        open_dataset(legacy)["train"].read_array("depth", 2)
    r = CliRunner().invoke(main, ["inspect", str(legacy)])
    assert r.exit_code == 3 and "complete  yes" not in r.output
    assert "train/depth shard 1 (sample 2): shard file missing or empty" in r.output
    assert [str(p) for p in verify_dataset(legacy)] == [
        "train/depth sample 2: shard file missing or empty"]


def test_a_resumed_synth_run_writes_the_manifest_when_it_completes(samples_dataset, tmp_path,
                                                                   samples_dir):
    from defocuskit.config import SynthConfig
    from defocuskit.synth import run_synth

    done = read_manifest(samples_dataset)
    out = tmp_path / "resumed.zarr"
    shutil.copytree(samples_dataset, out)
    # as a run killed before its last shard: flag unset, not complete, no manifest yet
    g = zarr.open_group(str(out), mode="r+", use_consolidated=False)
    g["test"]["_shard_done"][0] = 0
    g.attrs["complete"] = False
    (out / MANIFEST_NAME).unlink()
    cfg = SynthConfig(source="samples", input=str(samples_dir), output=str(out),
                      camera="2hded", focus="histogram", render_mode="gather", seed=0, shard_size=4)
    summary = run_synth(cfg, resume=True, progress=False)
    assert summary.n_shards == 1  # only the unfinished shard was redone
    m = read_manifest(out)
    assert m["samples"] == done["samples"] == {"train": 6, "test": 2}
    # the same data files; only the root metadata (last run's timing) differs
    data_files = {k: v for k, v in m["files"].items() if k != "zarr.json"}
    assert data_files == {k: v for k, v in done["files"].items() if k != "zarr.json"}
    assert verify_dataset(out) == []
