"""Side-by-side timing for ``bench_render.py``: the frozen kernels the current ones
replaced, both run on one set of prepared inputs, interleaved round by round.

* :func:`load_baseline`: the frozen kernels, ``benchmarks/baseline/`` of
  :data:`BASELINE_COMMIT`, read from git history (``git archive`` into a temporary folder;
  they are no longer in the tree);
* :func:`compile_baseline` / :func:`compile_all`: those kernels under the flags they were
  written for, and the current ones;
* :func:`kernel_pair` and :func:`compare`: one old-vs-new row (thread CPU time) and its
  bitwise check; :func:`side_by_side`: interleaved rounds, at least about a second of them;
* :func:`timeit`: the median wall time of whole calls.
"""

from __future__ import annotations

import atexit
import io
import math
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from numba import njit
from numba.core import config as nb_config

from defocuskit.blur._common import aligned_zeros, kernel_radius
from defocuskit.blur._gather_kernels import GATHER_SIGNATURE, LANES, gather_rows
from defocuskit.blur._jit import compile_kernel
from defocuskit.blur._scatter_kernels import SCATTER_SIGNATURE, acc_columns, scatter_rows
from defocuskit.blur.gather import _TINY, pad_planar_fast

# --- the frozen kernels the current ones replaced, timed side by side with them ---

# the commit whose benchmarks/baseline/ holds the frozen kernels (the hand-unrolled gather
# and scatter, the layered mode with every level through cv2.GaussianBlur)
BASELINE_COMMIT = "41a2ca25ecad9a7225d9e47d20c1f735bebe740e"
REPO = Path(__file__).resolve().parents[1]


def load_baseline() -> Path:
    """Extract ``benchmarks/baseline/`` of :data:`BASELINE_COMMIT` with ``git archive`` into
    a temporary folder (removed at exit) and put it on ``sys.path`` as the package
    ``baseline``; exits with a message when git or that commit is not available."""
    if "baseline" in sys.modules:
        return Path(sys.modules["baseline"].__file__).parents[1]
    res = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", BASELINE_COMMIT,
                          "benchmarks/baseline"], capture_output=True)
    if res.returncode != 0:
        raise SystemExit(f"bench_render: the old-vs-new comparison reads the frozen kernels "
                         f"from git history (commit {BASELINE_COMMIT[:12]}, "
                         f"benchmarks/baseline/), which is not available here: "
                         f"{res.stderr.decode(errors='replace').strip() or 'git failed'}; "
                         "run it from a git clone of the repository")
    where = Path(tempfile.mkdtemp(prefix="defocuskit-baseline-"))
    atexit.register(shutil.rmtree, where, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(res.stdout)) as tar:
        tar.extractall(where, filter="data")
    sys.path.insert(0, str(where / "benchmarks"))
    print(f"frozen kernels: benchmarks/baseline/ of commit {BASELINE_COMMIT[:12]} (git "
          f"archive, in {where})", file=sys.stderr)
    return where

_OLD_GATHER_THREAD = ("void(float32[:, :, ::1], float32[:, ::1], float32[:, ::1], int64, int64, "
                      "int64, float32[:, :, ::1])")


def compile_baseline():
    """The frozen kernels, compiled (or loaded) under the flags they were written for.

    Both run serially in the calling thread, so that its CPU time measures them: the
    gather's per-thread function as it is, the scatter's ``prange`` body compiled without
    Numba's parallel passes (a ``prange`` of one thread is then a plain loop).
    """
    load_baseline()
    from baseline import gather_kernels, scatter_kernels

    old = (nb_config.SLP_VECTORIZE, nb_config.LOOP_VECTORIZE)
    nb_config.SLP_VECTORIZE, nb_config.LOOP_VECTORIZE = 1, 0
    try:
        gather = gather_kernels._gather_thread
        gather.compile(_OLD_GATHER_THREAD)
        scatter = njit(parallel=False, **scatter_kernels.JIT_OPTIONS)(
            scatter_kernels.scatter_kernel.py_func)
        scatter.compile(scatter_kernels.SCATTER_SIGNATURE)
        scatter_kernels.normalise_kernel.compile(scatter_kernels.NORMALISE_SIGNATURE)
    finally:
        nb_config.SLP_VECTORIZE, nb_config.LOOP_VECTORIZE = old
    return {"lanes": gather_kernels.LANES, "gather": gather, "scatter": scatter,
            "normalise": scatter_kernels.normalise_kernel}


def _alpha(sig):
    with np.errstate(divide="ignore", under="ignore"):
        alpha = np.exp(np.float32(-0.5) / np.square(sig))
    alpha[alpha < _TINY] = 0.0
    return alpha


def kernel_pair(kernels, mode: str, img: np.ndarray, sigma: np.ndarray):
    """``(old, new, result)``: the frozen and the current kernel of ``mode`` as calls on one
    set of inputs prepared as the wrappers prepare them, one thread, and a function giving
    both outputs (gather: the image; scatter: the RGBW sums) to compare bit for bit.

    Timing the kernels alone keeps the wrappers' padding, ``exp`` and fresh allocations (the
    same for both, and page-fault noise on a busy machine) out of the comparison.
    """
    h, w = sigma.shape
    pad = kernel_radius(float(sigma.max()))
    if mode == "gather":  # the current wrapper's layout, the same for both kernels
        assert kernels["lanes"] == LANES
        wg, hs = -(-w // LANES) * LANES, h + h % 2
        src = pad_planar_fast(img, pad, extra_right=wg - w, extra_bottom=hs - h, threads=1)
        sig = np.zeros((hs, wg), np.float32)
        sig[:h, :w] = sigma
        alpha, outs = _alpha(sig), [np.empty((h, w, 3), np.float32) for _ in range(2)]

        def old():
            kernels["gather"](src, sig, alpha, np.int64(pad), np.int64(1), np.int64(0), outs[0])

        def new():
            gather_rows(0, 1, src, sig, alpha, np.int64(pad), outs[1])
    else:
        src = pad_planar_fast(img, pad, threads=1)
        sig = np.ascontiguousarray(np.pad(sigma, pad, mode="reflect"))
        # each kernel's accumulator as its wrapper allocates it (the current one: rows of
        # acc_columns(w) floats, ACC_SLACK of scratch and more, from a 64-byte boundary)
        alpha = _alpha(sig)
        outs = [np.zeros((h, 4 * w), np.float32), aligned_zeros((h, acc_columns(w)))]

        def old():
            outs[0][:] = 0.0
            kernels["scatter"](src, sig, alpha, np.int64(pad), np.int64(1), outs[0])

        def new():
            outs[1][:] = 0.0
            scatter_rows(0, 1, src, sig, alpha, np.int64(pad), outs[1])
    return old, new, lambda: (old(), new(), [o[:, :4 * w] if mode == "scatter" else o
                                            for o in outs])[-1]


MIN_SIDE_BY_SIDE_S = 1.0  # seconds of calls per comparison at least (see side_by_side)


def side_by_side(fns: dict, repeats: int) -> dict:
    """Median and min time (s) of each function, calls interleaved round by round.

    ``cpu``: this thread's CPU time (every function here runs in the calling thread), which
    a busy shared machine disturbs far less than ``wall``, the wall-clock time. At least
    ``repeats`` rounds, more for short calls: as many as fill about
    :data:`MIN_SIDE_BY_SIDE_S` (the warm-up round's time decides), because a 10-20 ms
    kernel's median of 9 swung by +-15 % between runs here (``rounds`` in the result).
    """
    t0 = time.perf_counter()
    for fn in fns.values():
        fn()
    rounds = max(repeats, math.ceil(MIN_SIDE_BY_SIDE_S / max(time.perf_counter() - t0, 1e-3)))
    ts = {k: {"wall": [], "cpu": []} for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0, c0 = time.perf_counter(), time.thread_time()
            fn()
            ts[k]["cpu"].append(time.thread_time() - c0)
            ts[k]["wall"].append(time.perf_counter() - t0)
    return {k: {**{f"{clock}_{stat}_s": float(f(v[clock])) for clock in ("cpu", "wall")
                   for stat, f in (("median", np.median), ("min", np.min))}, "rounds": rounds}
            for k, v in ts.items()}


def compile_all():
    kernels = compile_baseline()
    compile_kernel(gather_rows, GATHER_SIGNATURE, simd="slp+loop")
    compile_kernel(scatter_rows, SCATTER_SIGNATURE, simd="slp")
    return kernels


def equality(a: np.ndarray, b: np.ndarray) -> dict:
    """Bitwise equality of two outputs and their largest difference relative to ``a``'s
    largest magnitude (the grouped scatter sums in another order: float rounding only)."""
    return {"bitwise_equal": bool(np.array_equal(a, b)),
            "max_rel_diff": float(np.abs(a - b).max() / max(float(np.abs(a).max()), 1e-30))}


def compare(kernels, mode, label, smax, img, sig, repeats, rows, checks):
    """One old-vs-new row (appended to ``rows``) and its bitwise check (to ``checks``)."""
    old, new, both = kernel_pair(kernels, mode, img, sig)
    a, b = both()
    checks.append({"map": f"scene {label}, sigma max {smax:g}", "mode": mode,
                   **equality(a, b)})
    t = side_by_side({"old": old, "new": new}, repeats)
    rows.append({"mode": mode, "scene": label, "sigma_max": smax, "old": t["old"],
                 "new": t["new"], "new_over_old_cpu_median":
                 t["new"]["cpu_median_s"] / t["old"]["cpu_median_s"],
                 "new_over_old_wall_median":
                 t["new"]["wall_median_s"] / t["old"]["wall_median_s"]})


def timeit(fn, repeats: int, warm=None) -> float:
    """Median wall time of ``repeats`` calls, after one warm-up call (``warm`` or ``fn``)."""
    (warm or fn)()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))
