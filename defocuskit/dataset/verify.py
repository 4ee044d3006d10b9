"""`defocuskit inspect --verify`: read every stored byte and report what cannot be trusted.

First, for a dataset with a manifest (:mod:`defocuskit.dataset.manifest`), every file is compared
with it: size and BLAKE2b hash of the whole file, so an emptied, truncated, extended,
swapped or replaced shard file and edited metadata are found even where every chunk still
passes its own checksum. Then, for each split and array, every shard marked done must have its file
(not empty), and every chunk in it must decode and match its CRC-32C checksum (schema 2;
schema-1 datasets have no checksums, so only decoding is checked). File problems name the
file; chunk problems are reported as ranges of samples. A dataset without a manifest
(written before manifests) gets the chunk checks only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from defocuskit.dataset.manifest import MANIFEST_NAME, check_files, read_manifest
from defocuskit.dataset.store import open_dataset, shard_ranges
from defocuskit.errors import DataError

__all__ = ["Problem", "verify_dataset", "format_problems", "NO_MANIFEST"]

NO_MANIFEST = ("no manifest (written before manifests): chunk checksums and shard files "
               "checked; whole-file damage that leaves every chunk valid (swapped shard "
               "files, edited zarr.json) cannot be found. Write the dataset again with "
               "`defocuskit synth` to get one")


@dataclass(frozen=True)
class Problem:
    split: str
    array: str
    start: int | None   # first sample of the range (None: a whole file, see ``file``)
    stop: int | None    # one past the last
    reason: str
    file: str | None = None  # the file, relative to the dataset, for a file problem

    def __str__(self) -> str:
        if self.file is not None:
            return f"{self.file}: {self.reason}"
        span = f"sample {self.start}" if self.stop - self.start == 1 else \
            f"samples {self.start}-{self.stop - 1}"
        return f"{self.split}/{self.array} {span}: {self.reason}"


def _file_problem(file: str, reason: str) -> Problem:
    parts = file.split("/")
    split = parts[0] if len(parts) > 1 else ""
    array = parts[1] if len(parts) > 2 and parts[1] != "zarr.json" else ""
    return Problem(split, array, None, None, reason, file=file)


def _manifest_problems(path) -> tuple[bool, list[Problem]]:
    """(whether the dataset has a manifest, every file that differs from it)."""
    try:
        manifest = read_manifest(path)
    except DataError as exc:
        return True, [_file_problem(MANIFEST_NAME, str(exc))]
    if manifest is None:
        return False, []
    return True, [_file_problem(p.file, p.reason) for p in check_files(path, manifest,
                                                                        full=True)]


def _merge(problems: list[Problem]) -> list[Problem]:
    """Join adjacent ranges of one split/array with the same reason."""
    out: list[Problem] = []
    for p in problems:
        last = out[-1] if out else None
        if (last and last.file is None and p.file is None
                and (last.split, last.array, last.reason) == (p.split, p.array, p.reason)
                and last.stop == p.start):
            out[-1] = Problem(p.split, p.array, last.start, p.stop, p.reason)
        else:
            out.append(p)
    return out


def verify_dataset(path, *, progress=None, status: dict | None = None) -> list[Problem]:
    """Every problem found in the dataset at ``path`` (an empty list: all is well).

    ``progress``, if given, is called with the number of samples checked after each shard.
    ``status``, if given, receives ``manifest``: whether the dataset has one.
    """
    has_manifest, problems = _manifest_problems(path)
    if status is not None:
        status["manifest"] = has_manifest
    try:
        ds = open_dataset(path, require_complete=False, check_manifest=False)
    except DataError as exc:  # the root metadata does not parse: nothing more to read
        if not any(p.file == "zarr.json" for p in problems):
            problems.append(_file_problem("zarr.json", str(exc)))
        return problems
    shard_size = int(ds.attrs["shard_size"])
    marked_complete = bool(ds.attrs.get("complete", False))
    for split in ds.splits:
        sp = ds[split]
        try:
            done = np.asarray(sp.array("_shard_done")[:]).astype(bool)
        except Exception:  # noqa: BLE001 - a damaged flag array: check every shard's data
            problems.append(_file_problem(f"{split}/_shard_done", "the 'shard done' flags "
                                          "cannot be read (damaged)"))
            done = np.zeros(len(shard_ranges(len(sp), shard_size)), bool)
        names = sorted(k for k in sp._g.array_keys() if not k.startswith("_"))
        skipped = sp.skipped_indices()
        for si, (a, b) in enumerate(shard_ranges(len(sp), shard_size)):
            if not done[si] and marked_complete:
                problems.append(Problem(split, "*", a, b, "not marked done although the "
                                        "dataset is marked complete (the 'shard done' flag "
                                        "was lost or changed); its data are checked"))
            elif not done[si]:
                problems.append(Problem(split, "*", a, b, "not written (incomplete run; "
                                        "finish it with `defocuskit synth ... --resume`)"))
                continue
            for name in names:
                try:
                    problems += _check_shard(sp, name, a, b, skipped)
                except Exception as exc:  # noqa: BLE001 - metadata that no longer fits
                    problems.append(Problem(split, name, a, b, "cannot be read "
                                            f"({exc.__class__.__name__})"))
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
        return [Problem(sp.name, name, a, b, "shard file missing or empty")]
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


def format_problems(path, problems: list[Problem], *, manifest: bool = True) -> str:
    if not problems:
        if not manifest:
            return (f"{path}: verified, every shard present and every chunk checksum "
                    f"matches; {NO_MANIFEST}")
        return (f"{path}: verified, every file matches the manifest (size and checksum) and "
                "every chunk checksum matches")
    lines = [f"{path}: {len(problems)} problem(s) found"
             + ("" if manifest else f" ({NO_MANIFEST})")]
    lines += [f"  {p}" for p in problems]
    return "\n".join(lines)
