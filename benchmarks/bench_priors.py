"""Benchmark of prior generation: the demo run, concurrency of the runner, the offline back-end on real clips.

    python benchmarks/bench_priors.py [--scale demo|tiny] [--skip-real]

Prints what it measures; nothing here is a test (speed depends on the machine).
1. The simulated back-end over every labelled demo clip (train_corpus + test_corpus), then the
   same call again (all skipped), the zero-shot scores of c* on test_corpus next to the input
   rates, and the share of priors each reliability policy keeps.
2. The threaded runner against a back-end that only waits (a stand-in for network latency):
   throughput at concurrency 1, 4 and 16, and the speed-up over concurrency 1.
3. The offline back-end (openSMILE eGeMAPS, no OpenFace) on the real MER2023 clips, if present.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from mer_lib.config import LABEL_FILE, SHARED_SAMPLES_DIR, SUBTITLE_FILE
from mer_lib.data import Dataset, load_dataset, make_demo_dataset, read_label_file, read_subtitles, scan_clips
from mer_lib.data.demo import FEATURES
from mer_lib.priors import (
    POLICIES,
    generate_for_dataset,
    load_priors,
    make_backend,
    reliability_table,
    reliable_mask,
    zero_shot_scores,
)
from mer_lib.priors.backends.base import Backend, BackendAnswer
from mer_lib.priors.backends.simulated import PAPER_GEMINI_FLASH_CLASS_ACCURACY, SimulatedBackend


def demo_run(scale: str, work: Path) -> None:
    root = make_demo_dataset(work / f"demo-{scale}", scale=scale, seed=0)
    ds = load_dataset(root, FEATURES, progress=False)
    backend = make_backend("simulated", dataset=ds, seed=0)
    path = work / "demo-priors.jsonl"
    summary = generate_for_dataset(ds, backend, path, show_progress=False)
    again = generate_for_dataset(ds, backend, path, show_progress=False)
    started = time.perf_counter()
    priors = load_priors(path, classes=ds.classes)
    load_s = time.perf_counter() - started
    per_clip_ms = 1e3 * summary["elapsed_s"] / max(summary["done"], 1)
    print(f"[1] simulated back-end, demo scale '{scale}': {summary['done']} priors in "
          f"{summary['elapsed_s']:.2f} s ({per_clip_ms:.2f} ms/clip); re-run skipped "
          f"{again['skipped']} in {again['elapsed_s']:.2f} s; load_priors {load_s:.2f} s; "
          f"store {path.stat().st_size / 1e6:.1f} MB")
    scores = zero_shot_scores(priors, ds, "test_corpus")
    print(f"    zero-shot c* on test_corpus: accuracy {scores['accuracy']:.1f}, weighted F1 "
          f"{scores['weighted_f1']:.1f}, coverage {scores['coverage']:.2f}")
    print("    per-class accuracy (measured vs simulation input): " + ", ".join(
        f"{c} {scores['per_class_accuracy'][c]:.0f}/{100 * PAPER_GEMINI_FLASH_CLASS_ACCURACY[c]:.0f}"
        for c in ds.classes))
    table = reliability_table(priors, ds)
    labelled = table["has_prior"].to_numpy()
    agree = table.loc[labelled, "agrees_with_label"].astype(bool).to_numpy()
    for policy in POLICIES:
        keep = reliable_mask(table, policy)[labelled]
        print(f"    policy {policy:<26} keeps {keep.mean():6.1%} of priors; c* agrees with the label in "
              f"{agree[keep].mean():6.1%} of those kept")


class WaitingBackend(Backend):
    """Answers after a fixed wait, like a remote model with fixed latency (threads run it)."""
    kind, model = "waiting", "waiting-20ms"

    def __init__(self, truth, wait_s: float):
        self._inner, self.wait_s = SimulatedBackend(truth), wait_s

    def generate(self, request):
        time.sleep(self.wait_s)
        return BackendAnswer(answer=self._inner.generate(request).answer)


def concurrency_run(work: Path, clips: int = 200, wait_s: float = 0.02) -> None:
    names = np.asarray([f"c{i:05d}" for i in range(clips)])
    labels = np.arange(clips) % 6
    ds = Dataset(root=work, names=names, classes=("neutral", "angry", "happy", "sad", "worried", "surprise"),
                 labels=labels, splits=np.asarray(["train_corpus"] * clips), features={})
    truth = {n: ds.classes[y] for n, y in zip(names, labels)}
    base = None
    for concurrency in (1, 4, 16):
        summary = generate_for_dataset(ds, WaitingBackend(truth, wait_s), work / f"wait-{concurrency}.jsonl",
                                       concurrency=concurrency, show_progress=False)
        rate = summary["done"] / summary["elapsed_s"]
        base = base or rate
        print(f"[2] runner, {clips} calls of {1e3 * wait_s:.0f} ms, concurrency {concurrency:>2}: "
              f"{rate:7.1f} calls/s, speed-up x{rate / base:.1f} (ideal x{concurrency})")


def offline_real(work: Path) -> None:
    clips = SHARED_SAMPLES_DIR / "clips"
    if not clips.is_dir():
        print(f"[3] skipped: no real clips at {clips}")
        return
    names = np.asarray(list(scan_clips(clips).clips))
    corpus, _ = read_label_file(SHARED_SAMPLES_DIR / LABEL_FILE)
    truth = {n: e for split in corpus.values() for n, e in split.items()}
    classes = ("neutral", "angry", "happy", "sad", "worried", "surprise")
    labels = np.asarray([classes.index(truth[n]) if n in truth else -1 for n in names])
    splits = np.asarray(["train_corpus" if y >= 0 else "unlabelled" for y in labels])
    subtitles = read_subtitles(SHARED_SAMPLES_DIR / SUBTITLE_FILE)
    ds = Dataset(root=SHARED_SAMPLES_DIR, names=names, classes=classes, labels=labels, splits=splits,
                 features={}, subtitles=subtitles.reindex(names).fillna(""))
    path = work / "offline.jsonl"
    summary = generate_for_dataset(ds, make_backend("offline"), path, clips_dir=clips,
                                   splits=["train_corpus", "unlabelled"], concurrency=2, show_progress=False)
    priors = load_priors(path, classes=classes)
    scores = zero_shot_scores(priors, ds, "train_corpus")
    print(f"[3] offline back-end on {summary['selected']} real MER2023 clips: {summary['done']} done, "
          f"{summary['failed']} failed, {summary['elapsed_s']:.2f} s "
          f"({summary['elapsed_s'] / len(names):.2f} s/clip)")
    predicted = {n: p.emotion for n, p in priors.items() if n in truth}
    print(f"    c* on the {scores['n']} labelled clips: accuracy {scores['accuracy']:.1f} "
          f"(a prosody-only rule; n is tiny)  predicted: {json.dumps(predicted)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="demo", choices=["demo", "tiny"])
    parser.add_argument("--skip-real", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        demo_run(args.scale, work)
        concurrency_run(work)
        if not args.skip_real:
            offline_real(work)


if __name__ == "__main__":
    main()
