"""The `procedural` source: seeded scenes made on the fly, and synth without --input."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from cli.defocuskit_cmd import main
from defocuskit.config import SynthConfig
from defocuskit.errors import SourceError
from defocuskit.sources import get_source, list_sources
from defocuskit.sources._procedural_scenes import pinhole
from defocuskit.sources.procedural import ProceduralSource, scene_seed
from defocuskit.store import open_dataset
from defocuskit.synth import run_synth

SMALL = {"n_train": 3, "n_test": 2, "height": 64, "width": 96}


def _arrays(src: ProceduralSource, split: str = "train") -> list[tuple[np.ndarray, np.ndarray]]:
    return [(s.aif, s.depth) for s in (src.read(split, i) for i in range(src.n[split]))]


def test_registered_and_needs_no_input():
    assert "procedural" in list_sources()
    for path in (None, "", "-", "procedural"):
        src = get_source("procedural", path, **SMALL)
        assert isinstance(src, ProceduralSource)
    assert src.splits() == ["train", "test"]
    assert src.sample_ids("test") == ["test-000000", "test-000001"]
    assert get_source("procedural", None, n_train=2, n_test=0).splits() == ["train"]


def test_sample_shapes_units_and_meta():
    s = ProceduralSource(**SMALL).read("train", 1)
    assert s.aif.shape == (64, 96, 3) and s.aif.dtype == np.uint8
    assert s.depth.shape == (64, 96) and s.depth.dtype == np.float32
    assert s.sample_id == "train-000001" and s.meta["units"]["depth"] == "metres"
    assert s.meta["camera_intrinsics_px"] == pinhole(64, 96)
    assert s.meta["scene_params"]["seed"] == scene_seed(0, "train", 1)


def test_same_seed_same_arrays_other_seed_differs():
    a, b = ProceduralSource(**SMALL, seed=7), ProceduralSource(**SMALL, seed=7)
    for (rgb_a, d_a), (rgb_b, d_b) in zip(_arrays(a), _arrays(b), strict=True):
        np.testing.assert_array_equal(rgb_a, rgb_b)
        np.testing.assert_array_equal(d_a, d_b)
    other = ProceduralSource(**SMALL, seed=8)
    for (rgb_a, d_a), (rgb_o, d_o) in zip(_arrays(a), _arrays(other), strict=True):
        assert not np.array_equal(rgb_a, rgb_o) and not np.array_equal(d_a, d_o)
    # train and test scenes differ, and every scene of a split differs from the others
    depths = [d for _, d in _arrays(a)] + [d for _, d in _arrays(a, "test")]
    assert len({d.tobytes() for d in depths}) == len(depths)


def test_a_scene_does_not_depend_on_the_split_sizes():
    few = ProceduralSource(n_train=1, n_test=1, height=32, width=32, seed=3)
    many = ProceduralSource(n_train=50, n_test=9, height=32, width=32, seed=3)
    np.testing.assert_array_equal(few.read("test", 0).aif, many.read("test", 0).aif)


def test_depth_range_is_indoor_and_every_pixel_valid():
    src = ProceduralSource(n_train=12, n_test=0, height=48, width=64, seed=1)
    lo, hi = [], []
    for _, depth in _arrays(src):
        assert np.isfinite(depth).all()
        lo.append(depth.min())
        hi.append(depth.max())
    assert min(lo) >= 0.5 and max(hi) <= 10.0
    assert max(lo) < 2.5 and min(hi) > 5.0  # a near box and a far back wall in every scene


def test_occlusion_edges_are_depth_steps_not_blends():
    s = ProceduralSource(n_train=1, n_test=0, height=128, width=128, seed=5).read("train", 0)
    box = min((o for o in s.meta["scene_params"]["objects"] if o["kind"] == "box"),
              key=lambda o: o["z_m"][0])
    cam = s.meta["camera_intrinsics_px"]
    z0, (x0, x1), (y0, y1) = box["z_m"][0], box["x_m"], box["y_m"]
    # a row through the middle of the nearest box's front face (as far as the image shows it)
    top = cam["cy_px"] + cam["fy_px"] * y0 / z0
    bottom = min(cam["cy_px"] + cam["fy_px"] * y1 / z0, 127.0)
    v = int(round((top + bottom) / 2))
    row = s.depth[v]
    u = np.arange(128)
    inside = (u > cam["cx_px"] + cam["fx_px"] * x0 / z0 + 0.5) & \
             (u < cam["cx_px"] + cam["fx_px"] * x1 / z0 - 0.5)
    assert inside.sum() > 5
    np.testing.assert_array_equal(row[inside], np.float32(z0))  # the face sits at its depth
    steps = np.abs(np.diff(s.depth, axis=1))
    assert (steps > 0.5).sum() > 20  # jumps at silhouettes: more than 0.5 m between neighbours
    # no pixel sits between the two sides of a step: each edge pixel is one surface
    assert steps[v][inside[1:] & inside[:-1]].max() < 1e-9


@pytest.mark.parametrize("options, match", [
    ({"n_train": -1}, "n_train"), ({"height": 8}, "height"), ({"width": 2.5}, "width"),
    ({"seed": -3}, "seed"), ({"supersample": 5}, "supersample"),
    ({"n_train": 0, "n_test": 0}, "both 0"),
])
def test_bad_options_raise(options, match):
    with pytest.raises(SourceError, match=match):
        ProceduralSource(**options)


def test_a_file_path_is_refused():
    with pytest.raises(SourceError, match="reads no file"):
        ProceduralSource("samples")


def test_index_and_split_checks():
    src = ProceduralSource(**SMALL)
    with pytest.raises(SourceError, match="out of range"):
        src.read("test", 2)
    with pytest.raises(SourceError, match="unknown split"):
        src.read("val", 0)


def test_supersampling_changes_colour_not_depth():
    one = ProceduralSource(**SMALL, supersample=1).read("train", 0)
    two = ProceduralSource(**SMALL, supersample=2).read("train", 0)
    np.testing.assert_array_equal(one.depth, two.depth)
    assert not np.array_equal(one.aif, two.aif)


def test_synth_without_input(tmp_path):
    out = tmp_path / "p.zarr"
    cfg = SynthConfig.from_dict({"source": "procedural", "output": str(out),
                                 "source_options": {**SMALL, "n_train": 2, "n_test": 1},
                                 "focus": "fixed:1.0", "shard_size": 2})
    assert cfg.input == "-"
    run_synth(cfg, progress=False)
    ds = open_dataset(out)
    src = ProceduralSource(**{**SMALL, "n_train": 2, "n_test": 1})
    assert ds.splits == ["train", "test"] and len(ds["train"]) == 2
    np.testing.assert_array_equal(ds["test"].read(0)["aif"], src.read("test", 0).aif)
    assert ds.attrs["source"]["identity"]["generator_version"] == 1
    # and on the command line, with --input left out
    r = CliRunner().invoke(main, ["synth", "--source", "procedural", "--output",
                                  str(tmp_path / "c.zarr"), "--option", "n_train=1",
                                  "--option", "n_test=0", "--option", "height=32",
                                  "--option", "width=32", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "wrote 1 sample in" in r.output
