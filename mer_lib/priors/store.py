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
  so a crash or SIGKILL loses at most the calls in flight;
- one writer at a time (an advisory lock beside the file), so two notebooks cannot interleave.

One rule for a line that is not a record (:func:`_parse_line`), shared by reader and writer: a
newline-terminated line anywhere is an error naming the file, the line and the fix, and the writer
refuses to append after one (it would bury it). Only the last line *without* a newline (what a
killed writer leaves) is tolerated: the reader skips it with a warning, the writer cuts it off
before its first append. Every record is checked against :class:`StoreRecord`.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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


class StoreRecord(BaseModel):
    """One line of the store: the one schema every record read is checked against (see the module
    docstring). Types are strict (a numeric name is an error, not a phantom sample); fields this
    version does not know are kept."""
    model_config = ConfigDict(strict=True, extra="allow")

    key: str = Field(min_length=1)  # the cache key (cache_key)
    name: str = Field(min_length=1)  # the sample name
    status: Literal["ok", "failed"]
    backend: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    attempts: int = Field(0, ge=0)  # calls made for this record
    input_tokens: int | None = Field(None, ge=0)
    output_tokens: int | None = Field(None, ge=0)
    elapsed_s: float | None = None
    finished_at: str | None = None
    media_path: str | None = None  # the clip sent, when the back-end needs media
    media_sha256: str | None = None
    media_size: int | None = Field(None, ge=0)
    media_mtime_ns: int | None = None
    prior: dict | None = None  # a Prior (validated against the classes by load_priors)
    error_kind: str | None = None  # transient | permanent | malformed | no_media
    error: str | None = None
    raw: str | None = None  # the model's text of a malformed answer

    @model_validator(mode="after")
    def _consistent(self) -> StoreRecord:
        if (self.status == OK) != (self.prior is not None):
            raise ValueError("a record with status 'ok' carries a prior and a failed one none")
        media = (self.media_sha256, self.media_size, self.media_mtime_ns)
        if (self.media_path is not None or any(v is not None for v in media)) and None in media:
            raise ValueError("media_sha256, media_size and media_mtime_ns are all set (a clip was sent) "
                             "or all null")
        return self


def _parse_line(line: bytes, terminated: bool) -> tuple[dict | None, str | None]:
    """``(record, None)`` for a record; ``(None, None)`` for the cut tail of a killed writer (an
    unterminated line that is not even JSON, which only the last line can be); ``(None, why)`` for
    anything else, which is never a record."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        return None, (f"not JSON ({exc})" if terminated else None)
    try:
        StoreRecord.model_validate(record)
    except ValidationError as exc:
        return None, "; ".join(_describe(err) for err in exc.errors())
    return record, None


def _bad_line(path: Path, number: int, problem: str, appending: bool = False) -> PriorStoreError:
    return PriorStoreError(
        f"{path}:{number}: line is not a prior record: {problem}. This module never writes such a line, "
        "so the file was edited or written by another tool" + ("; appending after it would bury it"
                                                              if appending else "")
        + ". Fix: delete or correct that line (a deleted clip is simply asked again).")


def _describe(err: dict) -> str:
    if not err["loc"]:
        return err["msg"].removeprefix("Value error, ")
    field = ".".join(str(x) for x in err["loc"])
    if err["type"] == "missing":
        return f"field '{field}' is missing"
    if err["type"] == "model_type":
        return "not a JSON object"
    return f"field '{field}': {err['msg']} (got {err['input']!r:.60})"


def _warn_cut_tail(path: Path, number: int, size: int, cutting: bool = False) -> None:
    done = ("cut off before appending" if cutting
            else "skipped; the next run that writes this store cuts it off")
    warnings.warn(f"{path}:{number}: the last line ({size} bytes, no newline) is cut short, as a killed "
                  f"writer leaves it; {done}.", stacklevel=3)


def read_records(path: str | os.PathLike) -> Iterator[dict]:
    """Every record of a store in file order, each checked against :class:`StoreRecord`. A line
    that is not a record is an error naming the line; only a killed writer's unterminated last
    line is skipped, with a warning (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no prior file here. Fix: generate priors first "
                                "(mer_lib.priors.generate_for_dataset, notebook 01_prior_generation) "
                                "or pass the path of an existing priors .jsonl file.")
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    last = len(lines) - 1  # the piece after the last newline: b"" unless the last line is unterminated
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record, problem = _parse_line(line, terminated=number <= last)
        if problem:
            raise _bad_line(path, number, problem)
        if record is None:
            _warn_cut_tail(path, number, len(line))
            return
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
        try:
            self._cut_truncated_tail()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except BaseException:
            self.close()  # refused: release the lock, or the next attempt would find it held
            raise
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
        """The rule of :func:`_parse_line` for the last line, before appending after it: cut a
        killed writer's tail, end a complete record that lacks its newline, refuse anything else."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - (1 << 20))
            f.seek(start)
            tail = f.read()
            body = tail.rstrip()  # blank lines at the end are harmless
            cut = body.rfind(b"\n")
            if cut < 0 and start > 0:
                raise PriorStoreError(f"{self.path}: its last line is over 1 MiB. Fix: remove that line "
                                      "by hand.")
            if not body:
                return
            last_line, terminated = body[cut + 1:], b"\n" in tail[len(body):]
            record, problem = _parse_line(last_line, terminated)
            if record is not None:
                if not terminated:  # a complete record that only lacks its newline (edited by hand)
                    f.seek(0, os.SEEK_END)
                    f.write(b"\n")
            else:
                f.seek(0)  # the line's number, for the message: the newlines before it, plus one
                number = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b"")) \
                    - tail[cut + 1:].count(b"\n") + 1
                if problem:
                    raise _bad_line(self.path, number, problem, appending=True)
                _warn_cut_tail(self.path, number, len(last_line), cutting=True)
                f.truncate(start + cut + 1 if cut >= 0 else 0)
            f.flush()
            os.fsync(f.fileno())
