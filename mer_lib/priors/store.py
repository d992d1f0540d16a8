"""The prior store: an append-only JSONL file, one line per finished call, dependable as a database import.

Each line is one JSON record::

    {"key": "<hash>", "name": "sample_00000007", "status": "ok" | "failed", "backend": "gemini",
     "model": "gemini-2.0-flash", "prompt_version": "mer-priors-v1", "attempts": 2,
     "input_tokens": 2310, "output_tokens": 402, "elapsed_s": 3.1, "finished_at": "...",
     "media_sha256": "...", "media_size": 123, "media_mtime_ns": 1700000000,
     "prior": {...Prior...} | null, "error": null | "why it failed", "raw": null | "the model's text"}

Why this shape:
- the ``key`` hashes everything that decides the answer (back-end, model, prompt version, answer
  schema, generation settings, sample name, subtitle, the media file's content), so a re-run
  skips exactly what already succeeded under the same conditions, and a changed prompt or clip
  is asked again;
- a failure is a line with ``status: "failed"``, never a prior: the next run asks again;
- a line is written with one ``write`` call on an ``O_APPEND`` file as soon as its call finishes,
  so a crash or SIGKILL loses at most the calls in flight; a line cut by the kill is tolerated on
  reading and cut off before the next append;
- one writer at a time (an advisory lock beside the file), so two notebooks cannot interleave.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .keys import redact
from .schema import Prior

try:  # advisory locking is POSIX-only; Windows users run one writer by convention
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

OK, FAILED = "ok", "failed"


class PriorStoreError(ValueError):
    """A prior file that cannot be used; the message names the file, the line and the fix."""


def cache_key(**parts: Any) -> str:
    """A stable hash of everything that decides a prior (see the module docstring)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:40]


def read_records(path: str | os.PathLike) -> Iterator[dict]:
    """Every record of a store in file order. A truncated last line (a killed writer) is skipped;
    a broken line elsewhere is an error, because this module never writes one."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no prior file here. Fix: generate priors first "
                                "(mer_lib.priors.generate_for_dataset, notebook 01_prior_generation) "
                                "or pass the path of an existing priors .jsonl file.")
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    last = len(lines) - 1
    while last >= 0 and not lines[last].strip():
        last -= 1
    for number, line in enumerate(lines[: last + 1], start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "name" not in record or "status" not in record:
                raise ValueError("not a prior record")
        except ValueError as exc:
            if number == last + 1:
                return  # the tail a killed writer left; the next append cuts it off
            raise PriorStoreError(
                f"{path}:{number}: line is not a prior record ({exc}). This module never writes "
                "such a line, so the file was edited or written by another tool. Fix: delete "
                "that line (its clip is then simply asked again).") from None
        yield record


def load_priors(path: str | os.PathLike, *, classes=None, model: str | None = None,
                prompt_version: str | None = None) -> dict[str, Prior]:
    """The successful priors of a store, the latest per sample name.

    ``classes`` checks each prior's emotion against a class set (e.g. ``dataset.classes``);
    ``model`` / ``prompt_version`` keep only the records of one model or prompt when a file
    mixes several. A missing file or a broken line raise an error that says what to do.
    """
    path = Path(path)
    context = {"classes": tuple(classes)} if classes is not None else None
    priors: dict[str, Prior] = {}
    for record in read_records(path):
        if record.get("status") != OK or record.get("prior") is None:
            continue
        if model is not None and record.get("model") != model:
            continue
        if prompt_version is not None and record.get("prompt_version") != prompt_version:
            continue
        try:
            priors[record["name"]] = Prior.model_validate(record["prior"], context=context)
        except ValueError as exc:
            raise PriorStoreError(f"{path}: the prior of '{record['name']}' is not valid here "
                                  f"({exc}). Fix: pass the classes it was made with, or "
                                  "regenerate it.") from None
    return priors


def latest_status(path: str | os.PathLike) -> dict[str, dict]:
    """The latest record per sample name (success or failure): what a notebook shows as progress."""
    latest: dict[str, dict] = {}
    for record in read_records(path):
        latest[record["name"]] = record
    return latest


class PriorStore:
    """Append-only writer of a prior file (use as a context manager)."""

    def __init__(self, path: str | os.PathLike, fsync_interval_s: float = 1.0):
        self.path = Path(path)
        self.fsync_interval_s = fsync_interval_s  # fsync at most this often, and on close: a kill
        # loses nothing already written (the kernel has it); fsync guards against a power cut
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._last_sync = time.monotonic()

    def __enter__(self) -> PriorStore:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        self._cut_truncated_tail()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def records(self) -> list[dict]:
        return list(read_records(self.path)) if self.path.exists() else []

    def append(self, record: dict) -> None:
        """Write one record as one line (secrets scrubbed from its free-text fields)."""
        if self._fd is None:
            raise RuntimeError("PriorStore.append outside 'with PriorStore(path) as store:'")
        record = dict(record)
        for field in ("error", "raw"):
            record[field] = redact(record.get(field))
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        written = os.write(self._fd, line)
        while written < len(line):  # a short write is rare but allowed by POSIX
            written += os.write(self._fd, line[written:])
        if time.monotonic() - self._last_sync >= self.fsync_interval_s:
            os.fsync(self._fd)
            self._last_sync = time.monotonic()

    def _acquire_lock(self) -> None:
        if fcntl is None:
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise PriorStoreError(f"{self.path}: another run is writing to this prior file. Fix: "
                                  "wait for it to finish (or stop it), or write to another file.") from None

    def _cut_truncated_tail(self) -> None:
        """Cut a partial last line (a killed writer's) off the file before appending after it."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - (1 << 20))
            f.seek(start)
            tail = f.read()
            cut = tail.rfind(b"\n")
            if cut < 0 and start > 0:
                raise PriorStoreError(f"{self.path}: its last line is over 1 MiB without a newline. "
                                      "Fix: remove that line by hand.")
            last_line = tail[cut + 1:]
            try:  # a complete record that only lacks its newline (edited by hand) is kept
                complete = isinstance(json.loads(last_line), dict)
            except ValueError:
                complete = False
            if complete:
                f.seek(0, os.SEEK_END)
                f.write(b"\n")
            else:
                f.truncate(start + cut + 1 if cut >= 0 else 0)
            f.flush()
            os.fsync(f.fileno())
