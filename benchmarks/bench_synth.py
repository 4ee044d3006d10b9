"""End-to-end synth benchmark on a NYU-sized input in the real .mat format.

Builds ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 = HDF5 with the 512-byte MATLAB header,
MATLAB's transposed layout: images (N, 3, 640, 480) uint8, depths (N, 640, 480) float32
metres, contiguous and uncompressed like the published file) and ``splits.mat`` (v5,
1-based, 795 train / 654 test for 1449 frames), with frames made from the bundled sample
scenes. Then runs ``defocuskit synth --source nyu`` as a real process with ``--jobs 1`` and
``--jobs 2`` (gather unless ``--mode`` says otherwise, lz4), and measures samples/s, MB/s
written, and the random-read rate of the result. Writes
``benchmarks/results/bench_synth.json`` (``bench_synth_<mode>.json`` for another mode).

    python benchmarks/bench_synth.py                 # 1449 frames (about 3.1 GB input)
    python benchmarks/bench_synth.py --frames 200    # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_machine.py
from _machine import cpu_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def _scenes() -> list[tuple[np.ndarray, np.ndarray]]:
    import cv2

    from defocuskit.sources import get_source

    src = get_source("samples", REPO / "samples")
    out = []
    for split in src.splits():
        for i in range(len(src.sample_ids(split))):
            s = src.read(split, i)
            img = cv2.resize(s.aif, (640, 480), interpolation=cv2.INTER_LINEAR)
            dep = cv2.resize(s.depth, (640, 480), interpolation=cv2.INTER_NEAREST)
            out.append((img, dep))
    return out


def build_nyu_mat(folder: Path, n_frames: int) -> Path:
    """Write a NYU-format .mat of ``n_frames`` frames and its splits.mat; return the .mat."""
    import h5py
    import scipy.io

    folder.mkdir(parents=True, exist_ok=True)
    mat = folder / "nyu_depth_v2_labeled.mat"
    stamp = folder / f".complete-{n_frames}"
    if stamp.exists() and mat.exists():
        return mat
    scenes = _scenes()
    with h5py.File(mat, "w", userblock_size=512) as f:
        images = f.create_dataset("images", (n_frames, 3, 640, 480), dtype="uint8")
        depths = f.create_dataset("depths", (n_frames, 640, 480), dtype="float32")
        for i in range(n_frames):
            img, dep = scenes[i % len(scenes)]
            shift = (i // len(scenes)) * 7 % 640      # every frame differs a little
            img = np.roll(img, shift, axis=1)
            dep = np.roll(dep, shift, axis=1) * (1.0 + 0.002 * (i % 50))
            images[i] = img.transpose(2, 1, 0)
            depths[i] = np.nan_to_num(dep, nan=0.0).T
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: benchmark HDF5 schema 1.00 ."
    with open(mat, "r+b") as fh:  # the MATLAB v7.3 header lives in the HDF5 user block
        fh.write(header.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")
    rng = np.random.default_rng(0)
    perm = rng.permutation(n_frames) + 1
    n_train = round(n_frames * 795 / 1449)
    scipy.io.savemat(folder / "splits.mat", {"trainNdxs": np.sort(perm[:n_train])[:, None],
                                             "testNdxs": np.sort(perm[n_train:])[:, None]})
    stamp.touch()
    return mat


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_synth(mat: Path, out: Path, jobs: int, mode: str) -> dict:
    exe = Path(sys.executable).with_name("defocuskit")
    cmd = [str(exe), "synth", "--source", "nyu", "--input", str(mat), "--output", str(out),
           "--focus", "histogram", "--render-mode", mode, "--compressor", "lz4",
           "--jobs", str(jobs), "--no-progress"]
    if out.exists():  # an earlier run's dataset: synth replaces only a dataset it wrote
        cmd.append("--overwrite")
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"synth failed:\n{res.stderr}")
    from defocuskit.dataset.store import open_dataset

    ds = open_dataset(out)
    n = sum(len(ds[s]) for s in ds.splits)
    size = _du(out)
    return {"jobs": jobs, "samples": n, "wall_s": round(wall, 2),
            "samples_per_s": round(n / wall, 2), "written_mb": round(size / 1e6, 1),
            "mb_per_s": round(size / 1e6 / wall, 1), "stdout": res.stdout.strip()}


def random_read_rate(out: Path, n_reads: int = 200) -> dict:
    from defocuskit.dataset.store import open_dataset

    sp = open_dataset(out)["train"]
    rng = np.random.default_rng(1)
    idx = rng.integers(0, len(sp), n_reads)
    t0 = time.perf_counter()
    for i in idx:
        sp.read(int(i), names=("defocused", "aif", "depth"))
    dt = time.perf_counter() - t0
    return {"reads": n_reads, "arrays": ["defocused", "aif", "depth"],
            "samples_per_s": round(n_reads / dt, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1449)
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get(
        "DEFOCUSKIT_BENCH_DIR", "/tmp/defocuskit-bench")))
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--mode", choices=("gather", "scatter", "layered"), default="gather",
                    help="render mode (default gather, the target's figure; results "
                         "of another mode go to bench_synth_<mode>.json)")
    args = ap.parse_args()
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    mat = build_nyu_mat(args.workdir / f"nyu{args.frames}", args.frames)
    build_s = time.perf_counter() - t0
    runs = []
    for jobs in args.jobs:
        out = args.workdir / f"out-{args.mode}-j{jobs}.zarr"
        r = run_synth(mat, out, jobs, args.mode)
        r["random_read"] = random_read_rate(out)
        runs.append(r)
        print(f"jobs={jobs}: {r['samples']} samples in {r['wall_s']} s = "
              f"{r['samples_per_s']} samples/s, {r['mb_per_s']} MB/s written "
              f"({r['written_mb']} MB), random read {r['random_read']['samples_per_s']} "
              "samples/s", flush=True)
    result = {"benchmark": "bench_synth", "frames": args.frames, "frame_size": [480, 640],
              "crop": [427, 561], "input_mb": round(mat.stat().st_size / 1e6, 1),
              "input_build_s": round(build_s, 1), "mode": args.mode, "compressor": "lz4",
              "runs": runs, "target": "1449 frames in <= 60 s with --jobs 2",
              "load_average": {"before": load_before, "after": os.getloadavg()},
              "command": "python benchmarks/bench_synth.py" + (
                  f" --frames {args.frames}" if args.frames != 1449 else "") + (
                  " --jobs " + " ".join(map(str, args.jobs)) if args.jobs != [1, 2] else "") + (
                  f" --mode {args.mode}" if args.mode != "gather" else ""),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "processor": platform.processor(), "cpu": cpu_model()}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / ("bench_synth.json" if args.mode == "gather"
                      else f"bench_synth_{args.mode}.json")
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
