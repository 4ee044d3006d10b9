"""Messages in plain words: no Python lists, ``None`` or ``True``, and nouns that agree with
their numbers."""

from __future__ import annotations

from click.testing import CliRunner

from cli._common import count
from cli.defocuskit_cmd import main
from trainer.evaluate import format_table


def test_count_puts_the_noun_in_the_right_number():
    assert [count(n, "shard") for n in (0, 1, 2)] == ["0 shards", "1 shard", "2 shards"]


def test_a_missing_synth_setting_is_named_with_its_option(tmp_path):
    r = CliRunner().invoke(main, ["synth", "--source", "samples", "--input", "samples"])
    assert r.exit_code != 0
    assert "missing required setting: output (give --output" in r.output
    assert "[" not in r.output and "'" not in r.output


def test_synth_says_one_shard_not_one_shards(tmp_path):
    out = tmp_path / "one.zarr"
    r = CliRunner().invoke(main, ["synth", "--source", "procedural", "--option", "n_train=1",
                                  "--option", "n_test=0", "--option", "height=32",
                                  "--option", "width=32", "--render-mode", "gather",
                                  "--no-progress", "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert "wrote 1 sample in 1 shard to" in r.output


def test_eval_table_writes_unset_protocol_values_in_words():
    table = format_table({"rmse": 0.5, "max_depth": None, "clip": True, "resize": None})
    rows = dict(line.split(None, 1) for line in table.splitlines()[2:])
    assert rows == {"rmse": "0.5000", "max_depth": "none (every depth scored)",
                    "clip": "yes", "resize": "none (native frames)"}
    resized = format_table({"resize": [256, 320], "clip": False, "max_depth": 10.0})
    assert "256x320" in resized and "no" in resized and "10.0000" in resized
