"""The PSF shape through the pipeline: config, CLI option, provenance, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.defocuskit_cmd import main
from defocuskit.config import SynthConfig
from defocuskit.errors import ConfigError
from defocuskit.store import open_dataset
from defocuskit.synth import run_synth

REPO = Path(__file__).resolve().parents[1]


def _cfg(out, **kw) -> SynthConfig:
    base = dict(source="samples", input=str(REPO / "samples"), output=str(out), seed=3,
                shard_size=2, camera="2hded", focus="fixed:2.0", mode="gather",
                splits=["test"], limit=1, resize=[64, 80])
    base.update(kw)
    return SynthConfig(**base)


def test_psf_is_recorded_and_changes_the_images(tmp_path):
    run_synth(_cfg(tmp_path / "g.zarr"), progress=False)
    run_synth(_cfg(tmp_path / "d.zarr", psf="disc"), progress=False)
    g, d = open_dataset(tmp_path / "g.zarr"), open_dataset(tmp_path / "d.zarr")
    assert g.attrs["psf"] == "gaussian" and g.attrs["config"]["psf"] == "gaussian"
    assert d.attrs["psf"] == "disc" and d.attrs["content_key"]["psf"] == "disc"
    a = np.asarray(g["test"].array("defocused")[:])
    b = np.asarray(d["test"].array("defocused")[:])
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(g["test"].array("sigma")[:], d["test"].array("sigma")[:])


def test_resume_refuses_a_changed_psf(tmp_path):
    out = tmp_path / "o.zarr"
    run_synth(_cfg(out), progress=False)
    with pytest.raises(ConfigError, match="another configuration"):
        run_synth(_cfg(out, psf="disc"), resume=True, progress=False)


def test_unknown_psf_is_a_config_error():
    with pytest.raises(ConfigError, match="psf must be gaussian, disc, polygon"):
        _cfg("x", psf="box")


def test_cli_psf_option_reaches_the_dataset(tmp_path):
    out = tmp_path / "c.zarr"
    r = CliRunner().invoke(main, ["synth", "--source", "samples", "--input",
                                  str(REPO / "samples"), "--output", str(out), "--split",
                                  "test", "--limit", "1", "--resize", "64x80", "--psf", "disc",
                                  "--no-progress"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert open_dataset(out).attrs["psf"] == "disc"
    r = CliRunner().invoke(main, ["synth", "--psf", "box"])
    assert r.exit_code == 2 and "--psf" in r.output


def test_layered_level_spacing_is_recorded_and_checked_on_resume(tmp_path, monkeypatch):
    """A layered dataset records its level spacing (in the provenance and the content key);
    a resume under another spacing (a changed default) is refused instead of mixing two
    level rules in one dataset. Other modes record none."""
    from defocuskit.blur import levels  # the spacing rule

    out = tmp_path / "l.zarr"
    run_synth(_cfg(out, mode="layered"), progress=False)
    attrs = open_dataset(out).attrs
    assert attrs["layered_levels"] == {"max_step_px": 0.5, "rel_step": 0.4}
    assert attrs["content_key"]["layered_levels"] == attrs["layered_levels"]
    run_synth(_cfg(out, mode="layered"), resume=True, progress=False)  # same rule: fine
    monkeypatch.setattr(levels, "MAX_LEVEL_REL_STEP", 0.0)
    with pytest.raises(ConfigError, match="another configuration"):
        run_synth(_cfg(out, mode="layered"), resume=True, progress=False)
    gather = tmp_path / "g.zarr"
    run_synth(_cfg(gather), progress=False)
    attrs = open_dataset(gather).attrs
    assert attrs["layered_levels"] is None and "layered_levels" not in attrs["content_key"]
