"""The paper-reproduction commands of docs/index.md are real command lines: each parses
with the CLI's own options (placeholders stand in for the data the user brings), and each
`trainer fit` line resolves to a valid training configuration."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import click
import pytest

from cli.defocuskit_cmd import main as defocuskit
from cli.trainer_cmd import trainer
from trainer.config import resolve_config

REPO = Path(__file__).resolve().parents[1]
PATH_OPTIONS = ("--input", "--data", "--checkpoint")


def commands() -> list[list[str]]:
    text = (REPO / "docs" / "index.md").read_text()
    section = text.split("## Reproducing a paper's setting", 1)[1]
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        lines += [shlex.split(ln) for ln in block.splitlines()
                  if ln.strip() and not ln.lstrip().startswith("#")]
    return lines


def test_every_paper_has_synth_fit_and_eval():
    programs = [(c[0], c[1]) for c in commands()]
    assert programs == [("defocuskit", "synth"), ("trainer", "fit"), ("trainer", "eval")] * 6


@pytest.mark.parametrize("args", commands(), ids=lambda c: " ".join(c[:2] + c[-2:]))
def test_each_command_parses_with_the_clis_options(args, tmp_path):
    before = Path.cwd()
    os.chdir(tmp_path)
    try:
        for opt, value in zip(args, args[1:], strict=False):
            if opt in PATH_OPTIONS:  # the user's data: a placeholder file or folder
                path = Path(value)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.mkdir() if value.endswith("/") or opt == "--data" else path.touch()
        group = {"defocuskit": defocuskit, "trainer": trainer}[args[0]]
        ctx = click.Context(group, info_name=args[0])
        command = group.get_command(ctx, args[1])
        parsed = command.make_context(args[1], args[2:], parent=ctx).params
    finally:
        os.chdir(before)
    if args[:2] == ["trainer", "fit"]:
        pytest.importorskip("torch", reason="the resolved TrainConfig needs torch")
        options = {k: v for k, v in parsed.items()
                   if k not in ("data", "run_dir", "preset", "config_file", "resume",
                                "overwrite", "progress_every", "compile_")}
        cfg = resolve_config(overrides=options)
        heads = parsed["heads"]
        assert cfg.heads == (tuple(heads.split(",")) if heads else ("depth", "aif"))


def documented_command_lines() -> list[tuple[str, str]]:
    """``(doc, line)`` for every concrete ``defocuskit`` / ``trainer`` line in the code
    blocks of README.md and docs/*.md (continuations joined; synopses with [...], |, <...>
    or ... left out)."""
    found = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for block in re.findall(r"```[a-z]*\n(.*?)```", doc.read_text(), flags=re.S):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                line = re.sub(r"^(\.venv/bin/|\$\(BIN\)/)", "", line.split(" #")[0].strip())
                if (re.match(r"(defocuskit|trainer) [a-z]", line)
                        and not any(c in line for c in "[|…<>") and "..." not in line):
                    found.append((doc.name, line))
    return found


def test_the_docs_have_many_command_lines():
    assert len(documented_command_lines()) >= 30


@pytest.mark.parametrize("doc, line", documented_command_lines(),
                         ids=lambda v: v if isinstance(v, str) and v.endswith(".md") else "")
def test_every_documented_command_line_uses_real_options(doc, line):
    args = shlex.split(line)
    group = {"defocuskit": defocuskit, "trainer": trainer}[args[0]]
    ctx = click.Context(group, info_name=args[0])
    command = group.get_command(ctx, args[1])
    assert command is not None, f"{doc}: no command {args[1]!r} in: {line}"
    command.make_parser(ctx).parse_args(args[2:])  # an unknown option raises UsageError
