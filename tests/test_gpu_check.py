"""benchmarks/gpu_check.py: the one-command GPU check, proven on the CPU (``--tiny``), and
its runner (budget shares, failures and overruns recorded, the next item still run)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from _helpers import load_script

torch = pytest.importorskip("torch")
from trainer.config import PRESETS  # noqa: E402 (after the torch check)
from trainer.models import get_spec, model_names  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
ITEM_NAMES = ["dataset", "train", "loader", "projection", "agreement", "reblur", "models"]


def _load():
    return load_script(SCRIPT)


def _check():
    return SimpleNamespace(results={}, device=torch.device("cpu"))


def _nonfinite(node, path="") -> list[str]:
    """Paths of every non-finite float, and of every null outside the CPU's peak memory
    and the notes (the only figures a CPU run cannot have)."""
    bad = []
    if isinstance(node, dict):
        for k, v in node.items():
            bad += _nonfinite(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            bad += _nonfinite(v, f"{path}[{i}]")
    elif node is None:
        if "peak_memory" not in path and not path.endswith(".note"):
            bad.append(path)
    elif isinstance(node, float) and not math.isfinite(node):
        bad.append(path)
    return bad


@pytest.mark.slow
def test_tiny_cpu_run_writes_every_item_and_records_an_injected_failure(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--tiny",
                           "--out", str(out), "--fail-item", "reblur"],
                          capture_output=True, text=True, env=env, timeout=600)
    wall = time.perf_counter() - t0
    assert proc.returncode == 1, proc.stderr[-3000:]  # one item failed: not complete
    doc = json.loads(out.read_text())
    items = doc["items"]
    assert list(items) == ITEM_NAMES and doc["complete"] is False
    # the injected failure is recorded, and the item after it still ran
    assert items["reblur"]["status"] == "failed"
    assert "InjectedFailure" in items["reblur"]["error"]
    assert {n: r["status"] for n, r in items.items() if n != "reblur"} == dict.fromkeys(
        [n for n in ITEM_NAMES if n != "reblur"], "ok")
    assert _nonfinite(items) == []
    env_ = doc["environment"]
    assert env_["torch"] == torch.__version__ and env_["device"] == "cpu"

    rows = items["train"]["rows"]
    timed = {(r["batch_size"], r["variant"]) for r in rows if r.get("e2e_images_per_s", 0) > 0
             and r["model_images_per_s"] > 0}
    assert timed == {(b, v) for b in (2, 4) for v in ("fp32", "bf16_cl")}
    skipped = [r for r in rows if r["compile"]]
    assert len(skipped) == 2 and all("CUDA only" in r["skipped"] for r in skipped)
    assert {(r["batch_size"], r["workers"]) for r in items["loader"]["rows"]} == {
        (b, w) for b in (2, 4) for w in (0, 2)}
    assert all(r["samples_per_s"] > 0 for r in items["loader"]["rows"])
    proj = items["projection"]
    best = max(r["e2e_images_per_s"] for r in rows if "e2e_images_per_s" in r)
    assert proj["images_per_s"] == best
    assert proj["minutes"] == pytest.approx(397_500 / best / 60)
    assert proj["meets_target"] == (proj["minutes"] <= 30)
    loss = items["agreement"]["loss"]
    assert loss["rel_gap_fp32_repeat"]["loss_last"] == 0  # the CPU is deterministic
    assert loss["rel_gap_bf16"]["loss_last"] < 0.05
    ev = items["agreement"]["eval"]
    assert ev["within_tolerance"] and ev["max_rel_diff"] == 0 and "rmse" in ev["metrics"]
    assert ev["fit_steps"] > 0
    reblur = items["reblur"]["rows"]  # measured before the injected failure
    assert [(r["size"], r["sigma_max"]) for r in reblur] == [(64, 8), (128, 16), (128, 32)]
    assert all(r["forward_backward_ms"] > 0 and r["grad_finite"] for r in reblur)
    models = items["models"]
    assert models["not_covered"] == []
    assert {r["model"] for r in models["rows"]} >= {"2hded", "self_supervised"}
    by_name = {r["model"]: r for r in models["rows"]}
    for name in model_names():  # every registered model steps, with its own recipe
        if name != "2hded":
            assert by_name[name]["model_name"] == name
            assert by_name[name]["optimizer"] == PRESETS[get_spec(name).preset].get(
                "optimizer", "sgd")
    assert all(r["loss_finite"] for r in models["rows"])
    # the table comes last, one line per figure
    tail = proc.stdout.strip().splitlines()
    row_names = tuple(r["model"] for r in models["rows"])
    assert tail[-1].lstrip().startswith(("models", *row_names))  # the last item's rows
    assert any(line.startswith("reblur      failed") for line in tail)
    assert wall < 300


def test_failing_item_is_recorded_and_the_next_item_still_runs():
    gc = _load()

    def boom(check, rec, deadline):
        rec["rows"] = [1]
        raise ValueError("boom")

    def fine(check, rec, deadline):
        rec["x"] = 42

    res = gc.run_items((("a", 1.0, boom), ("b", 1.0, fine)), _check(), 10.0, say=lambda s: 0)
    assert res["a"]["status"] == "failed" and res["a"]["error"] == "ValueError: boom"
    assert res["a"]["rows"] == [1]  # what it measured before failing is kept
    assert res["b"]["status"] == "ok" and res["b"]["x"] == 42


def test_an_overrunning_item_is_stopped_at_its_share_plus_grace(monkeypatch):
    gc = _load()
    monkeypatch.setattr(gc, "GRACE_S", 0.3)

    def forever(check, rec, deadline):
        while True:
            time.sleep(0.01)

    t0 = time.perf_counter()
    res = gc.run_items((("slow", 1.0, forever), ("next", 1.0, lambda c, r, d: None)),
                       _check(), 0.4, say=lambda s: 0)
    assert res["slow"]["status"] == "timeout" and "ItemTimeout" in res["slow"]["error"]
    assert res["slow"]["seconds"] == pytest.approx(0.2 + 0.3, abs=0.2)  # share 0.2 s
    assert res["next"]["status"] == "skipped"  # the budget was spent
    assert time.perf_counter() - t0 < 2


def test_time_an_item_leaves_unused_passes_to_the_next():
    gc = _load()
    seen = {}

    def record(check, rec, deadline):
        seen[len(seen)] = deadline - time.perf_counter()

    res = gc.run_items((("a", 1.0, record), ("b", 1.0, record)), _check(), 10.0,
                       say=lambda s: 0)
    assert res["a"]["budget_s"] == pytest.approx(5.0, abs=0.1)  # half of 10 s
    # a used almost none of its 5 s: b gets nearly all 10 s, not its own half
    assert 9.0 < res["b"]["budget_s"] <= 10.0 and 9.0 < seen[1] <= 10.0


def test_deadline_stream_yields_the_first_item_always_and_at_most_n():
    _load()  # puts benchmarks/ on sys.path
    from _gpu_train import _deadline_stream

    assert list(_deadline_stream(iter(range(10)), 3, math.inf)) == [0, 1, 2]
    assert list(_deadline_stream(iter(range(10)), 3, time.perf_counter() - 1)) == [0]


def test_device_helper_on_the_cpu_copies_plainly_and_has_no_peak_statistic():
    from trainer import device as dev

    cpu = torch.device("cpu")
    x = torch.arange(6.0).view(2, 3)
    dev.synchronize(cpu)
    dev.reset_peak_memory(cpu)
    assert dev.peak_memory_gib(cpu) is None and dev.pin_memory(cpu) is False
    y = dev.to_device(x, cpu)
    assert torch.equal(x, y) and y.device == cpu
    info = dev.device_info(cpu)
    assert info["torch"] == torch.__version__ and "gpu" not in info
    assert "null on the CPU" in info["peak_memory"]


def test_cuda_device_refused_with_one_line_when_there_is_none(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "g.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cuda", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0 and not out.exists()
    assert proc.stderr.strip().splitlines() == [
        "gpu_check: --device: device 'cuda': CUDA is not available on this machine"]


@pytest.mark.parametrize("args", [["--budget", "0"], ["--workers", "-1"], ["--steps", "0"]])
def test_bad_option_is_refused_with_one_line_naming_it(args, capsys):
    gc = _load()
    with pytest.raises(SystemExit) as exc:
        gc.main(["--device", "cpu", "--tiny", *args])
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{args[0]}: expected >= " in last and args[1] in last


def test_a_foreign_file_at_out_is_refused_and_left_as_it_was(tmp_path, capsys):
    gc = _load()
    foreign = tmp_path / "notes.json"
    foreign.write_text('{"mine": 1}\n')
    with pytest.raises(SystemExit) as exc:
        gc.main(["--device", "cpu", "--tiny", "--out", str(foreign)])
    assert exc.value.code == 2 and "is not a result of this script" in capsys.readouterr().err
    assert foreign.read_text() == '{"mine": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.json"]


def test_result_json_is_replaced_whole_without_touching_files_beside_it(tmp_path):
    gc = _load()
    out = tmp_path / "g.json"
    beside = tmp_path / "g.json.part"  # a name a plain temporary could have taken
    beside.write_text("keep")
    gc._write(out, {"script": gc.SCRIPT_NAME, "n": 1})
    gc._write(out, {"script": gc.SCRIPT_NAME, "n": 2})
    assert json.loads(out.read_text())["n"] == 2 and gc._ours(out)
    assert beside.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json", "g.json.part"]


def test_device_helper_asks_cuda_for_pinned_batches_and_asynchronous_copies():
    from trainer import device as dev

    class Recorder:  # stands in for a tensor: records how it is moved
        def to(self, device, non_blocking=False):
            self.moved = (torch.device(device), non_blocking)
            return self

    cuda = torch.device("cuda")  # a device object needs no GPU; nothing is allocated
    assert dev.pin_memory(cuda) is True and dev.pin_memory("cuda:1") is True
    assert dev.to_device(Recorder(), cuda).moved == (cuda, True)
    assert dev.to_device(Recorder(), "cpu").moved == (torch.device("cpu"), False)


def test_trainer_batches_reach_the_device_through_the_helper(monkeypatch):
    import trainer.data as data

    seen = []

    def spy(tensor, device):
        seen.append(tuple(tensor.shape))
        return tensor.to(device)

    monkeypatch.setattr(data, "to_device", spy)
    batch = {"defocused": torch.zeros(2, 3, 4, 4, dtype=torch.uint8),
             "depth": torch.ones(2, 1, 4, 4), "index": torch.arange(2)}
    out = data.to_device_batch(batch, torch.device("cpu"))
    assert sorted(seen) == [(2, 1, 4, 4), (2, 3, 4, 4)]  # every tensor but the index
    assert out["defocused"].dtype == torch.float32 and set(out) == {"defocused", "depth"}
