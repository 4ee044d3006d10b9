"""Writes tests/data/golden_ckpt_v2/: a checkpoint of format 2 and what it must compute.

A one-step run of a tiny 2HDED:NET (one dense layer per block, heads depth, aif, defocus)
on a closed-form dataset, written by ``trainer fit`` itself: ``last.pt`` (every key a
resumable checkpoint has) and ``expected.npz`` (the rebuilt model's outputs on a fixed
input). Every later version must load it and compute the same outputs; run this script
only when FORMAT_VERSION changes, into a new folder, and never rewrite an older golden.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "golden_ckpt_v2"
TINY = {"growth_rate": 4, "block_config": [1, 1, 1, 1], "num_init_features": 8}


def fixed_input():
    """(1, 3, 64, 96) float32 in [0, 1]: closed-form ramps, no RNG."""
    y, x = np.mgrid[0:64, 0:96].astype(np.float32)
    img = np.stack([(x / 95), (y / 63), 0.5 + 0.5 * np.sin(x / 7) * np.cos(y / 5)])
    return img[None].astype(np.float32)


def dataset(path: Path) -> None:
    from defocuskit.store import write_arrays

    n, h, w = 4, 64, 64
    i, y, x = np.meshgrid(np.arange(n), np.arange(h), np.arange(w), indexing="ij")
    aif = np.stack([(7 * i + 3 * x) % 256, (5 * y + x) % 256, (x * y + 11 * i) % 256], -1)
    depth = (1.0 + 0.03 * y + 0.5 * i).astype(np.float32)
    sigma = np.abs(depth - 2.0).astype(np.float32)
    split = {"aif": aif.astype(np.uint8), "defocused": (aif // 2 + 64).astype(np.uint8),
             "depth": depth, "sigma": sigma}
    write_arrays(path, {"train": split})


def main() -> None:
    import torch

    from trainer.checkpoint import build_model, load_checkpoint
    from trainer.config import TrainConfig
    from trainer.fit import fit

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "d.zarr"
        dataset(data)
        cfg = TrainConfig(epochs=1, batch_size=2, lr=0.01, crop=32, val_split=None,
                          plots=False, num_workers=0, progress=False, max_steps=1,
                          heads=("depth", "aif", "defocus"), model=dict(TINY), seed=5)
        fit(data, Path(tmp) / "run", cfg, log=lambda _m: None)
        shutil.rmtree(OUT, ignore_errors=True)
        OUT.mkdir()
        shutil.copy(Path(tmp) / "run" / "last.pt", OUT / "last.pt")
    model = build_model(load_checkpoint(OUT / "last.pt")).eval()
    with torch.no_grad():
        out = model(torch.from_numpy(fixed_input()))
    np.savez(OUT / "expected.npz", **{k: v.numpy() for k, v in out.items()})
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
