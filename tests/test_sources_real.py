"""The real-dataset readers (nyu, make3d, idfd, folder) against tiny fixtures in each format.

Every expectation comes from what the fixture script wrote (its public generator
functions), never from the reader under test.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import importlib.util
import multiprocessing as mp
import pickle
import shutil
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from scipy.io import savemat

from defocuskit.errors import ConfigError, SourceError
from defocuskit.sources import get_source, list_sources


def _load_fixture_module():
    path = Path(__file__).parent / "fixtures" / "make_fixtures.py"
    spec = importlib.util.spec_from_file_location("defocuskit_test_make_fixtures", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


fx = _load_fixture_module()
CROP = (slice(44, 471), slice(40, 601))   # NYU toolbox rows 45..471, cols 41..601 (1-based)


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    return fx.make_fixtures(tmp_path_factory.mktemp("sources_real"))


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def _nan_where(depth: np.ndarray, bad: np.ndarray) -> np.ndarray:
    out = depth.astype(np.float32).copy()
    out[bad] = np.nan
    return out


def test_registry_lists_the_four_readers():
    listed = list_sources()
    for name in ("nyu", "make3d", "idfd", "folder"):
        assert not listed[name].startswith("(unavailable"), listed[name]


# ------------------------------------------------------------------------ NYU
def test_nyu_split_uses_one_based_indices(data):
    src = get_source("nyu", data["nyu"])
    assert src.splits() == ["train", "test"]
    assert src.sample_ids("train") == [f"nyu-{k:04d}" for k in fx.NYU_TRAIN]
    assert src.sample_ids("test") == [f"nyu-{k:04d}" for k in fx.NYU_TEST]
    s = src.read("test", 1)                       # testNdxs[1] = 4 -> 0-based frame 3
    np.testing.assert_array_equal(s.aif, fx.nyu_image(3)[CROP])
    assert s.meta["frame"] == 4


def test_nyu_full_frame_is_untransposed(data):
    src = get_source("nyu", data["nyu"], crop=False)
    s = src.read("train", 2)                      # trainNdxs[2] = 5 -> frame index 4
    assert s.aif.shape == (480, 640, 3) and s.aif.dtype == np.uint8
    np.testing.assert_array_equal(s.aif, fx.nyu_image(4))
    np.testing.assert_array_equal(s.depth, fx.nyu_depth(4))


def test_nyu_crop_is_the_toolbox_valid_area(data):
    cropped = get_source("nyu", data["nyu"]).read("train", 0)
    full = get_source("nyu", data["nyu"], crop=False).read("train", 0)
    assert cropped.aif.shape == (427, 561, 3) and cropped.depth.shape == (427, 561)
    np.testing.assert_array_equal(cropped.aif, full.aif[44:471, 40:601])
    np.testing.assert_array_equal(cropped.depth, full.depth[44:471, 40:601])
    # first kept pixel is 1-based (45, 41): row 44, col 40 of the written frame (index 1)
    assert tuple(cropped.aif[0, 0]) == tuple(fx.nyu_image(1)[44, 40])


def test_nyu_raw_depth_zeros_become_nan(data):
    s = get_source("nyu", data["nyu"], depth_kind="raw").read("train", 0)   # frame 2 -> 1
    raw = fx.nyu_raw_depth(1)[CROP]
    expected = _nan_where(raw, raw == 0)
    assert np.isnan(s.depth).sum() == (raw == 0).sum() > 0
    np.testing.assert_array_equal(s.depth, expected)


def test_nyu_pickles_and_reads_in_a_forked_worker(data):
    src = get_source("nyu", data["nyu"])
    first = src.read("train", 3)                  # opens the HDF5 handle in this process
    clone = pickle.loads(pickle.dumps(src))
    np.testing.assert_array_equal(clone.read("train", 3).depth, first.depth)
    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork start method")
    with cf.ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as pool:
        aif = pool.submit(_read_aif, src, "train", 3).result()
    np.testing.assert_array_equal(aif, first.aif)


def _read_aif(src, split, index):
    return src.read(split, index).aif


def test_nyu_custom_splits_path(data, tmp_path):
    splits = fx.write_splits(tmp_path / "mysplits.mat", [12, 1], [6])
    src = get_source("nyu", data["nyu"], splits_path=splits)
    assert src.sample_ids("train") == ["nyu-0012", "nyu-0001"]
    np.testing.assert_array_equal(src.read("test", 0).depth, fx.nyu_depth(5)[CROP])


def _nyu_missing_file(data, tmp_path):
    return tmp_path / "missing.mat", {}


def _nyu_corrupt_file(data, tmp_path):
    corrupt = tmp_path / "corrupt.mat"
    corrupt.write_bytes(b"\x00garbage" * 100)
    return corrupt, {}


def _nyu_splits_file_as_input(data, tmp_path):
    return data["nyu"].parent / "splits.mat", {}


def _nyu_without_images(data, tmp_path):
    wrong = tmp_path / "wrong" / "nyu.mat"
    wrong.parent.mkdir()
    with h5py.File(wrong, "w") as f:
        f["imgs"] = np.zeros((2, 3, 8, 6), np.uint8)
    return wrong, {}


def _nyu_missing_splits(data, tmp_path):
    return data["nyu"], {"splits_path": tmp_path / "no_splits.mat"}


def _nyu_zero_based_splits(data, tmp_path):
    return data["nyu"], {"splits_path": fx.write_splits(tmp_path / "zero.mat", [0, 1, 2], [3])}


def _nyu_splits_without_variables(data, tmp_path):
    no_vars = tmp_path / "novars.mat"
    savemat(no_vars, {"train": np.ones((2, 1))})
    return data["nyu"], {"splits_path": no_vars}


def _nyu_unknown_depth_kind(data, tmp_path):
    return data["nyu"], {"depth_kind": "meters"}


@pytest.mark.parametrize("make_input, error, match", [
    (_nyu_missing_file, SourceError, "missing.mat"),
    (_nyu_corrupt_file, SourceError, "corrupt.mat"),
    (_nyu_splits_file_as_input, SourceError, "v5"),
    (_nyu_without_images, SourceError, r"lacks.*images.*holds \['imgs'\]"),
    (_nyu_missing_splits, SourceError, "no_splits.mat"),
    (_nyu_zero_based_splits, SourceError, "1-based"),
    (_nyu_splits_without_variables, SourceError, r"trainNdxs.*holds \['train'\]"),
    (_nyu_unknown_depth_kind, ConfigError, "depth_kind"),
], ids=["missing-file", "corrupt-file", "splits-file-as-input", "no-images-variable",
        "missing-splits-file", "zero-based-splits", "splits-without-variables",
        "unknown-depth-kind"])
def test_nyu_bad_input_is_refused(data, tmp_path, make_input, error, match):
    path, options = make_input(data, tmp_path)
    with pytest.raises(error, match=match):
        get_source("nyu", path, **options)


@pytest.mark.parametrize("split, index, match", [
    ("val", 0, "unknown split"),
    ("test", len(fx.NYU_TEST), "out of range"),
], ids=["unknown-split", "index-out-of-range"])
def test_nyu_bad_read_is_refused(data, split, index, match):
    src = get_source("nyu", data["nyu"])
    with pytest.raises(SourceError, match=match):
        src.read(split, index)


def test_nyu_millimetre_depth_is_refused(tmp_path):
    images = np.stack([fx.nyu_image(i) for i in range(2)])
    depth_mm = np.stack([fx.nyu_depth(i) * 1000 for i in range(2)])
    mat = fx.write_nyu(tmp_path / "mm.mat", images, {"depths": depth_mm})
    fx.write_splits(tmp_path / "splits.mat", [1], [2])
    src = get_source("nyu", mat)
    with pytest.raises(SourceError, match=r"nyu-0001.*millimetres"):
        src.read("train", 0)


# ------------------------------------------------------------------------ Make3D
def _make3d_expected(k: int, max_depth: float = 81.9) -> np.ndarray:
    d = fx.make3d_grid(k)[:, :, 3]
    return _nan_where(d, (d <= 0) | (d > max_depth))


def test_make3d_pairs_and_splits(data):
    src = get_source("make3d", data["make3d"])
    assert src.splits() == ["train", "test"]
    assert src.sample_ids("train") == fx.MAKE3D_TRAIN      # orphan image skipped
    assert src.sample_ids("test") == fx.MAKE3D_TEST
    assert src.identity()["unpaired_files"] == {"train": 1, "test": 0}


def test_make3d_rows_map_to_rows_on_the_native_grid(data):
    src = get_source("make3d", data["make3d"], size=None)
    s = src.read("test", 1)                                 # 5th written scene, k = 4
    assert s.aif.shape == (*fx.MAKE3D_IMAGE_SIZE, 3)        # not a hard-coded 2272 x 1704
    expected = np.repeat(_make3d_expected(4), 4, axis=0)    # 55 rows -> 220, 305 cols kept
    np.testing.assert_array_equal(s.depth, expected)
    assert np.abs(s.aif.astype(int) - fx.make3d_colour(4)).max() <= 3


def test_make3d_fixed_size_matches_a_plain_nearest_reference(data):
    s = get_source("make3d", data["make3d"], size=(100, 80)).read("train", 2)
    assert s.aif.shape == (100, 80, 3) and s.depth.shape == (100, 80)
    grid = _make3d_expected(2)
    ref = np.empty((100, 80), np.float32)
    for i in range(100):
        for j in range(80):
            ref[i, j] = grid[int((i + 0.5) * 55 / 100), int((j + 0.5) * 305 / 80)]
    np.testing.assert_array_equal(s.depth, ref)
    assert np.abs(s.aif.astype(int) - fx.make3d_colour(2)).max() <= 3


def test_make3d_max_depth_option(data):
    s = get_source("make3d", data["make3d"], size=None, max_depth=20.0).read("train", 0)
    np.testing.assert_array_equal(s.depth, np.repeat(_make3d_expected(0, 20.0), 4, axis=0))
    assert np.nanmax(s.depth) <= 20.0


def _make3d_wrong_variable(path, k):
    savemat(path, {"Position3D": np.zeros((55, 305, 4))})


def _make3d_corrupt(path, k):
    path.write_bytes(b"not a mat file at all" * 10)


def _make3d_millimetres(path, k):
    savemat(path, {"Position3DGrid": fx.make3d_grid(k) * 1000})


@pytest.mark.parametrize("index, spoil, match", [
    (0, _make3d_wrong_variable, r"Position3DGrid.*holds \['Position3D'\]"),
    (1, _make3d_corrupt, fx.MAKE3D_TRAIN[1]),
    (2, _make3d_millimetres, "millimetres"),
], ids=["wrong-variable", "corrupt-file", "millimetre-depth"])
def test_make3d_bad_depth_file_is_refused_on_read(data, tmp_path, index, spoil, match):
    root = _copy(data["make3d"], tmp_path)
    spoil(root / "Train400Depth" / f"depth_sph_corr-{fx.MAKE3D_TRAIN[index]}.mat", index)
    src = get_source("make3d", root)
    with pytest.raises(SourceError, match=match):
        src.read("train", index)


def _make3d_without_depth_folder(data, tmp_path):
    root = _copy(data["make3d"], tmp_path)
    shutil.rmtree(root / "Gridlaserdata")
    return root, {}


def _make3d_empty_folder(data, tmp_path):
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty", {}


def _make3d_one_number_size(data, tmp_path):
    return data["make3d"], {"size": (100,)}


@pytest.mark.parametrize("make_input, error, match", [
    (_make3d_without_depth_folder, SourceError, "Gridlaserdata"),
    (_make3d_empty_folder, SourceError, "Train400Img"),
    (_make3d_one_number_size, ConfigError, "size"),
], ids=["no-Gridlaserdata", "empty-folder", "one-number-size"])
def test_make3d_bad_input_is_refused(data, tmp_path, make_input, error, match):
    path, options = make_input(data, tmp_path)
    with pytest.raises(error, match=match):
        get_source("make3d", path, **options)


# ------------------------------------------------------------------------ iDFD
def test_idfd_pairs_by_stem_intersection(data):
    src = get_source("idfd", data["idfd"], test_fraction=0.5)
    found = sorted(src.sample_ids("train") + src.sample_ids("test"))
    assert found == sorted(fx.IDFD_TRIPLETS)
    assert src.identity()["unpaired_files"] == 5


def test_idfd_reads_real_defocus_and_millimetre_depth(data):
    src = get_source("idfd", data["idfd"], test_fraction=0.0)
    ids = src.sample_ids("train")
    for stem in ("Bedroom_2", "Lab_7"):
        s = src.read("train", ids.index(stem))
        aif_err = np.abs(s.aif.astype(int) - fx.idfd_colour(stem, "All_In_Focus")).max()
        dfc_err = np.abs(s.defocused.astype(int) - fx.idfd_colour(stem, "Out_Of_Focus")).max()
        assert aif_err <= 3 and dfc_err <= 3
        mm = fx.idfd_depth_mm(stem)
        expected = _nan_where(mm.astype(np.float32) * np.float32(0.001), mm == 0)
        np.testing.assert_allclose(s.depth, expected, rtol=1e-6)
        assert np.isnan(s.depth[:4, :4]).all()
        assert s.meta["depth_scale"]["m_per_code"] == 0.001
    assert src.options()["depth_scale"]["png_dtype"] == "uint16"


def test_idfd_eight_bit_depth_scale_detected_and_overridable(data):
    src = get_source("idfd", data["idfd"], variant="raw/without_inpainting", test_fraction=0.0)
    assert src.sample_ids("train") == fx.IDFD_RAW_TRIPLETS
    s = src.read("train", 0)
    codes = np.arange(40, dtype=np.float32)[:, None] * 5 + 20
    np.testing.assert_allclose(s.depth, np.tile(codes * 10 / 255, (1, 40)), rtol=1e-6)
    assert src.options()["depth_scale"]["png_dtype"] == "uint8"
    s2 = get_source("idfd", data["idfd"], variant="raw/without_inpainting",
                    test_fraction=0.0, depth_scale=0.02).read("train", 0)
    np.testing.assert_allclose(s2.depth, np.tile(codes * 0.02, (1, 40)), rtol=1e-6)


def test_idfd_split_is_by_scene_and_deterministic(data):
    a = get_source("idfd", data["idfd"], test_fraction=0.5)
    b = get_source("idfd", data["idfd"], test_fraction=0.5)
    assert a.sample_ids("test") == b.sample_ids("test")
    for stem in fx.IDFD_TRIPLETS:
        scene = stem.rsplit("_", 1)[0]
        u = int(hashlib.sha256(scene.encode()).hexdigest()[:8], 16) / 2**32
        assert (stem in a.sample_ids("test")) == (u < 0.5), stem
    everything = sorted(fx.IDFD_TRIPLETS)
    assert sorted(get_source("idfd", data["idfd"], test_fraction=0.0).sample_ids("train")) \
        == everything
    assert sorted(get_source("idfd", data["idfd"], test_fraction=1.0).sample_ids("test")) \
        == everything


def test_idfd_accepts_a_variant_folder_and_any_case(data, tmp_path):
    root = _copy(data["idfd"], tmp_path)
    (root / "Data" / "Processed").rename(root / "Data" / "processed")
    src = get_source("idfd", root / "Data", variant="Processed/Inpainting")
    assert len(src.sample_ids("train") + src.sample_ids("test")) == len(fx.IDFD_TRIPLETS)
    direct = get_source("idfd", root / "Data" / "processed" / "inpainting")
    assert direct.identity()["triplets"] == len(fx.IDFD_TRIPLETS)


def _idfd_depth_of_another_size(base):
    cv2.imwrite(str(base / "Depth" / "Bedroom_4.png"), np.full((24, 32), 900, np.uint16))


def _idfd_broken_jpeg(base):
    (base / "All_In_Focus" / "Kitchen_1.jpg").write_bytes(b"\xff\xd8 broken jpeg")


def _idfd_eight_bit_processed_depth(base):
    cv2.imwrite(str(base / "Depth" / "Museum_2.png"), np.full((48, 64), 9, np.uint8))


@pytest.mark.parametrize("stem, spoil, match", [
    ("Bedroom_4", _idfd_depth_of_another_size, r"Bedroom_4.*mismatched sizes"),
    ("Kitchen_1", _idfd_broken_jpeg, "Kitchen_1.jpg"),
    ("Museum_2", _idfd_eight_bit_processed_depth, r"Museum_2.png.*uint8"),
], ids=["mismatched-sizes", "broken-jpeg", "eight-bit-depth"])
def test_idfd_bad_file_is_refused_on_read(data, tmp_path, stem, spoil, match):
    root = _copy(data["idfd"], tmp_path)
    spoil(root / "Data" / "Processed" / "inpainting")
    src = get_source("idfd", root, test_fraction=0.0)
    with pytest.raises(SourceError, match=match):
        src.read("train", src.sample_ids("train").index(stem))


def _idfd_without_out_of_focus(root):
    shutil.rmtree(root / "Data" / "Processed" / "inpainting" / "Out_Of_Focus")
    return {}


@pytest.mark.parametrize("spoil, error, match", [
    (lambda root: {"variant": "raw/inpainting"}, SourceError, "raw/inpainting"),
    (lambda root: {"variant": "processed"}, ConfigError, "variant"),
    (_idfd_without_out_of_focus, SourceError, "Out_Of_Focus"),
], ids=["absent-variant", "incomplete-variant-name", "no-Out_Of_Focus"])
def test_idfd_bad_input_is_refused(data, tmp_path, spoil, error, match):
    root = _copy(data["idfd"], tmp_path)
    options = spoil(root)
    with pytest.raises(error, match=match):
        get_source("idfd", root, **options)


# ------------------------------------------------------------------------ folder
def test_folder_split_layout_and_units(data):
    src = get_source("folder", data["folder_split"])
    assert src.splits() == ["train", "test"]
    assert src.sample_ids("train") == ["a_1", "b_2"] and src.sample_ids("test") == ["c_10"]
    a = src.read("train", 0)
    np.testing.assert_array_equal(a.aif, fx.folder_image(shift=1))
    mm = np.round(fx.folder_depth_m("a_1") * 1000)
    mm[0] = 0
    np.testing.assert_allclose(a.depth, _nan_where(mm / 1000, mm == 0), rtol=1e-6)
    b = src.read("train", 1)
    expected = fx.folder_depth_m("b_2")
    expected[0, :3] = np.nan                                # 0, inf and -1 are invalid
    np.testing.assert_array_equal(b.depth, expected)


def test_folder_flat_layout(data):
    src = get_source("folder", data["folder_flat"])
    assert src.splits() == ["all"] and src.sample_ids("all") == ["x"]
    s = src.read("all", 0)
    np.testing.assert_array_equal(s.depth, fx.folder_depth_m("x"))
    assert np.abs(s.aif.astype(int) - fx.folder_image(shift=4)).mean() < 3    # JPEG


def _folder_depth_of_another_size(root):
    np.save(root / "depth" / "x.npy", fx.folder_depth_m("x", size=(20, 40)))


def _folder_millimetre_npy(root):
    np.save(root / "depth" / "x.npy", fx.folder_depth_m("x") * 1000)


def _folder_eight_bit_png(root):
    (root / "depth" / "x.npy").unlink()
    cv2.imwrite(str(root / "depth" / "x.png"), np.full((30, 40), 100, np.uint8))


@pytest.mark.parametrize("spoil, match", [
    (_folder_depth_of_another_size, r"sample 'x'.*30x40.*20x40"),
    (_folder_millimetre_npy, r"x.npy.*millimetres"),
    (_folder_eight_bit_png, r"x.png.*16-bit"),
], ids=["depth-of-another-size", "millimetre-npy", "eight-bit-png"])
def test_folder_bad_depth_is_refused_on_read(data, tmp_path, spoil, match):
    root = _copy(data["folder_flat"], tmp_path)
    spoil(root)
    with pytest.raises(SourceError, match=match):
        get_source("folder", root).read("all", 0)


def _folder_image_without_depth(data, tmp_path):
    root = _copy(data["folder_flat"], tmp_path)
    cv2.imwrite(str(root / "rgb" / "y.png"), np.zeros((30, 40, 3), np.uint8))
    return root


def _folder_two_depths_of_one_stem(data, tmp_path):
    root = _copy(data["folder_flat"], tmp_path)
    cv2.imwrite(str(root / "depth" / "x.png"), np.full((30, 40), 100, np.uint8))
    np.save(root / "depth" / "x.npy", np.ones((30, 40), np.float32))
    return root


def _folder_empty(data, tmp_path):
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


@pytest.mark.parametrize("make_input, match", [
    (_folder_image_without_depth, r"without a depth map \['y'\]"),
    (_folder_two_depths_of_one_stem, "share the stem 'x'"),
    (_folder_empty, "neither rgb/"),
], ids=["image-without-depth", "two-depths-of-one-stem", "empty-folder"])
def test_folder_bad_layout_is_refused(data, tmp_path, make_input, match):
    root = make_input(data, tmp_path)
    with pytest.raises(SourceError, match=match):
        get_source("folder", root)
