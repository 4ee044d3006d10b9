"""Reader of the labeled NYU-Depth-v2 file ``nyu_depth_v2_labeled.mat`` with its official split.

The .mat file is MATLAB v7.3, i.e. HDF5, and MATLAB stores arrays column-major, so h5py
sees every array with its axes reversed: ``images`` is (N, 3, 640, 480) uint8 and
``depths`` / ``rawDepths`` are (N, 640, 480) float32 metres. Frame ``i`` is therefore
``images[i].transpose(2, 1, 0)`` (480 x 640 x 3) and ``depths[i].T`` (480 x 640).

The official split is ``splits.mat`` (MATLAB v5) with ``trainNdxs`` (795) and ``testNdxs``
(654), 1-based frame numbers. The NYU toolbox's valid area (rows 45..471, cols 41..601,
1-based inclusive) is Python ``[44:471, 40:601]``, 427 x 561, outside which the projected
depth is padding.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from defocuskit.errors import ConfigError, SourceError
from defocuskit.pipeline.prepare import check_depth_units
from defocuskit.sources._mat import LazyH5, load_mat_v5, mat_version
from defocuskit.sources.base import Sample, Source, file_identity

__all__ = ["NYUSource", "NYU_CROP", "NYU_FRAME"]

NYU_FRAME = (480, 640)                # rows, cols of a full frame
NYU_CROP = (44, 471, 40, 601)         # Python slice bounds: rows 44:471, cols 40:601
_DEPTH_VARS = {"depths": "depths", "raw": "rawDepths"}
_WHERE_TO_GET = ("download nyu_depth_v2_labeled.mat and splits.mat from "
                 "https://cs.nyu.edu/~fergus/datasets/nyu_depth_v2.html")


class NYUSource(Source):
    """NYU-Depth-v2 labeled frames as (AiF, depth) samples.

    Parameters
    ----------
    path : path-like
        ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 / HDF5).
    splits_path : path-like, optional
        ``splits.mat`` (MATLAB v5, 1-based ``trainNdxs`` / ``testNdxs``); default: the
        ``splits.mat`` beside ``path``.
    crop : bool
        Crop each frame to the valid area ``[44:471, 40:601]`` (427 x 561). Default True.
    depth_kind : {"depths", "raw"}
        ``depths`` (in-painted, metres) or ``rawDepths`` (metres, zeros = missing).

    Samples: ``aif`` (427, 561, 3) uint8 (480 x 640 without crop), ``depth`` float32
    metres with NaN for missing values; ids ``"nyu-0001"`` (1-based frame number).
    """

    name = "nyu"
    description = "NYU-Depth-v2 labeled .mat (v7.3) with the official 795/654 split and crop"

    def __init__(self, path: str | os.PathLike, *, splits_path: str | os.PathLike | None = None,
                 crop: bool = True, depth_kind: str = "depths"):
        if not Path(path).exists():
            raise SourceError(f"nyu: input {str(path)!r} does not exist; {_WHERE_TO_GET}")
        super().__init__(path)
        if depth_kind not in _DEPTH_VARS:
            raise ConfigError(f"nyu: depth_kind must be one of {sorted(_DEPTH_VARS)}, "
                              f"got {depth_kind!r}")
        self.crop = bool(crop)
        self.depth_kind = depth_kind
        self._depth_var = _DEPTH_VARS[depth_kind]
        self.splits_path = Path(splits_path) if splits_path else self.path.parent / "splits.mat"
        self.n_frames = self._check_mat()
        self._index = self._load_splits()
        self._h5 = LazyH5(self.path)

    def _check_mat(self) -> int:
        import h5py  # h5py: only for the NYU .mat (HDF5)

        if not self.path.is_file():
            raise SourceError(f"nyu: {str(self.path)!r} is not a file; expected "
                              f"nyu_depth_v2_labeled.mat. {_WHERE_TO_GET}")
        if not h5py.is_hdf5(self.path):
            try:
                kind = f"a MATLAB {mat_version(self.path)} file"
            except SourceError:
                kind = "not a MATLAB file (or it is corrupt)"
            raise SourceError(f"nyu: {str(self.path)!r} is {kind}; expected the MATLAB v7.3 "
                              "(HDF5) file nyu_depth_v2_labeled.mat")
        try:
            with h5py.File(self.path, "r") as f:
                present = sorted(f.keys())
                missing = [v for v in ("images", self._depth_var) if v not in f]
                if missing:
                    raise SourceError(f"nyu: {str(self.path)!r} lacks the variable(s) {missing}; "
                                      f"it holds {present}")
                img, dep = f["images"].shape, f[self._depth_var].shape
        except OSError as exc:
            raise SourceError(f"nyu: {str(self.path)!r} could not be read as HDF5: {exc}") from exc
        if len(img) != 4 or img[1] != 3 or len(dep) != 3 or dep != (img[0], img[2], img[3]):
            raise SourceError(f"nyu: {str(self.path)!r}: expected images (N, 3, W, H) and "
                              f"{self._depth_var} (N, W, H) (MATLAB's transposed layout), got "
                              f"images {img} and {self._depth_var} {dep}")
        frame = (img[3], img[2])
        if self.crop and frame != NYU_FRAME:
            raise SourceError(f"nyu: {str(self.path)!r} has {frame[0]}x{frame[1]} frames; "
                              f"the valid-area crop needs {NYU_FRAME[0]}x{NYU_FRAME[1]} "
                              "(use crop=False)")
        return int(img[0])

    def _load_splits(self) -> dict[str, np.ndarray]:
        if not self.splits_path.is_file():
            raise SourceError(f"nyu: split file {str(self.splits_path)!r} does not exist "
                              f"(pass splits_path / --splits); {_WHERE_TO_GET}")
        mat = load_mat_v5(self.splits_path, ("trainNdxs", "testNdxs"))
        out = {}
        for split, var in (("train", "trainNdxs"), ("test", "testNdxs")):
            idx = np.asarray(mat[var], dtype=np.float64).ravel()
            if idx.size == 0 or np.any(idx != np.round(idx)) or idx.min() < 1 \
                    or idx.max() > self.n_frames:
                got = f"{idx.min():g}..{idx.max():g}" if idx.size else "nothing"
                raise SourceError(f"nyu: {str(self.splits_path)!r}: {var} must hold 1-based "
                                  f"frame numbers in 1..{self.n_frames}, got {got}")
            out[split] = idx.astype(np.int64) - 1   # 0-based rows of the HDF5 arrays
        return out

    def splits(self) -> list[str]:
        return ["train", "test"]

    def sample_ids(self, split: str) -> list[str]:
        self._check_split(split)
        return [f"nyu-{i + 1:04d}" for i in self._index[split]]

    def read(self, split: str, index: int) -> Sample:
        """Read frame ``index`` of ``split``: AiF (H, W, 3) uint8, depth (H, W) float32 metres."""
        self._check_split(split)
        rows = self._index[split]
        self._check_index(split, index, len(rows))
        frame = int(rows[index])
        sid = f"nyu-{frame + 1:04d}"
        f = self._h5.get()
        try:
            aif = np.asarray(f["images"][frame]).transpose(2, 1, 0)
            depth = np.asarray(f[self._depth_var][frame], dtype=np.float32).T
        except (OSError, KeyError, ValueError) as exc:
            raise SourceError(f"nyu: frame {sid} of {str(self.path)!r} could not be read: "
                              f"{exc}") from exc
        if aif.dtype != np.uint8:
            raise SourceError(f"nyu: {str(self.path)!r}: images must be uint8, got {aif.dtype}")
        original = list(aif.shape[:2])
        if self.crop:
            r0, r1, c0, c1 = NYU_CROP
            aif, depth = aif[r0:r1, c0:c1], depth[r0:r1, c0:c1]
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float32)
        check_depth_units(depth, f"nyu: frame {sid} of {str(self.path)!r}")
        meta = {"frame": frame + 1, "depth_kind": self.depth_kind, "units": "m",
                "original_size": original, "crop": list(NYU_CROP) if self.crop else None}
        return Sample(sid, np.ascontiguousarray(aif), np.ascontiguousarray(depth), meta=meta)

    def options(self) -> dict[str, Any]:
        return {"splits_path": str(self.splits_path), "crop": self.crop,
                "crop_box": list(NYU_CROP) if self.crop else None,
                "depth_kind": self.depth_kind, "depth_variable": self._depth_var}

    def identity(self, *, exclude=(), full: bool = False) -> dict[str, Any]:
        ident = file_identity(self.path, exclude=exclude, full=full)
        ident["splits"] = file_identity(self.splits_path)
        return ident

    def close(self) -> None:
        """Close this process's HDF5 handle (it reopens on the next read)."""
        self._h5.close()
