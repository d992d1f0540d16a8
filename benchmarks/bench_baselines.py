"""Benchmark: time and scores of the classical baselines (mer_lib.baselines) on the demo dataset and on
random features of MER2024's shape (5,030 labelled clips x 5,888 dims: CLIP 768 + HuBERT 1024 +
BLOOM 4096), where PCA to ``--max-dims`` components caps the cost.

    python benchmarks/bench_baselines.py [--methods logreg svm] [--max-dims 512] [--skip-mer2024]

Random features carry no signal, so their scores are chance; only their timings mean something
(every training row becomes a support vector: the SVM's worst case).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from mer_lib.baselines import run_baseline
from mer_lib.config import MER_CLASSES
from mer_lib.data import Dataset, load_dataset, make_demo_dataset
from mer_lib.data.demo import FEATURES, TEST_SPLIT, TRAIN_SPLIT

MER2024_DIMS = {"video": 768, "audio": 1024, "text": 4096}  # CLIP ViT-L/14, chinese-hubert-large, bloom-7b1


def random_mer2024(n_train: int = 5_030, n_test: int = 1_000, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    return Dataset(root=Path("random"), names=np.asarray([f"r{i}" for i in range(n)]), classes=MER_CLASSES,
                   labels=rng.integers(0, len(MER_CLASSES), n),
                   splits=np.asarray([TRAIN_SPLIT] * n_train + [TEST_SPLIT] * n_test),
                   features={m: rng.normal(size=(n, d)).astype(np.float32) for m, d in MER2024_DIMS.items()})


def report(name: str, ds: Dataset, methods, max_dims) -> None:
    for method in methods:
        start = time.perf_counter()
        run = run_baseline(ds, method, TRAIN_SPLIT, TEST_SPLIT, max_dims=max_dims)
        print(f"{name:9s} {method:6s} {len(ds.indices(TRAIN_SPLIT)):5d} x {sum(ds.dims.values()):4d} -> {run.dims:4d}  "
              f"{time.perf_counter() - start:6.1f} s  cv WF1 {run.cv_weighted_f1:5.1f}  test acc "
              f"{run.test_scores['accuracy']:5.1f} WF1 {run.test_scores['weighted_f1']:5.1f}  {run.params}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=["logreg", "svm"])
    p.add_argument("--max-dims", type=int, default=512, help="PCA components above this width (0: no PCA)")
    p.add_argument("--skip-mer2024", action="store_true", help="only the demo dataset")
    args = p.parse_args()
    max_dims = args.max_dims or None
    print(f"cpu cores {os.cpu_count()}, 3-fold grid search, PCA above {max_dims} dims")
    with tempfile.TemporaryDirectory() as tmp:
        demo = load_dataset(make_demo_dataset(Path(tmp) / "demo", scale="demo"), FEATURES, progress=False)
        report("demo", demo, args.methods, max_dims)
    if not args.skip_mer2024:
        report("random", random_mer2024(), args.methods, max_dims)


if __name__ == "__main__":
    main()
