"""Sources that carry their own data need no --input; the sample scenes ship in the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.defocuskit_cmd import main
from defocuskit.sources import NO_INPUT_SOURCES, get_source
from defocuskit.sources.samples import SamplesSource, default_samples_path
from defocuskit.store import open_dataset

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("source, options", [
    ("samples", []),
    ("middlebury", ["--resize", "64x96"]),
    ("procedural", ["--option", "n_train=0", "--option", "n_test=1",
                    "--option", "height=32", "--option", "width=32"]),
])
def test_cli_synth_without_input(tmp_path, monkeypatch, source, options):
    if source == "middlebury":
        pytest.importorskip("skimage")
    monkeypatch.chdir(tmp_path)  # no samples/ folder here: the bundled scenes are found
    out = tmp_path / f"{source}.zarr"
    r = CliRunner().invoke(main, ["synth", "--source", source, "--output", str(out),
                                  "--split", "test", "--limit", "1", "--no-progress",
                                  *options])
    assert r.exit_code == 0, r.output
    ds = open_dataset(out)
    assert ds.attrs["config"]["input"] == "-" and len(ds["test"]) == 1
    assert np.isfinite(np.asarray(ds["test"].array("defocused")[0], dtype=float)).all()


def test_every_data_carrying_source_is_listed_as_needing_no_input():
    assert set(NO_INPUT_SOURCES) >= {"samples", "middlebury", "procedural"}


@pytest.mark.parametrize("path", [None, "", "-", "samples"])
def test_samples_placeholders_mean_the_bundled_scenes(tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    src = SamplesSource(path)
    assert src.path == default_samples_path()
    assert src.splits() == ["train", "test"]


def test_samples_folder_of_that_name_here_is_read(tmp_path, monkeypatch):
    shutil.copytree(REPO / "samples", tmp_path / "samples",
                    ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.chdir(tmp_path)
    assert get_source("samples", "samples").path == Path("samples")


@pytest.mark.slow
def test_the_wheel_ships_the_sample_scenes_and_they_are_found(tmp_path):
    """Build a wheel (no network, no build isolation) from a copy of the project, unpack it
    and read the scenes from the unpacked package, as a `pip install .` would place them."""
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(REPO / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("defocuskit", "trainer", "cli", "samples"):
        shutil.copytree(REPO / name, src / name, ignore=skip)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation",
                        "--no-deps", "-q", "-w", str(tmp_path / "wheel"), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    wheel = next((tmp_path / "wheel").glob("defocuskit-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    import json

    manifest = json.loads((REPO / "samples" / "manifest.json").read_text())
    expected = {"defocuskit/_samples/manifest.json"} | {
        f"defocuskit/_samples/{scene[k]}" for scene in manifest["scenes"].values()
        for k in ("rgb", "depth")}
    assert expected <= names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = ("from defocuskit.sources.samples import SamplesSource, default_samples_path; "
             "s = SamplesSource(); a = s.read('test', 0); "
             "print(default_samples_path(), a.aif.shape)")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == str(site / "defocuskit" / "_samples")
    assert "(256, 320, 3)" in r.stdout
