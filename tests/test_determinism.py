"""The same seed gives the same model, bit for bit, however the process got there (issue: run integrity)."""
from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from mer_lib import parallel, stage1
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


def test_parallel_workers_give_the_same_models_as_one_process(ds, tmp_path, monkeypatch):
    """Seeds trained side by side in worker processes (mer_lib.parallel) equal those trained here."""
    cfg = replace(CFG, epochs=3)
    monkeypatch.setenv("MER_LIB_WORKERS", "1")
    here = stage1.stage1_over_seeds(ds, cfg, TRAIN_SPLIT, "test_corpus", [0, 1, 2], tmp_path / "a", tag="t")
    monkeypatch.setenv("MER_LIB_WORKERS", "2")
    there = stage1.stage1_over_seeds(ds, cfg, TRAIN_SPLIT, "test_corpus", [0, 1, 2], tmp_path / "b", tag="t")
    for a, b in zip(here, there):
        assert a.seed == b.seed
        np.testing.assert_array_equal(a.test_probs, b.test_probs)
        for (name, w), v in zip(a.folds[0].model.state_dict().items(), b.folds[0].model.state_dict().values()):
            assert torch.equal(w, v), name
    assert len(list((tmp_path / "b").glob("t-seed*.pt"))) == 3  # the workers wrote the checkpoints


def _worker_pid(ds, _job):
    return os.getpid()


def test_workers_leave_ctrl_c_to_the_parent(ds, monkeypatch):
    """An interrupt reaches the whole process group (Ctrl-C, a notebook's "interrupt kernel", a kernel
    shutting down): the workers must not die of it, printing tracebacks and breaking the pool."""
    monkeypatch.setenv("MER_LIB_WORKERS", "2")
    served = set(parallel.map_trainings(_worker_pid, ds, [(i,) for i in range(4)]))
    workers = set(parallel._pool._processes)
    assert served <= workers and os.getpid() not in workers
    for pid in workers:
        os.kill(pid, signal.SIGINT)
    time.sleep(0.5)
    assert set(parallel.map_trainings(_worker_pid, ds, [(i,) for i in range(4)])) <= workers
    assert set(parallel._pool._processes) == workers
