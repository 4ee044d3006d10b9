"""A fixed-pitch camera preset on frames far from its source's size says so, once, and
what that does to sigma."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from cli.defocuskit_cmd import main
from defocuskit.presets import get_preset, list_presets


def _synth(out, width: int, *args):
    return CliRunner().invoke(main, [
        "synth", "--source", "procedural", "--option", "n_train=2", "--option", "n_test=1",
        "--option", "height=32", "--option", f"width={width}", "--render-mode", "gather",
        "--no-progress", "--shard-size", "1", "--output", str(out), *args])


def test_d3net_on_frames_ten_times_narrower_notes_it_once_on_stderr(tmp_path):
    r = _synth(tmp_path / "d.zarr", 64, "--camera", "d3net-nyu")
    assert r.exit_code == 0, r.output
    notes = [ln for ln in r.stderr.splitlines() if ln.startswith("note: ")]
    assert len(notes) == 1, r.stderr  # once, not per split or shard
    assert "5.6 um pixel pitch comes from 640 px wide frames" in notes[0]
    assert "64 px wide (10.0x narrower)" in notes[0] and "10.0x larger" in notes[0]
    assert "--camera d3net-nyu,pitch_um=56" in notes[0]
    assert "note:" not in r.stdout


def test_the_suggested_pitch_gives_the_sources_sigma_relative_to_the_frame():
    preset = get_preset("d3net-nyu")
    rng = np.random.default_rng(0)
    depth = np.array([1.0, 3.0, 6.0])
    source = preset.make(image_width=640, rng=rng).with_focus(2.0).sigma_px(depth)
    scaled = get_preset("d3net-nyu,pitch_um=56").make(image_width=64, rng=rng)
    # sigma as a share of the frame width: the same as the source's on 640 px frames
    np.testing.assert_allclose(scaled.with_focus(2.0).sigma_px(depth) / 64, source / 640,
                               rtol=1e-6)


@pytest.mark.parametrize("width, noted", [(640, False), (320, False), (1280, False),
                                          (319, True), (1281, True)])
def test_the_note_starts_beyond_a_factor_of_two(width, noted):
    assert (get_preset("d3net-nyu").frame_note(width) is not None) == noted


def test_presets_whose_pitch_follows_the_frame_never_note():
    for name in ("2hded", "syndof", "idfd-nikon"):
        assert list_presets()[name].frame_note(64) is None


def test_a_pitch_that_follows_the_frame_gives_no_note_through_the_cli(tmp_path):
    r = _synth(tmp_path / "n.zarr", 64, "--camera", "2hded")
    assert r.exit_code == 0 and "note:" not in r.stderr, r.stderr
