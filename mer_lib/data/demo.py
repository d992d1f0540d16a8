"""A synthetic dataset in the MER layout, so the demo runs the same code path as a paper run.

What is planted (and what the notebooks should recover):
- MER2023's class shares in the training split, a test split shifted like MER-SEMI, and an
  unlabelled pool several times the labelled set whose truth is kept aside (``unlabelled-truth.npz``,
  never used for training, only to score pseudo-labels and simulated priors);
- three modalities whose informativeness is ordered audio > video > text (the paper's
  single-modality accuracies are A 74, V 66, T 52), each seeing a shared emotion latent through
  its own noise, so fusing them helps;
- confusable pairs (worried/sad, neutral/worried, surprise/happy) with nearby class prototypes,
  speaker offsets shared across modalities, and label noise towards the confusable class;
- subtitles that name the emotion only sometimes, so the text path has something weak to read.

Numbers measured on this data are demo numbers, never MER2024 numbers.

Run ``python -m mer_lib.data --root data/demo`` to write it.
"""
from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import io
from ..config import DATA_DIR, LABEL_FILE, MER_CLASSES, SUBTITLE_FILE

# MER2023 label counts (see ../shared/data/mer2023-samples/README.md), in MER class order.
MER_TRAIN_COUNTS = dict(neutral=871, angry=822, happy=689, sad=383, worried=462, surprise=146)
MER_SEMI_TEST_COUNTS = dict(neutral=166, angry=183, happy=169, sad=257, worried=45, surprise=14)
FEATURES = {"audio": "demo-audio-UTT", "video": "demo-video-UTT", "text": "demo-text-UTT"}
TRAIN_SPLIT, TEST_SPLIT = "train_corpus", "test_corpus"


@dataclass(frozen=True)
class DemoScale:
    train_factor: float  # training split size relative to MER2023's 3,373
    test_factor: float  # test split size relative to MER-SEMI's 834
    unlabelled: int | None  # size of the unlabelled pool; None = unlabelled_factor x labelled
    unlabelled_factor: float  # pool size relative to the labelled set when `unlabelled` is None
    dims: tuple[int, int, int]  # feature dimensions (audio, video, text)


SCALES = {
    "tiny": DemoScale(0.1, 0.25, None, 1.5, (24, 16, 12)),  # tests: seconds end to end
    "demo": DemoScale(1.0, 1.0, None, 3.0, (64, 48, 32)),  # the README's demo: minutes on 2 cores
    # MER2024-SEMI sizes (5,030 labelled, 115,595 unlabelled) with the paper's feature dims
    # (HuBERT-large 1024, CLIP ViT-L/14 768, BLOOM-7B 4096): for benchmarks only.
    "mer2024": DemoScale(1.243, 1.0, 115_595, 0.0, (1024, 768, 4096)),
}


@dataclass(frozen=True)
class Signal:
    """How much of the emotion each modality shows; tuned so linear probes on the demo land near
    the paper's single-modality ordering (A > V > T)."""
    latent_dim: int = 12  # dimension of the shared emotion latent
    prototype_scale: float = 2.0  # distance of class prototypes from the origin
    intensity: tuple[float, float] = (0.6, 1.3)  # range of a clip's emotion intensity
    # per-modality noise on the latent (audio, video, text): sets the A > V > T ordering; the
    # defaults give linear probes of about A 73, V 67, T 54 and AVT 78 on the demo test split
    private_noise: tuple[float, float, float] = (0.55, 0.7, 1.05)
    shared_noise: float = 0.1  # sample-level deviation every modality sees (makes modalities agree)
    speakers: int = 60  # speaker offsets shared by a speaker's clips across modalities
    speaker_scale: float = 0.1
    feature_noise: float = 0.1  # isotropic noise added after projecting to feature space
    label_noise: float = 0.06  # share of labels flipped towards the confusable class
    subtitle_cue_rate: float = 0.45  # share of subtitles that name the emotion


# Each class's prototype mixes in its confusable neighbours (rows: class, cols: one-hot bases).
CONFUSION = {  # class -> {neighbour: weight}; also where label noise sends a sample
    "neutral": {"worried": 0.25},
    "angry": {"sad": 0.1},
    "happy": {"surprise": 0.2},
    "sad": {"worried": 0.35},
    "worried": {"sad": 0.45, "neutral": 0.3},
    "surprise": {"happy": 0.45},
}

_CUES_EN = {
    "neutral": ["Let's talk about it tomorrow.", "I already told you the address.", "It is on the table."],
    "angry": ["How dare you say that to me!", "Get out of here, now!", "I have had enough of your lies!"],
    "happy": ["This is wonderful, I love it!", "We did it, I am so glad!", "Haha, that's great news!"],
    "sad": ["I miss her so much.", "Nothing will ever be the same again.", "Why did he have to leave?"],
    "worried": ["What if they find out?", "I'm afraid something has happened.", "Are you sure it's safe?"],
    "surprise": ["What? You're here already?", "No way, really?", "I can't believe it, is that you?"],
}
_CUES_ZH = {
    "neutral": ["我们明天再谈吧。", "我已经把地址告诉你了。", "东西在桌子上。"],
    "angry": ["你怎么敢这样跟我说话！", "马上给我出去！", "我受够了你的谎话！"],
    "happy": ["太好了，我好喜欢！", "我们成功了，我真高兴！", "哈哈，真是好消息！"],
    "sad": ["我好想她。", "一切都回不去了。", "他为什么要走？"],
    "worried": ["万一他们发现了怎么办？", "我怕出什么事了。", "你确定这样安全吗？"],
    "surprise": ["什么？你已经到了？", "不会吧，真的吗？", "我不敢相信，是你吗？"],
}
_FILLER = [("Come in and sit down.", "进来坐吧。"), ("Where are you going?", "你要去哪儿？"),
           ("I'll call you later.", "我晚点给你打电话。"), ("Did you eat yet?", "你吃饭了吗？"),
           ("That's what he said.", "他就是这么说的。"), ("Wait for me here.", "在这儿等我。")]


def split_counts(scale: DemoScale) -> tuple[np.ndarray, np.ndarray, int]:
    train = np.array([max(5, round(MER_TRAIN_COUNTS[c] * scale.train_factor)) for c in MER_CLASSES])
    test = np.array([max(3, round(MER_SEMI_TEST_COUNTS[c] * scale.test_factor)) for c in MER_CLASSES])
    pool = scale.unlabelled if scale.unlabelled is not None else int(
        round(scale.unlabelled_factor * (train.sum() + test.sum())))
    return train, test, pool


def make_demo_dataset(root: str | Path = DATA_DIR / "demo", *, scale: str = "demo", seed: int = 0,
                      signal: Signal = Signal(), overwrite: bool = False) -> Path:
    """Write the demo dataset to ``root`` (atomically: a killed run leaves no half dataset).

    Returns ``root``. An existing dataset is kept unless ``overwrite``.
    """
    root = Path(root)
    if (root / LABEL_FILE).exists() and not overwrite:
        return root
    if scale not in SCALES:
        raise ValueError(f"unknown demo scale '{scale}'; choose one of {sorted(SCALES)}")
    cfg = SCALES[scale]
    rng = np.random.default_rng(seed)
    names, true, observed, split = _samples(cfg, signal, rng)

    tmp = root.with_name(f".{root.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    feat_dirs = {m: tmp / "features" / folder for m, folder in FEATURES.items()}
    for d in feat_dirs.values():
        d.mkdir(parents=True)
    for rows, chunk in feature_chunks(true, cfg.dims, signal, rng):
        for m, x in chunk.items():
            for name, row in zip(names[rows], x):
                with open(feat_dirs[m] / f"{name}.npy", "wb") as f:
                    np.save(f, row)
    _write_labels(tmp / LABEL_FILE, names, observed, split, rng)
    # the pool's truth, kept aside to score pseudo-labels and simulated priors, never to train
    _write_labels(tmp / "unlabelled-truth.npz", names, true, np.where(split == "", "unlabelled", ""), rng)
    _write_subtitles(tmp / SUBTITLE_FILE, names, true, signal.subtitle_cue_rate, rng)
    io.write_json(tmp / "demo-manifest.json", {
        "what": "synthetic MER-layout demo data; its numbers are demo numbers, not MER2024 numbers",
        "scale": scale, "seed": seed, "signal": asdict(signal), "features": FEATURES,
        "label_file": LABEL_FILE, "train_split": TRAIN_SPLIT, "test_split": TEST_SPLIT,
        "counts": {key: {c: int(((split == key) & (observed == i)).sum()) for i, c in enumerate(MER_CLASSES)}
                   for key in (TRAIN_SPLIT, TEST_SPLIT)} | {"unlabelled": int((split == "").sum())}})
    if root.exists():
        shutil.rmtree(root)
    tmp.rename(root)
    return root


def _samples(cfg: DemoScale, signal: Signal, rng):
    """Names, true classes, observed labels (-1 for the pool) and split of every sample.

    The observed labels have exactly MER's counts; label noise is planted by drawing the true
    class of a share of them from the label's main confusable neighbour (annotators confuse those).
    """
    train_n, test_n, pool_n = split_counts(cfg)
    C = len(MER_CLASSES)
    observed = np.concatenate([np.repeat(np.arange(C), train_n), np.repeat(np.arange(C), test_n),
                               np.full(pool_n, -1)])
    split = np.array([TRAIN_SPLIT] * train_n.sum() + [TEST_SPLIT] * test_n.sum() + [""] * pool_n)
    neighbour = np.array([MER_CLASSES.index(max(CONFUSION[c], key=CONFUSION[c].get)) for c in MER_CLASSES])
    flip = (observed >= 0) & (rng.random(len(observed)) < signal.label_noise)
    true = np.where(flip, neighbour[observed.clip(0)], observed)
    pool_share = (train_n / train_n.sum() + test_n / test_n.sum()) / 2
    true[observed < 0] = rng.choice(C, size=pool_n, p=pool_share)
    number = rng.permutation(len(true))  # names carry no hint of split or class
    names = np.array([f"sample_{k:08d}" if s == TRAIN_SPLIT else f"samplenew_{k:08d}"
                      for k, s in zip(number, split)])
    return names, true, observed, split


def _prototypes(latent_dim: int, scale: float, rng) -> np.ndarray:
    """(C, K) class prototypes: near-orthogonal bases mixed with their confusable neighbours."""
    bases = np.linalg.qr(rng.normal(size=(latent_dim, latent_dim)))[0][: len(MER_CLASSES)] * scale
    protos = bases.copy()
    for i, c in enumerate(MER_CLASSES):
        for other, w in CONFUSION[c].items():
            protos[i] = (1 - w) * protos[i] + w * bases[MER_CLASSES.index(other)]
    return protos


def feature_chunks(true: np.ndarray, dims, s: Signal, rng, chunk: int = 8192):
    """Yield ``(row slice, {modality: (n, D_m) float32})`` for all samples, a chunk at a time
    (the mer2024 scale is 2.8 GB of features)."""
    K = s.latent_dim
    protos = _prototypes(K, s.prototype_scale, rng)
    speaker = rng.integers(0, s.speakers, size=len(true))
    speaker_offsets = rng.normal(scale=s.speaker_scale, size=(s.speakers, K))
    # a random linear map per modality from the latent into its feature space, and a tanh on half
    # of the dimensions so the encoders have something to learn beyond a linear probe
    maps = {m: rng.normal(scale=1 / np.sqrt(K), size=(K, d)) for m, d in zip(FEATURES, dims)}
    biases = {m: rng.normal(scale=0.5, size=d) for m, d in zip(FEATURES, dims)}
    for start in range(0, len(true), chunk):
        rows = slice(start, start + chunk)
        n = len(true[rows])
        intensity = rng.uniform(*s.intensity, size=(n, 1))
        latent = intensity * protos[true[rows]] + s.shared_noise * rng.normal(size=(n, K)) \
            + speaker_offsets[speaker[rows]]
        out = {}
        for mi, m in enumerate(FEATURES):
            z = latent + s.private_noise[mi] * rng.normal(size=(n, K))
            x = z @ maps[m] + biases[m]
            half = x.shape[1] // 2
            x[:, :half] = 2.0 * np.tanh(x[:, :half] / 2.0)  # saturates only for strong emotions
            x += s.feature_noise * rng.normal(size=x.shape)
            out[m] = x.astype(np.float32)
        yield rows, out


def _write_labels(path: Path, names, labels, split, rng) -> None:
    valence_mean = dict(neutral=0.0, angry=-2.5, happy=2.5, sad=-2.5, worried=-1.5, surprise=1.0)
    corpus = {}
    for key in dict.fromkeys(split.tolist()):
        if not key:
            continue
        pick = np.flatnonzero(split == key)
        corpus[key] = {str(names[i]): {"emo": MER_CLASSES[labels[i]],
                                       "val": float(np.round(valence_mean[MER_CLASSES[labels[i]]]
                                                             + rng.normal(scale=0.8), 2))}
                       for i in pick}
    with io.atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **{k: np.array(v, dtype=object) for k, v in corpus.items()})


def _write_subtitles(path: Path, names, true, cue_rate: float, rng) -> None:
    rows = []
    for name, y in zip(names, true):
        c = MER_CLASSES[y]
        if rng.random() < cue_rate:
            k = rng.integers(len(_CUES_EN[c]))
            en, zh = _CUES_EN[c][k], _CUES_ZH[c][k]
        else:
            en, zh = _FILLER[rng.integers(len(_FILLER))]
        rows.append((name, zh, en))
    io.write_text(path, pd.DataFrame(rows, columns=["name", "chinese", "english"]).to_csv(index=False))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=DATA_DIR / "demo", help="where to write it")
    p.add_argument("--scale", choices=sorted(SCALES), default="demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    root = make_demo_dataset(args.root, scale=args.scale, seed=args.seed, overwrite=args.overwrite)
    print(json.dumps(json.loads((root / "demo-manifest.json").read_text())["counts"]))


if __name__ == "__main__":
    main()
