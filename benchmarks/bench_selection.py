"""Benchmark: which stage-1 model selection holds up from validation to test (measured, not decided).

For each candidate rule, over seeds: test WF1 (mean, std), the validation WF1 of the kept model,
and the gap between them. A rule that keeps a lucky epoch shows a larger gap and a wider test std.

    (a) best        the epoch with the best validation WF1 (MERTools' rule; `selection: best`)
    (b) start=E/2   the same, from the middle epoch on
    (c) smoothed    the best mean over a window of 3 epochs
    (d) val 0.3     best, with 30% of the training split held out instead of 20%
    (e) average     the weights averaged over the last 5 epochs (the default since this benchmark)
    (f) average, val 0.3   (e) with (d)'s larger validation share

on the demo dataset (all three modalities; epochs 20, batch 256, hidden/latent 64) and, where
../shared/data/mer2023-samples is present, on MER2023's real subtitles (all-MiniLM-L6-v2,
text only; train_corpus -> test3_corpus, stage-1 defaults with input dropout 0.7, the value the
training split's validation picks (bench_real_text.py), and 0.3, the default, with which the model
overfits after ten epochs). Validation is always a part of the training split; test is only scored.

    python benchmarks/bench_selection.py [--seeds 5] [--datasets demo text] [--text-dropout 0.7 0.3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from mer_lib.config import DATA_DIR, SHARED_SAMPLES_DIR
from mer_lib.data import load_dataset, make_demo_dataset
from mer_lib.data.demo import FEATURES, TEST_SPLIT, TRAIN_SPLIT
from mer_lib.extract.text_dataset import write_text_dataset
from mer_lib.models import FusionConfig
from mer_lib.stage1 import Stage1Config, run_stage1

DEMO = Stage1Config(model=FusionConfig(hidden_dim=64, latent_dim=64), epochs=20, batch_size=256)


def candidates(cfg: Stage1Config) -> dict[str, Stage1Config]:
    # every rule names its selection: the default (cfg.selection) is one of the candidates, not a base
    best = replace(cfg, selection="best")
    return {"(a) best": best,
            "(b) start=E/2": replace(best, selection_start=cfg.epochs // 2),
            "(c) smoothed 3": replace(cfg, selection="smoothed", selection_window=3),
            "(d) val 0.3": replace(best, val_fraction=0.3),
            "(e) average 5": replace(cfg, selection="average", selection_window=5),
            "(f) avg 5+val 0.3": replace(cfg, selection="average", selection_window=5, val_fraction=0.3)}


def measure(name, ds, cfg, train, test, seeds, modalities=None) -> None:
    print(f"\n{name}: {len(ds.indices(train))} train -> {len(ds.indices(test))} test, {len(seeds)} seeds; "
          f"epochs {cfg.epochs}, batch {cfg.batch_size}, hidden/latent {cfg.model.hidden_dim}/"
          f"{cfg.model.latent_dim}, dropout {cfg.model.dropout}, lr {cfg.lr}")
    print(f"{'rule':15s} {'test WF1':>13s} {'test acc':>13s} {'val WF1':>13s} {'val-test':>13s}  "
          f"{'kept epoch':>18s}  per-seed test WF1")
    for label, c in candidates(cfg).items():
        start = time.perf_counter()
        runs = [run_stage1(ds, c, train, test, s, modalities=modalities) for s in seeds]
        test_f1 = np.array([r.test_scores["weighted_f1"] for r in runs])
        test_acc = np.array([r.test_scores["accuracy"] for r in runs])
        val_f1 = np.array([r.folds[0].best_val_f1 for r in runs])
        epochs = [r.folds[0].best_epoch for r in runs]

        def ms(a):
            return f"{a.mean():5.1f} ± {a.std(ddof=1):4.1f}"
        print(f"{label:15s} {ms(test_f1)} {ms(test_acc)} {ms(val_f1)} {ms(val_f1 - test_f1)}  "
              f"{epochs!s:>18s}  {np.round(test_f1, 1).tolist()}  ({time.perf_counter() - start:.0f} s)",
              flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--datasets", nargs="+", default=["demo", "text"], choices=["demo", "text"])
    p.add_argument("--text-dropout", type=float, nargs="+", default=[0.7, 0.3])
    p.add_argument("--text-root", type=Path, default=DATA_DIR / "mer2023-text",
                   help="where the MiniLM text dataset is written (once; later runs reuse it)")
    args = p.parse_args()
    seeds = list(range(args.seeds))
    if "demo" in args.datasets:
        with tempfile.TemporaryDirectory() as tmp:
            demo = load_dataset(make_demo_dataset(Path(tmp) / "demo", scale="demo"), FEATURES, progress=False)
            measure("demo (A+V+T)", demo, DEMO, TRAIN_SPLIT, TEST_SPLIT, seeds)
    if "text" in args.datasets:
        if not (SHARED_SAMPLES_DIR / "label-6way.npz").exists():
            print(f"\nMER2023 text: skipped ({SHARED_SAMPLES_DIR} not found)")
            return
        features = write_text_dataset(args.text_root, SHARED_SAMPLES_DIR, progress=False)
        text = load_dataset(args.text_root, features, progress=False)
        for dropout in args.text_dropout:
            cfg = replace(Stage1Config(), model=replace(FusionConfig(), dropout=dropout))
            measure("MER2023 text (all-MiniLM-L6-v2)", text, cfg, "train_corpus", "test3_corpus", seeds, ["text"])


if __name__ == "__main__":
    main()
