"""Bundled procedural samples (generator, files, geometry) and the two sources that read them."""

from __future__ import annotations

import importlib.util
import json
import shutil
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from defocuskit.errors import SourceError
from defocuskit.sources import get_source
from defocuskit.sources.base import Sample
from defocuskit.sources.middlebury import MiddleburySource, disparity_to_depth
from defocuskit.sources.samples import SamplesSource

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
MANIFEST = json.loads((SAMPLES / "manifest.json").read_text())
CAM = MANIFEST["camera"]


def _depth_m(name: str) -> np.ndarray:
    raw = cv2.imread(str(SAMPLES / f"scenes/{name}_depth.png"), cv2.IMREAD_UNCHANGED)
    return raw.astype(np.float64) / 1000.0


def _room_depth(room: dict) -> np.ndarray:
    """Closed-form depth of the empty room: nearest positive plane hit along each pixel ray."""
    v, u = np.mgrid[0:256, 0:320].astype(np.float64)
    dx = (u - CAM["cx_px"]) / CAM["fx_px"]
    dy = (v - CAM["cy_px"]) / CAM["fy_px"]
    z = np.full(dx.shape, room["back_wall_z_m"])
    for value, comp in ((room["floor_y_m"], dy), (room["ceiling_y_m"], dy),
                        (room["left_wall_x_m"], dx), (room["right_wall_x_m"], dx)):
        with np.errstate(divide="ignore"):
            t = value / comp
        z = np.where((t > 0) & (t < z), t, z)
    return z


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("make_samples", SAMPLES / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path_factory.mktemp("samples")
    module.generate(out)
    return out


def test_generator_reproduces_committed_files(regenerated):
    committed = sorted(p.name for p in (SAMPLES / "scenes").iterdir())
    fresh = sorted(p.name for p in (regenerated / "scenes").iterdir())
    assert committed == fresh and len(committed) == 16
    same_zlib = MANIFEST["png_writer"]["zlib"] == zlib.ZLIB_RUNTIME_VERSION
    for rel in committed:
        a, b = SAMPLES / "scenes" / rel, regenerated / "scenes" / rel
        # The pixels must match everywhere; the compressed bytes wherever zlib is the same.
        np.testing.assert_array_equal(cv2.imread(str(a), cv2.IMREAD_UNCHANGED),
                                      cv2.imread(str(b), cv2.IMREAD_UNCHANGED))
        if same_zlib:
            assert a.read_bytes() == b.read_bytes(), rel
    fresh_manifest = json.loads((regenerated / "manifest.json").read_text())
    if same_zlib:
        assert (regenerated / "manifest.json").read_bytes() == \
            (SAMPLES / "manifest.json").read_bytes()
    fresh_manifest["png_writer"] = MANIFEST["png_writer"]
    assert fresh_manifest == MANIFEST


def test_png_writer_round_trips_through_opencv():
    # The generator's own encoder, decoded by an independent decoder (OpenCV's libpng).
    spec = importlib.util.spec_from_file_location("_samples_png", SAMPLES / "_samples_png.py")
    png = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(png)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    rgb[10:20] = 7  # flat rows exercise the other filter choices
    depth = rng.integers(0, 65536, (29, 41), dtype=np.uint16)
    depth[:, :5] = np.arange(29, dtype=np.uint16)[:, None] * 300
    for image in (rgb, depth):
        data = np.frombuffer(png.png_bytes(image), dtype=np.uint8)
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if image.ndim == 3:
            decoded = decoded[:, :, ::-1]
        np.testing.assert_array_equal(decoded, image)


def test_total_size_under_2mb():
    total = sum(p.stat().st_size for p in SAMPLES.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts)
    assert total < 2_000_000, total


def test_manifest_layout():
    assert MANIFEST["units"]["depth_png"] == "uint16 millimetres"
    assert MANIFEST["units"]["invalid_depth_value"] == 0
    assert {k: len(v) for k, v in MANIFEST["splits"].items()} == {"train": 6, "test": 2}
    seeds = {s["seed"] for s in MANIFEST["scenes"].values()}
    assert len(seeds) == 8


@pytest.mark.parametrize("name", list(MANIFEST["scenes"]))
def test_depth_range_and_room_geometry(name):
    scene = MANIFEST["scenes"][name]
    depth = _depth_m(name)
    valid = depth > 0
    assert depth.shape == (256, 320)
    assert 0.7 <= depth[valid].min() < 1.5 and 6.0 < depth[valid].max() <= 10.0
    assert (~valid).sum() == scene["invalid_pixels"]
    room = _room_depth(scene["room"])
    # Nothing lies behind the room's walls; where the room itself shows, depth is exact.
    assert np.all(depth[valid] <= room[valid] + 0.0006)
    shows_room = np.abs(depth - room) <= 0.0006
    assert shows_room.mean() > 0.3
    # The floor is visible somewhere in the bottom rows.
    v = np.arange(200, 256)[:, None]
    floor = scene["room"]["floor_y_m"] * CAM["fy_px"] / (v - CAM["cy_px"])
    assert (np.abs(depth[200:] - floor) <= 0.0006).sum() > 100


def test_floor_pixel_by_hand():
    # room_00: floor 1.117 m below the camera; pixel (row 250, col 40) sees the floor at
    # Z = 1.117 * 260 / (250 - 127.5) = 290.42 / 122.5 = 2.37078 m -> stored 2371 mm.
    assert MANIFEST["scenes"]["room_00"]["room"]["floor_y_m"] == 1.117
    assert _depth_m("room_00")[250, 40] == pytest.approx(2.371, abs=1e-9)


@pytest.mark.parametrize("name", list(MANIFEST["scenes"]))
def test_nearest_box_face_and_occlusion_edge(name):
    scene = MANIFEST["scenes"][name]
    depth = _depth_m(name)
    box = min(scene["objects"], key=lambda o: o["z_m"][0])
    z0 = box["z_m"][0]
    (x0, x1), (y0, y1) = box["x_m"], box["y_m"]
    u0, u1 = CAM["cx_px"] + CAM["fx_px"] * x0 / z0, CAM["cx_px"] + CAM["fx_px"] * x1 / z0
    v0, v1 = CAM["cy_px"] + CAM["fy_px"] * y0 / z0, CAM["cy_px"] + CAM["fy_px"] * y1 / z0
    cols = np.arange(320)[(np.arange(320) > u0 + 0.5) & (np.arange(320) < u1 - 0.5)]
    rows = np.arange(256)[(np.arange(256) > v0 + 0.5) & (np.arange(256) < v1 - 0.5)]
    face = depth[np.ix_(rows, cols)]
    assert face.size > 500
    # The whole front face sits at the box's stated depth (to the 1 mm storage step).
    np.testing.assert_allclose(face, z0, atol=0.0005)
    # Real occlusion edge: just outside the silhouette the depth jumps backwards. A side
    # face shows when the camera (x = 0) is beside it; then the silhouette is its back edge.
    z1 = box["z_m"][1]
    v_top = max(v0, CAM["cy_px"] + CAM["fy_px"] * y0 / z1)
    v_bottom = min(v1, CAM["cy_px"] + CAM["fy_px"] * y1 / z1, 255.0)
    v_mid = int(round((v_top + v_bottom) / 2))
    jumps = []
    for x_edge, side in ((x0, -1), (x1, 1)):
        z_edge = z0 if x_edge * side >= 0 else z1
        u = CAM["cx_px"] + CAM["fx_px"] * x_edge / z_edge
        u_out = int(np.floor(u)) if side < 0 else int(np.ceil(u))
        if 0 <= u_out < 320:
            jumps.append(depth[v_mid, u_out] - z_edge)
    assert jumps and all(j > 0.15 for j in jumps), jumps
    # Across the image, many horizontal neighbours differ by > 0.5 m (room planes never do).
    assert (np.abs(np.diff(depth, axis=1)) > 0.5).sum() > 50


def test_invalid_patch_is_small_and_documented():
    scenes = MANIFEST["scenes"]
    flagged = [n for n, s in scenes.items() if s["invalid"] is not None]
    assert flagged == ["room_04"]
    count = int((_depth_m("room_04") == 0).sum())
    assert count == scenes["room_04"]["invalid_pixels"] and 0 < count < 0.01 * 256 * 320


def test_samples_source_reads_valid_samples():
    src = get_source("samples", SAMPLES)
    assert isinstance(src, SamplesSource) and src.name == "samples"
    assert src.splits() == ["train", "test"]
    for split in src.splits():
        ids = src.sample_ids(split)
        assert ids == MANIFEST["splits"][split]
        for i, name in enumerate(ids):
            s = src.read(split, i)
            assert isinstance(s, Sample) and s.sample_id == name
            assert s.aif.shape == (256, 320, 3) and s.aif.dtype == np.uint8
            assert s.depth.dtype == np.float32
            raw = _depth_m(name)
            np.testing.assert_array_equal(np.isnan(s.depth), raw == 0)
            np.testing.assert_allclose(s.depth[raw > 0], raw[raw > 0], rtol=1e-6)
            assert s.meta["units"]["depth"] == "metres"
            assert s.meta["scene_params"]["seed"] == MANIFEST["scenes"][name]["seed"]
    # Channel order: RGB, checked against OpenCV's BGR decode.
    bgr = cv2.imread(str(SAMPLES / "scenes/room_06_rgb.png"), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(src.read("test", 0).aif, bgr[:, :, ::-1])
    assert SamplesSource().path == SAMPLES  # default: the repository's samples/ folder


def test_samples_source_without_a_manifest_is_refused(tmp_path):
    with pytest.raises(SourceError, match="manifest.json"):
        SamplesSource(tmp_path)


def test_samples_source_missing_a_listed_file_is_refused(tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(SAMPLES, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (copy / "scenes/room_03_depth.png").unlink()
    with pytest.raises(SourceError, match="room_03_depth.png"):
        SamplesSource(copy)


def test_samples_source_unknown_split_is_refused():
    with pytest.raises(SourceError, match="unknown split"):
        SamplesSource().sample_ids("val")


def test_samples_source_missing_folder_is_refused(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        SamplesSource(tmp_path / "nowhere")


@pytest.fixture(scope="module")
def motorcycle():
    from skimage.data import stereo_motorcycle

    left, _, disparity = stereo_motorcycle()
    return left, disparity, get_source("middlebury", "skimage").read("test", 0)


def test_middlebury_sample(motorcycle):
    left, disparity, s = motorcycle
    assert s.sample_id == "motorcycle"
    assert s.aif.shape == (500, 741, 3) and s.aif.dtype == np.uint8
    np.testing.assert_array_equal(s.aif, left)
    assert s.depth.shape == (500, 741) and s.depth.dtype == np.float32
    assert np.isnan(s.depth).sum() == np.isinf(disparity).sum() > 0
    assert 2.05 < np.nanmin(s.depth) < 2.2 and 4.9 < np.nanmax(s.depth) < 5.1
    # Pixel (250, 370): disparity 48.999874 px, so by hand
    # Z = 994.978 * 0.193001 / (48.999874 + 31.086) = 192.031749 / 80.085874 = 2.39782 m.
    assert disparity[250, 370] == pytest.approx(48.999874, abs=1e-5)
    assert s.depth[250, 370] == pytest.approx(2.39782, abs=2e-5)


def test_middlebury_source_api():
    src = MiddleburySource()
    assert src.splits() == ["test"] and src.sample_ids("test") == ["motorcycle"]
    ident = src.identity()
    assert ident["scikit_image"] and len(ident["sha256"]) == 64
    assert MiddleburySource("skimage").identity()["sha256"] == ident["sha256"]
    with pytest.raises(SourceError, match="skimage"):
        MiddleburySource("/data/middlebury")
    with pytest.raises(SourceError, match="unknown split"):
        src.sample_ids("train")


def test_disparity_to_depth_closed_form():
    z = np.array([[1.0, 2.5], [4.0, np.inf]])
    disp = 1000.0 * 0.2 / z - 30.0  # inverse of Z = f B / (d + doffs); inf depth -> d = -30
    disp[1, 1] = np.inf
    out = disparity_to_depth(disp, focal_px=1000.0, baseline_m=0.2, doffs_px=30.0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[~np.isnan(out)], [1.0, 2.5, 4.0], rtol=1e-6)
    assert np.isnan(out[1, 1])
