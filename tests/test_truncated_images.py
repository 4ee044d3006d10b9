"""Truncated images are errors (or skipped samples with their reason), never half pictures."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from defocuskit.config import SynthConfig
from defocuskit.errors import SourceError
from defocuskit.sources._io import read_depth_png_mm, read_rgb
from defocuskit.store import open_dataset
from defocuskit.synth import run_synth


def _texture(h=64, w=80) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _truncate(path: Path, keep: float = 0.6) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_truncated_jpeg_is_refused_though_opencv_decodes_it(tmp_path):
    f = tmp_path / "a.jpg"
    cv2.imwrite(str(f), _texture())
    np.testing.assert_array_equal(read_rgb(f).shape, (64, 80, 3))
    _truncate(f)
    assert cv2.imread(str(f)) is not None  # OpenCV alone returns a half-decoded picture
    with pytest.raises(SourceError, match=r"a\.jpg.* is truncated .*JPEG"):
        read_rgb(f)


def test_jpeg_with_trailing_padding_is_accepted(tmp_path):
    f = tmp_path / "a.jpg"
    cv2.imwrite(str(f), _texture())
    f.write_bytes(f.read_bytes() + b"\x00" * 16)
    assert read_rgb(f).shape == (64, 80, 3)


@pytest.mark.parametrize("kind", ["rgb", "depth"])
def test_truncated_png_is_refused(tmp_path, kind):
    f = tmp_path / "a.png"
    img = _texture() if kind == "rgb" else np.full((64, 80), 1500, np.uint16)
    cv2.imwrite(str(f), img)
    _truncate(f, 0.9)
    reader = read_rgb if kind == "rgb" else read_depth_png_mm
    with pytest.raises(SourceError, match="truncated .*IEND"):
        reader(f)


def test_depth_png_mm_decodes_millimetres_and_zero_as_invalid(tmp_path):
    f = tmp_path / "d.png"
    raw = np.array([[0, 1000], [2500, 65535]], np.uint16)
    cv2.imwrite(str(f), raw)
    depth = read_depth_png_mm(f)
    assert np.isnan(depth[0, 0])
    np.testing.assert_allclose(depth[~np.isnan(depth)], [1.0, 2.5, 65.535], rtol=1e-6)


def test_folder_with_a_truncated_image_skips_it_with_its_reason(tmp_path):
    root = tmp_path / "mine"
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    yy, xx = np.mgrid[0:64, 0:80]
    for stem in ("a", "b", "c"):
        cv2.imwrite(str(root / "rgb" / f"{stem}.jpg"), _texture())
        cv2.imwrite(str(root / "depth" / f"{stem}.png"),
                    (1500 + 10 * xx + yy).astype(np.uint16))
    _truncate(root / "rgb" / "b.jpg")
    out = tmp_path / "o.zarr"
    cfg = SynthConfig(source="folder", input=str(root), output=str(out), focus="fixed:2.0",
                      on_error="skip", shard_size=4)
    summary = run_synth(cfg, progress=False)
    assert [s["sample_id"] for s in summary.skipped] == ["b"]
    assert "truncated" in summary.skipped[0]["error"]
    sp = open_dataset(out)["all"]
    assert sp.usable_indices() == [0, 2]
    with pytest.raises(SourceError, match="truncated"):
        run_synth(SynthConfig(source="folder", input=str(root), output=str(tmp_path / "p.zarr"),
                              focus="fixed:2.0"), progress=False)
