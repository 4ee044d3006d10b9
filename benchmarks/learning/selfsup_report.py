"""Markdown table and figure of the self-supervised study (``benchmarks/bench_selfsup.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["LABELS", "markdown", "figure"]

LABELS = {
    "constant_mean": "constant: training-split mean σ",
    "constant_median": "constant: training-split median σ",
    "cost_volume": "cost-volume estimate (no network; reads the test AiF)",
    "supervised": "supervised defocus head (L1 on the stored σ)",
    "selfsup": "self-supervised, the thesis's loss",
    "selfsup_anchor": "self-supervised + cost-volume anchor",
}
METRICS = ("mae_all", "mae_textured")


def _ci(r: dict) -> str:
    return f"{r['mean']:.3f} ± {(r['hi'] - r['lo']) / 2:.3f}"


def _diff(r: dict) -> str:
    return f"{r['mean']:+.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}]"


def markdown(res: dict) -> str:
    """Rows with mean ± 95 % half-width, then the paired differences."""
    s = res["summary"]
    n = s["rows"]["constant_mean"]["mae_all"]["n"]
    lines = ["| σ map | MAE all (px) ↓ | MAE textured (px) ↓ | Δ vs median constant, "
             "textured (px) |", "|---|---|---|---|"]
    for row, r in s["rows"].items():
        d = "–" if row == "constant_median" else _diff(s["vs_constant_median"][row]
                                                       ["mae_textured"])
        lines.append(f"| {LABELS[row]} | {_ci(r['mae_all'])} | {_ci(r['mae_textured'])} | "
                     f"{d} |")
    lines += ["", f"Mean ± half-width of the 95 % bootstrap interval over {n} test scenes "
              f"({len(res['per_seed'])} seed(s)); Δ: paired difference [95 % interval].", "",
              "| paired difference | all (px) | textured (px) |", "|---|---|---|"]
    for key, name in (("anchor_vs_selfsup", "anchored − thesis's loss"),
                      ("anchor_vs_supervised", "anchored − supervised")):
        lines.append(f"| {name} | {_diff(s[key]['mae_all'])} | "
                     f"{_diff(s[key]['mae_textured'])} |")
    return "\n".join(lines)


def figure(res: dict, path: Path, example: dict | None = None) -> Path:
    """Top: MAE per row with 95 % intervals (all / textured pixels). Bottom: one test scene,
    its AiF, true σ and each estimate on one colour scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = ("truth", "cost_volume", "supervised", "selfsup", "selfsup_anchor")
    fig = plt.figure(figsize=(15, 7.5))
    grid = fig.add_gridspec(2, 6, height_ratios=[1, 1.1])
    ax = fig.add_subplot(grid[0, :])
    rows = list(res["summary"]["rows"])
    x = np.arange(len(rows))
    for k, metric in enumerate(METRICS):
        r = [res["summary"]["rows"][row][metric] for row in rows]
        mean = np.array([v["mean"] for v in r])
        err = np.array([[v["mean"] - v["lo"] for v in r], [v["hi"] - v["mean"] for v in r]])
        ax.bar(x + (k - 0.5) * 0.38, mean, 0.38, yerr=err, capsize=3,
               label="all pixels" if metric == "mae_all" else "textured pixels")
    ax.set_xticks(x, [LABELS[row].replace(" (", "\n(").replace(", ", ",\n", 1)
                      for row in rows], fontsize=8)
    ax.set(ylabel="σ MAE (px)", title="σ map error on the test rooms (95 % intervals over "
           f"scenes and {len(res['per_seed'])} seed(s))")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    if example is not None:
        vmax = float(np.nanmax(example["truth"]))
        ax0 = fig.add_subplot(grid[1, 0])
        ax0.imshow(example["aif"])
        ax0.set_title("AiF (test scene 0)", fontsize=9)
        ax0.axis("off")
        for k, name in enumerate(maps, start=1):
            a = fig.add_subplot(grid[1, k])
            im = a.imshow(example[name], cmap="magma", vmin=0, vmax=vmax)
            a.set_title("true σ" if name == "truth" else LABELS[name].split(" (")[0],
                        fontsize=8)
            a.axis("off")
        fig.colorbar(im, ax=a, fraction=0.046, label="σ (px)")
    st = res["settings"]
    fig.suptitle(f"self-supervised σ ({res['mode']}): {st['n_train'] - st['n_val']} train / "
                 f"{st['n_test']} test rooms per seed, {st['steps']} steps of "
                 f"{st['batch_size']} × {st['crop']}² crops")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
