"""The MER-layout data layer: reading, validation errors, the packed cache and the demo generator."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from mer_lib import config
from mer_lib.config import LABEL_FILE, MER_CLASSES, SUBTITLE_FILE
from mer_lib.data import (
    DataError,
    load_dataset,
    make_demo_dataset,
    read_label_file,
    read_subtitles,
    scan_clips,
)
from mer_lib.data import packed as packed_mod
from mer_lib.data.demo import (
    _CUES_EN,
    _FILLER,
    EXTRA_LABEL_FILE,
    EXTRA_PREFIX,
    EXTRA_SHARES,
    FEATURES,
    MER_SEMI_TEST_COUNTS,
    MER_TRAIN_COUNTS,
    NOTHING,
    PERCEPTION_FILE,
    read_perception,
)
from tests.support.datasets import write_layout
from tests.support.filesystem import simulate_read_only


def test_reads_labels_splits_and_unlabelled_pool(toy):
    root, features = toy
    ds = load_dataset(str(root), features, progress=False)
    assert ds.classes == ("neutral", "angry", "happy", "sad")  # MER order, present classes only
    assert ds.names.tolist() == ["s1", "s2", "s3", "s4", "u1", "u2"]
    assert ds.labels.tolist() == [2, 3, 0, 1, -1, -1]
    assert ds.splits.tolist() == ["train_corpus"] * 3 + ["test_corpus", "unlabelled", "unlabelled"]
    assert ds.dims == {"audio": 6, "video": 5, "text": 4}
    # each row is the file of that sample
    np.testing.assert_array_equal(ds.features["video"][3], np.load(root / "features/toy-video-UTT/s4.npy"))
    assert ds.indices("unlabelled").tolist() == [4, 5]


def test_frame_level_files_are_averaged_and_suffix_may_be_omitted(tmp_path):
    features = write_layout(tmp_path, {"train_corpus": {"a": "happy", "b": "sad"}})
    fra = tmp_path / "features" / "frames-FRA"
    fra.mkdir()
    frames = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(fra / "a.npy", frames)
    np.save(fra / "b.npy", frames[:1] * 0)  # [1, D] is an utterance vector too
    ds = load_dataset(tmp_path, {"audio": features["audio"], "video": "frames"}, progress=False)
    np.testing.assert_allclose(ds.features["video"][0], frames.mean(0))
    np.testing.assert_allclose(ds.features["video"][1], 0)


def test_other_label_sets_get_sorted_classes(tmp_path):
    features = write_layout(tmp_path, {"train_corpus": {"a": "positive", "b": "negative", "c": "positive"}})
    ds = load_dataset(tmp_path, features, progress=False)
    assert ds.classes == ("negative", "positive")
    assert ds.labels.tolist() == [1, 0, 1]


def test_explicit_classes_fix_the_order_and_reject_others(tmp_path):
    features = write_layout(tmp_path, {"train_corpus": {"a": "positive", "b": "negative"}})
    ds = load_dataset(tmp_path, features, classes=["positive", "negative", "neutral"], progress=False)
    assert ds.labels.tolist() == [0, 1]
    with pytest.raises(DataError, match=r"sample 'a'.*unknown label 'positive'"):
        load_dataset(tmp_path, features, classes=["negative", "neutral"], progress=False)


# --- validation: every message names the file, the sample and the fix ------------------------------

def test_labelled_sample_missing_a_modality(toy):
    root, features = toy
    (root / "features/toy-text-UTT/s2.npy").unlink()
    with pytest.raises(DataError) as err:
        load_dataset(root, features, progress=False)
    msg = str(err.value)
    assert "toy-text-UTT" in msg and "'s2'" in msg and "no text features" in msg and "Fix:" in msg


def test_unlabelled_sample_missing_a_modality_is_left_out_of_the_pool(toy):
    root, features = toy
    (root / "features/toy-audio-UTT/u2.npy").unlink()
    ds = load_dataset(root, features, progress=False)
    assert "u2" not in ds.names and "u1" in ds.names


def test_inconsistent_dimensions(toy):
    root, features = toy
    np.save(root / "features/toy-audio-UTT/s3.npy", np.zeros(7, dtype=np.float32))
    with pytest.raises(DataError, match=r"toy-audio-UTT/s3\.npy: sample 's3' has dimension 7 .* have 6.*Fix:"):
        load_dataset(root, features, progress=False)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf(toy, bad):
    root, features = toy
    vec = np.ones(5, dtype=np.float32)
    vec[2] = bad
    np.save(root / "features/toy-video-UTT/u1.npy", vec)
    with pytest.raises(DataError, match=r"toy-video-UTT/u1\.npy: sample 'u1' contains NaN or inf.*Fix:"):
        load_dataset(root, features, progress=False)


def test_unknown_label_suggests_the_close_class(tmp_path):
    labels = {f"s{i}": c for i, c in enumerate(MER_CLASSES)} | {"typo": "happpy"}
    features = write_layout(tmp_path, {"train_corpus": labels})
    with pytest.raises(DataError, match=r"label-6way\.npz: sample 'typo'.*'happpy' \(did you mean 'happy'\?\).*Fix:"):
        load_dataset(tmp_path, features, progress=False)


def test_duplicate_names_across_splits(tmp_path):
    features = write_layout(tmp_path, {"train_corpus": {"a": "happy", "b": "sad"}})
    np.savez(tmp_path / LABEL_FILE,
             train_corpus=np.array({"a": {"emo": "happy"}, "b": {"emo": "sad"}}, dtype=object),
             test1_corpus=np.array({"a": {"emo": "sad"}}, dtype=object))
    with pytest.raises(DataError, match=r"sample 'a' is labelled in both 'train_corpus' and 'test1_corpus'.*Fix:"):
        load_dataset(tmp_path, features, progress=False)


def test_duplicate_subtitle_rows(tmp_path):
    path = tmp_path / "subs.csv"
    path.write_text("name,chinese,english\na,你好,hello\na,再见,bye\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"subs\.csv: duplicate subtitle rows for sample\(s\) 'a'.*Fix:"):
        read_subtitles(path)


def test_empty_feature_folder(toy):
    root, features = toy
    (root / "features/empty-UTT").mkdir()
    with pytest.raises(DataError, match=r"empty-UTT: the feature folder holds no \.npy files.*Fix:"):
        load_dataset(root, {**features, "video": "empty"}, progress=False)


def test_unknown_feature_folder_lists_the_available_ones(toy):
    root, features = toy
    with pytest.raises(DataError, match=r"no feature folder for audio 'hubert'.*toy-audio-UTT"):
        load_dataset(root, {**features, "audio": "hubert"}, progress=False)


def test_label_file_of_the_wrong_shape(toy):
    root, features = toy
    np.savez(root / LABEL_FILE, train_corpus=np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"label-6way\.npz: split 'train_corpus' holds an array of shape \(3, 2\)"):
        load_dataset(root, features, progress=False)
    np.savez(root / LABEL_FILE, train_corpus=np.array({"s1": "happy"}, dtype=object))
    with pytest.raises(DataError, match=r"sample 's1' in split 'train_corpus' has label 'happy'.*Fix:"):
        load_dataset(root, features, progress=False)
    (root / LABEL_FILE).write_text("not a zip")
    with pytest.raises(DataError, match=r"label-6way\.npz: not a readable \.npz label file"):
        load_dataset(root, features, progress=False)


def test_missing_label_file_lists_candidates(toy):
    root, features = toy
    with pytest.raises(DataError, match=r"other\.npz: label file not found.*label-6way\.npz"):
        load_dataset(root, features, label_file="other.npz", progress=False)


def test_corrupt_feature_file(toy):
    root, features = toy
    (root / "features/toy-audio-UTT/s1.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match=r"s1\.npy: sample 's1' cannot be read.*Fix:"):
        load_dataset(root, features, progress=False)


# --- packed cache ---------------------------------------------------------------------------------

def test_cache_is_reused_while_files_are_unchanged(toy, monkeypatch):
    root, features = toy
    first = load_dataset(root, features, progress=False)
    assert (root / "features/.packed/toy-audio-UTT.npy").exists()
    monkeypatch.setattr(packed_mod, "_pack", lambda *a, **k: pytest.fail("cache was rebuilt"))
    again = load_dataset(root, features, progress=False)
    for m in first.features:
        np.testing.assert_array_equal(first.features[m], again.features[m])


def test_cache_is_invalidated_when_a_file_changes_appears_or_disappears(toy):
    root, features = toy
    load_dataset(root, features, progress=False)
    folder = root / "features/toy-audio-UTT"
    new = np.full(6, 7.0, dtype=np.float32)
    np.save(folder / "s2.npy", new)
    os.utime(folder / "s2.npy", ns=(1, 1))  # a changed file can even keep its size; mtime differs
    np.save(folder / "u3.npy", new)  # a new unlabelled clip, in every modality
    for m in ("video", "text"):
        np.save(root / f"features/toy-{m}-UTT/u3.npy", np.zeros(5 if m == "video" else 4, np.float32))
    (folder / "u1.npy").unlink()
    ds = load_dataset(root, features, progress=False)
    np.testing.assert_array_equal(ds.features["audio"][ds.names.tolist().index("s2")], new)
    assert "u3" in ds.names and "u1" not in ds.names


def test_read_only_data_folder_caches_in_the_user_cache(toy, tmp_path_factory, monkeypatch):
    root, features = toy
    user_cache = tmp_path_factory.mktemp("user-cache")
    monkeypatch.setattr(config, "USER_CACHE_DIR", user_cache)
    simulate_read_only(monkeypatch, root)
    ds = load_dataset(root, features, progress=False)
    assert len(ds) == 6
    assert list(user_cache.glob("packed/*/toy-audio-UTT.npy"))


# --- demo generator -------------------------------------------------------------------------------

def test_demo_has_mer_label_counts_and_planted_structure(tmp_path):
    root = make_demo_dataset(tmp_path / "demo", scale="tiny", seed=3)
    ds = load_dataset(root, FEATURES, progress=False)
    assert ds.classes == MER_CLASSES
    counts = ds.class_counts()
    tiny = lambda n, f, lo: max(lo, round(n * f))
    assert counts.loc["train_corpus", list(MER_CLASSES)].tolist() == [tiny(MER_TRAIN_COUNTS[c], 0.1, 5) for c in MER_CLASSES]
    assert counts.loc["test_corpus", list(MER_CLASSES)].tolist() == [tiny(MER_SEMI_TEST_COUNTS[c], 0.25, 3) for c in MER_CLASSES]
    labelled = (ds.labels >= 0).sum()
    pool = ds.indices("unlabelled")
    mer_pool = pool[~np.char.startswith(ds.names[pool], EXTRA_PREFIX)]  # the external set sits there until read
    assert len(mer_pool) == round(1.5 * labelled)
    assert (ds.hidden_labels[pool] >= 0).all() and (ds.hidden_labels[ds.labels >= 0] == -1).all()
    english = ds.subtitles.loc[ds.names, "english"]
    assert english.str.len().gt(0).all()
    # planted informativeness: a nearest-centroid probe on the pool's truth ranks audio > video > text
    acc = {m: _centroid_accuracy(ds.features[m][mer_pool], ds.hidden_labels[mer_pool]) for m in ds.modalities}
    assert acc["audio"] > acc["video"] > acc["text"] > 1.5 / len(MER_CLASSES), acc


def test_demo_perception_is_saved_aside_and_drives_features_and_subtitles(tiny_demo):
    ds = load_dataset(tiny_demo, FEATURES, progress=False)
    perception = read_perception(tiny_demo)
    assert set(perception.names) == set(ds.names) and perception.classes == MER_CLASSES
    with np.load(tiny_demo / PERCEPTION_FILE, allow_pickle=False) as f:  # no label, no underlying emotion in it
        assert set(f.files) == {"names", "classes", "modalities", "expressed", "clarity", "difficulty"}
        assert np.allclose(f["difficulty"], perception.difficulty, atol=1e-6)
    nothing = perception.expressed == NOTHING
    assert ((perception.clarity == 0) == nothing).all() and (perception.clarity <= 1).all()
    assert 0.3 < nothing[:, 2].mean() < 0.5 and 0.05 < nothing[:, 1].mean() < 0.2  # plain words, blank faces
    rows = np.array([perception.row(n) for n in ds.names])
    # subtitles follow the text modality: a sentence of its emotion, plain filler where it shows nothing
    text = perception.expressed[rows, 2]
    english = ds.subtitles.loc[ds.names, "english"].to_numpy()
    filler = {en for en, _ in _FILLER}
    assert all((e in filler) if t == NOTHING else (e in _CUES_EN[MER_CLASSES[t]]) for e, t in zip(english, text))
    # features follow what the face shows: a blank face's video features carry no class
    video = perception.expressed[rows, 1]
    clear, blank = (video >= 0) & (perception.clarity[rows, 1] > 0.4), video == NOTHING
    truth = np.where(ds.labels >= 0, ds.labels, ds.hidden_labels)
    x = (ds.features["video"] - ds.features["video"].mean(0)) / ds.features["video"].std(0)
    centroids = np.stack([x[clear & (video == c)].mean(0) for c in range(len(MER_CLASSES))])
    said = ((x[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert (said[clear] == video[clear]).mean() > 0.6 and (said[blank] == truth[blank]).mean() < 0.35
    # and the human label is mostly the emotion the clip shows: a label noise, not a different clip
    labelled = ds.labels >= 0
    majority = np.array([np.bincount(e[e >= 0], minlength=6).argmax() if (e >= 0).any() else -1
                         for e in perception.expressed[rows[labelled]]])
    assert (majority == ds.labels[labelled]).mean() > 0.85


def test_demo_external_labelled_set(tiny_demo):
    extra = pd.read_csv(tiny_demo / EXTRA_LABEL_FILE)
    assert list(extra.columns) == ["name", "discrete"] and extra["name"].str.startswith(EXTRA_PREFIX).all()
    corpus, _ = read_label_file(tiny_demo / "label-6way.npz")
    assert not set(extra["name"]) & {n for items in corpus.values() for n in items}
    train = sum(max(5, round(MER_TRAIN_COUNTS[c] * 0.1)) for c in MER_CLASSES)
    assert extra["discrete"].value_counts().to_dict() == {c: max(3, round(s * train)) for c, s in EXTRA_SHARES.items()}
    ds = load_dataset(tiny_demo, FEATURES, progress=False)  # features in the same folders
    rows = {n: i for i, n in enumerate(ds.names)}
    truth = ds.hidden_labels[[rows[n] for n in extra["name"]]]
    agree = (truth == [MER_CLASSES.index(c) for c in extra["discrete"]]).mean()
    assert 0.7 < agree < 0.9  # the automatic annotator is noisier than the human labels (94 %)
    manifest = json.loads((tiny_demo / "demo-manifest.json").read_text())
    assert manifest["extra"]["total"] == len(extra) and manifest["extra"]["label_file"] == EXTRA_LABEL_FILE
    assert manifest["perception_file"]["path"] == PERCEPTION_FILE


def _centroid_accuracy(x, y):
    x = (x - x.mean(0)) / x.std(0)
    half = len(y) // 2
    centroids = np.stack([x[:half][y[:half] == c].mean(0) for c in range(y.max() + 1)])
    pred = ((x[half:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
    return (pred == y[half:]).mean()


def test_demo_is_deterministic_and_kept(tmp_path):
    a = make_demo_dataset(tmp_path / "a", scale="tiny", seed=1)
    b = make_demo_dataset(tmp_path / "b", scale="tiny", seed=1)
    name = sorted(p.name for p in (a / "features/demo-audio-UTT").iterdir())[5]
    assert (a / "features/demo-audio-UTT" / name).read_bytes() == (b / "features/demo-audio-UTT" / name).read_bytes()
    stamp = (a / LABEL_FILE).stat().st_mtime_ns
    make_demo_dataset(tmp_path / "a", scale="tiny", seed=1)  # exists: left alone
    assert (a / LABEL_FILE).stat().st_mtime_ns == stamp
    (a / PERCEPTION_FILE).unlink()  # demo data from before the perception file: made again
    make_demo_dataset(tmp_path / "a", scale="tiny", seed=1)
    assert (a / PERCEPTION_FILE).exists() and (a / LABEL_FILE).stat().st_mtime_ns != stamp
    assert not list(tmp_path.glob(".*partial"))


# --- real MER2023 labels and subtitles ------------------------------------------------------------

@pytest.mark.real_data
def test_real_mer2023_label_file_and_subtitles(samples_dir):
    corpus, valence = read_label_file(samples_dir / LABEL_FILE)
    assert sum(len(v) for v in corpus.values()) == 5030
    train = list(corpus["train_corpus"].values())
    assert {c: train.count(c) for c in MER_CLASSES} == MER_TRAIN_COUNTS
    test3 = list(corpus["test3_corpus"].values())
    assert {c: test3.count(c) for c in MER_CLASSES} == MER_SEMI_TEST_COUNTS
    subs = read_subtitles(samples_dir / SUBTITLE_FILE)
    assert len(subs) == 5030 and set(subs.index) == {n for v in corpus.values() for n in v}
    assert (subs["english"] == "").sum() == 217  # the README's count of empty subtitles
    assert valence  # the real file carries valence for the labelled clips


@pytest.mark.real_data
def test_real_labels_load_with_features_written_in_mer_layout(samples_dir, tmp_path):
    """The real label file and subtitles drive load_dataset unchanged (features are synthetic)."""
    corpus, _ = read_label_file(samples_dir / LABEL_FILE)
    names = [n for v in corpus.values() for n in v]
    for m, d in (("audio", 3), ("video", 2)):
        folder = tmp_path / "features" / f"{m}-UTT"
        folder.mkdir(parents=True)
        for n in names:
            np.save(folder / f"{n}.npy", np.ones(d, np.float32))
    (tmp_path / LABEL_FILE).symlink_to(samples_dir / LABEL_FILE)
    (tmp_path / SUBTITLE_FILE).symlink_to(samples_dir / SUBTITLE_FILE)
    ds = load_dataset(tmp_path, {"audio": "audio", "video": "video"}, progress=False)
    assert len(ds) == 5030 and ds.classes == MER_CLASSES
    assert ds.class_counts().loc["train_corpus", list(MER_CLASSES)].to_dict() == MER_TRAIN_COUNTS
    assert ds.subtitle("sample_00000167")[1]  # an English line from the real CSV


# --- clip files of a folder ---------------------------------------------------------------------------

def test_clip_scan_keeps_every_video_suffix_and_names_what_it_cannot_use(tmp_path):
    for name in ("a.mp4", "b.M4V", "c.mkv", "d.avi", "d.mp4", "notes.txt", ".e.mp4", "._a.mp4"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.mp4").mkdir()  # a directory named like a clip
    (tmp_path / "gone.mp4").symlink_to(tmp_path / "deleted.mp4")  # a link whose target was deleted
    (tmp_path / "linked.mov").symlink_to(tmp_path / "a.mp4")  # a working link is a clip
    scan = scan_clips(tmp_path)
    assert scan.clips == {"a": tmp_path / "a.mp4", "b": tmp_path / "b.M4V", "c": tmp_path / "c.mkv",
                          "d": tmp_path / "d.mp4", "linked": tmp_path / "linked.mov"}
    assert scan.duplicates == {"d": [tmp_path / "d.mp4", tmp_path / "d.avi"]}  # mp4 first, whatever the order
    why = {path.name: reason for path, reason in scan.unusable}
    assert set(why) == {"d.avi", "folder.mp4", "gone.mp4"}  # hidden files and other suffixes are not clips
    assert "directory" in why["folder.mp4"] and "deleted.mp4, which does not exist" in why["gone.mp4"]
    assert "d.mp4 is used" in why["d.avi"]
    note = scan.note()
    assert note.startswith(f"3 entries of {tmp_path} cannot be used as clips") and "folder.mp4" in note
    assert scan_clips(tmp_path).note(limit=1).endswith("; and 2 more)")
    with pytest.warns(UserWarning, match="gone.mp4: a symbolic link"):
        scan.warn()


def test_clip_scan_names_an_unreadable_file(tmp_path, monkeypatch):
    (tmp_path / "locked.mp4").write_bytes(b"x")
    (tmp_path / "locked.mp4").chmod(0)
    if os.geteuid() == 0:  # root reads every file: answer as the kernel would for anyone else
        monkeypatch.setattr(os, "access", lambda path, mode, **_: not str(path).endswith("locked.mp4"))
    scan = scan_clips(tmp_path)
    assert not scan.clips and scan.unusable == [(tmp_path / "locked.mp4", "not readable (check its permissions)")]


def test_clip_scan_of_a_clean_folder_says_nothing(tmp_path, recwarn):
    (tmp_path / "a.mp4").write_bytes(b"x")
    scan = scan_clips(tmp_path)
    scan.warn()
    assert scan.clips == {"a": tmp_path / "a.mp4"} and scan.note() == "" and not recwarn.list
