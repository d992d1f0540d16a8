"""Which priors to trust (the paper's "reliable" reasoning priors) and how good c* is zero-shot (Table 1).

A prior is checked three ways:
- valid: it parsed into the schema and its emotion is one of the dataset's classes (``has_prior``);
- AU-consistent: its AUs fit the support set S_c of its own emotion
  (:func:`~mer_lib.priors.facs.au_consistency` >= ``min_au_consistency``, default 0.5: at least
  half of the prototype is reported; a neutral prior must not be dominated by emotional AUs; an
  emotion without a known support set, possible only in label sets beyond MER's, passes);
- agreeing: its c* equals the human label, which only the labelled splits have.

Policies (:data:`POLICIES`) combine them. A label is unknown at test time and in the unlabelled
pool, so a policy that uses the label applies that check only where a human label exists and
falls back to its label-free part elsewhere: ``"agrees_with_label"`` keeps every valid prior of
an unlabelled clip, ``"au_consistent_and_agrees"`` keeps its AU-consistent ones. The default,
``"au_consistent"``, needs no label at all, so stage 2 sees the same filter in training and at
test time (a label-based filter would train the model on priors cleaner than those it is tested
with).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..metrics import classification_scores
from .facs import AU_SUPPORT_SETS, au_consistency
from .schema import Prior

POLICIES = {
    "all": "every valid prior (emotion in the class set)",
    "au_consistent": "valid and AU-consistent with its emotion (no label needed; the default)",
    "agrees_with_label": "valid, and c* equals the human label where one exists",
    "au_consistent_and_agrees": "AU-consistent, and c* equals the human label where one exists",
}
DEFAULT_POLICY = "au_consistent"
DEFAULT_MIN_AU_CONSISTENCY = 0.5


def reliability_table(priors: Mapping[str, Prior], dataset, *, policy: str = DEFAULT_POLICY,
                      min_au_consistency: float = DEFAULT_MIN_AU_CONSISTENCY) -> pd.DataFrame:
    """One row per sample of ``dataset`` (index: ``dataset.names``), with or without a prior.

    Columns: ``split``, ``label`` (class name, "" if unlabelled), ``has_prior`` (a valid prior),
    ``prior_emotion`` ("" if none), ``prior_label`` (index into ``dataset.classes``, -1 if none
    or not a class), ``n_aus``, ``au_consistency`` (NaN if no prior), ``agrees_with_label``
    (nullable boolean, NA where the label or the prior is missing), ``w_audio``, ``w_video``,
    ``w_text``, ``model``, ``reliable`` (under ``policy``); on the demo also
    ``agrees_with_hidden_truth`` for the unlabelled pool (scoring only).
    """
    classes = list(dataset.classes)
    index = {c: i for i, c in enumerate(classes)}
    names = [str(n) for n in dataset.names]
    n = len(names)
    labels = np.asarray(dataset.labels)
    emotion = np.full(n, "", dtype=object)
    prior_label = np.full(n, -1, dtype=np.int64)
    consistency = np.full(n, np.nan)
    n_aus = np.zeros(n, dtype=np.int64)
    weights = np.full((n, 3), np.nan)
    model = np.full(n, "", dtype=object)
    for row, name in enumerate(names):
        prior = priors.get(name)
        if prior is None:
            continue
        emotion[row] = prior.emotion
        model[row] = prior.model
        n_aus[row] = len(prior.visual_aus)
        weights[row] = (prior.w_audio, prior.w_visual, prior.w_text)
        if prior.emotion in index:
            prior_label[row] = index[prior.emotion]
            consistency[row] = au_consistency(prior.aus, prior.emotion, AU_SUPPORT_SETS)
    has_prior = prior_label >= 0
    table = pd.DataFrame({
        "split": np.asarray(dataset.splits, dtype=object),
        "label": [classes[y] if y >= 0 else "" for y in labels],
        "has_prior": has_prior,
        "prior_emotion": emotion,
        "prior_label": prior_label,
        "n_aus": n_aus,
        "au_consistency": np.where(has_prior, consistency, np.nan),
        "agrees_with_label": _agreement(prior_label, labels),
        "w_audio": weights[:, 0], "w_video": weights[:, 1], "w_text": weights[:, 2],
        "model": model,
    }, index=pd.Index(names, name="name"))
    if dataset.hidden_labels is not None:
        table["agrees_with_hidden_truth"] = _agreement(prior_label, np.asarray(dataset.hidden_labels))
    table["reliable"] = reliable_mask(table, policy, min_au_consistency=min_au_consistency)
    table.attrs.update(policy=policy, min_au_consistency=min_au_consistency)
    return table


def _agreement(predicted: np.ndarray, truth: np.ndarray) -> pd.array:
    known = (truth >= 0) & (predicted >= 0)
    values = pd.array(np.where(known, predicted == truth, False), dtype="boolean")
    values[~known] = pd.NA
    return values


def reliable_mask(table: pd.DataFrame, policy: str = DEFAULT_POLICY, *,
                  min_au_consistency: float = DEFAULT_MIN_AU_CONSISTENCY) -> np.ndarray:
    """(N,) bool: which rows of a :func:`reliability_table` hold a prior to trust under ``policy``
    (one of :data:`POLICIES`; label checks apply only where a human label exists, see the module
    docstring)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown reliability policy '{policy}'; choose one of {list(POLICIES)}")
    valid = table["has_prior"].to_numpy(dtype=bool)
    consistency = table["au_consistency"].to_numpy(dtype=float)
    # a class without a known AU support set (label sets beyond MER's) cannot fail the AU check
    consistent = valid & ((consistency >= min_au_consistency) | np.isnan(consistency))
    agrees = table["agrees_with_label"]
    # where the label (or the prior) is unknown the label check cannot fail: NA -> True
    label_ok = agrees.fillna(True).to_numpy(dtype=bool)
    if policy == "all":
        return valid
    if policy == "au_consistent":
        return consistent
    if policy == "agrees_with_label":
        return valid & label_ok
    return consistent & label_ok


def zero_shot_scores(priors: Mapping[str, Prior], dataset, split: str, *, missing: str = "wrong") -> dict:
    """Table 1's LLM rows, measured: c* as a classifier on one split.

    Returns :func:`mer_lib.metrics.classification_scores` (accuracy, weighted F1, macro F1,
    per-class accuracy, confusion over ``dataset.classes``) plus ``coverage`` (share of the
    split's samples with a valid prior, in [0, 1]), ``n_split`` and ``n_without_prior``.

    Clips without a valid prior: with ``missing="wrong"`` (the default, the honest choice for a
    zero-shot row) they stay in the denominator and count as errors, so a back-end cannot look
    better by failing on hard clips; their true labels are tallied in ``without_prior_per_class``
    (the confusion matrix covers clips with a prior only). With ``missing="skip"`` the scores are
    over the covered clips only. The truth is the human label; for the demo's unlabelled pool,
    whose truth is kept aside, the hidden labels are used (``truth`` says which).
    """
    if missing not in ("wrong", "skip"):
        raise ValueError(f"missing='{missing}' is unknown; use 'wrong' or 'skip'")
    idx = dataset.indices(split)
    truth_name = "human labels"
    y_true = np.asarray(dataset.labels)[idx]
    if (y_true < 0).all() and dataset.hidden_labels is not None:
        y_true = np.asarray(dataset.hidden_labels)[idx]
        truth_name = "hidden labels (demo)"
    table = reliability_table(priors, dataset.subset(idx), policy="all")
    y_pred = table["prior_label"].to_numpy()
    covered = y_pred >= 0
    scored = y_true >= 0
    classes = list(dataset.classes)
    if missing == "skip":
        keep = covered & scored
        scores = classification_scores(y_true[keep], y_pred[keep], classes)
    else:
        # a pseudo-class that is never the truth: a missing prior counts as a wrong answer
        no_prior = len(classes)
        scores = classification_scores(y_true[scored], np.where(covered, y_pred, no_prior)[scored],
                                       classes + ["<no prior>"])
        scores["per_class_accuracy"].pop("<no prior>")
        confusion = np.asarray(scores["confusion"])
        scores["confusion"] = confusion[:no_prior, :no_prior].tolist()
        scores["without_prior_per_class"] = dict(zip(classes, confusion[:no_prior, no_prior].tolist()))
    scores.update(split=split, truth=truth_name, missing=missing, n_split=len(idx),
                  n_without_prior=int((~covered).sum()),
                  coverage=float(covered.mean()) if len(idx) else 0.0)
    return scores


def au_frequency(prior_map: Mapping[str, Prior], classes: Sequence[str]) -> dict[str, dict[str, float]]:
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
