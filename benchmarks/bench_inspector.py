"""Benchmark of the prior inspector at MER2024's scale: is every action interactive on 120k clips?

    python benchmarks/bench_inspector.py [--clips 120000] [--repeats 20] [--skip-real]

Prints what it measures; nothing here is a test (speed depends on the machine). An action counts
as interactive under 100 ms (the usual bound for a UI response to feel immediate); each line gives
the median time and its ratio to that budget.
1. A synthetic table of ``--clips`` clips (5,030 labelled, the rest an unlabelled pool, 60 % with a
   prior, stage-1 and stage-2 probabilities for every clip): building it, each filter alone and
   all of them together (pure functions).
2. The panel over that table, driven through its widgets as a user would: a filter change, next,
   a jump by name (the first jump builds the name index). No clip has media here.
3. The selected clip's media on the real MER2023 samples (if present): decoding a clip cold,
   from the cache, and drawing the panel's frame grid + waveform.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from mer_lib.config import MER_CLASSES, SHARED_SAMPLES_DIR
from mer_lib.data import Dataset, scan_clips
from mer_lib.inspector import ClipTable, Filters, Inspector, InspectorData, filter_rows, find_row
from mer_lib.inspector import media as media_module
from mer_lib.inspector.render import figure_png, media_figure
from mer_lib.priors import AU_SUPPORT_SETS, ActionUnit, AudioCues, Prior

BUDGET_MS = 100.0
CLASSES = tuple(MER_CLASSES)


def timed(action, repeats: int) -> float:
    """Median milliseconds of ``repeats`` calls of ``action``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def report(what: str, ms: float) -> None:
    print(f"  {what:<58} {ms:9.2f} ms   {ms / BUDGET_MS:6.3f} x budget")


def synthetic_table(n: int, seed: int = 0) -> ClipTable:
    rng = np.random.default_rng(seed)
    labelled = min(5_030, n)
    splits = np.where(np.arange(n) < labelled, np.where(np.arange(n) < 3_373, "train_corpus", "test3_corpus"),
                      "unlabelled")
    labels = np.where(np.arange(n) < labelled, rng.integers(0, 6, n), -1)
    return ClipTable(names=np.asarray([f"sample_{i:08d}" for i in range(n)]), classes=CLASSES, splits=splits,
                     labels=labels, prior_labels=np.where(rng.random(n) < 0.6, rng.integers(0, 6, n), -1),
                     reliable=rng.random(n) < 0.7, has_video=rng.random(n) < 0.5,
                     stage1_probs=rng.dirichlet(np.ones(6), n), stage2_probs=rng.dirichlet(np.ones(6), n))


def example_prior(name: str, emotion: str) -> Prior:
    aus = sorted(AU_SUPPORT_SETS[emotion]) or [25]
    return Prior(name=name, emotion=emotion, visual_aus=[ActionUnit(au=a, intensity=2.0, evidence="seen") for a in aus],
                 visual_description="a face", text_semantics="what the words mean",
                 audio=AudioCues(pitch_level="high", pitch_variation="wide", loudness="loud", speech_rate="fast",
                                 voice_quality="tense", f0_mean_semitones=30.0, loudness_mean=0.8),
                 w_visual=0.4, w_audio=0.4, w_text=0.2, rationale="the cues agree", model="bench",
                 backend="simulated", prompt_version="bench")


def bench_table(n: int, repeats: int) -> ClipTable:
    print(f"1. pure functions on {n:,} clips")
    start = time.perf_counter()
    table = synthetic_table(n)
    made = time.perf_counter()
    _ = (table.prior_disagrees, table.low_reliability, table.model_wrong, table.model_changed)
    report("build the table (arrays, split codes)", (made - start) * 1000)
    report("derive the four masks (once, cached)", (time.perf_counter() - made) * 1000)
    cases = {
        "no filter": Filters(),
        "split = test3_corpus": Filters(split="test3_corpus"),
        "human label = sad": Filters(label="sad"),
        "prior label = worried": Filters(prior="worried"),
        "prior disagrees with human": Filters(prior_disagrees=True),
        "model changed its mind": Filters(model_changed=True),
        "all conditions together": Filters(split="test3_corpus", label="sad", prior="worried", prior_disagrees=True,
                                           low_reliability=True, model_wrong=True, model_changed=True,
                                           with_video=True),
    }
    for what, filters in cases.items():
        count = len(filter_rows(table, filters))
        report(f"filter: {what} ({count:,} clips)", timed(lambda f=filters: filter_rows(table, f), repeats))
    start = time.perf_counter()
    find_row(table, "sample_00099999")
    report("find a clip by name, first time (builds the index)", (time.perf_counter() - start) * 1000)
    report("find a clip by name, later", timed(lambda: find_row(table, f"sample_{n - 1:08d}"), repeats))
    return table


def bench_panel(table: ClipTable, repeats: int) -> None:
    print(f"2. the panel over {len(table):,} clips, through its widgets (no media)")
    dataset = Dataset(root=Path("."), names=table.names, classes=CLASSES, labels=table.labels, splits=table.splits,
                      features={})
    # priors for the clips the moves below visit, so each render draws a full prior
    priors = {str(table.names[i]): example_prior(str(table.names[i]), CLASSES[table.prior_labels[i]])
              for i in np.flatnonzero(table.prior_labels[:3000] >= 0)}
    data = InspectorData(dataset=dataset, table=table, priors=priors, reliability=None)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        panel = Inspector(data, figures_dir=folder)
        report("open the panel", (time.perf_counter() - start) * 1000)
        flag = panel.flags["prior_disagrees"]
        report("tick/untick 'prior ≠ human label' (filter, render if moved)",
               timed(lambda: setattr(flag, "value", not flag.value), repeats))
        report("pick a split in the dropdown",
               timed(lambda: setattr(panel.split, "value", "test3_corpus" if panel.split.value == "all" else "all"),
                     repeats))
        panel.split.value = "train_corpus"
        report("next clip (prior, predictions and subtitle rendered)", timed(panel.next_button.click, repeats))
        names = iter(table.names[:3000:97].tolist())
        report("jump to a name", timed(lambda: panel.jump(next(names)), repeats))


def bench_media(repeats: int) -> None:
    folder = SHARED_SAMPLES_DIR / "clips"
    clips = list(scan_clips(folder).clips.values()) if folder.is_dir() else []
    if not clips:
        print(f"3. skipped: no real clips at {SHARED_SAMPLES_DIR}")
        return
    print(f"3. media of the selected clip ({len(clips)} real MER2023 clips)")
    start = time.perf_counter()
    import mer_lib.extract.decode  # noqa: F401 (its package imports torch and transformers)
    report("first use: import the decoder (mer_lib.extract)", (time.perf_counter() - start) * 1000)
    cold = []
    for clip in clips:
        media_module._cached.cache_clear()
        start = time.perf_counter()
        media_module.load_media(clip)
        cold.append((time.perf_counter() - start) * 1000)
    report(f"decode a clip cold (median; max {max(cold):.0f} ms)", statistics.median(cold))
    report("the same clip again (cache)", timed(lambda: media_module.load_media(clips[-1]), repeats))
    media = media_module.load_media(clips[-1])
    report("draw the frame grid + waveform as PNG", timed(lambda: figure_png(media_figure(media)), 5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=120_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-real", action="store_true")
    args = parser.parse_args()
    table = bench_table(args.clips, args.repeats)
    bench_panel(table, args.repeats)
    if not args.skip_real:
        bench_media(args.repeats)


if __name__ == "__main__":
    main()
