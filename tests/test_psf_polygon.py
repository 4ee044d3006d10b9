"""The polygonal aperture (--psf polygon:N[,ROTATION]) and the kernel-table engine."""

import math

import numpy as np
import pytest

from defocuskit import RenderSettings, render
from defocuskit.blur.psf import disc_kernel
from defocuskit.blur.shapes import polygon_kernel
from defocuskit.errors import ConfigError
from defocuskit.psf_spec import parse_psf


def _psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2))


def _image(h=64, w=80, seed=0):
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def test_polygon_kernel_area_and_shape():
    # unit sum; its area (sum of coverage before normalising) is the disc's pi r^2
    r_sigma = 4.0
    k = polygon_kernel(r_sigma, 6)
    assert abs(float(k.sum()) - 1.0) < 1e-6
    # coverage = k / max(k): the interior taps are 1
    area = float((k / k.max()).sum())
    assert abs(area - math.pi * (2 * r_sigma) ** 2) / (math.pi * 64) < 0.02
    # a hexagon with a vertex on +x reaches further along x than along y
    row = k[k.shape[0] // 2]
    col = k[:, k.shape[1] // 2]
    assert np.count_nonzero(row) > np.count_nonzero(col)
    # rotating by 30 degrees puts an edge on +x instead: the reach swaps
    k30 = polygon_kernel(r_sigma, 6, 30.0)
    assert np.count_nonzero(k30[k30.shape[0] // 2]) < np.count_nonzero(k30[:, k30.shape[1] // 2])


def test_odd_polygon_turns_in_front_of_the_focus():
    k = polygon_kernel(3.0, 5)
    np.testing.assert_array_equal(polygon_kernel(-3.0, 5), k[::-1, ::-1])


def test_polygon_approaches_the_disc():
    # the kernel itself: N = 64 against the disc of the same sigma
    for s in (1.0, 2.5, 6.0):
        p, d = polygon_kernel(s, 64), disc_kernel(s)
        assert p.shape == d.shape
        assert np.abs(p - d).max() < 0.01 * d.max()
    # renders at a constant sigma (on a table level: no interpolation): the dB grows with
    # N and passes 80 dB at N = 64
    img = _image()
    sig = np.full(img.shape[:2], 3.0, np.float32)
    disc = render(img, sig, mode="gather", psf="disc")
    dbs = [_psnr(render(img, sig, mode="gather", psf=f"polygon:{n}"), disc)
           for n in (5, 8, 16, 64)]
    assert dbs == sorted(dbs)
    assert dbs[-1] > 80.0


@pytest.mark.parametrize("mode", ["gather", "scatter"])
def test_polygon_64_against_disc_varying_sigma(mode):
    # varying sigma: the table's interpolation (levels every 0.1 px) dominates: > 45 dB
    img = _image()
    sig = np.tile(np.linspace(0.0, 5.0, img.shape[1], dtype=np.float32), (img.shape[0], 1))
    disc = render(img, sig, mode=mode, psf="disc")
    assert _psnr(render(img, sig, mode=mode, psf="polygon:64"), disc) > 45.0


def test_table_gather_against_plain_convolution():
    # a constant sigma: the gather is the convolution with the kernel (independent loop)
    img = _image(24, 28)
    sig = np.full(img.shape[:2], 1.5, np.float32)
    out = render(img, sig, mode="gather", psf="polygon:5,10")
    k = polygon_kernel(1.5, 5, 10.0)
    R = k.shape[0] // 2
    pad = np.pad(img, ((R, R), (R, R), (0, 0)), mode="reflect")
    ref = np.zeros_like(img, dtype=np.float64)
    for dy in range(-R, R + 1):
        for dx in range(-R, R + 1):
            # out(p) = sum_q k(q) img(p - q)
            ref += k[R + dy, R + dx] * pad[R - dy:R - dy + 24, R - dx:R - dx + 28]
    np.testing.assert_allclose(out, ref, atol=2e-6)


def test_parse_psf_errors():
    assert parse_psf("polygon:6,15").rotation_deg == 15.0
    for bad in ("polygon", "polygon:2", "polygon:65", "polygon:6,x", "polygon:6,1,2",
                "hexagon", "bank:"):
        with pytest.raises(ConfigError):
            parse_psf(bad)


def test_polygon_refused_with_layered():
    with pytest.raises(ConfigError, match="gather or scatter"):
        RenderSettings(camera="2hded", focus="fixed:2", mode="layered", psf="polygon:6")
    with pytest.raises(ConfigError, match="'gather' or 'scatter'"):
        render(_image(8, 8), np.ones((8, 8), np.float32), psf="polygon:6",
               depth=np.ones((8, 8)))
