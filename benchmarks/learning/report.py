"""Markdown table and figure of the learning study (from its results JSON)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from learning.study import ROW_LABELS

__all__ = ["markdown", "figure"]


def _ci(r: dict, fmt: str = "{:.3f}") -> str:
    half = (r["hi"] - r["lo"]) / 2
    return f"{fmt.format(r['mean'])} ± {fmt.format(half)}"


def markdown(res: dict) -> str:
    """The v2 table (rows (a)-(e) per setting, camera row), comparisons and probe."""
    s = res["summary"]
    n_seeds = len(res["seeds"])
    lines = ["| setting | input | RMSE (m) ↓ | AbsRel ↓ | δ1 ↑ |", "|---|---|---|---|---|"]
    for setting, rows in s["rows"].items():
        for arm, r in rows.items():
            lines.append(f"| {setting} | {ROW_LABELS[arm]} | {_ci(r['rmse'])} | "
                         f"{_ci(r['abs_rel'])} | {_ci(r['delta1'])} |")
    n = next(iter(next(iter(s["rows"].values())).values()))["rmse"]["n"]
    lines += ["", f"Mean ± half-width of the 95 % bootstrap interval over {n} test scenes "
              f"({n_seeds} seed{'s' if n_seeds > 1 else ''}).", "",
              "| setting | paired difference | ΔRMSE (m) | ΔAbsRel | Δδ1 |",
              "|---|---|---|---|---|"]
    for c in s["comparisons"]:
        name = f"{ROW_LABELS[c['a']].split(' ')[0]} − {ROW_LABELS[c['b']].split(' ')[0]}"
        if c["a"] == "camera":
            name = "(c)+camera − " + ROW_LABELS[c["b"]].split(" ")[0]
        cells = [f"{c[m]['mean']:+.3f} [{c[m]['lo']:+.3f}, {c[m]['hi']:+.3f}]"
                 for m in ("rmse", "abs_rel", "delta1")]
        lines.append(f"| {c['setting']} | {name} | " + " | ".join(cells) + " |")
    if s.get("probe"):
        lines += ["", "| causal probe (ideal setting) | DFD model (c) response | sharp model (b) "
                  "response |", "|---|---|---|"]
        for name, p in s["probe"].items():
            what = res["seeds"][str(res["seed_list"][0])]["ideal"]["probe"][name]["what"]
            lines.append(f"| {what} | {_ci(p['dfd'], '{:.2f}')} | {_ci(p['sharp'], '{:.2f}')} |")
    return "\n".join(lines)


def _zone(res: dict, setting: str, arm: str):
    """Pooled blind-zone MAE over seeds (pixel-weighted), and the bin edges."""
    abs_sum = cnt = None
    for sd in res["seeds"].values():
        z = sd[setting][arm]["blind_zone"]
        m = np.array([np.nan if v is None else v for v in z["mae_m"]])
        c = np.array(z["n_pixels"], dtype=np.float64)
        s = np.nan_to_num(m) * c
        abs_sum = s if abs_sum is None else abs_sum + s
        cnt = c if cnt is None else cnt + c
    with np.errstate(invalid="ignore"):
        return abs_sum / cnt, z["edges_dioptres"], cnt


def figure(res: dict, path: Path) -> Path:
    """Left: blind-zone MAE per dioptre bin (real setting). Middle: the same, ideal.
    Right: the probe's predicted against implied log-depth change (median)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.3))
    colors = {"mean_depth": "k", "sharp": "C0", "true": "C3", "other": "C2", "constant": "C1",
              "camera": "C4"}
    for ax, setting in zip(axes[:2], ("real", "ideal"), strict=True):
        rows = res["summary"]["rows"].get(setting, {})
        for arm in rows:
            mae, edges, cnt = _zone(res, setting, arm)
            x = np.arange(len(mae))
            ax.plot(x, mae, "o-", color=colors[arm], label=ROW_LABELS[arm], ms=4)
        if rows:
            labels = [f"{a:g}–{'∞' if b is None else f'{b:g}'}"
                      for a, b in zip(edges[:-1], edges[1:], strict=True)]
            ax.set_xticks(x, [f"{lab}\n{int(c / 1e3)}k px" for lab, c in
                              zip(labels, cnt, strict=True)], fontsize=7)
        ax.set(title=f"{setting}: depth MAE by |1/d − 1/F| (dioptres)", ylabel="MAE (m)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax = axes[2]
    for name, p in res["summary"].get("probe", {}).items():
        sd = res["seeds"][str(res["seed_list"][0])]["ideal"]["probe"][name]
        for key, mk in (("dfd", "o"), ("sharp", "s")):
            r = sd[key]
            ax.scatter(r["median_implied_log_change"], r["median_pred_log_change"], marker=mk,
                       label=f"{sd['what']}: {'(c) DFD' if key == 'dfd' else '(b) sharp'} "
                             f"(slope {p[key]['mean']:.2f})")
    lim = ax.get_xlim()
    ax.plot([min(lim[0], 0), 0], [min(lim[0], 0), 0], "k--", lw=0.8, label="as the thin lens")
    ax.set(title="causal probe: median ln-depth change", xlabel="implied by the thin lens",
           ylabel="predicted")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    st = res["settings"]
    fig.suptitle(f"bench_learning v2 ({res['mode']}, seeds {res['seed_list']}): "
                 f"{st['n_train'] - st['n_val']} train / {st['n_test']} test rooms per seed, "
                 f"{st['steps']} steps of {st['batch_size']} × {st['crop']}² crops")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
