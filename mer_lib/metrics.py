"""Classification metrics as MER2024 ranks them (weighted F1 first), in percent."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score


def classification_scores(y_true, y_pred, classes: Sequence[str]) -> dict:
    """Accuracy, weighted F1 (MER2024's ranking metric), macro F1, per-class accuracy (recall) and
    the confusion matrix (rows: truth, columns: prediction), all in percent except the counts.

    Rows with a negative true label (unlabelled) are ignored; a class absent from ``y_true`` gets
    ``None`` as its accuracy rather than a misleading 0.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has {y_pred.shape}")
    keep = y_true >= 0
    y_true, y_pred = y_true[keep], y_pred[keep]
    labels = np.arange(len(classes))
    if len(y_true) == 0:
        return {"n": 0, "accuracy": None, "weighted_f1": None, "macro_f1": None,
                "per_class_accuracy": {c: None for c in classes},
                "confusion": np.zeros((len(classes),) * 2, dtype=int).tolist()}
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    support = cm.sum(axis=1)
    per_class = {c: (100.0 * cm[i, i] / support[i] if support[i] else None) for i, c in enumerate(classes)}
    return {
        "n": len(y_true),
        "accuracy": 100.0 * accuracy_score(y_true, y_pred),
        "weighted_f1": 100.0 * f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0),
        "macro_f1": 100.0 * f1_score(y_true, y_pred, labels=labels[support > 0], average="macro",
                                     zero_division=0),
        "per_class_accuracy": per_class,
        "confusion": cm.tolist(),
    }


def mean_std(values: Sequence[float | None]) -> tuple[float, float] | tuple[None, None]:
    """Mean and sample standard deviation over seeds (std 0 for a single run; None if no values)."""
    vals = np.asarray([v for v in values if v is not None], dtype=float)
    if len(vals) == 0:
        return None, None
    return float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0


def aggregate_scores(runs: Sequence[dict]) -> dict:
    """Mean, sample std and per-seed values of ``classification_scores`` dicts from several seeds.

    ``{"n_seeds", "accuracy": {"mean", "std", "values"}, "weighted_f1": ..., "macro_f1": ...,
    "per_class_accuracy": {class: {"mean", "std", "values"}}, "confusion": summed over seeds}``
    """
    def stat(values):
        mean, std = mean_std(values)
        return {"mean": mean, "std": std, "values": list(values)}

    classes = list(runs[0]["per_class_accuracy"]) if runs else []
    return {
        "n_seeds": len(runs),
        **{k: stat([r[k] for r in runs]) for k in ("accuracy", "weighted_f1", "macro_f1")},
        "per_class_accuracy": {c: stat([r["per_class_accuracy"][c] for r in runs]) for c in classes},
        "confusion": np.sum([r["confusion"] for r in runs], axis=0).tolist() if runs else [],
    }


def method_entry(label: str, runs: Sequence, **extra) -> dict:
    """A METHOD ENTRY (a table row in a results JSON): the runs' test scores aggregated over seeds,
    each run's summary, and any ``extra`` fields (``coverage``, ``added``)."""
    return {"label": label, "test": aggregate_scores([r.test_scores for r in runs]),
            "runs": [r.summary() for r in runs], **extra}
