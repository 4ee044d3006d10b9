"""Writes tests/data/golden_v1.zarr, a tiny schema-v1 dataset committed as a golden fixture.

Run once when the schema version changes (and bump SCHEMA_VERSION); the committed copy
must stay readable, value for value, by every later version that reads schema 1.
"""

from pathlib import Path

import numpy as np


def golden_arrays() -> dict[str, dict[str, np.ndarray]]:
    """Deterministic content: closed-form ramps, no RNG."""
    n, h, w = 3, 4, 6
    i, y, x = np.meshgrid(np.arange(n), np.arange(h), np.arange(w), indexing="ij")
    aif = np.stack([(10 * i + y * w + x) % 256, (i + 2 * x) % 256, (y * x) % 256], -1)
    depth = (1.0 + 0.5 * i + 0.25 * y + 0.125 * x).astype(np.float32)
    depth[1, 0, 0] = np.nan
    sigma = (np.abs(depth - 2.0) * 1.5).astype(np.float32)
    return {"train": {
        "aif": aif.astype(np.uint8), "defocused": (255 - aif).astype(np.uint8),
        "depth": depth, "sigma": sigma,
        "focus_distance": np.array([2.0, 2.5, 3.0], np.float32),
        "focal_length": np.full(n, 0.07, np.float32),
        "f_number": np.full(n, 0.07 / 0.0448, np.float32),
        "pixel_pitch": np.full(n, 36e-3 / w, np.float32),
        "coc_to_sigma": np.full(n, 0.25, np.float32),
    }}


if __name__ == "__main__":
    import shutil

    from defocuskit.store import write_arrays

    out = Path(__file__).parent / "golden_v1.zarr"
    shutil.rmtree(out, ignore_errors=True)
    write_arrays(out, golden_arrays(), attrs={"producer": "defocuskit", "golden": True},
                 shard_size=2)
    print(f"wrote {out}")
