"""A synth configuration that cannot work is refused before anything is created on disk,
and odd inputs to synth and preview end in one clear line (no traceback)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import cli._common as common
from cli.defocuskit_cmd import main as defocuskit
from defocuskit.config import SynthConfig
from defocuskit.errors import ConfigError
from defocuskit.synth import run_synth


def invoke(*args):
    res = CliRunner().invoke(defocuskit, [str(a) for a in args])
    return res.exit_code, res.output


def listing(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.mark.parametrize("args, message", [
    (["--focus", "fixed:0.01"], "Camera: focus_distance (0.01 m) must be larger than "
                                "focal_length (0.07 m); nothing was created"),
    # a 2000 mm lens: the histogram policy focuses the first room at about 1.25 m
    (["--camera", "focal_mm=2000,f_number=2.8,pitch_um=5.6"],
     "must be larger than focal_length (2.0 m); nothing was created"),
])
def test_a_camera_that_cannot_focus_leaves_no_output_behind(tmp_path, args, message):
    (tmp_path / "mine.txt").write_text("a user's file")  # beside the output: untouched
    code, out = invoke("synth", "--source", "samples", "--output", tmp_path / "o.zarr",
                       "--limit", "1", *args)
    assert code == 1, out
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: train/room_00 (index 0): ")
    assert message in lines[0]
    assert listing(tmp_path) == ["mine.txt"]  # no dataset, skeleton, staging or lock


def test_a_negative_seed_in_a_config_file_leaves_no_output_behind(tmp_path):
    cfg = tmp_path / "synth.json"
    cfg.write_text(json.dumps({"source": "samples", "output": str(tmp_path / "o.zarr"),
                               "seed": -1, "limit": 1}))
    code, out = invoke("synth", "--config", cfg)
    assert code == 1
    assert out.strip() == ("Error: seed: expected an integer in [0, 9223372036854775807], "
                           "got -1")
    assert listing(tmp_path) == ["synth.json"]


def test_the_library_refuses_a_near_focus_before_the_lock(tmp_path):
    cfg = SynthConfig(source="samples", input="-", output=str(tmp_path / "o.zarr"),
                      focus="fixed:0.05", limit=1, mode="gather")
    with pytest.raises(ConfigError, match="nothing was created"):
        run_synth(cfg, progress=False)
    assert listing(tmp_path) == []


def test_a_valid_camera_still_renders_after_the_check(tmp_path):
    code, out = invoke("synth", "--source", "samples", "--output", tmp_path / "o.zarr",
                       "--limit", "1", "--split", "train", "--render-mode", "gather",
                       "--focus", "fixed:2")
    assert code == 0, out
    from defocuskit.store import open_dataset

    train = open_dataset(tmp_path / "o.zarr")["train"]
    assert float(train.read_array("focus_distance", 0)) == 2.0


def test_an_unknown_source_is_named_with_the_known_ones(tmp_path):
    code, out = invoke("synth", "--source", "bogus", "--output", tmp_path / "o.zarr")
    assert code == 1
    assert out.strip() == ("Error: source: unknown source 'bogus'; known sources: samples, "
                           "middlebury, nyu, make3d, idfd, folder, procedural")


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_a_config_nested_too_deeply_is_one_line(tmp_path, suffix):
    cfg = tmp_path / f"deep{suffix}"
    depth = 100_000
    cfg.write_text("[" * depth + "]" * depth if suffix == ".json"
                   else "a = " + "[" * depth + "]" * depth + "\n")
    code, out = invoke("synth", "--config", cfg)
    assert code == 1 and "Traceback" not in out
    lines = out.strip().splitlines()
    assert len(lines) == 1 and f"config file {cfg}: " in lines[0], out


def test_an_s3_output_without_its_package_is_one_line(tmp_path, monkeypatch):
    import fsspec

    def missing(protocol):
        raise ImportError("Install s3fs to access S3")

    monkeypatch.setattr(fsspec, "get_filesystem_class", missing)
    code, out = invoke("synth", "--source", "samples", "--output", "s3://bucket/o.zarr")
    assert code == 1
    assert out.strip() == ("Error: output 's3://bucket/o.zarr': cannot write to s3:// here "
                           "(Install s3fs to access S3); install its fsspec package or write "
                           "to a local path")


def test_a_remote_store_error_is_one_line(tmp_path, monkeypatch):
    """What s3fs/botocore raise without credentials (no network here: a stand-in of the
    same module) becomes one line."""
    NoCredentialsError = type("NoCredentialsError", (Exception,),
                              {"__module__": "botocore.exceptions"})

    def refuse(*args, **kwargs):
        raise NoCredentialsError("Unable to locate credentials")

    import defocuskit.preview

    monkeypatch.setattr(defocuskit.preview, "preview_figure", refuse)
    code, out = invoke("preview", "s3://bucket/d.zarr", "-o", tmp_path / "p.png")
    assert code == 1
    assert out.strip() == ("Error: remote storage: NoCredentialsError: Unable to locate "
                           "credentials (check the URL, its credentials and the network)")
    assert common._from_remote_storage(NoCredentialsError("x"))
    assert not common._from_remote_storage(ValueError("x"))


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("preview") / "d.zarr"
    cfg = SynthConfig(source="samples", input="-", output=str(out), limit=1, splits=["train"],
                      mode="gather", focus="fixed:2")
    run_synth(cfg, progress=False)
    return out


@pytest.mark.parametrize("name, message", [
    ("x.txt", "expected a .png file name"),
    ("d.zarr/zarr.json", "expected a .png file name"),
    ("d.zarr/train/p.png", "lies inside the Zarr store"),
])
def test_preview_refuses_an_output_that_is_no_png_or_inside_a_dataset(small_dataset, name,
                                                                      message):
    target = small_dataset.parent / name
    before = target.read_bytes() if target.exists() else None
    code, out = invoke("preview", small_dataset, "-o", target)
    assert code == 1 and message in out and len(out.strip().splitlines()) == 1, out
    assert (target.read_bytes() if target.exists() else None) == before


def test_preview_still_writes_a_png_beside_the_dataset(small_dataset):
    target = small_dataset.parent / "p.png"
    code, out = invoke("preview", small_dataset, "-o", target)
    assert code == 0, out
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
