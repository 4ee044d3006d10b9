"""`defocuskit inspect --verify`: read every stored byte and report what cannot be trusted.

For each split and array, every shard marked done must have its file, and every chunk
in it must decode and match its CRC-32C checksum (schema 2; schema-1 datasets have no
checksums, so only decoding is checked). Problems are reported as ranges of samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from defocuskit.store import open_dataset, shard_ranges

__all__ = ["Problem", "verify_dataset", "format_problems"]


@dataclass(frozen=True)
class Problem:
    split: str
    array: str
    start: int      # first sample of the range
    stop: int       # one past the last
    reason: str

    def __str__(self) -> str:
        span = f"sample {self.start}" if self.stop - self.start == 1 else \
            f"samples {self.start}-{self.stop - 1}"
        return f"{self.split}/{self.array} {span}: {self.reason}"


def _merge(problems: list[Problem]) -> list[Problem]:
    """Join adjacent ranges of one split/array with the same reason."""
    out: list[Problem] = []
    for p in problems:
        last = out[-1] if out else None
        if (last and (last.split, last.array, last.reason) == (p.split, p.array, p.reason)
                and last.stop == p.start):
            out[-1] = Problem(p.split, p.array, last.start, p.stop, p.reason)
        else:
            out.append(p)
    return out


def verify_dataset(path, *, progress=None) -> list[Problem]:
    """Every problem found in the dataset at ``path`` (an empty list: all is well).

    ``progress``, if given, is called with the number of samples checked after each shard.
    """
    ds = open_dataset(path, require_complete=False)
    problems: list[Problem] = []
    shard_size = int(ds.attrs["shard_size"])
    for split in ds.splits:
        sp = ds[split]
        done = np.asarray(sp.array("_shard_done")[:]).astype(bool)
        names = sorted(k for k in sp._g.array_keys() if not k.startswith("_"))
        skipped = sp.skipped_indices()
        for si, (a, b) in enumerate(shard_ranges(len(sp), shard_size)):
            if not done[si]:
                problems.append(Problem(split, "*", a, b, "not written (incomplete run; "
                                        "finish it with `defocuskit synth ... --resume`)"))
                continue
            for name in names:
                problems += _check_shard(sp, name, a, b, skipped)
            if progress:
                progress(b - a)
    return _merge(problems)


def _check_shard(sp, name: str, a: int, b: int, skipped: set[int]) -> list[Problem]:
    arr = sp.array(name)
    per_sample = arr.shards is not None  # big arrays: one chunk a sample inside shards
    wanted = [i for i in range(a, b) if i not in skipped]
    if not wanted:
        return []
    if not sp.chunk_present(name, wanted[0]):
        return [Problem(sp.name, name, a, b, "shard file missing")]
    try:
        np.asarray(arr[a:b])
        return []
    except Exception:  # noqa: BLE001 - narrow down to the damaged samples below
        pass
    if not per_sample:
        return [Problem(sp.name, name, a, b, "damaged chunk (checksum or decoding failed)")]
    out = []
    for i in wanted:
        try:
            np.asarray(arr[i])
        except Exception:  # noqa: BLE001
            out.append(Problem(sp.name, name, i, i + 1,
                               "damaged chunk (checksum or decoding failed)"))
    return out


def format_problems(path, problems: list[Problem]) -> str:
    if not problems:
        return f"{path}: verified, every shard present and every checksum matches"
    lines = [f"{path}: {len(problems)} problem(s) found"]
    lines += [f"  {p}" for p in problems]
    return "\n".join(lines)
