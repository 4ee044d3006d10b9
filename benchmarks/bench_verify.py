"""What the manifest checks cost on a NYU-size dataset (480 x 640 frames).

Writes a dataset of ``--frames`` frames (the bundled sample scenes resized to 480 x 640,
a Gaussian-blurred copy as the defocused image, a sigma map from the depth, the camera
arrays; 64 samples per shard, lz4, as ``synth`` writes by default), then times, each
``--repeats`` times (median; the files are in the page cache after the first pass):

- ``open``: the check every reader runs on open (metadata hashed, shard sizes compared),
- ``manifest``: hashing every file against the manifest (the first part of ``--verify``),
- ``chunks``: decoding every chunk and its CRC-32C (the rest of ``--verify``, all that a
  dataset without a manifest gets),
- ``verify``: the whole ``inspect --verify`` (both), and ``inspect`` (plain summary).

Usage::

    python benchmarks/bench_verify.py --frames 128
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import cpu_model  # noqa: E402
from bench_synth import _scenes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def build(out: Path, n: int) -> None:
    import cv2

    from defocuskit.dataset.store import write_arrays

    scenes = _scenes()
    aif = np.stack([scenes[i % len(scenes)][0] for i in range(n)])
    depth = np.stack([scenes[i % len(scenes)][1] for i in range(n)]).astype(np.float32)
    defocused = np.stack([cv2.GaussianBlur(a, (0, 0), 2.0) for a in aif])
    sigma = (np.abs(1 / np.maximum(depth, 0.1) - 1 / 2.5) * 8).astype(np.float32)
    arrays = {"aif": aif, "defocused": defocused, "depth": depth, "sigma": sigma}
    for k in ("focus_distance", "focal_length", "f_number", "pixel_pitch", "coc_to_sigma"):
        arrays[k] = np.full(n, 1.0, np.float32)
    write_arrays(out, {"train": arrays}, shard_size=64)


def _time(fn, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get(
        "TMPDIR", "/tmp")) / "defocuskit-bench-verify")
    args = ap.parse_args()

    from defocuskit.dataset.manifest import MANIFEST_NAME, check_files, read_manifest
    from defocuskit.dataset.summary import summarize
    from defocuskit.dataset.verify import verify_dataset

    out = args.workdir / f"nyu{args.frames}.zarr"
    if not (out / MANIFEST_NAME).exists():
        shutil.rmtree(out, ignore_errors=True)
        build(out, args.frames)
    manifest = read_manifest(out)
    size = sum(f["size"] for f in manifest["files"].values())
    assert verify_dataset(out) == []  # warm the page cache, and the dataset is sound
    times = {
        "open": _time(lambda: check_files(out, read_manifest(out)), args.repeats),
        "manifest": _time(lambda: check_files(out, read_manifest(out), full=True),
                          args.repeats),
        "verify": _time(lambda: verify_dataset(out), args.repeats),
        "inspect": _time(lambda: summarize(out), args.repeats),
    }
    bare = args.workdir / "bare.zarr"  # the same files without the manifest
    shutil.rmtree(bare, ignore_errors=True)
    shutil.copytree(out, bare)
    (bare / MANIFEST_NAME).unlink()
    verify_dataset(bare)
    times["chunks"] = _time(lambda: verify_dataset(bare), args.repeats)
    shutil.rmtree(bare)
    result = {"frames": args.frames, "files": len(manifest["files"]),
              "bytes": size, "cpu": cpu_model(), "repeats": args.repeats,
              "seconds": {k: round(v, 3) for k, v in times.items()}}
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_verify.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
