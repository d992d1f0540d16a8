"""Packed feature cache: one ``.npy`` per extractor folder plus an index, rebuilt when files change.

MER2024 has ~120k clips per extractor, each a small ``<name>.npy``; opening 360k files on every
load is slow. The first load packs a folder into one float32 array (frame-level ``[T, D]`` files
are averaged to ``[D]``) and writes it, with the list of names and a fingerprint of the folder
(file names, sizes, modification times), to ``<features>/.packed/``. Later loads compare the
fingerprint (one ``stat`` per file) and memory-map the packed array. A read-only data folder gets
its cache under ``mer_lib.config.USER_CACHE_DIR`` instead (``mer_lib.io.cache_dir``);
``use_cache=False`` packs in memory and writes nothing.

Feature files must hold float16/32/64 arrays. Integers are refused too, not cast: an integer
``.npy`` in a feature folder is token ids, labels or frame indices, or features quantised with a
scale the file does not carry; cast to float they would train silently on the wrong numbers.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import io
from ..progress import progress as progress_bar
from .errors import DataError, listing

CACHE_FORMAT = 1  # bump when the packed layout changes; old caches are then rebuilt
FLOAT_TYPES = (np.float16, np.float32, np.float64)  # what a feature file may hold (see above)


@dataclass(frozen=True)
class PackedFeatures:
    folder: Path
    names: np.ndarray  # (n,) str, sorted
    path: Path | None  # the packed (n, D) float32 .npy; None when packed in memory (use_cache=False)
    dim: int
    frame_level: bool  # True when the files were [T, D] and got averaged over T
    array: np.ndarray | None = None  # (n, D) float32, only when packed in memory

    def take(self, rows: np.ndarray, block_rows: int = 16384) -> np.ndarray:
        """Rows ``rows`` as a new (len(rows), D) array, in request order.

        Fills the result a block of ``block_rows`` at a time: a block whose rows lie close together
        in the file (the sorted unlabelled pool) is one read and a gather into place; a scattered
        block (labelled clips in label-file order) is one read per row. The result is the only
        large allocation (a memory map would add the whole file to the peak RSS).
        """
        rows = np.asarray(rows, dtype=np.int64)
        if self.array is not None:
            return self.array[rows]
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        row_bytes = self.dim * 4
        with open(self.path, "rb") as f:
            _header_reader(np.lib.format.read_magic(f))(f)
            offset = f.tell()
            for start in range(0, len(rows), block_rows):
                r = rows[start:start + block_rows]
                dest = out[start:start + len(r)]
                lo, hi = int(r.min()), int(r.max()) + 1
                if hi - lo == len(r) and (len(r) == 1 or bool((np.diff(r) == 1).all())):
                    f.seek(offset + lo * row_bytes)  # an in-order run of the file: read it in place
                    f.readinto(memoryview(dest).cast("B"))
                elif hi - lo <= 2 * len(r):
                    f.seek(offset + lo * row_bytes)
                    block = np.fromfile(f, dtype=np.float32, count=(hi - lo) * self.dim)
                    np.take(block.reshape(-1, self.dim), r - lo, axis=0, out=dest)
                else:
                    for i, row in enumerate(r.tolist()):
                        f.seek(offset + row * row_bytes)
                        f.readinto(memoryview(dest[i]).cast("B"))
        return out


def scan(folder: Path) -> list[tuple[str, int, int]]:
    """(file name, size, mtime_ns) of every ``.npy`` in ``folder``, sorted by name."""
    entries = []
    with os.scandir(folder) as it:
        for e in it:
            if e.name.endswith(".npy") and not e.name.startswith(".") and e.is_file():
                st = e.stat()
                entries.append((e.name, st.st_size, st.st_mtime_ns))
    entries.sort()
    return entries


def fingerprint(entries: list[tuple[str, int, int]]) -> str:
    h = hashlib.sha1(f"format={CACHE_FORMAT}\n".encode())
    for name, size, mtime in entries:
        h.update(f"{name}\t{size}\t{mtime}\n".encode())
    return h.hexdigest()


def cache_paths(folder: Path) -> tuple[Path, Path]:
    """Where the packed array and its index live: beside the data, or in the user cache."""
    key = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:16]
    base = io.cache_dir(folder.parent / ".packed", f"packed/{key}")
    return base / f"{folder.name}.npy", base / f"{folder.name}.json"


def load_packed(folder: str | os.PathLike, *, use_cache: bool = True, progress: bool = True) -> PackedFeatures:
    """Load every ``<name>.npy`` of an extractor folder as one ``(n, D)`` float32 array.

    ``use_cache=False`` neither reads nor writes a cache: the folder is packed in memory.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: feature folder not found. Fix: extract the features there or "
                        "check the feature name (it is a folder under <data_root>/features/).")
    entries = scan(folder)
    if not entries:
        raise DataError(f"{folder}: the feature folder holds no .npy files. Fix: extract features "
                        "into it (one <name>.npy per clip) or point the feature name at another folder.")
    if not use_cache:
        return _pack(folder, entries, progress=progress)
    fp = fingerprint(entries)
    array_path, index_path = cache_paths(folder)
    if index_path.exists() and array_path.exists():
        try:
            index = json.loads(index_path.read_text())
        except (OSError, json.JSONDecodeError):
            index = {}
        if index.get("fingerprint") == fp:
            return PackedFeatures(folder, np.asarray(index["names"]), array_path, index["dim"],
                                  index["frame_level"])
    return _pack(folder, entries, (fp, array_path, index_path), progress=progress)


def _read_vector(path: Path) -> tuple[np.ndarray, bool]:
    """One utterance vector from a ``[D]``, ``[1, D]`` or frame-level ``[T, D]`` float file."""
    sample = path.stem
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # truncated file, not an .npy, object array...
        raise DataError(f"{path}: sample '{sample}' cannot be read as a numeric .npy ({exc}). "
                        "Fix: re-extract this clip's features or delete the file.") from exc
    if arr.dtype.type not in FLOAT_TYPES:
        raise DataError(f"{path}: sample '{sample}' holds {arr.dtype} values, not float16/32/64 "
                        "features (an extractor writes floats; other types would be cast silently into "
                        "wrong numbers). Fix: re-extract this clip's features or move the file out of "
                        "the feature folder.")
    if arr.ndim not in (1, 2) or arr.shape[-1] == 0 or (arr.ndim == 2 and arr.shape[0] == 0):
        raise DataError(f"{path}: sample '{sample}' has shape {arr.shape}; expected [D] (utterance) "
                        "or [T, D] (frames). Fix: re-extract this clip's features.")
    frame_level = arr.ndim == 2 and arr.shape[0] > 1
    vec = arr.astype(np.float32).mean(axis=0) if arr.ndim == 2 else arr.astype(np.float32)
    if not np.isfinite(vec).all():
        raise DataError(f"{path}: sample '{sample}' contains NaN or inf. Fix: re-extract this clip's "
                        "features (a silent or black clip can produce this) or delete the file.")
    return vec, frame_level


def _pack(folder: Path, entries, cache: tuple[str, Path, Path] | None = None, *,
          progress: bool) -> PackedFeatures:
    """Pack the files into ``cache = (fingerprint, array path, index path)``, or in memory."""
    paths = [folder / name for name, _, _ in entries]
    first, frame_level = _read_vector(paths[0])
    dim = first.shape[0]
    fast = _HeaderReader(paths[0])

    def fill(out: np.ndarray) -> bool:
        frames = frame_level
        bar = progress_bar(paths, desc=f"packing {folder.name}", disable=not progress)
        for i, path in enumerate(bar):
            vec = fast.read(path)
            if vec is None or not np.isfinite(vec).all():  # a header unlike the first file's, or
                vec, fl = _read_vector(path)  # NaN/inf: the slow, fully checked path (it names the file)
                frames |= fl
            if vec.shape[0] != dim:
                raise _dimension_error(folder, paths)
            out[i] = vec
        return frames

    names = [name[: -len(".npy")] for name, _, _ in entries]
    if cache is None:
        array = np.empty((len(paths), dim), dtype=np.float32)
        return PackedFeatures(folder, np.asarray(names), None, dim, fill(array), array=array)
    fp, array_path, index_path = cache
    with io.atomic_path(array_path, suffix=".npy") as tmp:
        # written straight into a memory map, so packing 120k x 4096 needs no 2 GB in RAM
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(paths), dim))
        frame_level = fill(out)
        out.flush()
        del out
    io.write_json(index_path, {"fingerprint": fp, "folder": str(folder), "dim": dim,
                               "frame_level": frame_level, "names": names}, indent=None)
    return PackedFeatures(folder, np.asarray(names), array_path, dim, frame_level)


def _dimension_error(folder: Path, paths: list[Path]) -> DataError:
    """Name the odd files by a majority vote of every file's dimension (read from the headers),
    so that an odd *first* file is blamed, not the good files after it."""
    dims = {path: _header_dim(path) for path in paths}
    counts = Counter(d for d in dims.values() if d is not None)
    (majority, n_major), *rest = counts.most_common()
    fix = ("Fix: features from different extractors are mixed here; re-extract these clips or move "
           "their files to their own folder.")
    if rest and rest[0][1] == n_major:
        example = {d: p.name for p, d in reversed(dims.items())}  # the first file of each dimension
        per_dim = "; ".join(f"dimension {d}: {n} file(s), e.g. {example[d]}" for d, n in counts.most_common())
        return DataError(f"{folder}: its files disagree on the feature dimension with no majority "
                         f"({per_dim}). {fix}")
    odd = [p for p, d in dims.items() if d is not None and d != majority]
    if len(odd) == 1:
        return DataError(f"{odd[0]}: sample '{odd[0].stem}' has dimension {dims[odd[0]]} but the other "
                         f"{n_major} files of this folder have {majority}. {fix}")
    return DataError(f"{folder}: {len(odd)} files have another dimension than the {majority} of the other "
                     f"{n_major}: {listing(f'{p.name} ({dims[p]})' for p in odd)}. {fix}")


def _header_dim(path: Path) -> int | None:
    """The last axis of an ``.npy`` file from its header (None if unreadable: reported elsewhere)."""
    try:
        with open(path, "rb") as f:
            shape = _header_reader(np.lib.format.read_magic(f))(f)[0]
        return int(shape[-1]) if shape else None
    except (OSError, ValueError):
        return None


def _header_reader(version):
    return np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0


class _HeaderReader:
    """Reads files whose ``.npy`` header is byte-identical to a reference file's, without
    ``np.load``'s per-file header parsing (10x faster on 120k small files)."""

    def __init__(self, reference: Path):
        with open(reference, "rb") as f:
            version = np.lib.format.read_magic(f)
            shape, fortran, dtype = _header_reader(version)(f)
            self.header = reference.read_bytes()[: f.tell()]
        self.ok = not fortran and dtype.type in FLOAT_TYPES
        self.shape, self.dtype = shape, dtype
        self.nbytes = int(np.prod(shape)) * dtype.itemsize

    def read(self, path: Path) -> np.ndarray | None:
        if not self.ok:
            return None
        data = path.read_bytes()
        n = len(self.header)
        if len(data) != n + self.nbytes or data[:n] != self.header:
            return None
        arr = np.frombuffer(data, dtype=self.dtype, offset=n).reshape(self.shape)
        return arr.astype(np.float32).mean(axis=0) if arr.ndim == 2 else arr.astype(np.float32)
