"""The same seed gives the same model, bit for bit, however the process got there (issue: run integrity)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from mer_lib import stage1
from mer_lib.data import load_dataset
from mer_lib.data.demo import FEATURES, TRAIN_SPLIT
from mer_lib.models import FusionConfig

CFG = stage1.Stage1Config(model=FusionConfig(hidden_dim=64, latent_dim=64), epochs=6, batch_size=256,
                            lr=3e-3, bdcl=True)


@pytest.fixture(scope="module")
def ds(tiny_demo):
    return load_dataset(tiny_demo, FEATURES, progress=False)


def _train(ds, folder, seed=1, cfg=CFG):
    tr, va = stage1.validation_splits(ds.labels, ds.indices(TRAIN_SPLIT), cfg, seed)[0]
    fit = stage1.fit(ds, tr, va, cfg, seed, checkpoint_dir=folder)
    return {k: v.clone() for k, v in fit.model.state_dict().items()}, [h["val_weighted_f1"] for h in fit.history]


def test_stage1_with_bdcl_is_bit_identical_across_fresh_runs(ds, tmp_path, monkeypatch):
    monkeypatch.delenv("MER_LIB_CPU_THREADS", raising=False)
    torch.set_num_threads(2)  # as on the CI machines: the multi-threaded BLAS is what used to drift
    first, curve = _train(ds, tmp_path / "a")
    # other work in between changes the allocator's and the thread pool's state
    _ = [torch.randn(1000 + 17 * i) @ torch.randn(1000 + 17 * i, 8) for i in range(20)]
    _train(ds, tmp_path / "b", seed=0, cfg=replace(CFG, bdcl=False, epochs=2))
    second, curve2 = _train(ds, tmp_path / "c")
    assert curve == curve2
    for name, weight in first.items():
        assert torch.equal(weight, second[name]), f"{name} differs by {(weight - second[name]).abs().max():.3g}"
    assert torch.get_num_threads() == 2  # the caller's thread count is restored


def test_another_seed_gives_another_model(ds, tmp_path):
    a, _ = _train(ds, tmp_path / "a", seed=1, cfg=replace(CFG, epochs=2))
    b, _ = _train(ds, tmp_path / "b", seed=2, cfg=replace(CFG, epochs=2))
    assert not np.array_equal(a["classifier.weight"].numpy(), b["classifier.weight"].numpy())
