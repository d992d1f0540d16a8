"""MERTools' random search: the draw with the best validation WF1 wins, and the test split plays no part."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mer_lib import stage1
from mer_lib.data import load_dataset
from mer_lib.data.demo import FEATURES, TEST_SPLIT, TRAIN_SPLIT
from mer_lib.search import SEARCH_SPACE, draw_settings, random_search, with_settings
from mer_lib.stage1 import Stage1Config

CFG = Stage1Config(epochs=4, batch_size=32, folds=2)


def test_draws_come_from_the_mertools_space_and_follow_the_seed():
    draws = draw_settings(20, seed=3)
    assert draws == draw_settings(20, seed=3) and draws != draw_settings(20, seed=4)
    assert all(d[k] in SEARCH_SPACE[k] for d in draws for k in SEARCH_SPACE)
    assert {d["hidden_dim"] for d in draws} == set(SEARCH_SPACE["hidden_dim"])  # 20 draws reach every width


def test_search_keeps_the_best_validation_draw_and_never_reads_the_test_split(tiny_demo, tmp_path, monkeypatch):
    ds = load_dataset(tiny_demo, FEATURES, progress=False)
    chosen, draws = random_search(ds, CFG, TRAIN_SPLIT, n_draws=3, checkpoint_dir=tmp_path / "a")
    scores = [d.val_weighted_f1 for d in draws]
    assert len(draws) == 3 and len(set(scores)) > 1
    assert chosen == with_settings(CFG, draws[int(np.argmax(scores))].settings)
    assert all(len(d.fold_val_weighted_f1) == CFG.folds for d in draws)

    # every test label changed and the test features replaced by noise: the same draws, the same choice
    test = ds.indices(TEST_SPLIT)
    rng = np.random.default_rng(0)
    labels = ds.labels.copy()
    labels[test] = (labels[test] + 1) % ds.num_classes
    features = {m: x.copy() for m, x in ds.features.items()}
    for x in features.values():
        x[test] = rng.normal(size=(len(test), x.shape[1]))
    scrambled = replace(ds, labels=labels, features=features)
    again, redraws = random_search(scrambled, CFG, TRAIN_SPLIT, n_draws=3, checkpoint_dir=tmp_path / "b")
    assert again == chosen and redraws == draws

    # a rerun finds every fold model in its checkpoints: nothing trains
    monkeypatch.setattr(stage1, "_train_epoch", _refuse)
    assert random_search(ds, CFG, TRAIN_SPLIT, n_draws=3, checkpoint_dir=tmp_path / "a") == (chosen, draws)


def _refuse(*args, **kwargs):
    pytest.fail("a fold model was trained again although its checkpoint was there")
