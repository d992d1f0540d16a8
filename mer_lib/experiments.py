"""The experiments behind the paper's tables, as functions the notebooks call.

A *method entry* is what results JSON files hold for one row of a table:
``{"label": row name, "test": aggregate over seeds (mer_lib.metrics.aggregate_scores), "runs": [...]}``.
Training runs are checkpointed under ``<run_dir>/checkpoints/<tag>-seed<s>-fold<k>.pt`` keyed by
data, split and configuration, so a model that one notebook trained is loaded, not retrained, when
another notebook asks for the same one (02's "+ BDCL" is 05's AVT row and 03's baseline).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .data import Dataset
from .metrics import aggregate_scores
from .training import Stage1Config, Stage1Run, load_stage1_run, run_stage1, save_stage1_run

if TYPE_CHECKING:
    import pandas as pd


def method_entry(label: str, runs: Sequence, **extra) -> dict:
    """A table row: aggregate of the runs' test scores plus each run's summary."""
    return {"label": label, "test": aggregate_scores([r.test_scores for r in runs]),
            "runs": [r.summary() for r in runs], **extra}


def stage1_over_seeds(ds: Dataset, cfg: Stage1Config, train_split: str, test_split: str, seeds: Sequence[int],
                      checkpoint_dir: Path, tag: str, **kwargs) -> list[Stage1Run]:
    """``run_stage1`` for each seed; each finished run is also saved whole as ``<tag>-seed<s>.pt``."""
    runs = []
    for seed in seeds:
        run = run_stage1(ds, cfg, train_split, test_split, seed, checkpoint_dir=checkpoint_dir, tag=tag, **kwargs)
        save_stage1_run(run, Path(checkpoint_dir) / f"{tag}-seed{seed}.pt", ds)
        runs.append(run)
    return runs


def saved_stage1_runs(ds: Dataset, checkpoint_dir: Path, tags: Sequence[str], seeds: Sequence[int]) -> tuple[str, list[Stage1Run]] | None:
    """The first tag whose runs exist for every seed (e.g. 03's "bdcl_pl", else 02's "bdcl")."""
    for tag in tags:
        runs = [load_stage1_run(Path(checkpoint_dir) / f"{tag}-seed{s}.pt", ds) for s in seeds]
        if all(r is not None for r in runs):
            return tag, runs
    return None


# --- Table 3: extending the labelled set with pseudo-labelled clips ----------------------------------

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


def summary_frame(methods: dict) -> pd.DataFrame:
    """Method entries as a small table of mean ± std (accuracy, weighted F1, macro F1) for display."""
    import pandas as pd

    def cell(stat):
        if stat["mean"] is None:
            return "–"
        return f"{stat['mean']:.1f}" + (f" ± {stat['std']:.1f}" if stat["values"] and len(stat["values"]) > 1 else "")

    rows = {e["label"]: {"Acc": cell(e["test"]["accuracy"]), "WF1": cell(e["test"]["weighted_f1"]),
                         "macro F1": cell(e["test"]["macro_f1"]), "seeds": e["test"]["n_seeds"]}
            for e in methods.values()}
    return pd.DataFrame.from_dict(rows, orient="index")


# --- stage 2 inputs and runs -------------------------------------------------------------------------

LABEL_FREE_POLICIES = ("all", "au_consistent")  # usable at test time: they never read a human label


def prior_inputs(ds: Dataset, prior_file: str | Path | None, *, encoder: str | None = None,
                 cache_dir: str | Path | None = None, progress_bar: bool = True):
    """``(priors, reliability table, PriorInputs)`` for a dataset, or None when there are no priors.

    The prior texts' embeddings are cached beside the prior file (``.prior-embeddings/``), or in the
    user cache when that folder is read-only: priors are made once and reused by every run.
    """
    from . import io
    from . import priors as P
    from .prior_tuning import build_prior_inputs

    if not prior_file or not Path(prior_file).exists():
        return None
    prior_map = P.load_priors(prior_file, classes=ds.classes)
    if not prior_map:
        return None
    table = P.reliability_table(prior_map, ds)
    if cache_dir is None:
        cache_dir = io.cache_dir(Path(prior_file).parent / ".prior-embeddings", "prior-embeddings")
    inputs = build_prior_inputs(ds, {n: P.prior_texts(p) for n, p in prior_map.items()},
                                {n: P.prior_weights(p) for n, p in prior_map.items()}, cache_dir,
                                encoder=encoder, progress_bar=progress_bar)
    return prior_map, table, inputs


def stage2_over_seeds(ds: Dataset, stage1_runs: Sequence[Stage1Run], inputs, cfg, table, *,
                      train_policy: str, test_policy: str, checkpoint_dir: Path, tag: str,
                      shuffled: bool = False) -> list:
    """Stage 2 on each seed's stage-1 run. Priors pass ``train_policy`` in training (it may use the
    human labels) and ``test_policy`` for validation and test (it must not). ``shuffled``: every
    clip gets another clip's prior (the control)."""
    from . import priors as P
    from .prior_tuning import run_stage2

    if test_policy not in LABEL_FREE_POLICIES:
        raise ValueError(f"test-time prior policy '{test_policy}' reads the human label, which a test clip "
                         f"does not have (here it would leak the answer). Use one of {LABEL_FREE_POLICIES}.")
    train_mask, eval_mask = P.reliable_mask(table, train_policy), P.reliable_mask(table, test_policy)
    runs = []
    for s1 in stage1_runs:
        used = inputs.shuffled(seed=s1.seed) if shuffled else inputs
        runs.append(run_stage2(ds, s1, used, cfg, train_available=train_mask, eval_available=eval_mask,
                               checkpoint_dir=checkpoint_dir, tag=tag))
    return runs


def coverage_summary(runs: Sequence) -> dict:
    """Prior coverage per split, averaged over seeds (it is the same for every seed)."""
    return {k: float(np.mean([r.coverage[k] for r in runs])) for k in runs[0].coverage} if runs else {}


def au_frequency(prior_map: dict, classes: Sequence[str]) -> dict[str, dict[str, float]]:
    """For each emotion, the share of its priors that report each AU (Figure 1's heat map)."""
    counts: dict[str, dict[str, int]] = {c: {} for c in classes}
    totals = {c: 0 for c in classes}
    for prior in prior_map.values():
        if prior.emotion not in counts:
            continue
        totals[prior.emotion] += 1
        for au in {a.au for a in prior.visual_aus}:
            counts[prior.emotion][str(au)] = counts[prior.emotion].get(str(au), 0) + 1
    return {c: {au: n / totals[c] for au, n in sorted(counts[c].items(), key=lambda kv: int(kv[0]))}
            for c in classes if totals[c]}


def prediction_table(ds: Dataset, stage1_run: Stage1Run, stage2_run, inputs, eval_available: np.ndarray,
                     rows: np.ndarray, cfg) -> pd.DataFrame:
    """Per-clip predictions for the inspector: ``name, split, label, stage1_<class>..., stage2_<class>...``
    (probabilities of one seed's models; stage 2 with the priors that ``eval_available`` lets in)."""
    import pandas as pd

    from .prior_tuning import predict_stage2
    from .training import feature_tensors, predict_run

    p1 = predict_run(ds, stage1_run, rows)
    used = inputs.with_available(eval_available)
    p2 = []
    for fit in stage2_run.folds:
        feats = feature_tensors(ds, next(fit.model.parameters()).device, fit.model.modalities)
        p2.append(predict_stage2(fit.model, feats, used, rows, cfg))
    p2 = np.mean(p2, axis=0)
    table = pd.DataFrame({"name": ds.names[rows], "split": ds.splits[rows],
                          "label": [ds.classes[y] if y >= 0 else "" for y in ds.labels[rows]],
                          "has_prior": used.available[rows]})
    for prefix, probs in (("stage1", p1), ("stage2", p2)):
        for i, c in enumerate(ds.classes):
            table[f"{prefix}_{c}"] = probs[:, i].round(5)
    return table
