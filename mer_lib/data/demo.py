"""A synthetic dataset in the MER layout, so the demo runs the same code path as a paper run.

Each clip is planted in three layers, and only the first is the clip's truth:
1. an underlying emotion (the class the clip "is"), and a human annotation of it with its own noise:
   the labelled splits have exactly MER2023's label counts (training split) and MER-SEMI's (test
   split); a share of the annotations name the label's confusable neighbour (worried/sad,
   neutral/worried, surprise/happy, ...) while the clip is something else;
2. what a viewer perceives, per clip and per modality (audio, video, text): which emotion that
   modality expresses and how clearly (clarity in [0, 1]). Usually every modality expresses the
   underlying emotion; a face can be blank or masked and a voice flat (they express nothing),
   most subtitles are plain words (nothing), and a modality sometimes expresses another emotion
   (a subtitle neutral while the voice is angry). Some emotions are shown less clearly than others
   (worried and neutral faintly, angry and happy plainly). An annotator who named another class than
   the clip's emotion saw that class in one modality. Each clip's planted *difficulty* is how
   ambiguous its perceived content is (1 - the margin between the best and the second-best
   emotion, summed over modalities, over its maximum of 3);
3. the features: per modality a noisy view of clarity x prototype(expressed emotion), with a shared
   deviation, speaker offsets shared across modalities and a nonlinear map, ordered audio > video >
   text in informativeness (linear probes land near the paper's single-modality ordering, A 74,
   V 66, T 52; ``benchmarks/bench_teacher.py`` prints the demo's); and subtitles that follow the
   text modality's perceived content (a sentence of the expressed emotion, plain filler otherwise).

Files beside the MER layout, never used for training:
- ``unlabelled-truth.npz``: the underlying emotion of the clips without a human label (the pool,
  and the external set below), to score pseudo-labels;
- ``perception.npz`` (:class:`Perception`): the perceived content of every clip, which is all the
  simulated MLLM (:mod:`mer_lib.priors.backends.simulated`) reads; it holds no label and no
  underlying emotion;
- ``extra-labels.csv`` (``name,discrete``, the organisers' / MERR style): an external labelled set
  for Table 3, clips named ``extra_*`` whose features sit in the same folders, labelled by a
  simulated automatic annotator (Emotion-LLaMA in the paper) with its own class shares and more
  label noise than the human labels. They are not in ``label-6way.npz``, so until a loader reads
  that file, ``load_dataset`` counts them as unlabelled pool clips.

Numbers measured on this data are demo numbers, never MER2024 numbers.

Run ``python -m mer_lib.data --root data/demo`` to write it.
"""
from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from .. import io
from ..config import DATA_DIR, LABEL_FILE, MER_CLASSES, SUBTITLE_FILE
from .dataset import HIDDEN_LABELS_FILE
from .errors import DataError

# MER2023 label counts (see ../shared/data/mer2023-samples/README.md), in MER class order.
MER_TRAIN_COUNTS = {"neutral": 871, "angry": 822, "happy": 689, "sad": 383, "worried": 462, "surprise": 146}
MER_SEMI_TEST_COUNTS = {"neutral": 166, "angry": 183, "happy": 169, "sad": 257, "worried": 45, "surprise": 14}
# Class shares of the external labelled set: more balanced than MER's training split (whose
# surprise share is 4 %), as a set labelled by an automatic annotator over many clips would be.
EXTRA_SHARES = {"neutral": 0.20, "angry": 0.16, "happy": 0.20, "sad": 0.16, "worried": 0.14, "surprise": 0.14}
FEATURES = {"audio": "demo-audio-UTT", "video": "demo-video-UTT", "text": "demo-text-UTT"}
PERCEIVED_MODALITIES = tuple(FEATURES)  # column order of Perception.expressed / .clarity
PERCEPTION_FILE = "perception.npz"
EXTRA_LABEL_FILE = "extra-labels.csv"
EXTRA_PREFIX = "extra_"
TRAIN_SPLIT, TEST_SPLIT = "train_corpus", "test_corpus"
NOTHING = -1  # expressed class of a modality that shows no emotion: blank face, flat voice, plain words


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
    """What the generator plants. Per-modality tuples are in (audio, video, text) order, per-class
    tuples in MER class order. The defaults were set by measurement so that linear probes on the
    demo test split land near A 73, V 66, T 54, AVT 78 (``benchmarks/bench_teacher.py``)."""
    # --- perception: what a viewer sees in each modality
    # mean clarity of each class's clips (neutral, angry, happy, sad, worried, surprise): worry and
    # calm show faintly, anger and joy plainly
    expressiveness: tuple[float, ...] = (0.55, 0.75, 0.75, 0.65, 0.45, 0.6)
    expressiveness_concentration: float = 5.0  # Beta concentration of a clip's expressiveness
    modality_clarity: tuple[float, float] = (0.6, 1.0)  # range of a modality's share of that expressiveness
    # share of clips in which the modality expresses nothing: a flat voice, a blank or masked face,
    # a subtitle of plain words
    nothing_rate: tuple[float, float, float] = (0.05, 0.12, 0.4)
    conflict_rate: tuple[float, float, float] = (0.07, 0.09, 0.06)  # share expressing another emotion
    # --- features: noisy views of clarity x prototype(expressed emotion)
    latent_dim: int = 12  # dimension of the emotion latent
    prototype_scale: float = 5.0  # distance of class prototypes from the origin at clarity 1
    private_noise: tuple[float, float, float] = (0.55, 0.65, 0.6)  # per-modality noise on the latent
    shared_noise: float = 0.1  # sample-level deviation every modality sees
    speakers: int = 60  # speaker offsets shared by a speaker's clips across modalities
    speaker_scale: float = 0.1
    feature_noise: float = 0.1  # isotropic noise added after projecting to feature space
    # --- annotation
    label_noise: float = 0.06  # share of human labels naming the label's confusable neighbour instead
    extra_label_noise: float = 0.2  # same for the external set's automatic annotator (any other class)

    @classmethod
    def from_json(cls, values: Mapping) -> Signal:
        """The Signal a manifest recorded (lists back to tuples; fields it lacks keep their default)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known})


# Each class's prototype mixes in its confusable neighbours (rows: class, cols: one-hot bases).
CONFUSION = {  # class -> {neighbour: weight}; also where label noise and conflicts go most often
    "neutral": {"worried": 0.25},
    "angry": {"sad": 0.1},
    "happy": {"surprise": 0.2},
    "sad": {"worried": 0.35},
    "worried": {"sad": 0.45, "neutral": 0.3},
    "surprise": {"happy": 0.45},
}
NEIGHBOUR = np.array([MER_CLASSES.index(max(CONFUSION[c], key=CONFUSION[c].get)) for c in MER_CLASSES])

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


@dataclass(frozen=True, eq=False)
class Perception:
    """What a viewer perceives in each clip: per modality (:data:`PERCEIVED_MODALITIES`) the class
    index it expresses (:data:`NOTHING` for none) and how clearly. No label, no underlying emotion."""
    names: np.ndarray  # (N,) str
    classes: tuple[str, ...]  # class index -> name
    expressed: np.ndarray  # (N, 3) int, NOTHING where the modality shows no emotion
    clarity: np.ndarray  # (N, 3) float in [0, 1], 0 where NOTHING
    signal: Signal = Signal()  # the generator settings behind it (the simulated MLLM calibrates on them)
    source: str = "planted clips"  # where it came from, for error messages

    def __post_init__(self):
        object.__setattr__(self, "_row", {str(n): i for i, n in enumerate(self.names.tolist())})

    def row(self, name: str) -> int | None:
        return self._row.get(name)

    @property
    def difficulty(self) -> np.ndarray:
        """(N,) planted difficulty in [0, 1]: how ambiguous the perceived content is (see the module docstring)."""
        return difficulty(self.expressed, self.clarity, len(self.classes))

    @classmethod
    def plain(cls, shown: Mapping[str, str], classes=MER_CLASSES) -> Perception:
        """Clips that show ``{name: class}`` plainly in every modality (clarity 1): planted
        perceptions for tests and tools that have no generated demo data."""
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted({c for c in shown.values() if c not in index})
        if unknown:
            raise ValueError(f"Perception.plain: classes {unknown} are not in {list(classes)}")
        expressed = np.repeat(np.array([index[c] for c in shown.values()], dtype=np.int64)[:, None], 3, axis=1)
        return cls(np.asarray(list(shown), dtype=str), tuple(classes), expressed, np.ones((len(shown), 3)))

    def save(self, path: Path) -> None:
        with io.atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, names=self.names.astype(str), classes=np.asarray(self.classes, dtype=str),
                     modalities=np.asarray(PERCEIVED_MODALITIES, dtype=str),
                     expressed=self.expressed.astype(np.int8), clarity=self.clarity.astype(np.float32),
                     difficulty=self.difficulty.astype(np.float32))


def read_perception(root: str | Path) -> Perception:
    """The perceived content of a generated demo dataset (``<root>/perception.npz``), with the
    generator settings its manifest recorded."""
    root = Path(root)
    path = root / PERCEPTION_FILE
    if not path.exists():
        raise DataError(
            f"{path}: no perception file. The simulated MLLM reads what each clip shows from the demo "
            f"generator's perception file, so it works only on generated demo data. Fix: generate it "
            f"(python -m mer_lib.data --root {root}, with --overwrite for demo data written before "
            f"perception.npz existed), or use another back-end (gemini, openai, offline, replay).")
    with np.load(path, allow_pickle=False) as f:
        names, classes, expressed, clarity = f["names"], f["classes"], f["expressed"], f["clarity"]
    manifest = root / "demo-manifest.json"
    signal = Signal.from_json(json.loads(manifest.read_text())["signal"]) if manifest.exists() else Signal()
    return Perception(names, tuple(classes.tolist()), expressed.astype(np.int64), clarity.astype(np.float64),
                      signal, str(path))


def difficulty(expressed: np.ndarray, clarity: np.ndarray, num_classes: int) -> np.ndarray:
    """(N,) 1 - (best - second-best summed clarity of an emotion) / 3: 0 for a clip whose three
    modalities plainly agree, 1 for one that shows nothing or two emotions equally."""
    evidence = shown_evidence(expressed, clarity, num_classes).sum(axis=-2)  # (N, C)
    top = np.sort(evidence, axis=-1)
    return 1.0 - (top[..., -1] - top[..., -2]) / 3.0


def shown_evidence(expressed: np.ndarray, clarity: np.ndarray, num_classes: int) -> np.ndarray:
    """(..., 3, C): clarity on the expressed class of each modality, 0 elsewhere and for NOTHING."""
    onehot = np.eye(num_classes + 1)[np.where(expressed >= 0, expressed, num_classes)][..., :num_classes]
    return onehot * clarity[..., None]


def split_counts(scale: DemoScale) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Label counts of the training and test splits, the pool size, and the external set's label counts."""
    train = np.array([max(5, round(MER_TRAIN_COUNTS[c] * scale.train_factor)) for c in MER_CLASSES])
    test = np.array([max(3, round(MER_SEMI_TEST_COUNTS[c] * scale.test_factor)) for c in MER_CLASSES])
    pool = scale.unlabelled if scale.unlabelled is not None else \
        round(scale.unlabelled_factor * int(train.sum() + test.sum()))
    # about as large as the training split (the paper adds up to ~4.3k clips to a ~4k set)
    extra = np.array([max(3, round(EXTRA_SHARES[c] * train.sum())) for c in MER_CLASSES])
    return train, test, pool, extra


def make_demo_dataset(root: str | Path = DATA_DIR / "demo", *, scale: str = "demo", seed: int = 0,
                      signal: Signal = Signal(), overwrite: bool = False) -> Path:
    """Write the demo dataset to ``root`` (atomically: a killed run leaves no half dataset).

    Returns ``root``. An existing dataset is kept unless ``overwrite``, except demo data written
    before the perception file existed: the simulated MLLM cannot read it, so it is made again.
    """
    root = Path(root)
    outdated_demo = (root / "demo-manifest.json").exists() and not (root / PERCEPTION_FILE).exists()
    if (root / LABEL_FILE).exists() and not overwrite and not outdated_demo:
        return root
    if scale not in SCALES:
        raise ValueError(f"unknown demo scale '{scale}'; choose one of {sorted(SCALES)}")
    cfg = SCALES[scale]
    rng = np.random.default_rng(seed)
    names, true, annotated, split = _samples(cfg, signal, rng)
    expressed, clarity = draw_perception(true, annotated, signal, rng)
    perception = Perception(names, MER_CLASSES, expressed, clarity, signal)

    tmp = root.with_name(f".{root.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    feat_dirs = {m: tmp / "features" / folder for m, folder in FEATURES.items()}
    for d in feat_dirs.values():
        d.mkdir(parents=True)
    for rows, chunk in feature_chunks(expressed, clarity, cfg.dims, signal, rng):
        for m, x in chunk.items():
            for name, row in zip(names[rows], x):
                with open(feat_dirs[m] / f"{name}.npy", "wb") as f:
                    np.save(f, row)
    human = np.isin(split, (TRAIN_SPLIT, TEST_SPLIT))
    extra = split == "extra"
    _write_labels(tmp / LABEL_FILE, names, annotated, np.where(human, split, ""), rng)
    # the truth of the clips without a human label, kept aside to score pseudo-labels, never to train
    _write_labels(tmp / HIDDEN_LABELS_FILE, names, true, np.where(split == "", "unlabelled",
                                                                  np.where(extra, "extra", "")), rng)
    _write_subtitles(tmp / SUBTITLE_FILE, names, expressed[:, PERCEIVED_MODALITIES.index("text")], rng)
    perception.save(tmp / PERCEPTION_FILE)
    io.write_text(tmp / EXTRA_LABEL_FILE, pd.DataFrame(
        {"name": names[extra], "discrete": [MER_CLASSES[y] for y in annotated[extra]]}).to_csv(index=False))
    class_counts = lambda mask: {c: int((mask & (annotated == i)).sum()) for i, c in enumerate(MER_CLASSES)}
    io.write_json(tmp / "demo-manifest.json", {
        "what": "synthetic MER-layout demo data; its numbers are demo numbers, not MER2024 numbers",
        "scale": scale, "seed": seed, "signal": asdict(signal), "features": FEATURES,
        "label_file": LABEL_FILE, "train_split": TRAIN_SPLIT, "test_split": TEST_SPLIT,
        "counts": {key: class_counts(split == key) for key in (TRAIN_SPLIT, TEST_SPLIT)}
                  | {"unlabelled": int((split == "").sum())},
        "hidden_truth_file": HIDDEN_LABELS_FILE,
        "perception_file": {
            "path": PERCEPTION_FILE,
            "what": "what a viewer perceives in every clip (labelled, pool and extra): the only input of "
                    "the simulated MLLM; no label and no underlying emotion",
            "fields": {"names": "(N,) clip names", "classes": "class index -> name",
                       "modalities": "column order of expressed and clarity",
                       "expressed": f"(N, 3) class index each modality expresses, {NOTHING} = nothing "
                                    "(blank or masked face, flat voice, plain words)",
                       "clarity": "(N, 3) how clearly, in [0, 1]; 0 where nothing",
                       "difficulty": "(N,) planted difficulty in [0, 1]: 1 - margin of the best over the "
                                     "second-best emotion, summed over modalities, / 3"}},
        "extra": {
            "label_file": EXTRA_LABEL_FILE, "columns": ["name", "discrete"], "name_prefix": EXTRA_PREFIX,
            "what": "external labelled set for Table 3 (MERR-style: labelled by an automatic annotator); "
                    "features in the same folders; not in the human label file",
            "annotator_label_noise": signal.extra_label_noise, "shares": EXTRA_SHARES,
            "counts": class_counts(extra), "total": int(extra.sum())}})
    if root.exists():
        shutil.rmtree(root)
    tmp.rename(root)
    return root


def _samples(cfg: DemoScale, signal: Signal, rng):
    """Names, underlying emotions, annotations (-1 for the pool) and split ("" for the pool,
    "extra" for the external set) of every clip, in the order train, test, pool, extra.

    The annotations have exactly the requested counts; annotation noise is planted by drawing the
    underlying emotion of a share of them elsewhere: the human label's confusable neighbour
    (annotators confuse those), or any other class for the external set's automatic annotator.
    """
    train_n, test_n, pool_n, extra_n = split_counts(cfg)
    C = len(MER_CLASSES)
    human = np.concatenate([np.repeat(np.arange(C), train_n), np.repeat(np.arange(C), test_n)])
    extra = np.repeat(np.arange(C), extra_n)
    annotated = np.concatenate([human, np.full(pool_n, -1), extra])
    split = np.array([TRAIN_SPLIT] * train_n.sum() + [TEST_SPLIT] * test_n.sum() + [""] * pool_n
                     + ["extra"] * extra_n.sum())
    true = annotated.copy()
    flip = (split != "") & (rng.random(len(annotated)) < np.where(split == "extra", signal.extra_label_noise,
                                                                   signal.label_noise))
    other = (annotated + rng.integers(1, C, size=len(annotated))) % C  # any class but the annotated one
    true[flip] = np.where(split[flip] == "extra", other[flip], NEIGHBOUR[annotated[flip]])
    pool_share = (train_n / train_n.sum() + test_n / test_n.sum()) / 2
    true[split == ""] = rng.choice(C, size=pool_n, p=pool_share)
    mer = split != "extra"
    number = rng.permutation(int(mer.sum()))  # names carry no hint of split or class
    names = [f"sample_{k:08d}" if s == TRAIN_SPLIT else f"samplenew_{k:08d}" for k, s in zip(number, split[mer])]
    names += [f"{EXTRA_PREFIX}{k:08d}" for k in rng.permutation(int(extra_n.sum()))]
    return np.array(names), true, annotated, split


def draw_perception(true: np.ndarray, annotated: np.ndarray, s: Signal, rng) -> tuple[np.ndarray, np.ndarray]:
    """``(expressed, clarity)``, each (N, 3): what each modality of each clip shows.

    ``annotated`` (-1 where there is no annotation) plants where annotators went wrong: a clip
    annotated other than its underlying emotion shows the annotated class in one modality.
    """
    n, C = len(true), len(MER_CLASSES)
    mean = np.asarray(s.expressiveness)[true]
    expressiveness = rng.beta(mean * s.expressiveness_concentration, (1 - mean) * s.expressiveness_concentration)
    clarity = expressiveness[:, None] * rng.uniform(*s.modality_clarity, size=(n, 3))
    expressed = np.repeat(true[:, None], 3, axis=1)
    # a conflicting modality expresses the confusable neighbour half of the time, else any other class
    conflict = rng.random((n, 3)) < np.asarray(s.conflict_rate)
    other = np.where(rng.random((n, 3)) < 0.5, NEIGHBOUR[true][:, None],
                     (true[:, None] + rng.integers(1, C, size=(n, 3))) % C)
    expressed = np.where(conflict, other, expressed)
    nothing = rng.random((n, 3)) < np.asarray(s.nothing_rate)
    misled = (annotated >= 0) & (annotated != true)
    where = rng.integers(0, 3, size=n)
    misled_at = misled[:, None] & (np.arange(3)[None] == where[:, None])
    expressed = np.where(misled_at, annotated[:, None], expressed)
    nothing &= ~misled_at  # the modality that misled the annotator does show something
    expressed[nothing] = NOTHING
    clarity[nothing] = 0.0
    return expressed, clarity


def simulate_annotated_clips(annotated: np.ndarray, s: Signal, rng) -> tuple[np.ndarray, np.ndarray]:
    """``(expressed, clarity)`` of fresh clips drawn as the generator draws human-labelled clips
    with these annotations (underlying emotion, then perception). The simulated MLLM calibrates its
    noise on such clips, so it never needs a dataset's labels."""
    true = np.where(rng.random(len(annotated)) < s.label_noise, NEIGHBOUR[annotated], annotated)
    return draw_perception(true, annotated, s, rng)


def _prototypes(latent_dim: int, scale: float, rng) -> np.ndarray:
    """(C, K) class prototypes: near-orthogonal bases mixed with their confusable neighbours."""
    bases = np.linalg.qr(rng.normal(size=(latent_dim, latent_dim)))[0][: len(MER_CLASSES)] * scale
    protos = bases.copy()
    for i, c in enumerate(MER_CLASSES):
        for other, w in CONFUSION[c].items():
            protos[i] = (1 - w) * protos[i] + w * bases[MER_CLASSES.index(other)]
    return protos


def feature_chunks(expressed: np.ndarray, clarity: np.ndarray, dims, s: Signal, rng, chunk: int = 8192):
    """Yield ``(row slice, {modality: (n, D_m) float32})`` for all clips, a chunk at a time
    (the mer2024 scale is 2.8 GB of features). Modality m sees clarity_m x prototype(expressed_m)."""
    K = s.latent_dim
    # one extra all-zero prototype for NOTHING (index -1): a blank face carries no class direction
    protos = np.vstack([_prototypes(K, s.prototype_scale, rng), np.zeros((1, K))])
    speaker = rng.integers(0, s.speakers, size=len(expressed))
    speaker_offsets = rng.normal(scale=s.speaker_scale, size=(s.speakers, K))
    # a random linear map per modality from the latent into its feature space, and a tanh on half
    # of the dimensions so the encoders have something to learn beyond a linear probe
    maps = {m: rng.normal(scale=1 / np.sqrt(K), size=(K, d)) for m, d in zip(FEATURES, dims)}
    biases = {m: rng.normal(scale=0.5, size=d) for m, d in zip(FEATURES, dims)}
    for start in range(0, len(expressed), chunk):
        rows = slice(start, start + chunk)
        n = len(expressed[rows])
        common = s.shared_noise * rng.normal(size=(n, K)) + speaker_offsets[speaker[rows]]
        out = {}
        for mi, m in enumerate(FEATURES):
            z = clarity[rows, mi, None] * protos[expressed[rows, mi]] + common \
                + s.private_noise[mi] * rng.normal(size=(n, K))
            x = z @ maps[m] + biases[m]
            half = x.shape[1] // 2
            x[:, :half] = 2.0 * np.tanh(x[:, :half] / 2.0)  # saturates only for strong emotions
            x += s.feature_noise * rng.normal(size=x.shape)
            out[m] = x.astype(np.float32)
        yield rows, out


def _write_labels(path: Path, names, labels, split, rng) -> None:
    valence_mean = {"neutral": 0.0, "angry": -2.5, "happy": 2.5, "sad": -2.5, "worried": -1.5, "surprise": 1.0}
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


def _write_subtitles(path: Path, names, text_expressed, rng) -> None:
    """A sentence of the emotion the text modality expresses; plain filler where it expresses nothing."""
    rows = []
    for name, y in zip(names, text_expressed):
        if y == NOTHING:
            en, zh = _FILLER[rng.integers(len(_FILLER))]
        else:
            c = MER_CLASSES[y]
            k = rng.integers(len(_CUES_EN[c]))
            en, zh = _CUES_EN[c][k], _CUES_ZH[c][k]
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
    manifest = json.loads((root / "demo-manifest.json").read_text())
    print(json.dumps(manifest["counts"] | {"extra": manifest["extra"]["counts"]}))


if __name__ == "__main__":
    main()
