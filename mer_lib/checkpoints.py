"""Run keys, seeding and resumable checkpoints, shared by stage 1 and stage 2.

A training run writes an atomic checkpoint after every epoch (model, optimiser, RNG states and the
loop's own state) under a *run key*: a fingerprint of everything that decides its result. A run
resumes from a checkpoint only when the keys match, so a killed run continues where it stopped and
a run whose data or settings changed starts afresh instead of reporting a stale model.
"""
from __future__ import annotations

import hashlib
import os
import random
import time
from pathlib import Path

import numpy as np
import torch

from . import io


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_key(*parts) -> str:
    """A fingerprint of arrays and strings, for matching a checkpoint to the run that wrote it."""
    h = hashlib.sha1()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(repr(part).encode())
        h.update(b"|")
    return h.hexdigest()


def state_fingerprint(model: torch.nn.Module) -> str:
    """A hash of a model's weights: a run built on a model (stage 2 on stage 1) is keyed by it."""
    h = hashlib.sha1()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def checkpoint_interval() -> float:
    """Seconds between checkpoints of a running fit (``MER_LIB_CHECKPOINT_INTERVAL``, default 30): a kill
    loses at most that much training, and short epochs do not spend their time writing checkpoints
    (on the demo, one per epoch took a fifth of stage 1's time). The last epoch is always written."""
    return float(os.environ.get("MER_LIB_CHECKPOINT_INTERVAL", "30"))


class Checkpointer:
    """Writes a fit's checkpoint at most every :func:`checkpoint_interval` seconds, and at its end."""

    def __init__(self, path: Path | None, key: str):
        self.path, self.key = path, key
        self.interval, self.last = checkpoint_interval(), time.monotonic()

    def save(self, model, opt, rng: np.random.Generator, state: dict, final: bool) -> None:
        if final or time.monotonic() - self.last >= self.interval:
            save_checkpoint(self.path, self.key, model, opt, rng, state)
            self.last = time.monotonic()


def save_checkpoint(path: Path | None, key: str, model, opt, rng: np.random.Generator, state: dict) -> None:
    """Model, optimiser, RNG states and the loop's own state, written atomically (no-op without path)."""
    if path is None:
        return
    with io.atomic_path(path, suffix=".pt") as tmp:
        torch.save({"key": key, "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                    "state": state}, tmp)


def load_checkpoint(path: Path | None, key: str, model, opt, rng: np.random.Generator) -> dict | None:
    """Restore a checkpoint written by the same run (same key) and return its loop state; else None."""
    if path is None or not Path(path).exists():
        return None
    saved = torch.load(path, map_location=next(model.parameters()).device, weights_only=False)
    if saved.get("key") != key:
        return None
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    rng.bit_generator.state = saved["numpy_rng"]
    torch.set_rng_state(saved["torch_rng"])
    return saved["state"]
