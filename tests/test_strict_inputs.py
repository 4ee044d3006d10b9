"""Configuration values are type-checked: no string "no" that reads as true, no guessed keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.defocuskit_cmd import main
from defocuskit.config import SynthConfig, load_config_file
from defocuskit.errors import ConfigError, SourceError
from defocuskit.sources import get_source
from defocuskit.sources.nyu import NYUSource
from defocuskit.typed import check_options, parse_cli_value

REPO = Path(__file__).resolve().parents[1]
BASE = {"source": "samples", "input": str(REPO / "samples"), "output": "o.zarr"}


@pytest.mark.parametrize("text, value", [("False", False), ("false", False), ("TRUE", True),
                                         ("3", 3), ("0.5", 0.5), ("[1, 2]", [1, 2]),
                                         ("no", "no"), ("depths", "depths")])
def test_command_line_values(text, value):
    assert parse_cli_value(text) == value and type(parse_cli_value(text)) is type(value)


@pytest.mark.parametrize("key, value, expected", [
    ("linear_light", "no", "true or false"),
    ("linear_light", 1, "true or false"),
    ("seed", "3", "an integer"),
    ("seed", 2.5, "an integer"),
    ("shard_size", True, "an integer"),
    ("coc_to_sigma", "0.25", "a number"),
    ("resize", "256x256", "a list of an integer"),
    ("splits", "train", "a list of a string"),
    ("noise", {"read": "high"}, "a number"),
])
def test_synth_config_values_are_type_checked(key, value, expected):
    with pytest.raises(ConfigError, match=f"{key}.* expected {expected}"):
        SynthConfig.from_dict({**BASE, key: value})


def test_synth_config_unknown_key_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['linear_lite'\].*'linear_light'"):
        SynthConfig.from_dict({**BASE, "linear_lite": True})


def test_config_file_value_from_json_is_checked(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({**BASE, "linear_light": "no"}))
    r = CliRunner().invoke(main, ["synth", "--config", str(f)])
    assert r.exit_code == 1 and "'linear_light' expected true or false, got 'no'" in r.output


@pytest.mark.parametrize("suffix, message", [(".yaml", "YAML is not supported"),
                                             (".yml", "YAML is not supported"),
                                             (".ini", ".ini is not a known format")])
def test_unsupported_config_formats_say_so(tmp_path, suffix, message):
    f = tmp_path / f"c{suffix}"
    f.write_text("seed: 3\n")
    with pytest.raises(ConfigError, match=message):
        load_config_file(f)


def test_invalid_json_says_json(tmp_path):
    f = tmp_path / "c.json"
    f.write_text("{seed: 3")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config_file(f)


@pytest.mark.parametrize("options, message", [
    ({"crop": "False"}, "'crop' expected true or false"),
    ({"crop": 0}, "'crop' expected true or false"),
    ({"depth_kind": 3}, "'depth_kind' expected a string"),
    ({"crpo": False}, r"unknown option\(s\) \['crpo'\]; known options: \['crop', "
                      "'depth_kind', 'splits_path'\\]"),
])
def test_reader_options_are_checked_against_the_reader(options, message):
    with pytest.raises(ConfigError, match=message):
        check_options(NYUSource, options, "source 'nyu' option")


def test_reader_option_false_from_the_command_line_is_false():
    assert check_options(NYUSource, {"crop": parse_cli_value("False")}, "x") == {"crop": False}


def test_reader_without_options_refuses_any(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['crop'\]; known options: "
                                          r"\['\(none\)'\]"):
        get_source("samples", tmp_path, crop=False)


def test_unknown_reader_option_from_the_cli_is_one_line(tmp_path):
    r = CliRunner().invoke(main, ["synth", "--source", "samples", "--input",
                                  str(REPO / "samples"), "--output", str(tmp_path / "o.zarr"),
                                  "--option", "crop=False"])
    assert r.exit_code == 1 and "source 'samples' option: unknown option(s) ['crop']" \
        in r.output
    assert not (tmp_path / "o.zarr").exists()


def test_config_merge_lives_in_the_library(tmp_path):
    from defocuskit.config import resolve_synth_config

    f = tmp_path / "c.toml"
    f.write_text('source = "samples"\ninput = "x"\noutput = "o.zarr"\nseed = 4\n'
                 '[source_options]\na = 1\n')
    cfg = resolve_synth_config(config_file=f, overrides={"seed": None, "camera": "syndof"},
                               source_options={"b": 2})
    assert (cfg.seed, cfg.camera, cfg.source_options) == (4, "syndof", {"a": 1, "b": 2})


def test_preview_into_an_unwritable_place_is_one_line(tmp_path):
    import shutil

    ds = tmp_path / "g.zarr"
    shutil.copytree(Path(__file__).parent / "data" / "golden_v2.zarr", ds)
    r = CliRunner().invoke(main, ["preview", str(ds), "--output", "/proc/self/p.png"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    # the golden copy has no manifest: one note line, then the error in one line
    note, error = r.output.splitlines()
    assert note.startswith("note: dataset") and "has no manifest" in note
    assert error.startswith("Error: cannot write /proc/self")


def test_depth_png_written_in_metres_blames_the_file_and_names_the_unit(tmp_path):
    import cv2
    import numpy as np

    root = tmp_path / "mine"
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    cv2.imwrite(str(root / "rgb" / "a.png"), np.zeros((16, 16, 3), np.uint8))
    cv2.imwrite(str(root / "depth" / "a.png"), np.full((16, 16), 3, np.uint16))  # 3 "mm"
    src = get_source("folder", root)
    with pytest.raises(SourceError, match=r"depth '.*a\.png' \(16-bit PNG, "
                       r"millimetres\): depth median is 0\.0030 m.*seems to hold metres"):
        src.read(src.splits()[0], 0)


def test_npy_depth_in_millimetres_blames_the_file(tmp_path):
    import cv2
    import numpy as np

    root = tmp_path / "mine"
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    cv2.imwrite(str(root / "rgb" / "a.png"), np.zeros((16, 16, 3), np.uint8))
    np.save(root / "depth" / "a.npy", np.full((16, 16), 2500.0, np.float32))
    src = get_source("folder", root)
    with pytest.raises(SourceError, match=r"a\.npy.*median is 2500\.0, which "
                                                     "looks like millimetres"):
        src.read(src.splits()[0], 0)
