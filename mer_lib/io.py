"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every long job (feature packing, prior generation, extraction, training) writes through these,
so a crash or a kill leaves either nothing or a complete file behind. Also: where a cache may go.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from . import config


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path`` (same filesystem)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb") as f:  # flush to disk before the rename makes it visible
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_umask() -> int:
    # os.umask can only be read by setting it: do that once, at import, not around every write
    # (threads writing meanwhile would create files with a zero umask)
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False, default=_json_default) + "\n")


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    # np.save appends ".npy" to names without it, so hand it a file object instead
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as f:
        np.save(f, array)


class CacheLocationError(PermissionError):
    """No folder to write a cache to; the message names both places tried and ``MER_LIB_CACHE``."""


def cache_dir(beside: str | os.PathLike, user_subdir: str) -> Path:
    """A writable cache folder: ``beside`` (next to the data it caches, shared by every run that
    reads that data), else ``<USER_CACHE_DIR>/<user_subdir>`` (``MER_LIB_CACHE``, default
    ``~/.cache/mer_lib``) when ``beside`` cannot be written (a read-only mount, a published dataset).

    Both are probed by creating and removing a file: an existing folder can still be read-only.
    """
    beside = Path(beside)
    user = None if config.USER_CACHE_DIR is None else config.USER_CACHE_DIR / user_subdir
    tried = []
    for folder in filter(None, (beside, user)):
        try:
            folder.mkdir(parents=folder is user, exist_ok=True)  # beside: only inside an existing folder
            fd, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
            os.close(fd)
            os.unlink(probe)
            return folder
        except OSError as exc:
            tried.append(f"{folder}: {exc.strerror or exc}")
    if user is None:
        tried.append("no user cache (no home folder)")
    raise CacheLocationError(f"no writable cache folder ({'; '.join(tried)}). Fix: set MER_LIB_CACHE to a "
                             "writable folder, e.g. export MER_LIB_CACHE=/tmp/mer_lib-cache, or make "
                             f"{beside.parent} writable.")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
