"""The simulated MLLM on the demo data: it reads perceived content only (never a label), its errors
fall on the clips that are hard to read, R follows the modalities that show the emotion, its AUs
come from the face as perceived, and it stays deterministic and resumable like any back-end."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from mer_lib.config import MER_CLASSES
from mer_lib.data import DataError, load_dataset, read_label_file
from mer_lib.data.dataset import HIDDEN_LABELS_FILE
from mer_lib.data.demo import (
    EXTRA_LABEL_FILE,
    FEATURES,
    LABEL_FILE,
    NOTHING,
    Perception,
    Signal,
    read_perception,
    shown_evidence,
    simulate_annotated_clips,
)
from mer_lib.priors import (
    AU_SUPPORT_SETS,
    PROMPT_VERSION,
    generate_for_dataset,
    load_priors,
    make_backend,
    prior_texts,
    read_records,
    reliability_table,
    select_samples,
    zero_shot_scores,
)
from mer_lib.priors.backends.base import ClipRequest
from mer_lib.priors.backends.simulated import (
    INCIDENTAL_AUS,
    PAPER_GEMINI_FLASH_MEAN_ACCURACY,
    SimulatedBackend,
    calibrate,
    read_clip,
)
from mer_lib.priors.schema import build_prior
from tests.support.datasets import small_dataset



@pytest.fixture(scope="module")
def tiny(tiny_demo):
    return load_dataset(tiny_demo, FEATURES, progress=False)


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


def labelled_answers(ds, **knobs):
    """c* right/wrong, R (audio, video, text) and the perception rows of every labelled clip."""
    idx = np.flatnonzero(ds.labels >= 0)
    names = [str(n) for n in ds.names[idx]]
    priors = simulate(make_backend("simulated", dataset=ds, **knobs), names, ds.classes)
    said = np.array([ds.classes.index(priors[n].emotion) for n in names])
    r = np.array([(priors[n].w_audio, priors[n].w_visual, priors[n].w_text) for n in names])
    perception = read_perception(ds.root)
    rows = np.array([perception.row(n) for n in names])
    return said == ds.labels[idx], said, r, perception, rows, priors


# --- it reads no label ------------------------------------------------------------------------------

def _permute_label_file(path, rng):
    corpus, _ = read_label_file(path)
    items = [(split, name, emo) for split, entries in corpus.items() for name, emo in entries.items()]
    shuffled = rng.permutation([emo for _, _, emo in items])
    out = {split: {} for split in corpus}
    for (split, name, _), emo in zip(items, shuffled):
        out[split][name] = {"emo": str(emo), "val": 0.0}
    np.savez(path, **{k: np.array(v, dtype=object) for k, v in out.items()})


def test_permuting_every_label_leaves_every_prior_unchanged(tiny_demo, tmp_path):
    """Labels, the pool's hidden truth and the external set's labels permuted: same priors, same store keys."""
    permuted_root = tmp_path / "permuted"
    shutil.copytree(tiny_demo, permuted_root)
    rng = np.random.default_rng(0)
    for file in (LABEL_FILE, HIDDEN_LABELS_FILE):
        _permute_label_file(permuted_root / file, rng)
    extra = pd.read_csv(permuted_root / EXTRA_LABEL_FILE)
    extra["discrete"] = rng.permutation(extra["discrete"].to_numpy())
    extra.to_csv(permuted_root / EXTRA_LABEL_FILE, index=False)

    stores, datasets = {}, {}
    for key, root in (("original", tiny_demo), ("permuted", permuted_root)):
        ds = datasets[key] = load_dataset(root, FEATURES, progress=False)
        stores[key] = tmp_path / f"{key}.jsonl"
        every_split = [s for s in ds.split_names]
        summary = generate_for_dataset(ds, make_backend("simulated", dataset=ds, seed=0), stores[key],
                                       splits=every_split, show_progress=False)
        assert summary["done"] == len(ds) and summary["failed"] == 0
    original, permuted = datasets["original"], datasets["permuted"]
    order = np.argsort(permuted.names)
    assert (np.sort(original.names) == permuted.names[order]).all()
    for field in ("labels", "hidden_labels"):  # the permutation did move most of them
        before, after = getattr(original, field)[np.argsort(original.names)], getattr(permuted, field)[order]
        known = before >= 0
        assert (before[known] != after[known]).mean() > 0.5, field

    a, b = load_priors(stores["original"]), load_priors(stores["permuted"])
    assert set(a) == set(b) == set(original.names)
    dump = lambda p: p.model_dump_json(exclude={"created_at", "elapsed_s"})  # all but the bookkeeping
    assert all(dump(a[n]) == dump(b[n]) for n in a)
    keys = lambda path: {r["name"]: r["key"] for r in read_records(path)}
    assert keys(stores["original"]) == keys(stores["permuted"])  # a cached prior would be reused as is


def test_a_dataset_without_perception_is_refused_with_the_fix(tmp_path):
    ds = small_dataset(["s1", "s2"], ["happy", "sad"], root=tmp_path)
    with pytest.raises(DataError, match="only on generated demo data.*python -m mer_lib.data"):
        make_backend("simulated", dataset=ds)
    with pytest.raises(ValueError, match="exactly one of dataset="):
        make_backend("simulated", dataset=ds, shown={"s1": "happy"})


# --- its errors are the clips' ------------------------------------------------------------------------

def test_cstar_is_worse_on_planted_hard_clips_unless_errors_are_independent(tiny):
    gaps = {}
    for sharing in (1.0, 0.0):
        right, _, _, perception, rows, _ = labelled_answers(tiny, error_sharing=sharing)
        difficulty = perception.difficulty[rows]
        easy, hard = difficulty <= np.quantile(difficulty, 1 / 3), difficulty >= np.quantile(difficulty, 2 / 3)
        gaps[sharing] = right[easy].mean() - right[hard].mean()
    assert gaps[1.0] > 0.3, gaps  # the default teacher fails on the ambiguous clips
    # with errors unrelated to the clip, only the clips whose content points elsewhere stay harder
    assert gaps[0.0] < gaps[1.0] - 0.1, gaps


def test_accuracy_knob_sets_mean_per_class_accuracy():
    """The calibration holds on fresh clips drawn like the demo's (another seed than calibrate's)."""
    signal = Signal()
    C = len(MER_CLASSES)
    rng = np.random.default_rng(123)
    annotated = np.repeat(np.arange(C), 2000)
    shown = shown_evidence(*simulate_annotated_clips(annotated, signal, rng), C)
    noise = rng.normal(size=shown.shape)
    replace, pick = rng.random(len(annotated)), rng.integers(1, C, size=len(annotated))
    for target in (PAPER_GEMINI_FLASH_MEAN_ACCURACY, 0.5):
        for sharing in (1.0, 0.4, 0.0):
            scale, independent = calibrate(target, sharing, signal)
            said = read_clip(shown, noise, scale, MER_CLASSES.index("neutral"))[1].argmax(-1)
            said = np.where(replace < independent, (said + pick) % C, said)
            per_class = [(said == annotated)[annotated == k].mean() for k in range(C)]
            assert abs(np.mean(per_class) - target) < 0.02, (target, sharing, np.mean(per_class))
            assert (scale == 0.0) == (sharing == 0.0) and (independent == 0.0) == (sharing == 1.0)
    assert calibrate(1.0, 1.0, signal) == (0.0, 0.0)  # above what the content allows: a noiseless reader
    with pytest.raises(ValueError, match="accuracy=1.5 is not in"):
        make_backend("simulated", shown={"s": "sad"}, accuracy=1.5)


def test_accuracy_on_the_demo_labels_is_near_the_target(tiny):
    right, *_ = labelled_answers(tiny)
    assert abs(right.mean() - PAPER_GEMINI_FLASH_MEAN_ACCURACY) < 0.07
    lower, *_ = labelled_answers(tiny, accuracy=0.4)
    assert lower.mean() < right.mean() - 0.2


def test_r_follows_the_modality_that_shows_the_emotion(tiny):
    def r_vs_share(knobs):
        _, said, r, perception, rows, _ = labelled_answers(tiny, **knobs)
        shows = perception.clarity[rows] * (perception.expressed[rows] == said[:, None])
        ok = shows.max(axis=1) > 0
        share = shows[ok] / shows[ok].sum(axis=1, keepdims=True)
        return np.mean([np.corrcoef(r[ok, m], share[:, m])[0, 1] for m in range(3)]), r

    informative, _ = r_vs_share({})
    uninformative, r = r_vs_share({"r_informativeness": 0.0})
    assert informative > 0.45 and abs(uninformative) < 0.15, (informative, uninformative)
    assert np.allclose(r.mean(axis=0), (0.45, 0.35, 0.20), atol=0.02)  # a draw around the fixed weights


def test_au_consistency_is_lower_where_cstar_is_wrong(tiny):
    right, _, _, perception, rows, priors = labelled_answers(tiny)
    table = reliability_table(priors, tiny.subset(np.flatnonzero(tiny.labels >= 0)))
    consistency = table["au_consistency"].to_numpy()
    # the AUs come from the back-end's own reading of the face, so a misread face often agrees with a
    # wrong c* (as with a real MLLM): consistency is lower where c* is wrong, not zero
    assert consistency[right].mean() > consistency[~right].mean() + 0.15
    kept = table["reliable"].to_numpy()  # the default, label-free AU filter
    assert right[kept].mean() > right.mean() + 0.05
    # a face that shows nothing mostly gives no AU beyond incidental ones (only a misreading does)
    blank = perception.expressed[rows, 1] == NOTHING
    assert blank.sum() > 5
    labelled = tiny.names[tiny.labels >= 0]
    emotional_aus = [len(set(priors[str(n)].aus) - set(INCIDENTAL_AUS)) for n in labelled]
    assert np.mean(np.asarray(emotional_aus)[blank]) < 0.4 * np.mean(np.asarray(emotional_aus)[~blank])


# --- planted clips, determinism, the store --------------------------------------------------------------

def test_plainly_shown_clips_are_read_right_with_their_support_sets():
    shown = {f"s{i}": MER_CLASSES[i % 6] for i in range(600)}
    priors = simulate(make_backend("simulated", shown=shown, seed=0, accuracy=1.0), shown)
    assert all(priors[n].emotion == c for n, c in shown.items())
    for p in priors.values():
        support = AU_SUPPORT_SETS[p.emotion]
        assert support <= set(p.aus) <= support | set(INCIDENTAL_AUS)  # a clear face shows its whole S_c
    default = simulate(make_backend("simulated", shown=shown, seed=0), shown)
    assert np.mean([default[n].emotion == c for n, c in shown.items()]) > 0.95  # clear clips are easy


def test_deterministic_and_independent_of_which_clips_are_asked():
    shown = {f"s{i}": MER_CLASSES[i % 6] for i in range(50)}
    first = simulate(make_backend("simulated", shown=shown, seed=7, accuracy=0.3), shown)
    subset = simulate(make_backend("simulated", shown=shown, seed=7, accuracy=0.3), list(shown)[::-1][:10])
    for name, prior in subset.items():
        assert prior.model_dump(exclude={"created_at"}) == first[name].model_dump(exclude={"created_at"})
    other_seed = simulate(make_backend("simulated", shown=shown, seed=8, accuracy=0.3), shown)
    assert any(other_seed[n].aus != first[n].aus for n in shown)


def test_fingerprint_follows_the_perceived_content():
    base = Perception.plain({"a": "happy", "b": "sad"})
    changed = Perception(base.names, base.classes, base.expressed, base.clarity * np.array([[1.0], [0.5]]))
    request = lambda name: ClipRequest(name=name, classes=MER_CLASSES, subtitle_english="", subtitle_chinese="",
                                       prompt="", clip_path=None)
    first, second = SimulatedBackend(base), SimulatedBackend(changed)
    assert first.fingerprint(request("a")) == second.fingerprint(request("a"))
    assert first.fingerprint(request("b")) != second.fingerprint(request("b"))
    assert first.fingerprint(request("nobody")) is None
    assert first.settings() != SimulatedBackend(base, error_sharing=0.5).settings()


def test_demo_run_covers_every_labelled_clip(tiny, tiny_priors):
    path, summary = tiny_priors
    labelled = int((tiny.labels >= 0).sum())
    assert (summary["selected"], summary["done"], summary["failed"]) == (labelled, labelled, 0)
    priors = load_priors(path, classes=tiny.classes)
    assert set(priors) == set(tiny.names[tiny.labels >= 0])
    # I_T is the back-end's reading of the words, never the words themselves (a confound: see simulated.py)
    assert not any(tiny.subtitle(n)[1] and tiny.subtitle(n)[1] in p.text_semantics for n, p in priors.items())
    # the unlabelled pool is simulated from its perceived content like any clip
    pool = generate_for_dataset(tiny, make_backend("simulated", dataset=tiny), path, splits=["unlabelled"],
                                budget=20, show_progress=False)
    assert pool["done"] == 20 and len(load_priors(path)) == labelled + 20


def test_prior_texts_carry_the_perceived_content(tiny, tiny_priors):
    """A bag-of-words classifier on I_A + I_V + I_T recovers the label about as well as c* itself."""
    priors = load_priors(tiny_priors[0], classes=tiny.classes)
    train = [n for n in tiny.names[tiny.splits == "train_corpus"]]
    test = [n for n in tiny.names[tiny.splits == "test_corpus"]]
    text = lambda n: " ".join(prior_texts(priors[n]).values())
    vectorizer = TfidfVectorizer().fit([text(n) for n in train])
    y = {n: tiny.labels[i] for i, n in enumerate(tiny.names)}
    clf = LogisticRegression(max_iter=2000).fit(vectorizer.transform([text(n) for n in train]), [y[n] for n in train])
    accuracy = np.mean(clf.predict(vectorizer.transform([text(n) for n in test])) == [y[n] for n in test])
    zero_shot = zero_shot_scores(priors, tiny, "test_corpus")["accuracy"] / 100
    assert accuracy > 0.6 and accuracy > zero_shot - 0.08


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
