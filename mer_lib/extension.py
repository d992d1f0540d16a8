"""Extending the labelled set: the paper's Table 3, and a pseudo-label variant beyond the paper.

The paper adds *labelled* clips from outside the benchmark (MER2023 clips annotated by Emotion-LLaMA,
MERR-style) to its 4,024-clip training set, choosing them by strategy:
- *random*: N clips at random;
- *matched*: N clips that keep the training set's label ratio;
- *balanced*: N clips chosen so the combined label ratio is as even as the pool allows;
- *all*: every clip.
N is the paper's +1K, scaled to the training set's size (1000 / 4024 of it) unless given.
:func:`external_extension` runs the strategies on the ``extra_labelled`` split (``extra_label_file``);
:func:`pseudo_label_extension` runs them on the unlabelled pool labelled by the base model's confident
pseudo-labels instead (this project's extension, its own table).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .baselines import run_baseline
from .data import EXTRA, Dataset
from .metrics import method_entry
from .parallel import map_trainings
from .stage1 import Stage1Config, Stage1Run, predict_run, run_stage1_job, stage1_over_seeds

EXTENSION_STRATEGIES = ("random", "matched", "balanced", "all")
PAPER_BASE_SIZE, PAPER_ADDED = 4024, 1000  # the paper's training-set size and its "+1K"


def select_additions(labels: np.ndarray, rank: np.ndarray, strategy: str, n: int, base_counts: np.ndarray,
                     seed: int = 0) -> np.ndarray:
    """Positions (into ``labels``) of the candidates to add. Within a class, lower ``rank`` goes first
    (e.g. minus the confidence); ``base_counts`` (C,) are the training set's class counts.

    ``matched`` hands out clips one at a time to the class furthest below its share of the base set
    (so the added clips keep the base ratio; a class that runs out leaves its share to the others);
    ``balanced`` to the class whose combined count (base + added) is lowest.
    """
    if strategy not in EXTENSION_STRATEGIES:
        raise ValueError(f"unknown extension strategy {strategy!r}; choose from {EXTENSION_STRATEGIES}")
    if strategy == "all":
        return np.arange(len(labels))
    if strategy == "random":
        return np.sort(np.random.default_rng(seed).choice(len(labels), size=min(n, len(labels)), replace=False))
    C = len(base_counts)
    by_class = [np.flatnonzero(labels == c)[np.argsort(rank[labels == c], kind="stable")] for c in range(C)]
    available = np.array([len(b) for b in by_class])
    share = base_counts / max(base_counts.sum(), 1)
    take = np.zeros(C, dtype=int)
    for _ in range(min(n, int(available.sum()))):
        open_ = take < available
        if strategy == "balanced":
            need = np.where(open_, base_counts + take, np.inf)  # the emptiest class first
        else:
            need = np.where(open_ & (share > 0), -(share * (take.sum() + 1) - take), np.inf)  # furthest below share
        if not np.isfinite(need).any():
            break
        take[int(np.argmin(need))] += 1
    return np.sort(np.concatenate([b[:k] for b, k in zip(by_class, take)]))


def default_size(n_train: int) -> int:
    """The paper's "+1K" on its 4,024-clip training set, scaled to a training set of ``n_train`` clips."""
    return round(PAPER_ADDED / PAPER_BASE_SIZE * n_train)


def external_extension(ds: Dataset, cfg: Stage1Config, train_split: str, test_split: str, seeds: Sequence[int],
                       checkpoint_dir: Path | None, *, size: int = 0) -> dict[str, dict]:
    """Table 3: method entries ``{"base", "random", "matched", "balanced", "all"}``: stage 1 (``cfg``) on
    the training split, then with ``size`` clips of the external labelled set added (0: the paper's
    +1K, scaled), each under its strategy. Entries carry ``added`` and ``size`` (the training-set size)."""
    extra = ds.indices(EXTRA)
    base = stage1_over_seeds(ds, cfg, train_split, test_split, seeds, checkpoint_dir, tag="bdcl")
    rank = np.random.default_rng(0).permutation(len(extra))  # labelled clips: no order of preference

    def additions(run: Stage1Run, strategy: str, n: int):
        pick = select_additions(ds.labels[extra], rank, strategy, n, _base_counts(ds, run), run.seed)
        return extra[pick], ds.labels[extra[pick]]

    return _strategy_rows(ds, cfg, train_split, test_split, base, checkpoint_dir, size, additions, "extra",
                          lambda n, strategy: "+all" if strategy == "all" else f"+{n} {strategy}", baseline=True)


def pseudo_label_extension(ds: Dataset, cfg: Stage1Config, train_split: str, test_split: str, seeds: Sequence[int],
                           checkpoint_dir: Path | None, *, size: int = 0, threshold: float = 0.9) -> dict[str, dict]:
    """Beyond the paper: as :func:`external_extension`, with pool clips labelled by the base model of the
    same seed (confidence >= ``threshold``; the most confident first) instead of labelled clips."""
    pool = np.flatnonzero(ds.labels < 0)
    base = stage1_over_seeds(ds, cfg, train_split, test_split, seeds, checkpoint_dir, tag="bdcl")

    def additions(run: Stage1Run, strategy: str, n: int):
        probs = predict_run(ds, run, pool)
        confident = np.flatnonzero(probs.max(1) >= threshold)
        labels, rank = probs[confident].argmax(1), -probs[confident].max(1)
        pick = select_additions(labels, rank, strategy, n, _base_counts(ds, run), run.seed)
        return pool[confident[pick]], labels[pick]

    return _strategy_rows(ds, cfg, train_split, test_split, base, checkpoint_dir, size, additions, "pseudo",
                          lambda n, strategy: "+all confident" if strategy == "all" else f"+{n} {strategy}")


def _base_counts(ds: Dataset, run: Stage1Run) -> np.ndarray:
    """Class counts of the rows the base model trained on (its first fold's training rows)."""
    return np.bincount(ds.labels[run.splits[0][0]], minlength=ds.num_classes)


def _strategy_rows(ds, cfg, train_split, test_split, base, checkpoint_dir, size, additions, tag, label,
                   baseline: bool = False) -> dict:
    n_train = int(np.mean([len(tr) for tr, _ in base[0].splits]))
    size = size or default_size(n_train)
    entries = {"base": method_entry("Training set only", base, added=0, size=n_train)}
    jobs = []
    for strategy in EXTENSION_STRATEGIES:
        for run in base:
            rows, labels = additions(run, strategy, size)
            jobs.append((cfg, train_split, test_split, run.seed, {"extra_idx": rows, "extra_labels": labels,
                                                                  "checkpoint_dir": checkpoint_dir,
                                                                  "tag": f"{tag}_{strategy}"}))
    runs = map_trainings(run_stage1_job, ds, jobs, cfg.device)  # every strategy and seed at once
    for i, strategy in enumerate(EXTENSION_STRATEGIES):
        part = jobs[i * len(base):(i + 1) * len(base)]
        n_added = int(np.mean([len(job[4]["extra_idx"]) for job in part]))
        entries[strategy] = method_entry(label(n_added, strategy), runs[i * len(base):(i + 1) * len(base)],
                                         added=n_added, size=n_train + n_added)
    # the classical baseline on the same training sets (the whole training split; the first seed's additions);
    # not for the pseudo-label variant, whose "+all" adds the whole confident pool (100k clips on MER2024)
    n_split = len(ds.indices(train_split))
    strategies = [("base", None), *((s, jobs[i * len(base)]) for i, s in enumerate(EXTENSION_STRATEGIES))]
    for strategy, job in strategies if baseline else ():
        added = {} if job is None else {k: job[4][k] for k in ("extra_idx", "extra_labels")}
        lr = run_baseline(ds, "logreg", train_split, test_split, seed=base[0].seed, **added)
        n_added = len(added.get("extra_idx", ()))
        entries[f"{strategy}_logreg"] = method_entry(
            "LR (classical baseline), " + ("training set only" if job is None else label(n_added, strategy)), [lr],
            added=n_added, size=n_split + n_added)
    return entries
