"""Benchmark: stage 1 text-only against the classical baselines on MER2023's real subtitles.

The text feature is all-MiniLM-L6-v2 over the English subtitles (mer_lib.extract.text_dataset,
written once to --root); training on train_corpus (3,373), testing on test3_corpus (MER-SEMI, 834).
Rows: logistic regression and RBF-SVM (mer_lib.baselines: C, gamma by 3-fold CV on the training
split), then stage 1 (modalities=["text"]) with the defaults and with input dropout 0.7, on one
validation split and with MERTools' 5 folds; mean ± std over seeds and the per-seed values.

Why dropout 0.7: ``--dropout-sweep`` prints the 5-fold validation WF1 of each dropout (training split
only, the test split is not scored), which is how it was chosen.

    python benchmarks/bench_real_text.py [--seeds 3] [--root data/mer2023-text] [--dropout-sweep]
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from mer_lib.baselines import run_baseline, validation_warnings
from mer_lib.config import DATA_DIR, SHARED_SAMPLES_DIR
from mer_lib.data import load_dataset
from mer_lib.extract.text_dataset import write_text_dataset
from mer_lib.stage1 import Stage1Config, fit, run_stage1, validation_splits

TRAIN, TEST = "train_corpus", "test3_corpus"


def text_only(dropout: float | None = None, **changes) -> Stage1Config:
    cfg = replace(Stage1Config(), **changes)
    return cfg if dropout is None else replace(cfg, model=replace(cfg.model, dropout=dropout))


def row(label: str, accuracy, weighted_f1, seconds: float, note: str = "") -> None:
    acc, wf1 = np.asarray(accuracy), np.asarray(weighted_f1)
    std = (lambda a: a.std(ddof=1) if len(a) > 1 else 0.0)
    print(f"{label:34s} acc {acc.mean():5.2f} ± {std(acc):4.2f}  WF1 {wf1.mean():5.2f} ± {std(wf1):4.2f}  "
          f"per seed WF1 {np.round(wf1, 2).tolist()} acc {np.round(acc, 2).tolist()}  {seconds:5.0f} s  {note}",
          flush=True)


def dropout_sweep(ds, seeds, checkpoint_dir) -> None:
    """5-fold validation WF1 on the training split for each input dropout (no test split involved)."""
    print("\ninput dropout, chosen on the training split: mean over folds and seeds of the kept epoch's "
          "validation WF1 (5 folds)")
    train_idx = ds.indices(TRAIN)
    for dropout in (0.3, 0.5, 0.7, 0.8, 0.9):
        cfg, start = text_only(dropout, folds=5), time.perf_counter()
        scores = [fit(ds, tr, va, cfg, seed + 1000 * k, modalities=["text"], checkpoint_dir=checkpoint_dir,
                      tag=f"sweep-seed{seed}-fold{k}", desc=f"dropout {dropout}").best_val_f1
                  for seed in seeds for k, (tr, va) in enumerate(validation_splits(ds.labels, train_idx, cfg, seed))]
        print(f"  dropout {dropout}: validation WF1 {np.mean(scores):5.2f} ± {np.std(scores, ddof=1):4.2f} "
              f"({len(scores)} fold models, {time.perf_counter() - start:.0f} s)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--root", type=Path, default=DATA_DIR / "mer2023-text",
                   help="where the MiniLM text dataset is written (once; later runs reuse it)")
    p.add_argument("--checkpoints", type=Path, default=None, help="stage-1 checkpoints (reruns are free)")
    p.add_argument("--dropout-sweep", action="store_true", help="also print the 5-fold validation sweep")
    args = p.parse_args()
    if not (SHARED_SAMPLES_DIR / "label-6way.npz").exists():
        raise SystemExit(f"{SHARED_SAMPLES_DIR}: MER2023 labels and subtitles not found (set MER_SAMPLES_DIR).")
    start = time.perf_counter()
    ds = load_dataset(args.root, write_text_dataset(args.root, SHARED_SAMPLES_DIR, progress=False), progress=False)
    seeds = list(range(args.seeds))
    print(f"MER2023 text: all-MiniLM-L6-v2 ({ds.dims['text']} dims) of the English subtitles, {TRAIN} "
          f"({len(ds.indices(TRAIN))}) -> {TEST} ({len(ds.indices(TEST))}); features ready in "
          f"{time.perf_counter() - start:.0f} s; seeds {seeds}")

    for method in ("logreg", "svm"):
        run = run_baseline(ds, method, TRAIN, TEST)
        row(method, [run.test_scores["accuracy"]], [run.test_scores["weighted_f1"]], run.seconds,
            f"{run.params}, 3-fold CV WF1 {run.cv_weighted_f1:.2f}")
        for warning in validation_warnings(run.cv_weighted_f1, test_weighted_f1=run.test_scores["weighted_f1"]):
            print(f"  warning: {warning}")

    settings = {"stage 1 T, defaults (dropout 0.3)": text_only(),
                "stage 1 T, dropout 0.7": text_only(0.7),
                "stage 1 T, defaults, 5 folds": text_only(folds=5),
                "stage 1 T, dropout 0.7, 5 folds": text_only(0.7, folds=5)}
    print(f"stage 1: {Stage1Config()} (dropout/folds as named)")
    for label, cfg in settings.items():
        t = time.perf_counter()
        runs = [run_stage1(ds, cfg, TRAIN, TEST, s, modalities=["text"], checkpoint_dir=args.checkpoints,
                           tag="real-text") for s in seeds]
        val = [float(np.mean(r.summary()["val_weighted_f1"])) for r in runs]
        row(label, [r.test_scores["accuracy"] for r in runs], [r.test_scores["weighted_f1"] for r in runs],
            time.perf_counter() - t, f"val WF1 {np.mean(val):.2f}")
        for warning in validation_warnings(np.mean(val), test_weighted_f1=np.mean(
                [r.test_scores["weighted_f1"] for r in runs])):
            print(f"  warning: {warning}")
    if args.dropout_sweep:
        dropout_sweep(ds, seeds, args.checkpoints)


if __name__ == "__main__":
    main()
