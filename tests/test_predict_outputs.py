"""``trainer predict`` plans every output before writing and never overwrites an input.

Each case puts a user's image (an input, or a file named like an output) where a careless
implementation would write, and checks it is still there byte for byte.
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest
import torch
from _helpers import TINY
from click.testing import CliRunner

from cli.trainer_cmd import trainer
from trainer.checkpoint import save_checkpoint
from trainer.model import ModelConfig, TwoHeadedNet


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained tiny depth + aif model (its outputs are all this needs)."""
    torch.manual_seed(0)
    cfg = ModelConfig(**TINY, heads=("depth", "aif"))
    path = tmp_path_factory.mktemp("predict_outputs") / "last.pt"
    save_checkpoint(path, {"model": TwoHeadedNet(cfg).state_dict(),
                           "model_config": cfg.to_dict(), "epoch": 0, "step": 0})
    return path


def _image(path, seed):
    rgb = np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), rgb)
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _sha(path):
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _predict(checkpoint, out, *images, extra=()):
    return CliRunner().invoke(trainer, ["predict", "--checkpoint", str(checkpoint), "--output",
                                        str(out), "--device", "cpu", "--no-progress", *extra,
                                        *map(str, images)])


@pytest.mark.parametrize("extra", [(), ("--overwrite",)])
def test_an_input_named_like_an_output_is_refused_before_anything_is_written(
        checkpoint, tmp_path, extra):
    a, a_aif = tmp_path / "a.png", tmp_path / "a_aif.png"
    before = {a: _image(a, 1), a_aif: _image(a_aif, 2)}
    res = _predict(checkpoint, tmp_path, a, a_aif, extra=extra)
    assert res.exit_code == 1, res.output
    assert "a_aif.png: is the input" in res.output and "Traceback" not in res.output
    assert {p: _sha(p) for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a_aif.png"]


def test_an_existing_output_is_refused_without_overwrite_and_replaced_with_it(checkpoint,
                                                                               tmp_path):
    img = tmp_path / "in" / "a.png"
    img.parent.mkdir()
    _image(img, 3)
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "a_depth.png"
    mine.write_bytes(b"the user's own depth map")
    res = _predict(checkpoint, out, img)
    assert res.exit_code == 1 and "1 of the files to write exist already (a_depth.png)" \
        in res.output and "--overwrite" in res.output
    assert mine.read_bytes() == b"the user's own depth map"
    assert sorted(p.name for p in out.iterdir()) == ["a_depth.png"]  # nothing else written
    res = _predict(checkpoint, out, img, extra=("--overwrite",))
    assert res.exit_code == 0, res.output
    assert cv2.imread(str(mine), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def test_overwrite_replaces_a_link_at_an_output_path_without_writing_through_it(
        checkpoint, tmp_path):
    img = tmp_path / "a.png"
    _image(img, 4)
    victim = tmp_path / "elsewhere.png"
    victim.write_bytes(b"a file the link points to")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_aif.png").symlink_to(victim)
    res = _predict(checkpoint, out, img, extra=("--overwrite",))
    assert res.exit_code == 0, res.output
    assert victim.read_bytes() == b"a file the link points to"
    assert not (out / "a_aif.png").is_symlink()
    assert cv2.imread(str(out / "a_aif.png")).shape == (40, 48, 3)


def test_a_link_to_an_input_at_an_output_path_is_refused_even_with_overwrite(checkpoint,
                                                                            tmp_path):
    img = tmp_path / "a.png"
    before = _image(img, 5)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_depth.png").symlink_to(img)
    res = _predict(checkpoint, out, img, extra=("--overwrite",))
    assert res.exit_code == 1 and "is the input" in res.output, res.output
    assert _sha(img) == before and (out / "a_depth.png").is_symlink()


def test_predict_lists_every_file_it_wrote(checkpoint, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    _image(a, 6)
    _image(b, 7)
    out = tmp_path / "out"
    res = _predict(checkpoint, out, a, b)
    assert res.exit_code == 0, res.output
    names = [ln.strip() for ln in res.output.strip().splitlines()[1:]]
    expected = [f"{s}{k}" for s in "ab" for k in ("_depth.png", "_depth_color.png",
                                                  "_aif.png")]
    assert names == expected
    assert res.output.splitlines()[0] == f"wrote 6 files to {out}:"
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)  # no temporary left
