"""Classical baselines (beyond the paper): logistic regression and an RBF-SVM on the features.

A reference point for stage 1 that needs no tuning by hand: the features of the chosen modalities,
concatenated and standardised (statistics of the training rows only: the scaler sits inside the
Pipeline, so each cross-validation fold refits it on its own training part), with C (and the SVM's
gamma) chosen by stratified cross-validation on the training split, scored by weighted F1
(MER2024's metric). The test split is scored once, by the refitted best model.

Cost on a shared 2-core CPU (benchmarks/bench_baselines.py, bench_real_text.py): the demo's
3,373 x 144 takes 2 s (LR) and 8 s (SVM), MER2023 text (3,373 x 384) 3 s and 35 s. At MER2024 scale
(5,030 x 5,888: CLIP + HuBERT + BLOOM) wider features first go through PCA to ``max_dims``
components (fitted inside the Pipeline, on training rows only, once per fold thanks to the
Pipeline's cache): 27 s (LR) and 163 s (SVM) on random features of that shape; ``max_dims=None``
keeps every dimension.
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from .data import Dataset
from .metrics import classification_scores

METHODS = ("logreg", "svm")


@dataclass
class BaselineRun:
    """One fitted baseline; ``test_scores`` and ``summary()`` as a Stage1Run has them (method_entry)."""
    method: str
    seed: int
    classes: tuple[str, ...]
    test_idx: np.ndarray
    test_probs: np.ndarray | None  # (n_test, C) for logistic regression; None for the SVM (no Platt fit)
    test_scores: dict
    params: dict  # the hyper-parameters cross-validation chose
    cv_weighted_f1: float  # their mean weighted F1 over the folds of the training split
    dims: int  # feature dimension the classifier saw (after PCA, if any)
    seconds: float  # grid search + refit

    def summary(self) -> dict:
        return {"seed": self.seed, "method": self.method, "test": self.test_scores, "params": self.params,
                "cv_weighted_f1": self.cv_weighted_f1, "dims": self.dims, "seconds": self.seconds}


def baseline_grid(method: str, dims: int) -> tuple[object, dict]:
    """The classifier and its small grid. ``gamma``: "scale" is 1/dims on standardised features;
    a tenth of it gives a smoother kernel (wide embeddings are rarely separable at 1/dims alone)."""
    if method == "logreg":
        return LogisticRegression(max_iter=2000), {"clf__C": np.logspace(-3, 2, 6).tolist()}
    if method == "svm":
        return SVC(kernel="rbf"), {"clf__C": [0.1, 1.0, 10.0, 100.0], "clf__gamma": ["scale", 0.1 / dims]}
    raise ValueError(f"method must be one of {METHODS}, not {method!r}")


def run_baseline(ds: Dataset, method: str, train_split: str, test_split: str, *, modalities: Sequence[str] | None = None,
                 seed: int = 0, folds: int = 3, max_dims: int | None = 512, n_jobs: int | None = None,
                 extra_idx: np.ndarray | None = None, extra_labels: np.ndarray | None = None) -> BaselineRun:
    """Fit ``method`` ("logreg" or "svm") on ``train_split`` (plus rows ``extra_idx`` with labels
    ``extra_labels``, as Table 3 adds them) with C (and gamma) chosen by ``folds``-fold stratified
    cross-validation there, and score ``test_split``. Deterministic for a given ``seed``."""
    modalities = list(modalities or ds.modalities)
    train_idx, test_idx = ds.indices(train_split), ds.indices(test_split)
    X = np.concatenate([ds.features[m] for m in modalities], axis=1)  # (N, sum of D_m)
    y = ds.labels.copy()
    if extra_idx is not None and len(extra_idx):
        y[extra_idx] = extra_labels
        train_idx = np.concatenate([train_idx, extra_idx])
    steps = [("scale", StandardScaler())]
    dims = X.shape[1]
    if max_dims is not None and dims > max_dims:
        steps.append(("pca", PCA(max_dims, svd_solver="randomized", random_state=seed)))
        dims = max_dims
    clf, grid = baseline_grid(method, dims)
    start = time.perf_counter()
    # BLAS threads on a shared CPU made lbfgs 10-100x slower (measured), and one thread keeps sums in
    # a fixed order; the cache fits the PCA of each fold once, not once per grid point
    with threadpool_limits(1), tempfile.TemporaryDirectory(prefix="mer-baseline-") as cache:
        pipeline = Pipeline([*steps, ("clf", clf)], memory=cache if len(steps) > 1 else None)
        search = GridSearchCV(pipeline, grid, scoring="f1_weighted", n_jobs=n_jobs,
                              cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
        search.fit(X[train_idx], y[train_idx])
        probs = None
        if hasattr(search.best_estimator_, "predict_proba"):  # columns: the classes the training split has
            probs = np.zeros((len(test_idx), ds.num_classes), np.float32)
            probs[:, search.classes_] = search.predict_proba(X[test_idx])
        predicted = search.predict(X[test_idx])
    seconds = time.perf_counter() - start
    scores = classification_scores(y[test_idx], predicted, ds.classes)
    params = {k.removeprefix("clf__"): v for k, v in search.best_params_.items()}
    return BaselineRun(method, seed, ds.classes, test_idx, probs, scores, params,
                       100.0 * float(search.best_score_), dims, seconds)


def validation_warnings(val_weighted_f1: float, *, baseline_cv_weighted_f1: float | None = None,
                        test_weighted_f1: float | None = None, ceiling: float = 95.0,
                        max_gap: float = 15.0) -> list[str]:
    """Reasons not to trust a validation WF1 (mean over seeds and folds); empty when there are none.

    - above ``ceiling``: MER labels are majority votes over ambiguous clips, so a held-out WF1 near 100
      is not plausible; it means the training split's features know their labels (an extractor fitted
      or fine-tuned on those clips). The classical baselines' cross-validation runs on the same rows and
      is inflated the same way, so only an absolute bound catches this case;
    - more than ``max_gap`` above the baselines' cross-validated WF1 (while those are plausible): the
      features are fine but stage 1's validation is not held out (duplicated clips, a split bug);
    - more than ``max_gap`` above the test WF1 (after the fact, where the test split is labelled).
    Honest runs measured here stay within a few points on both gaps (benchmarks/bench_selection.py,
    bench_real_text.py); the case that motivated this had validation 98-99 and test 76.
    """
    warnings = []
    if val_weighted_f1 > ceiling:
        warnings.append(f"validation WF1 {val_weighted_f1:.1f} is above {ceiling:.0f}, more than emotion labels "
                        "allow: the training split's features likely come from an extractor fitted on those clips, "
                        "so validation cannot select models. Fix: use features from an extractor that never saw "
                        "these labels, or validate on clips it never saw.")
    elif baseline_cv_weighted_f1 is not None and val_weighted_f1 - baseline_cv_weighted_f1 > max_gap:
        warnings.append(f"validation WF1 {val_weighted_f1:.1f} is {val_weighted_f1 - baseline_cv_weighted_f1:.1f} "
                        f"points above the classical baselines' cross-validated {baseline_cv_weighted_f1:.1f}: "
                        "validation rows may not be held out (duplicate clips across the split?).")
    if test_weighted_f1 is not None and val_weighted_f1 - test_weighted_f1 > max_gap:
        warnings.append(f"validation WF1 {val_weighted_f1:.1f} is {val_weighted_f1 - test_weighted_f1:.1f} points "
                        f"above test WF1 {test_weighted_f1:.1f}: validation did not predict test; check how the "
                        "features were extracted (fitted on the training split?) and whether the splits differ.")
    return warnings
