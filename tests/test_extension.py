"""Table 3's extension strategies and the method entries results files hold."""
from __future__ import annotations

import numpy as np
import pytest

from mer_lib.extension import extension_set


def _probs():
    # 12 pool clips: class of each and confidence
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    conf = np.array([.99, .98, .97, .96, .95, .5, .99, .93, .92, .97, .91, .4])
    probs = np.full((12, 3), 0.0)
    probs[np.arange(12), labels] = conf
    probs[np.arange(12), (labels + 1) % 3] = 1 - conf
    return probs


def test_all_takes_every_confident_prediction():
    rows, labels = extension_set(_probs(), np.arange(100, 112), "all", 0, np.ones(3), 0.9, 0)
    assert rows.tolist() == [100, 101, 102, 103, 104, 106, 107, 108, 109, 110]
    assert labels.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 2, 2]


def test_balanced_splits_evenly_and_takes_the_most_confident():
    rows, labels = extension_set(_probs(), np.arange(12), "balanced", 6, np.ones(3), 0.9, 0)
    assert np.bincount(labels).tolist() == [2, 2, 2]
    assert set(rows.tolist()) == {0, 1, 6, 7, 9, 10}


def test_matched_follows_the_labelled_class_shares():
    rows, labels = extension_set(_probs(), np.arange(12), "matched", 6, np.array([4, 1, 1]), 0.9, 0)
    assert np.bincount(labels, minlength=3).tolist() == [4, 1, 1]
    assert set(rows.tolist()) == {0, 1, 2, 3, 6, 9}


def test_random_is_seeded_and_only_confident():
    a = extension_set(_probs(), np.arange(12), "random", 4, np.ones(3), 0.9, seed=1)[0]
    b = extension_set(_probs(), np.arange(12), "random", 4, np.ones(3), 0.9, seed=1)[0]
    assert a.tolist() == b.tolist() and len(a) == 4 and not {5, 11} & set(a.tolist())


def test_unknown_strategy():
    with pytest.raises(ValueError, match="unknown extension strategy 'best'"):
        extension_set(_probs(), np.arange(12), "best", 3, np.ones(3), 0.9, 0)
