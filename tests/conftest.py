"""Shared fixtures (helpers that tests import live in ``tests/support/``)."""
from __future__ import annotations

import os

import pytest

# trainings run in this process unless a test asks for worker processes (mer_lib.parallel): tests stay
# quick to start and their timings do not depend on the machine's cores
os.environ.setdefault("MER_LIB_WORKERS", "1")

from mer_lib.config import SHARED_SAMPLES_DIR
from tests.support.datasets import write_layout
from tests.support.samples import SAMPLE_LABELS


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
    """The real MER2023 samples folder (labels, subtitles, clips), or skip the test."""
    if not SAMPLE_LABELS.exists():
        pytest.skip(f"real MER2023 samples not found at {SHARED_SAMPLES_DIR}")
    return SHARED_SAMPLES_DIR
