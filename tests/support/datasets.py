"""Small datasets for the tests: MER label files, feature folders in the MER layout, and feature-less
:class:`~mer_lib.data.Dataset` objects for prior generation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mer_lib.config import LABEL_FILE, MER_CLASSES, MODALITIES
from mer_lib.data import Dataset


def write_labels(path: Path, splits: dict[str, dict[str, str]]) -> Path:
    """A MER label file (split -> {name: {'emo', 'val'}}), as MERTools writes it."""
    np.savez(path, **{k: np.array({n: {"emo": e, "val": 0.0} for n, e in v.items()}, dtype=object)
                      for k, v in splits.items()})
    return path


def write_layout(root: Path, splits: dict[str, dict[str, str]], *, unlabelled=(), dims=None,
                 modalities=MODALITIES, seed: int = 0) -> dict[str, str]:
    """A small MER-layout dataset (random features, ``<root>/label-6way.npz``); returns the
    ``features=`` mapping for ``load_dataset``."""
    rng = np.random.default_rng(seed)
    dims = dims or {"audio": 6, "video": 5, "text": 4}
    names = [n for items in splits.values() for n in items] + list(unlabelled)
    features = {}
    for m in modalities:
        folder = root / "features" / f"toy-{m}-UTT"
        folder.mkdir(parents=True, exist_ok=True)
        for n in names:
            np.save(folder / f"{n}.npy", rng.normal(size=dims[m]).astype(np.float32))
        features[m] = folder.name
    write_labels(root / LABEL_FILE, splits)
    return features


def small_dataset(names, labels, subtitles=None, splits=None, root=Path(".")) -> Dataset:
    """A Dataset without features: enough for prior generation and scoring."""
    classes = tuple(MER_CLASSES)
    labels = np.asarray([classes.index(y) if isinstance(y, str) else y for y in labels], dtype=np.int64)
    splits = np.asarray(splits if splits is not None else
                        ["train_corpus" if y >= 0 else "unlabelled" for y in labels])
    subtitles = subtitles or [f"I feel {classes[y]} today." if y >= 0 else "" for y in labels]
    subs = pd.DataFrame({"name": list(names), "chinese": [""] * len(names), "english": list(subtitles)}
                        ).set_index("name")
    return Dataset(root=Path(root), names=np.asarray(names), classes=classes, labels=labels, splits=splits,
                   features={}, subtitles=subs)
