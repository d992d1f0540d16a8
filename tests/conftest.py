"""Shared fixtures: small datasets in the MER layout, written per test."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from mer_lib.config import SHARED_SAMPLES_DIR


def write_layout(root: Path, splits: dict[str, dict[str, str]], *, unlabelled=(), dims=None,
                 modalities=("audio", "video", "text"), seed: int = 0) -> dict[str, str]:
    """Write a small MER-layout dataset; returns the ``features=`` mapping for ``load_dataset``."""
    rng = np.random.default_rng(seed)
    dims = dims or {"audio": 6, "video": 5, "text": 4}
    names = [n for items in splits.values() for n in items] + list(unlabelled)
    features = {}
    for m in modalities:
        folder = root / "features" / f"toy-{m}-UTT"
        folder.mkdir(parents=True, exist_ok=True)
        for n in names:
            np.save(folder / f"{n}.npy", rng.normal(size=dims[m]).astype(np.float32))
        features[m] = folder.name
    corpus = {k: np.array({n: {"emo": e, "val": 0.0} for n, e in v.items()}, dtype=object)
              for k, v in splits.items()}
    np.savez(root / "label-6way.npz", **corpus)
    return features


def simulate_read_only(monkeypatch, folder: Path) -> None:
    """Creating a file or folder under ``folder`` fails as on a read-only mount (``os.open`` with a
    write flag, ``os.mkdir``); tests run as root, where ``chmod`` stops no write."""
    top = os.path.abspath(folder).rstrip(os.sep) + os.sep  # "/" for the whole file system

    def inside(path) -> bool:
        return (os.path.abspath(os.fspath(path)) + os.sep).startswith(top)

    real_open, real_mkdir = os.open, os.mkdir

    def open_(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        if inside(path):
            if os.path.exists(path):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(path))
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "mkdir", mkdir)


@pytest.fixture
def toy(tmp_path):
    """Four labelled samples in two splits plus two unlabelled ones."""
    splits = {"train_corpus": {"s1": "happy", "s2": "sad", "s3": "neutral"},
              "test_corpus": {"s4": "angry"}}
    features = write_layout(tmp_path, splits, unlabelled=["u1", "u2"])
    return tmp_path, features


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory):
    """The generated demo dataset at its 'tiny' scale (shared by the tests of a session)."""
    from mer_lib.data import make_demo_dataset
    return make_demo_dataset(tmp_path_factory.mktemp("demo") / "tiny", scale="tiny", seed=0)


@pytest.fixture
def samples_dir():
    if not (SHARED_SAMPLES_DIR / "label-6way.npz").exists():
        pytest.skip(f"real MER2023 samples not found at {SHARED_SAMPLES_DIR}")
    return SHARED_SAMPLES_DIR
