"""Generate priors for a dataset: choose clips, ask a back-end, validate, retry, store. Resumable.

The job is long, paid and failure-prone (thousands of clips, rate limits, flaky answers), so it
runs like a database import:
- every finished clip is one line in the store at once (:mod:`.store`); a re-run skips what
  succeeded under the same key and asks again what failed or never finished;
- at most ``concurrency`` calls are in flight, starts are spaced by ``requests_per_minute``;
- 429 / 5xx / timeouts are retried with exponential back-off and jitter (:class:`RetryPolicy`),
  honouring a server's Retry-After; a malformed or truncated answer is asked again a bounded
  number of times and then stored as a failure with its raw text;
- tokens and an estimated cost are counted over every attempt (what is paid, not what is kept).
"""
from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..data import UNLABELLED, ClipScan, scan_clips
from ..progress import progress
from .backends.base import Backend, CallError, ClipRequest
from .keys import redact
from .media import file_sha256
from .prompt import PROMPT_VERSION, build_prompt
from .schema import MalformedAnswer, answer_json_schema, build_prior, parse_answer_text
from .store import FAILED, OK, PriorStore, cache_key

SELECTIONS = ("all", "balanced")


@dataclass
class RetryPolicy:
    max_attempts: int = 6  # calls per clip on transient errors (429, 5xx, timeouts), the first included
    max_malformed_retries: int = 2  # extra calls after a malformed or truncated answer
    base_delay_s: float = 2.0  # back-off before the first retry; doubles with each further retry
    max_delay_s: float = 60.0  # cap of one back-off
    jitter: float = 0.5  # each back-off is scaled by a uniform factor in [1 - jitter, 1], so that
    # clients rate-limited together do not retry together

    def delay(self, retry: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1, 2, ...)."""
        cap = min(self.max_delay_s, self.base_delay_s * 2 ** (retry - 1))
        delay = cap * (1.0 - self.jitter * rng.random())
        if retry_after_s is not None:  # the server knows best, within our cap
            delay = max(delay, min(retry_after_s, self.max_delay_s))
        return delay


class RateLimiter:
    """Spaces call starts evenly: at most ``per_minute`` starts per minute across all threads."""

    def __init__(self, per_minute: float | None):
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


def select_samples(dataset, splits: Sequence[str] | None = None, selection: str = "all",
                   budget: int | None = None, seed: int = 0) -> np.ndarray:
    """Row indices of the clips to ask about, in dataset order.

    ``splits``: the label-file splits to cover (default: every labelled split; add
    ``"unlabelled"`` for the pool). ``selection="all"`` takes every clip, or a random ``budget``
    of them; ``"balanced"`` takes ``budget`` clips spread evenly over the human labels (round robin
    over classes, random within a class; unlabelled clips form one more group, since their class
    is unknown). The choice depends only on the dataset, the arguments and ``seed``, so a re-run
    with the same budget picks the same clips and skips those already done.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"selection='{selection}' is unknown; use one of {list(SELECTIONS)}")
    if splits is None:
        splits = [s for s in dataset.split_names if s != UNLABELLED]
    elif isinstance(splits, str):
        splits = [splits]
    idx = np.sort(np.concatenate([dataset.indices(s) for s in splits])) if splits else np.zeros(0, int)
    if budget is None or budget >= len(idx):
        if selection == "balanced" and budget is None:
            raise ValueError("selection='balanced' needs a budget (the number of clips to send).")
        return idx
    if budget < 0:
        raise ValueError(f"budget={budget} must be >= 0")
    rng = np.random.default_rng(seed)
    if selection == "all":
        return np.sort(rng.choice(idx, size=budget, replace=False))
    labels = dataset.labels[idx]
    groups = [list(rng.permutation(idx[labels == c])) for c in sorted(set(labels.tolist()))]
    chosen: list[int] = []
    while len(chosen) < budget:
        for group in groups:
            if group and len(chosen) < budget:
                chosen.append(group.pop())
    return np.sort(np.asarray(chosen, dtype=int))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class _Job:
    request: ClipRequest
    key: str
    media: dict  # media_sha256, media_size, media_mtime_ns (None without a clip)


def ask_one(backend: Backend, job: _Job, policy: RetryPolicy, limiter: RateLimiter,
            rng: random.Random, raw_limit: int = 20_000) -> dict:
    """Ask a back-end about one clip until it gives a valid prior or the policy gives up.

    Returns the store record (status ok with the prior, or failed with the reason and raw text).
    Exceptions other than call errors (a bug) propagate and stop the run; what was stored stays.
    """
    request = job.request
    attempts = transient_retries = malformed_retries = 0
    tokens = {"input": None, "output": None}
    started = time.monotonic()

    def record(status: str, **fields) -> dict:
        for text_field in ("error", "raw"):  # a server may echo the key in an error message
            fields[text_field] = redact(fields.get(text_field))
        return {"key": job.key, "name": request.name, "status": status, "backend": backend.kind,
                "model": fields.pop("model", backend.model), "prompt_version": PROMPT_VERSION,
                "attempts": attempts, "input_tokens": tokens["input"], "output_tokens": tokens["output"],
                "elapsed_s": round(time.monotonic() - started, 3), "finished_at": _now(), **job.media,
                "prior": None, "error_kind": None, **fields}

    while True:
        limiter.wait()
        attempts += 1
        call_started = time.monotonic()
        try:
            reply = backend.generate(request)
        except CallError as exc:
            if exc.retryable and transient_retries + 1 < policy.max_attempts:
                transient_retries += 1
                time.sleep(policy.delay(transient_retries, rng, exc.retry_after_s))
                continue
            kind = "transient" if exc.retryable else "permanent"
            note = f" (gave up after {attempts} attempts)" if exc.retryable else ""
            return record(FAILED, error=f"{exc}{note}", error_kind=kind)
        for side, count in (("input", reply.input_tokens), ("output", reply.output_tokens)):
            if count is not None:
                tokens[side] = (tokens[side] or 0) + int(count)
        try:
            answer = reply.answer if isinstance(reply.answer, dict) else parse_answer_text(reply.answer)
            prior = build_prior(answer, name=request.name, classes=request.classes,
                                model=reply.model or backend.model, backend=backend.kind,
                                prompt_version=PROMPT_VERSION,
                                elapsed_s=round(time.monotonic() - call_started, 3),
                                input_tokens=tokens["input"], output_tokens=tokens["output"])
        except MalformedAnswer as exc:
            # a model may answer better next time; a local back-end's dict would come back the same
            if isinstance(reply.answer, str) and malformed_retries < policy.max_malformed_retries:
                malformed_retries += 1
                continue
            finish = f" (finish reason: {reply.finish_reason})" if reply.finish_reason else ""
            raw = reply.answer if isinstance(reply.answer, str) else json.dumps(reply.answer, default=str)
            return record(FAILED, error=f"{exc}{finish} after {attempts} attempts", error_kind="malformed",
                          raw=raw[:raw_limit], model=reply.model or backend.model)
        return record(OK, prior=prior.model_dump(mode="json"), model=prior.model)


def _media_fields(path: Path | None, known: dict[str, tuple]) -> dict:
    """sha256, size and mtime of a clip; the hash is reused from the store when size and mtime match."""
    if path is None:
        return {"media_sha256": None, "media_size": None, "media_mtime_ns": None}
    stat = path.stat()
    cached = known.get(str(path))
    if cached and cached[0] == stat.st_size and cached[1] == stat.st_mtime_ns:
        sha = cached[2]
    else:
        sha = file_sha256(path)
    return {"media_sha256": sha, "media_size": stat.st_size, "media_mtime_ns": stat.st_mtime_ns,
            "media_path": str(path)}


def plan_jobs(dataset, backend: Backend, idx: np.ndarray, clips: dict[str, Path], previous: list[dict],
              show_progress: bool = True):
    """Yield ``(job, already_done)`` per selected clip: its request, store key and media fields
    (``clips``: name -> clip file, the ``clips`` of :func:`find_clips`)."""
    classes = tuple(dataset.classes)
    schema_hash = _sha(json.dumps(answer_json_schema(classes), sort_keys=True))
    settings = backend.settings()
    done_keys = {r["key"] for r in previous if r.get("status") == OK}
    known_media = {r["media_path"]: (r["media_size"], r["media_mtime_ns"], r["media_sha256"])
                   for r in previous if r.get("media_path") and r.get("media_sha256")}
    subtitles = {}  # name -> (chinese, english); one pass instead of a pandas lookup per clip
    if dataset.subtitles is not None:
        frame = dataset.subtitles
        subtitles = dict(zip(frame.index.tolist(), zip(frame["chinese"].astype(str).tolist(),
                                                       frame["english"].astype(str).tolist())))
    for i in progress(idx, desc="checking the prior store", disable=not show_progress or len(idx) < 2000):
        name = str(dataset.names[i])
        chinese, english = subtitles.get(name, ("", ""))
        prompt = build_prompt(classes, english, chinese)
        clip = clips.get(name) if backend.needs_media else None
        request = ClipRequest(name=name, classes=classes, subtitle_english=english,
                              subtitle_chinese=chinese, prompt=prompt, clip_path=clip)
        media = _media_fields(clip, known_media)
        key = cache_key(backend=backend.kind, model=backend.model, prompt_version=PROMPT_VERSION,
                        prompt=_sha(prompt), schema=schema_hash, settings=settings, name=name,
                        media_sha256=media["media_sha256"], fingerprint=backend.fingerprint(request))
        yield _Job(request, key, media), key in done_keys


def find_clips(clips_dir, backend: Backend) -> ClipScan | None:
    """The clip files of ``clips_dir`` when the back-end sends media (None otherwise, or when there
    is no such folder: every clip then fails as 'no_media', naming the fix)."""
    if not (backend.needs_media and clips_dir and Path(clips_dir).is_dir()):
        return None
    return scan_clips(clips_dir)


def no_media_record(job: _Job, backend: Backend, clips_dir, scan: ClipScan | None) -> dict:
    name = job.request.name
    unusable = [f"{path.name} is {why}" for path, why in (scan.unusable if scan else []) if path.stem == name]
    return {"key": job.key, "name": name, "status": FAILED, "backend": backend.kind, "model": backend.model,
            "prompt_version": PROMPT_VERSION, "attempts": 0, "input_tokens": None, "output_tokens": None,
            "elapsed_s": 0.0, "finished_at": _now(), **job.media, "prior": None, "raw": None,
            "error_kind": "no_media",
            "error": f"no clip file for '{name}' in clips_dir={clips_dir} (looked for {name}.mp4 and other "
                     f"video suffixes{''.join(f'; {u}' for u in unusable)}). Fix: pass clips_dir= the folder "
                     "of the clips, or use a back-end that needs no media ('simulated', 'replay')."}


def generate_for_dataset(dataset, backend: Backend, prior_file: str | Path, *,
                         splits: Sequence[str] | None = None, selection: str = "all",
                         budget: int | None = None, clips_dir: str | Path | None = None, seed: int = 0,
                         concurrency: int = 4, requests_per_minute: float | None = None,
                         retry: RetryPolicy | dict | None = None, show_progress: bool = True) -> dict:
    """Make (or complete) the priors of a dataset's clips in the JSONL store ``prior_file``.

    Clips come from ``select_samples(dataset, splits, selection, budget, seed)``; their videos
    from ``clips_dir/<name>.mp4`` when the back-end needs media (a clip without a file is stored
    as a failure that names the fix, without a call). What succeeded before under the same key is
    skipped; everything else is asked, at most ``concurrency`` at a time (local back-ends such as
    'simulated' and 'replay' run in this thread), at most ``requests_per_minute`` call starts per
    minute, retried under ``retry`` (a :class:`RetryPolicy`, or a dict of its fields so a notebook can
    pass literals). The progress bar shows failures, tokens and cost as it goes.
    Returns a summary:
    ``selected``, ``skipped`` (already done), ``done`` and ``failed`` (this run), ``calls``,
    ``input_tokens``, ``output_tokens``, ``estimated_cost_usd`` (None without a price),
    ``elapsed_s``, ``failure_kinds``, a few ``failure_examples`` and, where ``clips_dir`` holds
    entries that look like clips but cannot be read (a dangling link, a directory), ``unusable_clips``.
    """
    started = time.monotonic()
    policy = RetryPolicy(**retry) if isinstance(retry, dict) else retry or RetryPolicy()
    limiter = RateLimiter(requests_per_minute)
    idx = select_samples(dataset, splits, selection, budget, seed)
    summary = {"backend": backend.kind, "model": backend.model, "prompt_version": PROMPT_VERSION,
               "prior_file": str(prior_file), "selected": len(idx), "skipped": 0, "done": 0,
               "failed": 0, "calls": 0, "input_tokens": 0, "output_tokens": 0}
    scan = find_clips(clips_dir, backend)
    if scan and scan.unusable:
        summary["unusable_clips"] = scan.note()
    failure_kinds: dict[str, int] = {}
    failure_examples: list[str] = []

    with PriorStore(prior_file) as store:
        bar = None

        def keep(rec: dict) -> None:
            store.append(rec)
            summary["calls"] += rec["attempts"]
            for side in ("input", "output"):
                summary[f"{side}_tokens"] += rec[f"{side}_tokens"] or 0
            if rec["status"] == OK:
                summary["done"] += 1
            else:
                summary["failed"] += 1
                failure_kinds[rec["error_kind"]] = failure_kinds.get(rec["error_kind"], 0) + 1
                if len(failure_examples) < 5:
                    failure_examples.append(f"{rec['name']}: {rec['error']}")
            if bar is not None:
                bar.set_postfix(running_totals(summary, backend.price_per_million), refresh=False)

        jobs = []
        clips = scan.clips if scan else {}
        for job, done in plan_jobs(dataset, backend, idx, clips, store.records(), show_progress):
            if done:
                summary["skipped"] += 1
            elif backend.needs_media and job.request.clip_path is None:
                keep(no_media_record(job, backend, clips_dir, scan))  # nothing to send: fail without a call
            else:
                jobs.append(job)

        # the bar counts the clips to ask; skipped ones and clips without media are not on it
        bar = progress(total=len(jobs), desc=f"priors from {backend.model}", disable=not show_progress)
        try:
            if backend.inline or concurrency <= 1:
                rng = random.Random(seed)
                for job in jobs:
                    keep(ask_one(backend, job, policy, limiter, rng))
                    bar.update(1)
            else:
                _run_threaded(backend, jobs, policy, limiter, concurrency, seed, keep, bar)
        finally:
            bar.close()

    summary["estimated_cost_usd"] = estimated_cost(summary, backend.price_per_million)
    summary["elapsed_s"] = round(time.monotonic() - started, 2)
    summary["failure_kinds"] = failure_kinds
    summary["failure_examples"] = failure_examples
    return summary


def estimated_cost(totals: dict, price_per_million: tuple[float, float] | None) -> float | None:
    """USD for the tokens counted so far at (input, output) USD per 1M tokens; None without a price."""
    if price_per_million is None:
        return None
    return round(totals["input_tokens"] / 1e6 * price_per_million[0]
                 + totals["output_tokens"] / 1e6 * price_per_million[1], 6)


def running_totals(summary: dict, price_per_million) -> dict:
    """What the progress bar shows after each clip: failures, tokens and the cost so far."""
    shown = {"failed": summary["failed"], "tokens": summary["input_tokens"] + summary["output_tokens"]}
    cost = estimated_cost(summary, price_per_million)
    if cost is not None:
        shown["usd"] = f"{cost:.4f}"
    return shown


def _run_threaded(backend, jobs, policy, limiter, concurrency, seed, keep, bar) -> None:
    """At most ``concurrency`` calls in flight; records are written by this (the main) thread."""
    pending = iter(enumerate(jobs))
    in_flight: set[Future] = set()
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="priors")
    try:
        while True:
            while len(in_flight) < concurrency:
                item = next(pending, None)
                if item is None:
                    break
                k, job = item
                rng = random.Random(seed * 1_000_003 + k)  # jitter independent across threads
                in_flight.add(pool.submit(ask_one, backend, job, policy, limiter, rng))
            if not in_flight:
                break
            finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                keep(future.result())
                bar.update(1)
    finally:
        # on an error or Ctrl-C: drop what has not started; finished calls are already stored
        pool.shutdown(wait=False, cancel_futures=True)
