"""MER2024 and MER2023 as they really come: placeholder splits, organisers' test labels, external sets."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

from mer_lib.config import MER_CLASSES, PROJ_ROOT
from mer_lib.data import EXTRA, UNLABELLED, DataError, dataset_index, load_dataset, warn_placeholder_splits

from .support.datasets import write_labels, write_layout

PAPER_FEATURES = {"audio": "chinese-hubert-large-UTT", "video": "clip-vit-large-patch14-UTT", "text": "bloom-7b1-UTT"}


def mer2024_folder(root, n_train=60, n_pool=120, n_test=30, seed=0):
    """A folder shaped as MERTools' MER2024 preprocessing writes it: label-6way.npz with train_corpus
    and test1_corpus (the whole pool, the test clips among it, all labelled "neutral"), features for
    every clip under the paper's extractor names, and the organisers' test labels as a CSV."""
    rng = np.random.default_rng(seed)
    classes = list(MER_CLASSES)
    train = {f"sample_{i:08d}": classes[i % 6] for i in range(n_train)}
    pool = [f"samplenew3_{i:08d}" for i in range(n_pool)]
    test = {n: classes[rng.integers(6)] for n in pool[:n_test]}  # the SEMI test clips, hidden in the pool
    splits = {"train_corpus": train, "test1_corpus": dict.fromkeys(pool, "neutral")}
    names = [*train, *pool]
    for m, folder in PAPER_FEATURES.items():
        (root / "features" / folder).mkdir(parents=True)
        for n in names:
            y = classes.index(train.get(n) or test.get(n) or classes[rng.integers(6)])
            x = rng.normal(size=8).astype(np.float32)
            x[y] += 3.0  # a planted signal, so the run has something to learn
            np.save(root / "features" / folder / f"{n}.npy", x)
    write_labels(root / "label-6way.npz", splits)
    pd.DataFrame({"name": list(test), "discrete": list(test.values())}).to_csv(root / "semi-test.csv", index=False)
    return train, pool, test


def test_placeholder_split_joins_the_pool_and_the_organisers_labels_define_the_test_split(tmp_path):
    train, pool, test = mer2024_folder(tmp_path)
    ds = load_dataset(tmp_path, PAPER_FEATURES, unlabelled_splits=["test1_corpus"], test_label_file="semi-test.csv",
                      test_split="semi_test", progress=False)
    assert set(ds.names[ds.splits == "train_corpus"]) == set(train)
    assert dict(zip(ds.names[ds.splits == "semi_test"], np.asarray(ds.classes)[ds.labels[ds.splits == "semi_test"]])) == test
    pooled = set(ds.names[ds.splits == UNLABELLED])
    assert pooled == set(pool) - set(test)  # the placeholder clips, less the test clips: never both
    assert (ds.labels[ds.splits == UNLABELLED] == -1).all()  # no placeholder "neutral" survives
    assert ds.label_sources["semi_test"] == str(tmp_path / "semi-test.csv")


def test_without_unlabelled_splits_the_placeholders_are_flagged(tmp_path):
    mer2024_folder(tmp_path, n_train=20, n_pool=100)
    ds = load_dataset(tmp_path, PAPER_FEATURES, progress=False)
    with pytest.warns(UserWarning, match=r"split 'test1_corpus' has 100 clips, all labelled 'neutral'.*unlabelled_splits"):
        warn_placeholder_splits(ds, "train_corpus")
    fixed = load_dataset(tmp_path, PAPER_FEATURES, unlabelled_splits=["test1_corpus"], progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_placeholder_splits(fixed, "train_corpus")


def test_test_labels_need_features_and_a_split_of_their_own(tmp_path):
    mer2024_folder(tmp_path)
    pd.DataFrame({"name": ["sample_00000001", "nowhere_1", "nowhere_2"], "discrete": ["sad"] * 3}).to_csv(
        tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"labelled in split 'train_corpus'.*and in 'semi_test'"):
        dataset_index(tmp_path, test_label_file="bad.csv", test_split="semi_test")
    pd.DataFrame({"name": ["nowhere_1", "nowhere_2"], "discrete": ["sad", "Happy"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"2 labelled sample\(s\) of split 'semi_test' have no audio features: "
                                        r"'nowhere_1', 'nowhere_2' \(labels from .*bad.csv\)"):
        load_dataset(tmp_path, PAPER_FEATURES, test_label_file="bad.csv", test_split="semi_test", progress=False)
    (tmp_path / "wrong.csv").write_text("name,emotion\nx,sad\n")
    with pytest.raises(DataError, match="needs the columns name and discrete"):
        dataset_index(tmp_path, test_label_file="wrong.csv")
    with pytest.raises(DataError, match=r"no split\(s\) \['test2_corpus'\]"):
        dataset_index(tmp_path, unlabelled_splits=["test2_corpus"])


def test_an_external_labelled_set_is_its_own_split(tmp_path):
    features = write_layout(tmp_path, {"train_corpus": {"a": "happy", "b": "sad"}, "test_corpus": {"c": "angry"}},
                            unlabelled=["u1", "x1", "x2"])
    pd.DataFrame({"name": ["x1", "x2"], "discrete": ["worried", "happy"]}).to_csv(tmp_path / "extra.csv", index=False)
    ds = load_dataset(tmp_path, features, extra_label_file=str(tmp_path / "extra.csv"), progress=False)
    assert sorted(ds.names[ds.splits == EXTRA]) == ["x1", "x2"]
    assert ds.names[ds.splits == UNLABELLED].tolist() == ["u1"]
    assert ds.classes == tuple(c for c in MER_CLASSES if c in {"happy", "sad", "angry", "worried"})


def _reproduce(*args):
    return subprocess.run([sys.executable, "-m", "mer_lib.reproduce", *map(str, args)], cwd=PROJ_ROOT,
                          capture_output=True, text=True, timeout=1500)


def _merr_priors(tmp_path, names, ds):
    """A prior file made by the real machinery (the replay back-end) from MERR-style JSON."""
    from mer_lib import priors

    rng = np.random.default_rng(1)
    merr = {n: {"AU_list": ["AU06", "AU12"], "visual_prior_list": ["cheeks raised", "smiling"],
                "audio_prior_list": "a bright voice", "pseu_emotion": MER_CLASSES[rng.integers(6)],
                "text": "hello"} for n in names}
    (tmp_path / "merr.json").write_text(json.dumps(merr))
    priors.generate_for_dataset(ds, priors.make_backend("replay", path=str(tmp_path / "merr.json")),
                                tmp_path / "priors.jsonl", splits=list(dict.fromkeys(ds.splits.tolist())))
    return tmp_path / "priors.jsonl"


@pytest.mark.slow
def test_mer2024_as_mertools_writes_it_runs_from_a_three_line_config(tmp_path):
    data = tmp_path / "mer2024"
    data.mkdir()
    train, pool, test = mer2024_folder(data)
    index = dataset_index(data, unlabelled_splits=["test1_corpus"], test_label_file="semi-test.csv",
                          test_split="semi_test")
    prior_file = _merr_priors(tmp_path, index.names, index)
    paths = tmp_path / "paths.yaml"
    paths.write_text(yaml.safe_dump({"dataset": {"data_root": str(data), "test_label_file": "semi-test.csv",
                                                 "prior_file": str(prior_file)}}))
    run = tmp_path / "run"
    out = _reproduce("--profile", "mer2024", "--config", paths, "--run-dir", run, "--only", "01", "02", "03",
                     "--seeds", "1")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    pretraining = json.loads((run / "results" / "02_pretraining.json").read_text())
    bdcl = pretraining["methods"]["bdcl"]["runs"][0]
    assert bdcl["test"]["n"] == len(test)  # scored on the organisers' labels
    assert len(bdcl["val_weighted_f1"]) == 5  # MERTools' 5-fold protocol
    semi = json.loads((run / "results" / "03_pseudo_labeling.json").read_text())
    selected = {h["pseudo_selected"] for h in semi["pseudo_history"] if h.get("pseudo_selected") == h.get("pseudo_selected")}
    assert selected == {len(pool) - len(test)}  # the pool, test clips out, relabelled every epoch
    zero_shot = json.loads((run / "results" / "01_prior_generation.json").read_text())["methods"]["zero_shot"]
    assert zero_shot["runs"][0]["n_split"] == len(test)

    # without the organisers' labels the run stops at once and says where they come from
    paths.write_text(yaml.safe_dump({"dataset": {"data_root": str(data), "prior_file": str(prior_file)}}))
    out = _reproduce("--profile", "mer2024", "--config", paths, "--run-dir", tmp_path / "run2", "--only", "02")
    assert out.returncode != 0
    assert "test_label_file" in out.stderr and "organisers" in out.stderr
    assert not (tmp_path / "run2" / "notebooks").exists()


@pytest.mark.slow
@pytest.mark.real_data
def test_the_real_mer2023_label_file_with_the_mer2023_profile(tmp_path, samples_dir):
    from mer_lib.data import read_label_file

    corpus, _ = read_label_file(samples_dir / "label-6way.npz")
    names = [n for items in corpus.values() for n in items]
    data = tmp_path / "mer2023"
    rng = np.random.default_rng(0)
    for folder in PAPER_FEATURES.values():
        (data / "features" / folder).mkdir(parents=True)
        for n in names:
            np.save(data / "features" / folder / f"{n}.npy", rng.normal(size=4).astype(np.float32))
    (data / "label-6way.npz").symlink_to(samples_dir / "label-6way.npz")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"dataset": {"data_root": str(data), "prior_file": ""},
                                      "notebooks": {"all": {"epochs": 2, "batch_size": 512, "folds": 1}}}))
    out = _reproduce("--profile", "mer2023", "--config", config, "--run-dir", tmp_path / "run", "--only", "02",
                     "--seeds", "1")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    result = json.loads((tmp_path / "run" / "results" / "02_pretraining.json").read_text())
    assert result["classes"] == list(MER_CLASSES)
    assert result["methods"]["bdcl"]["runs"][0]["test"]["n"] == 834  # MER-SEMI: test3_corpus
    ds = load_dataset(data, PAPER_FEATURES, progress=False)
    assert {s: int((ds.splits == s).sum()) for s in ds.split_names} == {
        "train_corpus": 3373, "test1_corpus": 411, "test2_corpus": 412, "test3_corpus": 834}
