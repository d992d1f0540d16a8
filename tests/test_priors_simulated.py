"""The simulated back-end on the demo data: deterministic, as right as its input rates, AUs from
the chosen emotion's support set, audio > video > text, and texts that carry the planted signal."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from mer_lib.config import MER_CLASSES
from mer_lib.data import load_dataset, make_demo_dataset
from mer_lib.data.demo import FEATURES
from mer_lib.priors import (
    AU_SUPPORT_SETS,
    PROMPT_VERSION,
    generate_for_dataset,
    load_priors,
    make_backend,
    prior_texts,
    reliability_table,
    select_samples,
    zero_shot_scores,
)
from mer_lib.priors.backends.base import ClipRequest
from mer_lib.priors.backends.simulated import INCIDENTAL_AUS, PAPER_GEMINI_FLASH_CLASS_ACCURACY
from mer_lib.priors.schema import build_prior
from tests.support.datasets import small_dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = make_demo_dataset(tmp_path_factory.mktemp("demo") / "tiny", scale="tiny", seed=0)
    return load_dataset(root, FEATURES, progress=False)


@pytest.fixture(scope="module")
def tiny_priors(tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp("priors") / "priors.jsonl"
    summary = generate_for_dataset(tiny, make_backend("simulated", dataset=tiny, seed=0), path, show_progress=False)
    return path, summary


def simulate(backend, names, classes=MER_CLASSES, subtitle=""):
    out = {}
    for name in names:
        request = ClipRequest(name=name, classes=tuple(classes), subtitle_english=subtitle, subtitle_chinese="",
                              prompt="", clip_path=None)
        out[name] = build_prior(backend.generate(request).answer, name=name, classes=classes, model="sim",
                                backend="simulated", prompt_version=PROMPT_VERSION)
    return out


def test_agreement_follows_the_per_class_input_rates():
    truth = {f"{c}_{i}": c for c in MER_CLASSES for i in range(1500)}
    priors = simulate(make_backend("simulated", truth=truth, seed=3), truth)
    for c in MER_CLASSES:
        hits = np.mean([priors[n].emotion == c for n, t in truth.items() if t == c])
        assert abs(hits - PAPER_GEMINI_FLASH_CLASS_ACCURACY[c]) < 0.04, (c, hits)
    # wrong answers go mostly to the confusable neighbour
    wrong_for_sad = Counter(priors[n].emotion for n, t in truth.items() if t == "sad" and priors[n].emotion != "sad")
    assert wrong_for_sad.most_common(1)[0][0] == "worried"


def test_aus_come_from_the_chosen_emotions_support_set_and_weights_favour_audio():
    truth = {f"s{i}": MER_CLASSES[i % 6] for i in range(1200)}
    priors = simulate(make_backend("simulated", truth=truth, seed=0), truth)
    for p in priors.values():
        assert set(p.aus) <= AU_SUPPORT_SETS[p.emotion] | set(INCIDENTAL_AUS)
        if AU_SUPPORT_SETS[p.emotion]:
            assert set(p.aus) & AU_SUPPORT_SETS[p.emotion]
    w = np.array([(p.w_audio, p.w_visual, p.w_text) for p in priors.values()])
    assert np.allclose(w.sum(axis=1), 1.0)
    mean = w.mean(axis=0)
    assert mean[0] > mean[1] > mean[2]


def test_deterministic_and_independent_of_which_clips_are_asked():
    truth = {f"s{i}": MER_CLASSES[i % 6] for i in range(50)}
    first = simulate(make_backend("simulated", truth=truth, seed=7), truth)
    subset = simulate(make_backend("simulated", truth=truth, seed=7), list(truth)[::-1][:10])
    for name, prior in subset.items():
        assert prior.model_dump(exclude={"created_at"}) == first[name].model_dump(exclude={"created_at"})
    other_seed = simulate(make_backend("simulated", truth=truth, seed=8), truth)
    assert any(other_seed[n].aus != first[n].aus for n in truth)


def test_demo_run_covers_every_labelled_clip(tiny, tiny_priors):
    path, summary = tiny_priors
    labelled = int((tiny.labels >= 0).sum())
    assert (summary["selected"], summary["done"], summary["failed"]) == (labelled, labelled, 0)
    priors = load_priors(path, classes=tiny.classes)
    assert set(priors) == set(tiny.names[tiny.labels >= 0])
    # the subtitle reached the prior's I_T
    name = next(iter(priors))
    assert tiny.subtitle(name)[1] in priors[name].text_semantics
    # the unlabelled pool is simulated from its hidden truth when asked for
    pool = generate_for_dataset(tiny, make_backend("simulated", dataset=tiny), path, splits=["unlabelled"],
                                budget=20, show_progress=False)
    assert pool["done"] == 20 and len(load_priors(path)) == labelled + 20


def test_zero_shot_scores_on_the_demo_match_the_input_rates(tiny, tiny_priors):
    priors = load_priors(tiny_priors[0], classes=tiny.classes)
    scores = zero_shot_scores(priors, tiny, "train_corpus")
    assert scores["coverage"] == 1.0 and scores["n"] == int((tiny.splits == "train_corpus").sum())
    expected = sum(PAPER_GEMINI_FLASH_CLASS_ACCURACY[c] * n for c, n in
                   zip(tiny.classes, np.bincount(tiny.labels[tiny.splits == "train_corpus"]))) / scores["n"]
    assert abs(scores["accuracy"] / 100 - expected) < 0.06


def test_prior_texts_carry_the_planted_signal(tiny, tiny_priors):
    """A bag-of-words classifier on I_A + I_V + I_T recovers the emotion stage 2 should learn."""
    priors = load_priors(tiny_priors[0], classes=tiny.classes)
    train = [n for n in tiny.names[tiny.splits == "train_corpus"]]
    test = [n for n in tiny.names[tiny.splits == "test_corpus"]]
    text = lambda n: " ".join(prior_texts(priors[n]).values())
    vectorizer = TfidfVectorizer().fit([text(n) for n in train])
    y = {n: tiny.labels[i] for i, n in enumerate(tiny.names)}
    clf = LogisticRegression(max_iter=2000).fit(vectorizer.transform([text(n) for n in train]), [y[n] for n in train])
    accuracy = np.mean(clf.predict(vectorizer.transform([text(n) for n in test])) == [y[n] for n in test])
    zero_shot = zero_shot_scores(priors, tiny, "test_corpus")["accuracy"] / 100
    assert accuracy > 0.6 and accuracy > zero_shot - 0.08  # about as good as reading c* itself


def test_balanced_selection_spreads_the_budget_over_classes(tiny):
    idx = select_samples(tiny, splits=["train_corpus", "test_corpus"], selection="balanced", budget=60, seed=1)
    assert len(idx) == 60 and len(set(idx)) == 60
    counts = np.bincount(tiny.labels[idx], minlength=6)
    assert counts.min() == counts.max() == 10
    again = select_samples(tiny, splits=["train_corpus", "test_corpus"], selection="balanced", budget=60, seed=1)
    assert np.array_equal(idx, again)  # same budget, same clips: a re-run skips them
    random_pick = select_samples(tiny, selection="all", budget=60, seed=1)
    assert len(random_pick) == 60 and np.bincount(tiny.labels[random_pick], minlength=6).max() > 10
    with pytest.raises(ValueError, match="needs a budget"):
        select_samples(tiny, selection="balanced")
    with pytest.raises(ValueError, match="unknown"):
        select_samples(tiny, selection="random")


def test_budgeted_run_then_full_run_skips_what_is_done(tiny, tmp_path):
    backend = make_backend("simulated", dataset=tiny)
    path = tmp_path / "p.jsonl"
    first = generate_for_dataset(tiny, backend, path, splits=["test_corpus"], selection="balanced", budget=30,
                                 show_progress=False)
    full = generate_for_dataset(tiny, backend, path, splits=["test_corpus"], show_progress=False)
    assert first["done"] == 30 and full["skipped"] == 30
    assert full["done"] == int((tiny.splits == "test_corpus").sum()) - 30
    # a different seed changes the generation settings, so nothing is reused
    reseeded = generate_for_dataset(tiny, make_backend("simulated", dataset=tiny, seed=5), path,
                                    splits=["test_corpus"], budget=5, show_progress=False)
    assert reseeded["skipped"] == 0 and reseeded["done"] == 5


def test_optional_truth_aus_make_wrong_priors_inconsistent():
    """With truth_aus_when_wrong=1, AU consistency separates right from wrong c*: the filter has a target."""
    truth = {f"s{i}": MER_CLASSES[i % 6] for i in range(1200)}
    priors = simulate(make_backend("simulated", truth=truth, truth_aus_when_wrong=1.0), truth)
    table = reliability_table(priors, small_dataset(list(truth), list(truth.values())))
    right = table["agrees_with_label"].astype(bool)
    assert table.loc[right, "au_consistency"].mean() > 0.8 > 0.5 > table.loc[~right, "au_consistency"].mean()
    kept = table["reliable"]
    assert right[kept].mean() > right.mean() + 0.1  # the default filter now raises agreement
