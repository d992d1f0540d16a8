"""Reliability table, policies, and zero-shot scores, against hand-computed answers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mer_lib.config import MER_CLASSES
from mer_lib.priors import POLICIES, reliability_table, reliable_mask, zero_shot_scores
from mer_lib.priors.schema import build_prior
from tests.support.datasets import small_dataset
from tests.support.fakeserver import valid_answer

HAPPY_AUS = [{"au": 6, "intensity": 2.0, "evidence": "x"}, {"au": 12, "intensity": 2.0, "evidence": "x"}]
SAD_AUS = [{"au": 1, "intensity": 2.0, "evidence": "x"}, {"au": 15, "intensity": 2.0, "evidence": "x"}]


def prior(name, emotion, aus):
    return build_prior(valid_answer(emotion) | {"visual_aus": aus}, name=name, classes=MER_CLASSES,
                       model="m", backend="gemini", prompt_version="v")


@pytest.fixture
def case():
    # name: (label, prior emotion, AUs)
    rows = {
        "l_consistent_agrees": ("happy", "happy", HAPPY_AUS),
        "l_consistent_disagrees": ("sad", "happy", HAPPY_AUS),
        "l_inconsistent_agrees": ("happy", "happy", SAD_AUS),
        "u_consistent": (-1, "sad", SAD_AUS),
        "u_inconsistent": (-1, "sad", HAPPY_AUS),
        "l_no_prior": ("angry", None, None),
    }
    ds = small_dataset(list(rows), [r[0] for r in rows.values()])
    priors = {n: prior(n, e, aus) for n, (_, e, aus) in rows.items() if e is not None}
    return ds, priors


def test_table_has_one_row_per_sample_with_documented_columns(case):
    ds, priors = case
    table = reliability_table(priors, ds)
    assert list(table.index) == list(ds.names)
    row = table.loc["l_no_prior"]
    assert not row["has_prior"] and row["prior_emotion"] == "" and row["prior_label"] == -1
    assert np.isnan(row["au_consistency"]) and pd.isna(row["agrees_with_label"])
    assert table.loc["l_consistent_agrees", "au_consistency"] == 1.0
    assert table.loc["l_inconsistent_agrees", "au_consistency"] == 0.0
    assert table.loc["u_consistent", "au_consistency"] == pytest.approx(2 / 3)
    assert table.loc["u_consistent", "prior_label"] == MER_CLASSES.index("sad")
    assert table["agrees_with_label"].dtype == "boolean"
    assert table["agrees_with_label"].tolist() == [True, False, True, pd.NA, pd.NA, pd.NA]
    assert table["has_prior"].dtype == bool and table["reliable"].dtype == bool


@pytest.mark.parametrize("policy, expected", [
    ("all", [1, 1, 1, 1, 1, 0]),
    ("au_consistent", [1, 1, 0, 1, 0, 0]),
    ("agrees_with_label", [1, 0, 1, 1, 1, 0]),  # unlabelled: no label check possible -> kept
    ("au_consistent_and_agrees", [1, 0, 0, 1, 0, 0]),
])
def test_policies(case, policy, expected):
    ds, priors = case
    table = reliability_table(priors, ds)
    mask = reliable_mask(table, policy)
    assert mask.dtype == bool and mask.tolist() == [bool(x) for x in expected]


def test_default_policy_needs_no_label(case):
    ds, priors = case
    table = reliability_table(priors, ds)
    assert table["reliable"].tolist() == reliable_mask(table, "au_consistent").tolist()
    hidden = table.assign(agrees_with_label=pd.array([pd.NA] * len(table), dtype="boolean"))
    assert reliable_mask(hidden).tolist() == reliable_mask(table).tolist()  # same at test time
    assert set(POLICIES) >= {"all", "au_consistent", "agrees_with_label"}
    with pytest.raises(ValueError, match="unknown reliability policy"):
        reliable_mask(table, "strict")


def test_a_prior_outside_the_class_set_is_not_a_valid_prior():
    ds = small_dataset(["a"], ["happy"])
    odd = build_prior(valid_answer("fear"), name="a", classes=("fear",), model="m", backend="b", prompt_version="v")
    table = reliability_table({"a": odd}, ds)
    assert not table.loc["a", "has_prior"] and table.loc["a", "prior_emotion"] == "fear"
    assert table.loc["a", "prior_label"] == -1 and not table.loc["a", "reliable"]


def test_zero_shot_scores_count_missing_priors_as_wrong(case):
    ds = small_dataset(["t1", "t2", "t3", "t4"], ["happy", "sad", "angry", "neutral"],
                       splits=["test_corpus"] * 4)
    priors = {"t1": prior("t1", "happy", HAPPY_AUS), "t2": prior("t2", "happy", HAPPY_AUS),
              "t3": prior("t3", "angry", [])}
    scores = zero_shot_scores(priors, ds, "test_corpus")
    assert scores["accuracy"] == pytest.approx(50.0)
    assert scores["coverage"] == 0.75 and scores["n_without_prior"] == 1 and scores["n"] == 4
    assert scores["per_class_accuracy"] == {"neutral": 0.0, "angry": 100.0, "happy": 100.0, "sad": 0.0,
                                            "worried": None, "surprise": None}
    # by hand: F1 happy 2/3, sad 0, angry 1, neutral 0, each weight 1/4
    assert scores["weighted_f1"] == pytest.approx(100 * (2 / 3 + 1) / 4)
    assert scores["without_prior_per_class"]["neutral"] == 1
    assert np.asarray(scores["confusion"]).shape == (6, 6) and np.asarray(scores["confusion"]).sum() == 3
    skipped = zero_shot_scores(priors, ds, "test_corpus", missing="skip")
    assert skipped["accuracy"] == pytest.approx(200 / 3) and skipped["n"] == 3


def test_a_class_without_a_support_set_cannot_fail_the_au_check():
    ds = small_dataset(["a"], [0])
    ds.classes = ("positive", "negative")
    p = build_prior(valid_answer("positive"), name="a", classes=ds.classes, model="m", backend="b",
                    prompt_version="v")
    table = reliability_table({"a": p}, ds)
    assert np.isnan(table.loc["a", "au_consistency"]) and table.loc["a", "reliable"]
