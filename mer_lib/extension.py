"""Extending the labelled set (the paper's Table 3 asks which clips to add, and how many).

``extension_set`` picks clips to add by strategy: *random*, *matched* (the labelled set's class
shares), *balanced* (even across classes) or *all*; ``pseudo_label_extension`` runs the strategies
with the base stage-1 model's confident pseudo-labels as the added labels, over seeds.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .data import Dataset
from .stage1 import Stage1Config, predict_run, run_stage1, stage1_over_seeds
from .tables import method_entry


EXTENSION_STRATEGIES = ("random", "matched", "balanced", "all")


def extension_set(probs: np.ndarray, pool_idx: np.ndarray, strategy: str, n: int, class_share: np.ndarray,
                  threshold: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and labels of pseudo-labelled pool clips to add to the labelled set.

    Only predictions with confidence >= ``threshold`` are candidates. ``random``: n of them at
    random; ``matched``: n split across classes in the labelled set's class shares; ``balanced``:
    n split evenly across classes; ``all``: every candidate. Within a class the most confident go
    first; a class with too few candidates gives what it has.
    """
    if strategy not in EXTENSION_STRATEGIES:
        raise ValueError(f"unknown extension strategy {strategy!r}; choose from {EXTENSION_STRATEGIES}")
    labels, conf = probs.argmax(1), probs.max(1)
    candidates = np.flatnonzero(conf >= threshold)
    if strategy == "all":
        pick = candidates
    elif strategy == "random":
        rng = np.random.default_rng(seed)
        pick = rng.choice(candidates, size=min(n, len(candidates)), replace=False)
    else:
        C = probs.shape[1]
        share = np.asarray(class_share, float) if strategy == "matched" else np.full(C, 1.0 / C)
        quota = np.floor(share / share.sum() * n).astype(int)
        quota[np.argsort(-share)[: n - quota.sum()]] += 1  # hand out the rounding remainder
        pick = []
        for c in range(C):
            of_c = candidates[labels[candidates] == c]
            pick.append(of_c[np.argsort(-conf[of_c], kind="stable")[: quota[c]]])
        pick = np.concatenate(pick)
    pick = np.sort(pick)
    return pool_idx[pick], labels[pick]


def pseudo_label_extension(ds: Dataset, cfg: Stage1Config, train_split: str, test_split: str, seeds: Sequence[int],
                           checkpoint_dir: Path | None, *, size: int, threshold: float) -> dict[str, dict]:
    """Method entries ``{"base", "random", "matched", "balanced", "all"}``: stage 1 (``cfg``) on the
    labelled set alone, then with ``size`` pool clips added under each strategy, labelled by the base
    model of the same seed (confidence >= ``threshold``)."""
    pool = np.flatnonzero(ds.labels < 0)
    class_share = np.bincount(ds.labels[ds.indices(train_split)], minlength=ds.num_classes)
    base = stage1_over_seeds(ds, cfg, train_split, test_split, seeds, checkpoint_dir, tag="bdcl")
    entries = {"base": method_entry("Labelled set only", base, added=0)}
    for strategy in EXTENSION_STRATEGIES:
        runs, added = [], []
        for run in base:
            rows, labels = extension_set(predict_run(ds, run, pool), pool, strategy, size, class_share, threshold,
                                         run.seed)
            added.append(len(rows))
            runs.append(run_stage1(ds, cfg, train_split, test_split, run.seed, extra_idx=rows, extra_labels=labels,
                                   checkpoint_dir=checkpoint_dir, tag=f"extend_{strategy}"))
        label = "+all confident" if strategy == "all" else f"+{size} {strategy}"
        entries[strategy] = method_entry(label, runs, added=int(np.mean(added)))
    return entries
