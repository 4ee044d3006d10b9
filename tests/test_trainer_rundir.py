"""trainer fit never loses an earlier run by accident, and its checkpoints stay consistent."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import pickle

import pytest
import torch

from defocuskit.errors import ConfigError
from tests.test_trainer_fit import quiet, tiny_cfg, tiny_data  # noqa: F401 (fixture)
from trainer import checkpoint as ckpt_module
from trainer import fit as fit_module
from trainer.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from trainer.fit import fit


def _snapshot(folder):
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def run(tmp_path, tiny_data):  # noqa: F811
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.md").write_text("my notes about this run")
    fit(tiny_data, run, tiny_cfg(epochs=1), log=quiet)
    return run


def test_earlier_run_is_refused_and_overwrite_keeps_foreign_files(run, tiny_data):  # noqa: F811
    before = _snapshot(run)
    with pytest.raises(ConfigError, match=r"holds an earlier run \(config.json, last.pt"):
        fit(tiny_data, run, tiny_cfg(epochs=1), log=quiet)
    assert _snapshot(run) == before
    (run / "last.pt").unlink()  # any file of an earlier run counts, not only last.pt
    with pytest.raises(ConfigError, match="holds an earlier run"):
        fit(tiny_data, run, tiny_cfg(epochs=1), log=quiet)
    fit(tiny_data, run, tiny_cfg(epochs=2), overwrite=True, log=quiet)
    assert load_checkpoint(run / "last.pt")["epoch"] == 2
    assert (run / "notes.md").read_text() == "my notes about this run"


def test_refused_resume_changes_nothing(run, tiny_data):  # noqa: F811
    before = _snapshot(run)
    with pytest.raises(CheckpointError, match="holds model"):
        fit(tiny_data, run, tiny_cfg(epochs=2, heads=("depth",)), resume=True, log=quiet)
    assert _snapshot(run) == before


def test_overwrite_refused_by_a_later_check_deletes_nothing(run, tiny_data):  # noqa: F811
    before = _snapshot(run)
    with pytest.raises(ConfigError, match="val_split 'nope'"):
        fit(tiny_data, run, tiny_cfg(val_split="nope"), overwrite=True, log=quiet)
    assert _snapshot(run) == before


def test_best_is_written_before_last_and_without_optimiser_state(tmp_path, tiny_data,  # noqa: F811
                                                                  monkeypatch):
    order = []
    real = fit_module.save_checkpoint

    def spy(path, state):
        order.append(path.name)
        return real(path, state)

    monkeypatch.setattr(fit_module, "save_checkpoint", spy)
    fit(tiny_data, tmp_path / "r", tiny_cfg(epochs=1), log=quiet)
    assert order == ["best.pt", "last.pt"]  # epoch 1 always improves on "no best yet"
    best = load_checkpoint(tmp_path / "r" / "best.pt")
    last = load_checkpoint(tmp_path / "r" / "last.pt")
    assert not {"optimizer", "scheduler", "rng"} & set(best)
    assert {"optimizer", "scheduler", "rng"} <= set(last)
    for k, v in best["model"].items():
        assert torch.equal(v, last["model"][k])


def test_kill_between_the_two_writes_is_repaired_by_resume(tmp_path, tiny_data,  # noqa: F811
                                                           monkeypatch):
    cfg = tiny_cfg(epochs=2, val_split="none")
    run = tmp_path / "k"
    real = fit_module.save_checkpoint
    calls = []

    def killed(path, state):
        calls.append(path.name)
        if path.name == "last.pt" and state["epoch"] == 2:
            raise KeyboardInterrupt  # the process dies after best.pt, before last.pt
        return real(path, state)

    monkeypatch.setattr(fit_module, "save_checkpoint", killed)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_data, run, cfg, log=quiet)
    monkeypatch.setattr(fit_module, "save_checkpoint", real)
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    fit(tiny_data, run, dataclasses.replace(cfg), resume=True, log=quiet)
    last, best = load_checkpoint(run / "last.pt"), load_checkpoint(run / "best.pt")
    assert last["epoch"] == 2
    best_epoch = min(last["history"], key=lambda r: r["train_total"])["epoch"]
    assert best["epoch"] == best_epoch and best["best"] == last["best"]


def test_full_disk_while_saving_removes_the_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": {}, "model_config": {}, "epoch": 1, "step": 1})
    before = path.read_bytes()

    def full(obj, f, *a, **k):
        with open(f, "wb") as out:
            out.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt_module.torch, "save", full)
    with pytest.raises(CheckpointError, match="No space left .* partial file was removed and "
                                              "the previous one is intact"):
        save_checkpoint(path, {"model": {}, "model_config": {}, "epoch": 2, "step": 2})
    assert path.read_bytes() == before and not (tmp_path / "last.pt.tmp").exists()


class Evil:  # any class: the safe unpickler refuses it
    pass


def test_unsafe_checkpoint_message_never_suggests_unsafe_loading(tmp_path):
    bad = tmp_path / "evil.pt"
    with open(bad, "wb") as f:
        torch.save({"x": Evil()}, f, pickle_module=pickle)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(bad)
    assert "weights_only" not in str(info.value) and "do not load it unsafely" in str(info.value)


def _user_run_dir(tmp_path, **files):
    run = tmp_path / "mine"
    run.mkdir()
    for name, text in files.items():
        (run / name.replace("_json", ".json").replace("_csv", ".csv")
         .replace("_pt", ".pt")).write_text(text)
    return run


@pytest.mark.parametrize("files", [{"config_json": '{"lr": 0.1}\n'},
                                   {"log_csv": "epoch,train_total\n1,0.5\n"},
                                   {"last_pt": "not a checkpoint"},
                                   {"config_json": "{}", "log_csv": "epoch\n"}])
def test_overwrite_refuses_files_the_trainer_cannot_prove_it_wrote(tmp_path, tiny_data,  # noqa: F811
                                                                   files):
    run = _user_run_dir(tmp_path, notes_md="mine", **files)
    before = _snapshot(run)
    with pytest.raises(ConfigError, match="cannot be proven .* nothing was changed"):
        fit(tiny_data, run, tiny_cfg(epochs=1), overwrite=True, log=quiet)
    assert _snapshot(run) == before and sorted(p.name for p in run.iterdir()) == sorted(before)


def test_a_trainer_file_edited_by_the_user_is_no_longer_replaced(run, tiny_data):  # noqa: F811
    with open(run / "log.csv", "a") as f:
        f.write("# my comment about epoch 1\n")
    before = _snapshot(run)
    with pytest.raises(ConfigError, match="log.csv cannot be proven"):
        fit(tiny_data, run, tiny_cfg(epochs=1), overwrite=True, log=quiet)
    assert _snapshot(run) == before


def test_overwrite_of_a_run_with_plots_and_tensorboard_replaces_them(tmp_path, tiny_data):  # noqa: F811
    run = tmp_path / "p"
    fit(tiny_data, run, tiny_cfg(epochs=1, plots=True, val_split="test"), log=quiet)
    (run / "tb").mkdir(exist_ok=True)
    (run / "tb" / "events.out.tfevents.1.host").write_bytes(b"tb")
    assert {"loss_curves.png", "log.csv", "config.json"} <= set(os.listdir(run))
    fit(tiny_data, run, tiny_cfg(epochs=2), overwrite=True, log=quiet)
    assert load_checkpoint(run / "last.pt")["epoch"] == 2
    assert not (run / "tb").exists() and not (run / "loss_curves.png").exists()


@pytest.mark.parametrize("inside", ["", "runs/r1"])
def test_run_dir_equal_to_or_inside_a_dataset_is_refused(samples_dataset, inside):
    run = samples_dataset / inside if inside else samples_dataset
    before = {str(p) for p in samples_dataset.rglob("*")}
    with pytest.raises(ConfigError, match="inside the defocuskit dataset .* outside"):
        fit(samples_dataset, run, tiny_cfg(epochs=1), log=quiet)
    assert {str(p) for p in samples_dataset.rglob("*")} == before
