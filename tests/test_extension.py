"""Table 3's strategies: which clips each adds, and the label ratios they give."""
from __future__ import annotations

import numpy as np
import pytest

from mer_lib.extension import EXTENSION_STRATEGIES, default_size, select_additions

BASE = np.array([500, 400, 300, 200, 100, 20])  # an imbalanced training set, as MER's


def _pool(seed=0, counts=(300, 300, 200, 150, 80, 40)):
    labels = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(seed).permutation(labels)


def test_matched_keeps_the_base_sets_label_ratio():
    labels = _pool()
    pick = select_additions(labels, np.zeros(len(labels)), "matched", 600, BASE)
    added = np.bincount(labels[pick], minlength=6)
    assert added.sum() == 600
    np.testing.assert_allclose(added / 600, BASE / BASE.sum(), atol=1.5 / 600)


def test_balanced_evens_out_the_combined_ratio_as_far_as_the_pool_allows():
    labels = _pool()
    pick = select_additions(labels, np.zeros(len(labels)), "balanced", 800, BASE)
    combined = BASE + np.bincount(labels[pick], minlength=6)
    available = np.bincount(labels, minlength=6)
    exhausted = np.bincount(labels[pick], minlength=6) == available
    # the classes that still had clips to give are level (to one clip), and none is below an exhausted one's level
    level = combined[~exhausted]
    assert level.max() - level.min() <= 1 and len(pick) == 800
    assert (combined[exhausted] <= level.min()).all()


def test_matched_hands_a_short_class_share_to_the_others():
    labels = _pool(counts=(300, 300, 200, 150, 80, 2))  # only two "surprise" clips to add
    pick = select_additions(labels, np.zeros(len(labels)), "matched", 600, BASE)
    added = np.bincount(labels[pick], minlength=6)
    assert added[5] == 2 and added.sum() == 600
    np.testing.assert_allclose(added[:5] / added[:5].sum(), BASE[:5] / BASE[:5].sum(), atol=2 / 600)


def test_random_and_all():
    labels = _pool()
    assert len(select_additions(labels, np.zeros(len(labels)), "random", 250, BASE, seed=1)) == 250
    assert len(set(select_additions(labels, np.zeros(len(labels)), "random", 250, BASE, seed=1))) == 250
    np.testing.assert_array_equal(select_additions(labels, np.zeros(len(labels)), "all", 10, BASE),
                                  np.arange(len(labels)))
    with pytest.raises(ValueError, match="unknown extension strategy"):
        select_additions(labels, np.zeros(len(labels)), "greedy", 10, BASE)
    assert set(EXTENSION_STRATEGIES) == {"random", "matched", "balanced", "all"}


def test_within_a_class_the_best_ranked_go_first():
    labels = np.array([0, 0, 0, 1, 1, 1])
    rank = np.array([3.0, 1.0, 2.0, 0.5, 0.1, 0.9])  # e.g. minus the confidence
    pick = select_additions(labels, rank, "balanced", 2, np.array([10, 10]))
    assert sorted(pick.tolist()) == [1, 4]


def test_the_default_size_is_the_papers_plus_1k_scaled():
    assert default_size(4024) == 1000 and default_size(2698) == 670
