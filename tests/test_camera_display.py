"""How a camera is shown to a person: `defocuskit preview` writes a custom camera as its
one-line text (not a Python dict), and `defocuskit cameras` ends with how to give a camera
by its parameters."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from click.testing import CliRunner

from cli.defocuskit_cmd import main
from defocuskit.config import SynthConfig
from defocuskit.preview import preview_figure
from defocuskit.store import open_dataset

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CUSTOM = "focal_mm=50,f_number=2.8,pitch_um=5.6"
# the keys of a camera table, as docs/camera_model.md lists them
KEYS = {"preset", "focal_mm", "f_number", "aperture_mm", "pitch_um", "sensor_width_mm",
        "coc_model", "coc_to_sigma", "coc_offset_px", "coc_step_px", "focus", "mode"}


def _synth(out: Path, *camera: str) -> Path:
    args = [a for c in camera for a in ("--camera", c)]
    r = CliRunner().invoke(main, [
        "synth", "--source", "samples", "--input", str(SAMPLES), "--output", str(out),
        "--split", "test", "--limit", "1", "--resize", "32x48", "--render-mode", "gather",
        "--no-progress", *args])
    assert r.exit_code == 0, r.output
    return out


def _texts(fig) -> str:
    """Every piece of text drawn on the figure: panel titles and the caption."""
    parts = [ax.get_title() for ax in fig.axes]
    parts += [t.get_text() for ax in fig.axes for t in ax.texts]
    return "\n".join(parts)


def _caption_camera(fig) -> str:
    (caption,) = [ax for ax in fig.axes if ax.get_label() == "caption"]
    line = next(x for x in caption.texts[0].get_text().splitlines() if x.startswith("camera"))
    return line.split(None, 1)[1]


@pytest.mark.parametrize("camera, shown", [
    ((CUSTOM,), CUSTOM),
    # a preset with one value replaced: the preset's name, then the change
    (("d3net-nyu", "f_number=4"), "d3net-nyu,f_number=4"),
])
def test_preview_shows_a_custom_camera_as_its_one_line_text(tmp_path, camera, shown):
    out = _synth(tmp_path / "c.zarr", *camera)
    attrs = open_dataset(out).attrs
    assert isinstance(attrs["config"]["camera"], dict)  # what the caption used to print
    fig = preview_figure(out, n=1)
    assert _caption_camera(fig) == shown == attrs["camera"]["preset"]
    text = _texts(fig)
    assert f"camera {shown}: CoC vs depth" in text
    assert "{'" not in text and "{" not in _caption_camera(fig)
    # the shown text is the same camera again
    again = SynthConfig(source="samples", input=str(SAMPLES), output="x", camera=shown)
    assert again.camera == attrs["config"]["camera"]


def test_preview_of_a_named_preset_shows_its_name(tmp_path):
    fig = preview_figure(_synth(tmp_path / "p.zarr", "2hded"), n=1)
    assert _caption_camera(fig) == "2hded"


def test_preview_command_writes_the_figure_with_a_custom_camera(tmp_path):
    out = _synth(tmp_path / "c.zarr", CUSTOM)
    png = tmp_path / "p.png"
    r = CliRunner().invoke(main, ["preview", str(out), "-n", "1", "--output", str(png)])
    assert r.exit_code == 0, r.output
    # the file is the figure whose caption shows the camera's text (tested above), pixel
    # for pixel, at the command's 80 dpi
    fig = preview_figure(out, n=1)
    assert _caption_camera(fig) == CUSTOM
    again = tmp_path / "again.png"
    fig.savefig(again, dpi=80)
    written, expected = mpimg.imread(png), mpimg.imread(again)
    w, h = fig.get_size_inches() * 80
    assert written.shape[:2] == (round(h), round(w))
    np.testing.assert_array_equal(written, expected)


def test_cameras_ends_with_how_to_give_a_camera_by_its_parameters():
    r = CliRunner().invoke(main, ["cameras"])
    assert r.exit_code == 0, r.output
    last = r.output.rstrip("\n").splitlines()[-1]
    assert "given by its parameters" in last
    assert f"--camera {CUSTOM}" in last
    listed = last.split("keys: ", 1)[1].split(", ")
    assert set(listed) == KEYS and len(listed) == len(KEYS)
    # the example of the line is a camera the command line accepts
    example = last.split("--camera ", 1)[1].split(";", 1)[0]
    assert SynthConfig(source="procedural", input="-", output="x",
                       camera=example).camera == {"focal_mm": 50.0, "f_number": 2.8,
                                                  "pitch_um": 5.6}
    # the presets still come first, each named once: a heading "name (kind)", then its
    # paragraph, which does not repeat the name
    lines = r.output.splitlines()
    for name in ("2hded", "d3net-nyu", "syndof", "mddnet", "idfd-nikon"):
        headings = [i for i, ln in enumerate(lines) if ln.startswith(f"{name} (")]
        assert len(headings) == 1, name
        assert lines[headings[0]] in (f"{name} (fixed)", f"{name} (randomised per sample)")
        assert not lines[headings[0] + 1].strip().startswith(name)


def test_a_dataset_without_a_recorded_camera_name_shows_its_config_camera_as_text():
    from defocuskit.preview import _camera_name

    table = {"pitch_um": 5.6, "focal_mm": 50, "f_number": 2.8}  # any order, ints
    assert _camera_name({"config": {"camera": table}}) == CUSTOM
    assert _camera_name({"camera": {}, "config": {"camera": "syndof"}}) == "syndof"


def test_schema_doc_lists_the_parameters_keys_in_their_canonical_order():
    import re

    from defocuskit.camera_table import TABLE_KEYS, camera_table

    doc = (Path(__file__).resolve().parents[1] / "docs" / "schema.md").read_text()
    part = doc[doc.index("`parameters` is its canonical table"):]
    part = part[part.index("in the order"):part.index("; numbers as")]
    assert re.findall(r"`(\w+)`", part) == list(TABLE_KEYS)
    # and the canonical table keeps that order, whatever order the keys were given in
    given = {"mode": "gather", "focal_mm": 50, "preset": "2hded", "coc_step_px": 0.1}
    assert list(camera_table(given)) == ["preset", "focal_mm", "coc_step_px", "mode"]
