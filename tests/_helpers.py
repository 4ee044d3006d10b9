"""Helpers shared by the tests: the tiny model, a tiny synthetic dataset split, and a loader
for the benchmark scripts."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np

# a DenseNet with one layer per block: the same code paths as DenseNet-121, 17 k parameters
TINY = {"growth_rate": 4, "block_config": [1, 1, 1, 1], "num_init_features": 8}


def tiny_split(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """``n`` samples of 64 x 64: random AiF, the input a dimmed AiF, depth 1..5 m.

    Depth ramps down the rows (1 to 3 m) plus ``i % 3`` metres for sample ``i``.
    """
    aif = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    rows = np.mgrid[0:64, 0:64][0]
    depth = np.stack([1 + 2 * rows / 64 + i % 3 for i in range(n)]).astype(np.float32)
    return {"aif": aif, "defocused": aif // 2 + 64, "depth": depth}


def load_script(path: Path, name: str | None = None):
    """Import a script that is not in a package (``benchmarks/*.py``) as a module; its
    folder goes on ``sys.path`` first, so its sibling imports resolve."""
    path = Path(path)
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def samples_config(out, **kw):
    """A ``SynthConfig`` of the bundled samples' test split into ``out`` (gather, fixed focus,
    one sample per shard); ``kw`` overrides any field."""
    from defocuskit.pipeline.config import SynthConfig

    repo = Path(__file__).resolve().parents[1]
    base = dict(source="samples", input=str(repo / "samples"), output=str(out), seed=3,
                shard_size=1, camera="2hded", focus="fixed:2.0", render_mode="gather",
                splits=["test"])
    base.update(kw)
    return SynthConfig(**base)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> sha1): proof that nothing changed."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
