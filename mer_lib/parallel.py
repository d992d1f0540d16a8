"""Independent trainings side by side: one worker process per CPU core, one thread each.

Training runs single-threaded on the CPU (:func:`mer_lib.devices.reproducible`: the same seed gives the
same model), so on a machine with several cores the seeds, folds and table rows that do not depend on
each other are trained in parallel processes instead. Each worker gets the dataset once, runs the same
code on the same inputs and returns the same result as a run in this process would (checkpoints
included), so the numbers do not depend on the number of workers. On a GPU everything stays in this
process: there the batched kernels already keep the device busy.

``MER_LIB_WORKERS`` sets the number of workers (1: everything in this process).
"""
from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from .data import Dataset

MAX_SHARED_BYTES = 1 << 30  # datasets with more features than this are not copied into workers (memory)

_pool: ProcessPoolExecutor | None = None
_pool_dataset: str | None = None  # fingerprint of the dataset the workers hold
_worker_dataset: Dataset | None = None  # in a worker: the dataset it was given


def workers(device: str = "cpu") -> int:
    """How many processes train at once: ``MER_LIB_WORKERS``, else the usable CPU cores (1 on a GPU)."""
    if os.environ.get("MER_LIB_WORKERS"):
        return max(1, int(os.environ["MER_LIB_WORKERS"]))
    if device not in ("cpu", "") and not device.startswith("cpu"):
        from .devices import resolve_device
        if resolve_device(device).type != "cpu":
            return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def map_trainings(fn: Callable[..., Any], ds: Dataset, jobs: Sequence[tuple], device: str = "auto") -> list:
    """``[fn(ds, *job) for job in jobs]``, in worker processes where that pays (several jobs, several
    cores, a CPU device, a dataset small enough to copy). ``fn`` must be a module-level function."""
    n = min(workers(device), len(jobs))
    if n <= 1 or sum(a.nbytes for a in ds.features.values()) > MAX_SHARED_BYTES:
        return [fn(ds, *job) for job in jobs]
    pool = _workers_for(ds, n)
    return list(pool.map(_run, [(fn, job) for job in jobs]))


def _workers_for(ds: Dataset, n: int) -> ProcessPoolExecutor:
    """The process pool, started once and kept; started again for another dataset."""
    global _pool, _pool_dataset
    if _pool is not None and (_pool_dataset != ds.fingerprint or _pool._max_workers < n):
        _pool.shutdown(cancel_futures=True)
        _pool = None
    if _pool is None:
        context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
        if os.name == "posix":
            context.set_forkserver_preload(["mer_lib.stage1", "mer_lib.stage2"])  # torch imported once
        _pool = ProcessPoolExecutor(max_workers=n, mp_context=context, initializer=_receive, initargs=(ds,))
        _pool_dataset = ds.fingerprint
    return _pool


def _receive(ds: Dataset) -> None:
    global _worker_dataset
    # Ctrl-C, a notebook's "interrupt kernel" and a kernel's shutdown signal the whole process group:
    # the parent handles them (its pool shuts the workers down); a worker would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["MER_LIB_WORKERS"] = "1"  # a worker trains in itself
    _worker_dataset = ds


def _run(task: tuple) -> Any:
    fn, job = task
    return fn(_worker_dataset, *job)
