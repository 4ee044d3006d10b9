"""Camera presets faithful to their sources: sigma rules, SYNDOF's focus rule and aperture,
preset defaults that explicit options override, provenance, resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from defocuskit.config import SynthConfig, resolve_preset_settings
from defocuskit.errors import ConfigError
from defocuskit.focus import (
    SyndofFocus,
    focus_policy_from_config,
    make_focus_policy,
    syndof_rank_weights,
)
from defocuskit.optics import Camera
from defocuskit.presets import SYNDOF_F_NUMBER_RANGE, get_preset
from defocuskit.store import open_dataset
from defocuskit.synth import run_synth

REPO = Path(__file__).resolve().parents[1]


# -- sigma rules against closed-form values ----------------------------------------------
def _depth_for_coc(cam: Camera, coc_px: float) -> float:
    """The depth behind the focus plane whose exact-model CoC is ``coc_px`` pixels."""
    k = cam.aperture_diameter * cam.focal_length / (cam.focus_distance - cam.focal_length)
    k_px = k / cam.pixel_pitch  # CoC far away, pixels: coc = k_px * (x - S) / x
    return cam.focus_distance / (1.0 - coc_px / k_px)


@pytest.mark.parametrize("coc, sigma", [
    (0.93, 0.0),       # rounds to 0.9: below 1 px, sharp
    (1.04, 0.0),       # rounds to 1.0: exactly 1 px, still sharp
    (1.07, 0.025),     # rounds to 1.1: (1.1 - 1) / 4
    (2.52, 0.375),     # rounds to 2.5
    (5.0, 1.0),
    (28.98, 7.0),      # rounds to 29.0: SYNDOF's largest sigma
])
def test_syndof_sigma_is_rounded_coc_minus_one_over_four(coc, sigma):
    cam = get_preset("syndof").make(image_width=640, rng=np.random.default_rng(0))
    cam = cam.with_focus(2.0).with_f_number(1.2)
    x = _depth_for_coc(cam, coc)
    assert cam.coc_px(x) == pytest.approx(coc, rel=1e-9)
    assert cam.sigma_px(x) == pytest.approx(sigma, abs=1e-12)
    assert np.isnan(cam.sigma_px(np.nan))


def test_d3net_sigma_is_0_3_coc_and_mddnet_sigma_is_the_coc():
    d3 = get_preset("d3net-nyu").make(image_width=561, rng=None).with_focus(2.0)
    coc = (0.015 / 2.8) * 0.015 / (2.0 - 0.015) * 0.5 / 5.6e-6  # x = 4 m
    assert d3.sigma_px(4.0) == pytest.approx(0.3 * coc, rel=1e-12)
    md = get_preset("mddnet").make(image_width=2452, rng=None).with_focus(2.0)
    # MDDNet eq. 7 on its own 2452 px wide frames: A |x - S| / x * F / (S - F), A = 800
    hand = 800 * 0.5 * 0.05 / (2.0 - 0.05)
    assert md.coc_px(4.0) == pytest.approx(hand, rel=1e-12)
    assert md.sigma_px(4.0) == pytest.approx(hand, rel=1e-12)
    assert (md.focal_length, md.f_number) == (0.05, 1.4)
    assert md.aperture_diameter / md.pixel_pitch == pytest.approx(800, rel=1e-12)
    # A scales with the image width: on NYU's 640 px, A = 800 * 640 / 2452
    nyu = get_preset("mddnet").make(image_width=640, rng=None).with_focus(2.0)
    assert nyu.aperture_diameter / nyu.pixel_pitch == pytest.approx(800 * 640 / 2452, rel=1e-12)
    assert nyu.coc_px(4.0) / 640 == pytest.approx(hand / 2452, rel=1e-12)  # same share of W
    # NYU's depths (0.7-10 m) stay below the 32 px cap at any focus in that range
    assert max(nyu.with_focus(s).max_coc_px(0.7, 10.0) for s in (0.7, 2.0, 10.0)) < 32


def test_d3net_disc_radius_is_half_the_coc_and_other_presets_ignore_the_psf():
    p = get_preset("d3net-nyu")
    gauss = p.make(image_width=640, rng=None).with_focus(2.0)
    disc = p.make(image_width=640, rng=None, psf="disc").with_focus(2.0)
    coc = gauss.coc_px(4.0)
    assert gauss.sigma_px(4.0) == pytest.approx(0.3 * coc, rel=1e-12)
    # the engine's disc has radius 2 sigma: radius CoC / 2, as D3-Net's code draws it
    assert 2 * disc.sigma_px(4.0) == pytest.approx(coc / 2, rel=1e-12)
    assert p.sigma_rule(psf="disc")["formula"] == "sigma = 0.25 * CoC"
    assert "with --psf disc: sigma = 0.25 * CoC" in p.describe()
    # a slope given by the user wins over the preset's disc rule
    assert p.make(image_width=640, rng=None, psf="disc", coc_to_sigma=0.5).coc_to_sigma == 0.5
    for name in ("2hded", "syndof", "mddnet", "idfd-nikon"):
        q = get_preset(name)
        a = q.make(image_width=640, rng=np.random.default_rng(1))
        b = q.make(image_width=640, rng=np.random.default_rng(1), psf="disc")
        assert a == b and q.sigma_rule() == q.sigma_rule(psf="disc"), name


def test_2hded_sigma_is_a_quarter_of_the_coc_and_coc_model_can_be_chosen():
    p = get_preset("2hded")
    exact = p.make(image_width=640, rng=None).with_focus(2.0)
    paper = p.make(image_width=640, rng=None, coc_model="paper").with_focus(2.0)
    d, f, pitch = 0.0448, 0.07, 0.036 / 640
    assert exact.sigma_px(4.0) == pytest.approx(d * f / 1.93 * 0.5 / pitch / 4, rel=1e-12)
    assert paper.sigma_px(4.0) == pytest.approx(f / 2.0 * d * 0.5 / pitch / 4, rel=1e-12)


def test_coc_to_sigma_replaces_the_whole_preset_rule():
    p = get_preset("syndof")
    cam = p.make(image_width=640, rng=np.random.default_rng(0), coc_to_sigma=0.5)
    cam = cam.with_focus(2.0).with_f_number(1.2)
    x = _depth_for_coc(cam, 1.07)
    assert cam.sigma_px(x) == pytest.approx(0.5 * 1.07, rel=1e-9)  # no rounding, no offset
    assert p.sigma_rule(0.5) == {"formula": "sigma = 0.5 * CoC", "coc_to_sigma": 0.5,
                                 "coc_offset_px": 0.0, "coc_step_px": 0.0}
    assert "round(CoC, 0.1 px) - 1 px" in p.sigma_rule()["formula"]


@pytest.mark.parametrize("field, value", [("coc_offset_px", -1.0), ("coc_step_px", np.nan)])
def test_bad_sigma_rule_values_raise(field, value):
    with pytest.raises(ConfigError, match=field):
        Camera(focal_length=0.05, f_number=2.0, focus_distance=3.0, pixel_pitch=6e-6,
               **{field: value})


# -- SYNDOF's focus rule -----------------------------------------------------------------
def _syndof_reference_weights(n_unique: int, rng: np.random.Generator) -> np.ndarray:
    """SYNDOF's weights as its code makes them, nearest first: 10 000 draws of
    N(L, (L/2)^2), a histogram of 2L equal bins over their range, its first L bins."""
    draws = rng.normal(n_unique, n_unique / 2, 10_000)
    counts, _ = np.histogram(draws, bins=2 * n_unique)
    w = counts[:n_unique].astype(float)  # SYNDOF's order: farthest first
    return (w / w.sum())[::-1]


def test_rank_weights_are_the_expectation_of_syndofs_histogram_weights():
    rng = np.random.default_rng(0)
    for n in (5, 40, 300):
        ref = np.mean([_syndof_reference_weights(n, rng) for _ in range(300)], axis=0)
        ours = syndof_rank_weights(n)
        assert ours.sum() == pytest.approx(1.0)
        assert np.all(np.diff(ours) < 0)  # rising towards the nearest
        assert 0.5 * np.abs(ours - ref).sum() < 0.03, n  # total variation distance


def test_syndof_focus_draws_follow_the_reference_rule_over_unique_depths():
    values = np.array([0.8, 1.1, 1.5, 2.0, 2.6, 3.3, 4.1, 5.0, 6.2, 7.5, 8.8, 9.9])
    counts = np.array([3, 40, 7, 1, 2, 5, 9, 4, 30, 2, 6, 2000])  # far wall: most pixels
    depth = np.repeat(values, counts).reshape(1, -1).astype(np.float32)
    ref = np.mean([_syndof_reference_weights(values.size, np.random.default_rng(i))
                   for i in range(400)], axis=0)
    pol = make_focus_policy("syndof")
    rng = np.random.default_rng(7)
    draws = np.array([pol.draw(depth, rng)[0] for _ in range(6000)])
    freq = np.array([np.mean(np.isclose(draws, v)) for v in values])
    assert freq.sum() == pytest.approx(1.0)  # only depths of the map are drawn
    assert np.abs(freq - ref).max() < 0.03
    # pixel counts play no part: the same unique depths in other numbers, same draws
    flat = np.repeat(values, 1).reshape(3, 4).astype(np.float32)
    a = [pol.draw(depth, np.random.default_rng(s))[0] for s in range(50)]
    b = [pol.draw(flat, np.random.default_rng(s))[0] for s in range(50)]
    assert a == b


def test_syndof_focus_favours_near_depths_where_the_histogram_favours_the_wall():
    rng = np.random.default_rng(1)
    depth = np.concatenate([np.linspace(0.7, 3.0, 3000),     # 10 %: objects at 0.7-3 m
                            rng.uniform(6.0, 8.0, 27000)])   # 90 %: the far wall
    near = {spec: np.mean([make_focus_policy(spec).draw(depth, rng)[0] < 2.0
                           for _ in range(1500)]) for spec in ("syndof", "histogram")}
    assert near["syndof"] > 0.65 and near["histogram"] < 0.12


def test_syndof_focus_rounds_float_depth_and_ignores_invalid():
    pol = SyndofFocus()
    depth = np.array([[1.0001, 1.0004, np.nan], [2.0, -1.0, np.inf]])
    np.testing.assert_allclose(pol.unique_depths(depth), [1.0, 2.0])
    np.testing.assert_allclose(SyndofFocus(0.0).unique_depths(depth), [1.0001, 1.0004, 2.0])
    assert make_focus_policy("syndof:0.01") == SyndofFocus(0.01)
    for spec in ("syndof", "syndof:0.005", "syndof:0"):
        p = make_focus_policy(spec)
        assert focus_policy_from_config(p.to_config()) == p


# -- SYNDOF's aperture: clamped, one per sample --------------------------------------------
def test_syndof_f_number_is_clamped_to_a_physical_range():
    p = get_preset("syndof")
    cam = p.make(image_width=640, rng=np.random.default_rng(0)).with_focus(2.1)
    shallow = np.array([2.0, 2.2])  # 29 px would need about f/0.05
    lo = p.adapt(cam, shallow)
    assert lo.f_number == SYNDOF_F_NUMBER_RANGE[0]
    assert np.nanmax(lo.coc_px(shallow)) < 29.0
    big = p.make(image_width=20000, rng=np.random.default_rng(0)).with_focus(1.0)
    deep = np.array([0.5, 50.0])  # tiny pixels: 29 px at about f/150
    hi = p.adapt(big, deep)
    assert hi.f_number == SYNDOF_F_NUMBER_RANGE[1]
    assert np.nanmax(hi.coc_px(deep)) > 29.0
    ok = p.adapt(cam.with_focus(2.0), np.array([0.8, 9.0]))
    assert np.nanmax(ok.coc_px(np.array([0.8, 9.0]))) == pytest.approx(29.0, rel=1e-9)


def test_syndof_solves_one_aperture_for_a_whole_focal_stack():
    p = get_preset("syndof")
    cam = p.make(image_width=640, rng=np.random.default_rng(3))
    depth = np.array([0.8, 3.0, 9.0])
    stack = [1.0, 2.0, 8.0]
    one = p.adapt(cam, depth, focus_m=stack)
    worst = max(np.nanmax(one.with_focus(s).coc_px(depth)) for s in stack)
    assert worst == pytest.approx(29.0, rel=1e-9)
    assert one.f_number == max(p.adapt(cam.with_focus(s), depth).f_number for s in stack)


def _cfg(out, **kw) -> SynthConfig:
    base = dict(source="samples", input=str(REPO / "samples"), output=str(out), seed=5,
                shard_size=2, splits=["test"])
    base.update(kw)
    return SynthConfig(**base)


def test_syndof_focal_stack_keeps_one_aperture_per_sample(tmp_path):
    out = tmp_path / "stack.zarr"
    run_synth(_cfg(out, camera="syndof", focus="stack:3", render_mode="gather"), progress=False)
    sp = open_dataset(out)["test"]
    fn = np.asarray(sp.array("f_number")[:])
    assert fn.shape == (2, 3)
    assert np.all(fn == fn[:, :1]) and not np.all(fn == fn[0, 0])  # per sample, not per slice
    sigma = np.asarray(sp.array("sigma")[:])
    assert np.nanmax(sigma) <= 7.0 + 1e-5  # (29 - 1) / 4


# -- preset defaults, overrides, provenance, resume ------------------------------------------
@pytest.mark.parametrize("camera, focus, mode", [
    ("2hded", "syndof", "layered"), ("syndof", "syndof", "layered"),
    ("d3net-nyu", "fixed:2.0", "layered"), ("mddnet", "histogram", "scatter"),
    ("idfd-nikon", "histogram", "layered"),
])
def test_presets_supply_their_defaults(camera, focus, mode):
    s = resolve_preset_settings(_cfg("x", camera=camera))
    assert (s["focus"]["value"], s["mode"]["value"]) == (focus, mode)
    assert s["coc_model"] == {"value": "exact", "from": "preset"}
    fallback = camera in ("mddnet", "idfd-nikon")
    assert s["focus"]["from"] == ("fallback" if fallback else "preset")
    # idfd-nikon's source (real captures) states no compositing: the fallback, layered
    assert s["mode"]["from"] == ("fallback" if camera == "idfd-nikon" else "preset")
    r = _cfg("x", camera=camera).resolved()
    assert (r.focus, r.render_mode, r.coc_model) == (focus, mode, "exact")


def test_explicit_options_beat_preset_defaults_and_explicit_values_are_kept():
    cfg = _cfg("x", camera="d3net-nyu", focus="fixed:3.0", render_mode="gather",
               coc_model="paper", coc_to_sigma=0.25)
    s = resolve_preset_settings(cfg)
    assert {k: v["from"] for k, v in s.items()} == {
        "focus": "user", "mode": "user", "coc_model": "user", "sigma_rule": "user",
        "diffraction": "fallback"}
    assert cfg.resolved() == cfg  # nothing left to fill in
    key = cfg.content_key()
    assert (key["focus"], key["render_mode"], key["coc_model"]) == ("fixed:3.0", "gather", "paper")
    assert key["sigma_rule"]["formula"] == "sigma = 0.25 * CoC"


def test_preset_defaults_and_overrides_are_used_and_recorded(tmp_path):
    from click.testing import CliRunner

    from cli.defocuskit_cmd import main

    run_synth(_cfg(tmp_path / "d.zarr", camera="d3net-nyu", limit=1), progress=False)
    ds = open_dataset(tmp_path / "d.zarr")
    a = ds.attrs
    assert a["settings"]["focus"] == {"value": "fixed:2.0", "from": "preset"}
    assert a["settings"]["mode"] == {"value": "layered", "from": "preset"}
    assert a["settings"]["sigma_rule"]["value"]["coc_to_sigma"] == 0.3
    assert a["config"]["focus"] == "fixed:2.0" and a["render_mode"] == "layered"
    assert a["camera"]["coc_model"] == "exact"
    sp = ds["test"]
    assert float(sp.array("focus_distance")[0]) == 2.0
    assert float(sp.array("coc_to_sigma")[0]) == pytest.approx(0.3)

    out = tmp_path / "u.zarr"
    r = CliRunner().invoke(main, [
        "synth", "--source", "samples", "--output", str(out), "--camera", "d3net-nyu",
        "--focus", "fixed:3.0", "--render-mode", "gather", "--coc-model", "paper",
        "--coc-to-sigma", "0.5", "--split", "test", "--limit", "1", "--no-progress"])
    assert r.exit_code == 0, r.output
    ds = open_dataset(out)
    a = ds.attrs
    assert {k: v["from"] for k, v in a["settings"].items()} == {
        "focus": "user", "mode": "user", "coc_model": "user", "sigma_rule": "user",
        "diffraction": "fallback"}
    assert a["render_mode"] == "gather" and a["camera"]["coc_model"] == "paper"
    assert a["camera"]["sigma_rule"]["formula"] == "sigma = 0.5 * CoC"
    sp = ds["test"]
    assert float(sp.array("focus_distance")[0]) == 3.0
    d = sp.read(0, names=("depth", "sigma"))
    cam = Camera(focal_length=0.015, f_number=2.8, focus_distance=3.0, pixel_pitch=5.6e-6,
                 coc_to_sigma=0.5, coc_model="paper")
    np.testing.assert_allclose(d["sigma"], cam.sigma_px(d["depth"]), rtol=1e-5)


def test_resume_refuses_a_changed_preset_default(tmp_path, monkeypatch):
    import defocuskit.camera.named as presets_module

    out = tmp_path / "r.zarr"
    run_synth(_cfg(out, camera="d3net-nyu", limit=1), progress=False)
    # the same resolved values, now given explicitly: resuming is fine
    run_synth(_cfg(out, camera="d3net-nyu", limit=1, focus="fixed:2.0", render_mode="layered"),
              resume=True, progress=False)
    for change in ({"focus": "fixed:4.0"}, {"mode": "gather"}, {"coc_to_sigma": 0.25}):
        changed = dataclasses.replace(presets_module._PRESETS["d3net-nyu"], **change)
        with monkeypatch.context() as m:
            m.setitem(presets_module._PRESETS, "d3net-nyu", changed)
            with pytest.raises(ConfigError, match="another configuration"):
                run_synth(_cfg(out, camera="d3net-nyu", limit=1), resume=True, progress=False)


def test_config_file_sets_coc_model_and_leaves_the_rest_to_the_preset(tmp_path):
    from defocuskit.config import resolve_synth_config

    f = tmp_path / "run.toml"
    f.write_text('source = "samples"\noutput = "o.zarr"\ncamera = "mddnet"\n'
                 'coc_model = "paper"\n')
    cfg = resolve_synth_config(config_file=f, overrides={"focus": None, "render_mode": None})
    s = resolve_preset_settings(cfg)
    assert s["coc_model"] == {"value": "paper", "from": "user"}
    assert s["mode"] == {"value": "scatter", "from": "preset"}
    assert s["focus"] == {"value": "histogram", "from": "fallback"}
    with pytest.raises(ConfigError, match="coc_model"):
        _cfg("o", coc_model="approx")


def test_synth_with_d3net_and_a_disc_stores_sigma_a_quarter_of_the_coc(tmp_path):
    cfg = _cfg(tmp_path / "disc.zarr", camera="d3net-nyu", psf="disc", render_mode="gather",
               limit=1)
    assert resolve_preset_settings(cfg)["sigma_rule"]["value"]["coc_to_sigma"] == 0.25
    run_synth(cfg, progress=False)
    sp = open_dataset(tmp_path / "disc.zarr")["test"]
    depth, sigma = np.asarray(sp.array("depth")[0]), np.asarray(sp.array("sigma")[0])
    cam = get_preset("d3net-nyu").make(image_width=depth.shape[1], rng=None)
    cam = cam.with_focus(float(np.asarray(sp.array("focus_distance")[0]).ravel()[0]))
    ok = np.isfinite(depth)
    np.testing.assert_allclose(sigma[ok], 0.25 * cam.coc_px(depth[ok]), rtol=1e-5, atol=1e-6)
