"""What the demo's simulated MLLM (the teacher) gets right and wrong, and whether its errors are the clips'.

    python benchmarks/bench_teacher.py [--scale demo|tiny] [--root DIR]

Prints, on the demo's test split (demo numbers, never MER2024 numbers):
1. linear probes (logistic regression on standardised features, training split -> test split) per
   modality and on the three together (AVT): what the features carry;
2. the teacher's c*: mean per-class accuracy and per-class accuracies next to the paper's
   Gemini-2.0-flash row (the calibration target);
3. c* accuracy on easy, middle and hard clips (terciles of the planted difficulty);
4. AU consistency when c* is right vs wrong, and what the default AU filter keeps;
5. the correlation of R with the clip's per-modality clarity, and with each modality's share of
   the clarity that shows c* (what R would be if read exactly); correlations are per modality
   across clips, averaged over modalities;
6. the complementarity the issue names: c* accuracy on the clips the AVT probe gets right vs wrong,
   and the accuracy of an oracle that takes whichever of the two is right (the most any fusion of
   the two can reach);
for the default teacher and for other settings of its knobs (error_sharing, r_informativeness).
Also the external labelled set's shares and its overlap with the human label file.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from mer_lib.data import load_dataset, make_demo_dataset, read_label_file
from mer_lib.data.demo import (
    EXTRA_LABEL_FILE,
    EXTRA_SHARES,
    FEATURES,
    PERCEIVED_MODALITIES,
    TEST_SPLIT,
    TRAIN_SPLIT,
    read_perception,
)
from mer_lib.priors import PROMPT_VERSION, au_consistency, make_backend
from mer_lib.priors.backends.base import ClipRequest
from mer_lib.priors.backends.simulated import PAPER_GEMINI_FLASH_CLASS_ACCURACY
from mer_lib.priors.reliability import DEFAULT_MIN_AU_CONSISTENCY
from mer_lib.priors.schema import build_prior


def probes(ds) -> tuple[dict[str, float], np.ndarray]:
    """Test accuracy of a linear probe per modality and on AVT; the AVT probe's test predictions."""
    train, test = ds.indices(TRAIN_SPLIT), ds.indices(TEST_SPLIT)
    out, avt = {}, None
    for key, mods in (("A", ["audio"]), ("V", ["video"]), ("T", ["text"]), ("AVT", list(FEATURES))):
        x = np.hstack([ds.features[m] for m in mods])
        scaler = StandardScaler().fit(x[train])
        clf = LogisticRegression(max_iter=3000).fit(scaler.transform(x[train]), ds.labels[train])
        pred = clf.predict(scaler.transform(x[test]))
        out[key] = 100 * float((pred == ds.labels[test]).mean())
        avt = pred
    return out, avt


def teacher_answers(ds, idx, **knobs) -> pd.DataFrame:
    backend = make_backend("simulated", dataset=ds, seed=0, **knobs)
    rows = []
    for i in idx:
        name = str(ds.names[i])
        _, english = ds.subtitle(name)
        request = ClipRequest(name=name, classes=ds.classes, subtitle_english=english, subtitle_chinese="",
                              prompt="", clip_path=None)
        prior = build_prior(backend.generate(request).answer, name=name, classes=ds.classes, model=backend.model,
                            backend="simulated", prompt_version=PROMPT_VERSION)
        rows.append({"emotion": ds.classes.index(prior.emotion),
                     "au_consistency": au_consistency(prior.aus, prior.emotion),
                     "r": (prior.w_audio, prior.w_visual, prior.w_text)})
    frame = pd.DataFrame(rows)
    frame.attrs.update(noise_scale=backend.noise_scale, independent_error=backend.independent_error)
    return frame


def report(ds, idx, answers: pd.DataFrame, avt_pred: np.ndarray, perception, label: str) -> None:
    y = ds.labels[idx]
    said = answers["emotion"].to_numpy()
    right = said == y
    per_class = {c: 100 * right[y == k].mean() for k, c in enumerate(ds.classes) if (y == k).any()}
    print(f"\n== teacher {label}  (noise_scale {answers.attrs['noise_scale']:.3f}, "
          f"independent_error {answers.attrs['independent_error']:.3f})")
    print(f"  c* accuracy {100 * right.mean():.1f}; mean per-class {np.mean(list(per_class.values())):.1f} "
          f"(paper's Gemini-2.0-flash row: {100 * np.mean(list(PAPER_GEMINI_FLASH_CLASS_ACCURACY.values())):.1f})")
    print("  per class, measured / paper: " + ", ".join(
        f"{c} {per_class[c]:.0f}/{100 * PAPER_GEMINI_FLASH_CLASS_ACCURACY[c]:.0f}" for c in per_class))

    rows = np.array([perception.row(str(n)) for n in ds.names[idx]])
    difficulty = perception.difficulty[rows]
    cuts = np.quantile(difficulty, [1 / 3, 2 / 3])
    tercile = np.digitize(difficulty, cuts)
    print("  c* accuracy by planted difficulty: " + ", ".join(
        f"{name} {100 * right[tercile == t].mean():.1f} (n={int((tercile == t).sum())})"
        for t, name in enumerate(("easy", "middle", "hard"))))

    consistency = answers["au_consistency"].to_numpy()
    passes = consistency >= DEFAULT_MIN_AU_CONSISTENCY
    print(f"  AU consistency: mean {consistency[right].mean():.2f} when c* is right, "
          f"{consistency[~right].mean():.2f} when wrong; passes the {DEFAULT_MIN_AU_CONSISTENCY} filter "
          f"{100 * passes[right].mean():.1f} % / {100 * passes[~right].mean():.1f} %; c* accuracy "
          f"{100 * right[passes].mean():.1f} on the {100 * passes.mean():.0f} % kept vs {100 * right.mean():.1f} on all")

    r = np.stack(answers["r"].to_numpy())  # (n, 3) audio, video, text
    clarity = perception.clarity[rows]
    shows_cstar = clarity * (perception.expressed[rows] == said[:, None])  # clarity where the modality shows c*
    some = shows_cstar.max(axis=1) > 0
    share = shows_cstar[some] / shows_cstar[some].sum(axis=1, keepdims=True)  # what R would be if read exactly
    # per modality across clips, so the modalities' different average weights do not count
    corr = lambda a, b: np.mean([np.corrcoef(a[:, m], b[:, m])[0, 1] for m in range(a.shape[1])])
    print(f"  R vs the modality's clarity: corr {corr(r, clarity):.2f}; vs its share of the clarity showing c*: "
          f"{corr(r[some], share):.2f}; R's largest weight on the modality showing c* most clearly in "
          f"{100 * (r[some].argmax(1) == share.argmax(1)).mean():.0f} % of clips (chance 33); "
          f"mean R ({', '.join(PERCEIVED_MODALITIES)}) = {', '.join(f'{v:.2f}' for v in r.mean(0))}")

    probe_right = avt_pred == y
    print(f"  complementarity: c* right on {100 * right[probe_right].mean():.1f} % of the clips the AVT probe gets "
          f"right (n={int(probe_right.sum())}) and on {100 * right[~probe_right].mean():.1f} % of those it gets wrong "
          f"(n={int((~probe_right).sum())}); either right (oracle fusion): {100 * (right | probe_right).mean():.1f} %; "
          f"probe {100 * probe_right.mean():.1f} %")


def extra_set(root: Path, ds) -> None:
    extra = pd.read_csv(root / EXTRA_LABEL_FILE)
    corpus, _ = read_label_file(root / "label-6way.npz")
    human = {n for items in corpus.values() for n in items}
    shares = extra["discrete"].value_counts(normalize=True)
    print(f"\n== external labelled set ({EXTRA_LABEL_FILE}): {len(extra)} clips vs {len(ds.indices(TRAIN_SPLIT))} "
          f"in the training split; names shared with the human label file: {len(set(extra['name']) & human)}")
    print("  shares, measured / requested: " + ", ".join(
        f"{c} {100 * shares.get(c, 0):.1f}/{100 * s:.0f}" for c, s in EXTRA_SHARES.items()))
    truth = ds.hidden_labels[np.isin(ds.names, extra["name"].to_numpy())]
    order = {n: i for i, n in enumerate(ds.names)}
    rows = [order[n] for n in extra["name"]]
    said = np.array([ds.classes.index(c) for c in extra["discrete"]])
    print(f"  its labels agree with the clips' underlying emotion on {100 * (ds.hidden_labels[rows] == said).mean():.1f} % "
          f"(annotator noise); {int((truth >= 0).sum())} of them sit in the unlabelled pool until a loader reads the file")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=["tiny", "demo"], default="demo")
    p.add_argument("--root", type=Path, default=None, help="existing or new demo folder (default: a temporary one)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        root = args.root or Path(work) / f"demo-{args.scale}"
        started = time.perf_counter()
        make_demo_dataset(root, scale=args.scale, seed=0)
        ds = load_dataset(root, FEATURES, progress=False)
        print(f"demo scale '{args.scale}' at {root}: {len(ds)} clips, made and loaded in "
              f"{time.perf_counter() - started:.1f} s")
        perception = read_perception(root)
        accuracy, avt_pred = probes(ds)
        print("linear probes on the test split (accuracy): " + ", ".join(f"{k} {v:.1f}" for k, v in accuracy.items())
              + "  (the paper's single-modality ordering: A 74, V 66, T 52)")
        test = ds.indices(TEST_SPLIT)
        for label, knobs in (("default (error_sharing 1, r_informativeness 1)", {}),
                             ("error_sharing 0.5", {"error_sharing": 0.5}),
                             ("error_sharing 0 (errors unrelated to the clip where they can be)", {"error_sharing": 0.0}),
                             ("r_informativeness 0 (R a random draw around fixed weights)", {"r_informativeness": 0.0})):
            report(ds, test, teacher_answers(ds, test, **knobs), avt_pred, perception, label)
        extra_set(root, ds)


if __name__ == "__main__":
    main()
