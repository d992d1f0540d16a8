"""Stage 1 on a real MER feature: all-MiniLM-L6-v2 over MER2023's English subtitles, text only.

Trained on train_corpus, scored on test3_corpus (MER-SEMI); it must at least match a logistic
regression on the same feature. Skipped where ../shared/data/mer2023-samples is absent.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mer_lib.baselines import run_baseline
from mer_lib.data import load_dataset
from mer_lib.extract.text_dataset import write_text_dataset
from mer_lib.stage1 import Stage1Config, stage1_over_seeds

pytestmark = [pytest.mark.real_data, pytest.mark.slow]

# Stage-1 defaults with MERTools' 5-fold protocol, but input dropout 0.7: chosen by the 5-fold
# validation WF1 of the training split (dropout 0.3/0.5/0.7/0.8/0.9: 39.2/40.2/41.4/41.2/38.1, seeds
# 0-2; benchmarks/bench_real_text.py --dropout-sweep). With the default 0.3 a 384-dim sentence
# embedding of 3,373 clips overfits within ten epochs (test3: 34.9 acc / 33.2 WF1 on one split, against
# LR's 37.4 / 35.7). One validation split with dropout 0.7 also passes, by under a point of accuracy;
# the five folds pass by four (41.8 / 40.4) and cost about 80 s more.
TEXT_ONLY = replace(Stage1Config(folds=5), model=replace(Stage1Config().model, dropout=0.7))


@pytest.fixture(scope="session")
def text_root(tmp_path_factory):
    """Where this session's MiniLM features go: encoded by the first test that asks, reused after."""
    return tmp_path_factory.mktemp("mer2023-text")


def test_stage1_text_only_matches_logistic_regression_on_real_subtitles(samples_dir, text_root):
    ds = load_dataset(text_root, write_text_dataset(text_root, samples_dir, progress=False), progress=False)
    assert ds.dims == {"text": 384} and len(ds.indices("train_corpus")) == 3373

    logreg = run_baseline(ds, "logreg", "train_corpus", "test3_corpus")
    runs = stage1_over_seeds(ds, TEXT_ONLY, "train_corpus", "test3_corpus", [0, 1, 2], checkpoint_dir=None,
                             tag="text", modalities=["text"])
    for metric in ("accuracy", "weighted_f1"):
        mean = np.mean([r.test_scores[metric] for r in runs])
        assert mean >= logreg.test_scores[metric], (metric, mean, logreg.test_scores[metric], logreg.params)
