"""The trainer refuses a damaged dataset on open (fit, eval) and a resume on another dataset."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from cli.trainer_cmd import trainer as trainer_main
from defocuskit.errors import DataError
from defocuskit.manifest import MANIFEST_NAME
from defocuskit.store import write_arrays
from tests.test_manifest import ADVICE, DAMAGE, _arrays
from tests.test_trainer_fit import quiet, tiny_cfg
from trainer.checkpoint import CheckpointError, load_checkpoint
from trainer.evaluate import evaluate_checkpoint
from trainer.fit import fit

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("trainer_manifest") / "d.zarr"
    rng = np.random.default_rng(0)
    write_arrays(path, {"train": _arrays(rng, 4), "test": _arrays(rng, 2)}, shard_size=2)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory, data):
    run = tmp_path_factory.mktemp("trainer_manifest_run") / "run"
    fit(data, run, tiny_cfg(epochs=1), log=quiet)
    return run


@pytest.fixture
def copy(data, tmp_path):
    out = tmp_path / "d.zarr"
    shutil.copytree(data, out)
    return out


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_fit_refuses_a_damaged_dataset(copy, tmp_path, kind):
    damage, named, _ = DAMAGE[kind]
    damage(copy)
    with pytest.raises(DataError) as info:
        fit(copy, tmp_path / "run", tiny_cfg(epochs=1), log=quiet)
    msg = str(info.value)
    assert named.strip() in msg and ADVICE in msg and "\n" not in msg
    assert not (tmp_path / "run" / "last.pt").exists()


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_eval_refuses_a_damaged_dataset(copy, run, kind):
    damage, named, _ = DAMAGE[kind]
    damage(copy)
    # the damage is in the train split; a test split read alone is refused all the same
    # when the damage is in files checked on open (everything but the flipped byte)
    split = "train" if kind == "flipped byte" else "test"
    with pytest.raises(DataError) as info:
        evaluate_checkpoint(copy, run / "last.pt", split=split, device="cpu", progress=False)
    assert named.strip() in str(info.value) and ADVICE in str(info.value)


def test_eval_cli_names_the_damage_in_one_line(copy, run):
    DAMAGE["zero-byte shard"][0](copy)
    r = CliRunner().invoke(trainer_main, ["eval", "--data", str(copy), "--checkpoint",
                                          str(run / "last.pt"), "--device", "cpu"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "train/depth/c/1/0/0: empty, the manifest says" in r.output


def test_checkpoint_records_the_dataset_identity(data, run):
    import json

    identity = json.loads((data / MANIFEST_NAME).read_text())["identity"]
    assert load_checkpoint(run / "last.pt")["dataset_identity"] == identity


def test_resume_on_another_dataset_is_refused(data, tmp_path):
    other = tmp_path / "other.zarr"  # the same shapes and splits, other content
    rng = np.random.default_rng(1)
    write_arrays(other, {"train": _arrays(rng, 4), "test": _arrays(rng, 2)}, shard_size=2)
    run = tmp_path / "run"
    cfg = tiny_cfg(epochs=1)
    fit(data, run, cfg, log=quiet)
    before = (run / "last.pt").read_bytes()
    with pytest.raises(CheckpointError, match=r"was trained on the dataset with identity "
                       r"[0-9a-f]{32}; .*other.zarr is another one"):
        fit(other, run, dataclasses.replace(cfg, epochs=2), resume=True, log=quiet)
    assert (run / "last.pt").read_bytes() == before
    moved = tmp_path / "moved.zarr"  # the same dataset elsewhere: the same identity
    shutil.copytree(data, moved)
    fit(moved, run, dataclasses.replace(cfg, epochs=2), resume=True, log=quiet)
    assert load_checkpoint(run / "last.pt")["epoch"] == 2


def test_resume_on_the_dataset_without_its_manifest_is_refused(data, tmp_path):
    run = tmp_path / "run"
    fit(data, run, tiny_cfg(epochs=1), log=quiet)
    bare = tmp_path / "bare.zarr"
    shutil.copytree(data, bare)
    (bare / MANIFEST_NAME).unlink()
    with pytest.raises(CheckpointError, match="bare.zarr has no manifest"):
        fit(bare, run, tiny_cfg(epochs=2), resume=True, log=quiet)


def test_on_the_fly_run_refuses_a_damaged_scene_dataset(tmp_path):
    from tests.test_onthefly import SCENE_ATTRS, _scenes
    from tests.test_onthefly import tiny_cfg as otf_cfg

    scenes = tmp_path / "scenes.zarr"
    rng = np.random.default_rng(0)
    write_arrays(scenes, {"train": _scenes(4, 64, 96, rng)}, attrs=SCENE_ATTRS, shard_size=2)
    aif = next(f for f in sorted((scenes / "train" / "aif" / "c" / "1").rglob("*"))
               if f.is_file())
    aif.write_bytes(b"")
    with pytest.raises(DataError, match=r"train/aif/c/1/0/0/0: empty, the manifest says"):
        fit(scenes, tmp_path / "run", otf_cfg(epochs=1), log=quiet)


def test_loader_workers_check_the_dataset_again_when_they_start(copy):
    from torch.utils.data import DataLoader

    from trainer.data import DefocusDataset

    ds = DefocusDataset(copy, "train", heads=("depth", "aif"))  # checked, fine
    DAMAGE["truncated shard"][0](copy)  # damaged after the run opened it
    with pytest.raises(Exception, match=r"train/depth/c/1/0/0: .*the manifest says"):
        list(DataLoader(ds, batch_size=1, num_workers=1))
