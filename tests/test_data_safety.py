"""The data layer under hostile or broken input: crafted label files, odd feature files, empty
splits, and no writable cache location."""
from __future__ import annotations

import os
import shlex
from pathlib import Path

import numpy as np
import pytest

from mer_lib import config, io
from mer_lib.data import DataError, load_dataset, read_label_file
from mer_lib.data.packed import load_packed

from .support.datasets import write_layout
from .support.filesystem import simulate_read_only

# --- MER label files are unpickled with a restricted unpickler ------------------------------------------

class _RunsCode:
    """What a crafted label file holds: an object whose unpickling calls os.system."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_a_crafted_label_file_is_refused_and_its_code_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    payload = {"s1": {"emo": "happy", "val": 0.0, "x": _RunsCode(f"touch {shlex.quote(str(marker))}")}}
    np.savez(tmp_path / "label-6way.npz", train_corpus=np.array(payload, dtype=object))
    with pytest.raises(DataError, match=r"label-6way\.npz \(member train_corpus\.npy\): .* asks for "
                                        r"(posix|os|nt)\.system; refused.*Fix:"):
        read_label_file(tmp_path / "label-6way.npz")
    assert not marker.exists()


def test_label_files_of_plain_data_still_load_numpy_scalars_included(tmp_path):
    corpus = {"s1": {"emo": "Happy", "val": np.float32(1.5)}, "s2": {"emo": "sad", "val": -10},
              "s3": {"emo": "neutral", "val": np.float64(-0.5)}}
    np.savez_compressed(tmp_path / "l.npz", train_corpus=np.array(corpus, dtype=object),
                        test_corpus=np.array({}, dtype=object))
    splits, valence = read_label_file(tmp_path / "l.npz")
    assert splits == {"train_corpus": {"s1": "happy", "s2": "sad", "s3": "neutral"}, "test_corpus": {}}
    assert valence == {"s1": 1.5, "s3": -0.5}  # -10 is MER's "no valence"


def test_the_real_mer2023_label_file_loads(samples_dir):
    splits, _ = read_label_file(samples_dir / "label-6way.npz")
    assert set(splits) >= {"train_corpus"} and sum(map(len, splits.values())) > 1000
    assert set().union(*(set(s.values()) for s in splits.values())) <= set(config.MER_CLASSES)


def test_a_label_file_that_is_not_a_zip_is_a_clear_error(tmp_path):
    (tmp_path / "l.npz").write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match=r"l\.npz: not a readable \.npz label file"):
        read_label_file(tmp_path / "l.npz")


# --- feature files: the odd file is named, every message has a path, only floats ----------------------

def test_an_odd_first_file_is_named_by_majority_vote(toy):
    root, features = toy
    folder = root / "features/toy-audio-UTT"
    np.save(folder / "s1.npy", np.zeros(7, dtype=np.float32))  # s1 sorts first; the others have 6
    with pytest.raises(DataError, match=r"toy-audio-UTT/s1\.npy: sample 's1' has dimension 7 but the other "
                                        r"5 files of this folder have 6.*Fix:"):
        load_dataset(root, features, use_cache=False, progress=False)


def test_several_odd_files_are_listed(toy):
    root, features = toy
    folder = root / "features/toy-audio-UTT"
    for name in ("s1", "u2"):
        np.save(folder / f"{name}.npy", np.zeros(9, dtype=np.float32))
    with pytest.raises(DataError, match=r"toy-audio-UTT: 2 files have another dimension than the 6 of the "
                                        r"other 4: 's1\.npy \(9\)', 'u2\.npy \(9\)'"):
        load_dataset(root, features, use_cache=False, progress=False)


def test_a_string_array_names_its_file(toy):
    root, features = toy
    np.save(root / "features/toy-text-UTT/s2.npy", np.array(["0.1", "0.2", "x", "y"]))
    with pytest.raises(DataError, match=r"toy-text-UTT/s2\.npy: sample 's2' holds <U3 values, not "
                                        r"float16/32/64.*Fix:"):
        load_dataset(root, features, use_cache=False, progress=False)


@pytest.mark.parametrize("dtype", [np.complex64, np.bool_, np.int64, np.uint8])
@pytest.mark.parametrize("position", ["s1", "s3"])  # the first file, and one after it (the fast path)
def test_non_float_feature_files_are_refused_not_cast(toy, dtype, position):
    root, features = toy
    np.save(root / f"features/toy-video-UTT/{position}.npy", np.ones(5, dtype=dtype))
    with pytest.raises(DataError, match=rf"toy-video-UTT/{position}\.npy: sample '{position}' holds "
                                        rf"{np.dtype(dtype)} values, not float16/32/64.*Fix:"):
        load_dataset(root, features, use_cache=False, progress=False)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_float_widths_load(toy, dtype):
    root, features = toy
    np.save(root / "features/toy-video-UTT/s3.npy", np.full(5, 0.5, dtype=dtype))
    ds = load_dataset(root, features, use_cache=False, progress=False)
    row = list(ds.names).index("s3")
    np.testing.assert_array_equal(ds.features["video"][row], np.full(5, 0.5, np.float32))


def test_an_empty_split_is_reported_as_empty_not_missing(tmp_path):
    features = write_layout(tmp_path, {"train_corpus": {"s1": "happy", "s2": "sad"}, "test_corpus": {}})
    ds = load_dataset(tmp_path, features, use_cache=False, progress=False)
    with pytest.raises(DataError, match=r"split 'test_corpus' is in the label file but holds no samples"):
        ds.indices("test_corpus")
    with pytest.raises(DataError, match=r"no split 'test3_corpus'; this dataset has \['train_corpus'\]"):
        ds.indices("test3_corpus")


# --- caches: one rule for where they go; use_cache=False writes nothing ---------------------------------

def test_use_cache_false_writes_nothing_even_without_any_writable_folder(toy, monkeypatch):
    root, features = toy
    simulate_read_only(monkeypatch, Path("/"))  # nothing can be created anywhere (as with HOME=/nonexistent)
    ds = load_dataset(root, features, use_cache=False, progress=False)
    assert len(ds) == 6 and ds.features["audio"].shape == (6, 6)
    monkeypatch.undo()
    assert not (root / "features" / ".packed").exists()


def test_no_writable_cache_is_a_clear_error_naming_mer_lib_cache(toy, tmp_path_factory, monkeypatch):
    root, _ = toy
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setattr(config, "USER_CACHE_DIR", home / ".cache" / "mer_lib")
    simulate_read_only(monkeypatch, root)
    simulate_read_only(monkeypatch, home)
    with pytest.raises(io.CacheLocationError, match=r"no writable cache folder \(.*\.packed: Read-only file "
                                                    r"system; .*packed/.*Fix: set MER_LIB_CACHE"):
        load_packed(root / "features" / "toy-audio-UTT", progress=False)


def _no_home(cls):
    raise RuntimeError("Could not determine home directory.")  # what Path.home says without HOME or passwd


def test_no_home_folder_at_all(monkeypatch, tmp_path):
    monkeypatch.delenv("MER_LIB_CACHE", raising=False)
    monkeypatch.setattr(Path, "home", classmethod(_no_home))
    assert config._user_cache_dir() is None  # importing mer_lib.config must not fail there
    monkeypatch.setattr(config, "USER_CACHE_DIR", None)
    simulate_read_only(monkeypatch, tmp_path)
    with pytest.raises(io.CacheLocationError, match=r"no user cache \(no home folder\).*MER_LIB_CACHE"):
        io.cache_dir(tmp_path / ".packed", "packed")
    monkeypatch.setenv("MER_LIB_CACHE", "~/somewhere")
    assert config._user_cache_dir() == Path(os.path.expanduser("~/somewhere"))


def test_an_existing_read_only_cache_folder_falls_back_to_the_user_cache(tmp_path, monkeypatch):
    """The rule prior_inputs and the feature cache share: an existing folder is probed by writing."""
    beside = tmp_path / "data" / ".prior-embeddings"
    beside.mkdir(parents=True)
    monkeypatch.setattr(config, "USER_CACHE_DIR", tmp_path / "user")
    simulate_read_only(monkeypatch, beside)
    assert io.cache_dir(beside, "prior-embeddings") == tmp_path / "user" / "prior-embeddings"
    assert list((tmp_path / "user" / "prior-embeddings").iterdir()) == []  # the probe is removed


def test_prior_inputs_caches_embeddings_by_the_same_rule(toy, tmp_path, monkeypatch):
    from mer_lib import prior_inputs
    from mer_lib.priors.schema import build_prior
    from mer_lib.priors.store import PriorStore

    from .support.fakeserver import valid_answer

    root, features = toy
    ds = load_dataset(root, features, use_cache=False, progress=False)
    prior_file = tmp_path / "priors" / "p.jsonl"
    with PriorStore(prior_file) as store:
        prior = build_prior(valid_answer("happy"), name="s1", classes=ds.classes, model="m", backend="b",
                            prompt_version="v").model_dump(mode="json")
        store.append({"key": "k1", "name": "s1", "status": "ok", "prior": prior})
    (prior_file.parent / ".prior-embeddings").mkdir()  # exists, but read-only: mkdir alone would pass
    monkeypatch.setattr(config, "USER_CACHE_DIR", tmp_path / "user")
    simulate_read_only(monkeypatch, prior_file.parent / ".prior-embeddings")
    used = {}
    monkeypatch.setattr(prior_inputs, "build_prior_inputs",
                        lambda ds, texts, weights, cache_dir, **kw: used.setdefault("cache_dir", cache_dir))
    prior_inputs.load_prior_inputs(ds, prior_file, progress_bar=False)
    assert used["cache_dir"] == tmp_path / "user" / "prior-embeddings"
