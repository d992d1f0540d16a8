"""Classical baselines: fitted on the training split only, deterministic, rows for the tables; and the
check that tells a user when validation is too good to be true."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mer_lib.baselines import baseline_grid, run_baseline, validation_warnings
from mer_lib.data import load_dataset
from mer_lib.data.demo import FEATURES, TEST_SPLIT, TRAIN_SPLIT
from mer_lib.tables import method_entry


@pytest.fixture(scope="module")
def ds(tiny_demo):
    return load_dataset(tiny_demo, FEATURES, progress=False)


def with_test_noise(ds, seed=0):
    """The dataset with every test row's features replaced by noise and its label changed."""
    test, rng = ds.indices(TEST_SPLIT), np.random.default_rng(seed)
    features = {m: x.copy() for m, x in ds.features.items()}
    for x in features.values():
        x[test] = rng.normal(size=(len(test), x.shape[1])) * 100
    labels = ds.labels.copy()
    labels[test] = (labels[test] + 1) % ds.num_classes
    return replace(ds, features=features, labels=labels)


@pytest.mark.parametrize("method", ["logreg", "svm"])
def test_baseline_learns_from_the_training_split_only(ds, method):
    run = run_baseline(ds, method, TRAIN_SPLIT, TEST_SPLIT)
    assert run.test_scores["weighted_f1"] > 50  # six classes: chance is ~17
    grid = baseline_grid(method, run.dims)[1]
    assert all(run.params[k.removeprefix("clf__")] in v for k, v in grid.items())
    assert (run.test_probs is not None) == (method == "logreg")
    if run.test_probs is not None:
        np.testing.assert_allclose(run.test_probs.sum(1), 1.0, rtol=1e-5)

    again = run_baseline(ds, method, TRAIN_SPLIT, TEST_SPLIT)
    assert again.test_scores == run.test_scores and again.params == run.params  # deterministic
    noisy = run_baseline(with_test_noise(ds), method, TRAIN_SPLIT, TEST_SPLIT)
    # the scaler, the grid search and the fit never saw a test row
    assert noisy.params == run.params and noisy.cv_weighted_f1 == run.cv_weighted_f1

    entry = method_entry(method, [run, again])
    assert entry["test"]["weighted_f1"]["mean"] == pytest.approx(run.test_scores["weighted_f1"])
    assert entry["runs"][0]["params"] == run.params


def test_pca_caps_wide_features(ds):
    run = run_baseline(ds, "logreg", TRAIN_SPLIT, TEST_SPLIT, max_dims=8)
    assert run.dims == 8 and sum(ds.dims.values()) > 8 and run.test_scores["weighted_f1"] > 40


def test_features_that_know_their_training_labels_are_flagged(ds):
    """An extractor fitted on the training clips: their features carry the label, the test rows' do not."""
    train = ds.indices(TRAIN_SPLIT)
    leaky = {m: x.copy() for m, x in ds.features.items()}
    leaky["text"][train, :ds.num_classes] += 5 * np.eye(ds.num_classes, dtype=np.float32)[ds.labels[train]]
    leaked = run_baseline(replace(ds, features=leaky), "logreg", TRAIN_SPLIT, TEST_SPLIT)
    honest = run_baseline(ds, "logreg", TRAIN_SPLIT, TEST_SPLIT)
    assert leaked.cv_weighted_f1 > 95 and leaked.test_scores["weighted_f1"] < leaked.cv_weighted_f1 - 15
    warnings = validation_warnings(leaked.cv_weighted_f1, test_weighted_f1=leaked.test_scores["weighted_f1"])
    assert len(warnings) == 2 and "fitted on those clips" in warnings[0] and "did not predict test" in warnings[1]
    assert validation_warnings(honest.cv_weighted_f1, baseline_cv_weighted_f1=honest.cv_weighted_f1,
                               test_weighted_f1=honest.test_scores["weighted_f1"]) == []
    assert "not be held out" in validation_warnings(90.0, baseline_cv_weighted_f1=60.0)[0]
