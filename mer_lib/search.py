"""MERTools' random hyper-parameter search for stage 1, on the training split only.

MERTools (MERBench ``toolkit/model-tune.yaml``, model ``attention``) draws each setting at random
from a short list: hidden_dim in {64, 128, 256}, dropout in {0.2, 0.3, 0.4, 0.5}, lr in
{1e-3, 1e-4}; each draw is trained with the usual protocol (``cfg.folds`` folds of the training
split, or one held-out part) and the draw whose folds reach the best mean validation WF1 is kept.
Here the latent space is as wide as the encoders (``latent_dim = hidden_dim``; MERTools has no
projector). Only training rows are read, never the test split's features or labels.

Every fold model is checkpointed under the same tag and seed as :func:`mer_lib.stage1.run_stage1`
names them, so a rerun of the search is free, and so is the final run of the chosen config::

    chosen, draws = random_search(ds, cfg, "train_corpus", n_draws=10, checkpoint_dir=ckpt)
    run = run_stage1(ds, chosen, "train_corpus", "test3_corpus", 0, checkpoint_dir=ckpt, tag="search")
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .data import Dataset
from .stage1 import Stage1Config, fit, validation_splits

SEARCH_SPACE = {"hidden_dim": (64, 128, 256), "dropout": (0.2, 0.3, 0.4, 0.5), "lr": (1e-3, 1e-4)}  # [MERTools]


@dataclass
class Draw:
    settings: dict  # hidden_dim, dropout, lr
    val_weighted_f1: float  # mean over the folds of each fold's selected validation WF1
    fold_val_weighted_f1: list[float]
    best_epoch: list[int]  # per fold


def draw_settings(n_draws: int, seed: int = 0) -> list[dict]:
    """``n_draws`` settings, each value drawn uniformly from SEARCH_SPACE (repeats possible, as in MERTools)."""
    rng = np.random.default_rng(seed)
    return [{k: values[rng.integers(len(values))] for k, values in SEARCH_SPACE.items()} for _ in range(n_draws)]


def with_settings(cfg: Stage1Config, settings: dict) -> Stage1Config:
    h = int(settings["hidden_dim"])
    return replace(cfg, lr=float(settings["lr"]),
                   model=replace(cfg.model, hidden_dim=h, latent_dim=h, dropout=float(settings["dropout"])))


def random_search(ds: Dataset, cfg: Stage1Config, train_split: str, *, n_draws: int = 10, seed: int = 0,
                  modalities=None, checkpoint_dir: Path | None = None,
                  tag: str = "search") -> tuple[Stage1Config, list[Draw]]:
    """The config of the draw with the best mean validation WF1 (the first such draw on a tie), and
    a record of every draw. ``seed`` seeds the draws, the validation splits and the training."""
    train_idx = ds.indices(train_split)
    pool_idx = np.flatnonzero(ds.labels < 0) if cfg.pseudo_labels else None
    draws = []
    for i, settings in enumerate(draw_settings(n_draws, seed)):
        draw_cfg = with_settings(cfg, settings)
        splits = validation_splits(ds.labels, train_idx, draw_cfg, seed)
        fits = [fit(ds, tr, va, draw_cfg, seed + 1000 * k, pool_idx=pool_idx, modalities=modalities,
                    checkpoint_dir=checkpoint_dir, tag=f"{tag}-seed{seed}-fold{k}",
                    desc=f"{tag} draw {i + 1}/{n_draws}" + (f" fold {k + 1}/{len(splits)}" if len(splits) > 1 else ""))
                for k, (tr, va) in enumerate(splits)]
        scores = [f.best_val_f1 for f in fits]
        draws.append(Draw(settings, float(np.mean(scores)), scores, [f.best_epoch for f in fits]))
    best = int(np.argmax([d.val_weighted_f1 for d in draws]))
    return with_settings(cfg, draws[best].settings), draws
