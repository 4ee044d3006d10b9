"""Writes the golden datasets committed under tests/data/ (tiny, closed-form content).

``golden_v1.zarr`` (schema 1, no checksums) was written by an earlier version and is kept
as it is: every later version must read it value for value. ``golden_v2.zarr`` (schema 2,
CRC-32C on every chunk) is written by ``python tests/data/make_golden.py``: run it only
when the schema version changes (and bump SCHEMA_VERSION); never rewrite an older golden.
It holds four splits: ``train`` (one defocused image a sample), ``stack`` (a focal stack of
2), ``real`` (a real capture: no sigma, no camera arrays) and ``skipped`` (sample 1 was
skipped by ``--on-error skip``: fill values, source index -1, recorded in ``skipped``).
"""

from pathlib import Path

import numpy as np

SKIPPED = [{"split": "skipped", "index": 1, "sample_id": "skipped-1",
            "error": "depth map has no valid pixel"}]


def golden_arrays() -> dict[str, dict[str, np.ndarray]]:
    """Deterministic content: closed-form ramps, no RNG (the v1 fixture's one split)."""
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


def golden_v2_arrays() -> dict[str, dict[str, np.ndarray]]:
    """The v2 fixture: the v1 split plus a focal stack, a real capture and a skipped sample."""
    train = golden_arrays()["train"]
    k = 2
    stack = {
        "aif": train["aif"][:2], "depth": train["depth"][:2],
        "defocused": np.stack([train["defocused"][:2], train["aif"][:2] // 2], axis=1),
        "sigma": np.stack([train["sigma"][:2], train["sigma"][:2] + 1.0], axis=1),
        "focus_distance": np.array([[1.5, 3.0], [2.0, 4.0]], np.float32),
    }
    for name in ("focal_length", "f_number", "pixel_pitch", "coc_to_sigma"):
        stack[name] = np.repeat(train[name][:2, None], k, axis=1)
    real = {"aif": train["aif"], "defocused": train["defocused"] // 3, "depth": train["depth"]}
    skipped = {name: values.copy() for name, values in train.items()}
    skipped["aif"][1] = 0
    skipped["defocused"][1] = 0
    for name in ("depth", "sigma", "focus_distance", "focal_length", "f_number",
                 "pixel_pitch", "coc_to_sigma"):
        skipped[name][1] = np.nan
    skipped["source_index"] = np.array([0, -1, 2], np.int32)
    return {"train": train, "stack": stack, "real": real, "skipped": skipped}


def write_golden_v2(out) -> None:
    import zarr

    from defocuskit.store import write_arrays

    write_arrays(out, golden_v2_arrays(), attrs={"producer": "defocuskit", "golden": True},
                 shard_size=2)
    root = zarr.open_group(str(out), mode="r+", use_consolidated=False)
    root["skipped"].attrs["skipped"] = SKIPPED
    zarr.consolidate_metadata(root.store)


if __name__ == "__main__":
    import shutil

    out = Path(__file__).parent / "golden_v2.zarr"
    shutil.rmtree(out, ignore_errors=True)
    write_golden_v2(out)
    print(f"wrote {out}")
