"""Read a dataset in the MER toolkit's on-disk layout.

    <data_root>/features/<extractor>-UTT/<name>.npy    one utterance vector [D] per clip
    <data_root>/features/<extractor>-FRA/<name>.npy    or frame-level [T, D], averaged over T
    <data_root>/label-6way.npz                         split -> {name: {'emo': str, 'val': float}}
    <data_root>/transcription-engchi-polish.csv        optional subtitles: name,chinese,english

Features that MER2024 participants extracted with MERTools load unchanged. Samples with features
for every modality but no label in any split form the unlabelled pool (split ``"unlabelled"``).
MERTools pickles dicts into the label ``.npz``; it is read with an unpickler that builds only
plain data (see :func:`read_label_file`), so a crafted label file cannot run code.
"""
from __future__ import annotations

import difflib
import functools
import hashlib
import io
import numbers
import os
import pickle
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import LABEL_FILE, MER_CLASSES, SUBTITLE_FILE
from .errors import DataError, listing
from .packed import load_packed

UNLABELLED = "unlabelled"  # split name of samples that have features but no label
EXTRA = "extra_labelled"  # split name of an external labelled set (extra_label_file; the paper's Table 3)
HIDDEN_LABELS_FILE = "unlabelled-truth.npz"  # demo data only: truth of the unlabelled pool, for scoring


@dataclass
class Dataset:
    root: Path
    names: np.ndarray  # (N,) str
    classes: tuple[str, ...]  # class index -> name
    labels: np.ndarray  # (N,) int64, -1 for unlabelled samples
    splits: np.ndarray  # (N,) str: the label file's split key, or "unlabelled"
    features: dict[str, np.ndarray]  # modality -> (N, D_m) float32
    feature_names: dict[str, str] = field(default_factory=dict)  # modality -> extractor folder
    subtitles: pd.DataFrame | None = None  # index: name; columns: chinese, english
    hidden_labels: np.ndarray | None = None  # (N,) int64 truth of unlabelled samples where known, else -1
    valence: np.ndarray | None = None  # (N,) float 'val' from the label file, NaN where absent
    label_sources: dict[str, str] = field(default_factory=dict)  # split -> the file its labels come from
    label_splits: tuple[str, ...] = ()  # every split of the label file, empty ones included

    def __len__(self) -> int:
        return len(self.names)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.features)

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of what a model trained on this dataset depends on: names, labels, splits, classes and
        the features' content (computed once, ~1 s per GB). Training run keys include it, so a run
        folder reused with other features (a new extractor, a re-extracted clip) retrains."""
        h = hashlib.blake2b(digest_size=16)
        for part in (self.names, self.labels, self.splits, np.asarray(self.classes)):
            h.update(np.ascontiguousarray(part).tobytes())
        for modality, array in self.features.items():
            h.update(modality.encode())
            h.update(np.ascontiguousarray(array).data)
        return h.hexdigest()

    @property
    def dims(self) -> dict[str, int]:
        return {m: int(a.shape[1]) for m, a in self.features.items()}

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def split_names(self) -> list[str]:
        return list(dict.fromkeys(self.splits.tolist()))

    def indices(self, split: str) -> np.ndarray:
        """Row indices of one split (``"unlabelled"`` for the pool)."""
        idx = np.flatnonzero(self.splits == split)
        if len(idx) == 0 and split in self.label_splits:
            raise DataError(f"{self.root}: split '{split}' is in the label file but holds no samples. "
                            "Fix: fill it in the label file, or set train_split/test_split to another "
                            f"split ({[s for s in self.split_names if s != split]}).")
        if len(idx) == 0 and split not in self.split_names:
            raise DataError(f"{self.root}: no split '{split}'; this dataset has {self.split_names}. "
                            "Fix: set train_split/test_split to one of those.")
        return idx

    def subset(self, idx) -> Dataset:
        idx = np.asarray(idx)
        pick = lambda a: None if a is None else a[idx]
        return replace(self, names=self.names[idx], labels=self.labels[idx], splits=self.splits[idx],
                       features={m: a[idx] for m, a in self.features.items()},
                       hidden_labels=pick(self.hidden_labels), valence=pick(self.valence))

    def class_counts(self) -> pd.DataFrame:
        """Split x class table of labelled counts (the unlabelled pool counted by hidden truth if known)."""
        labels = self.labels if self.hidden_labels is None else np.where(
            self.labels >= 0, self.labels, self.hidden_labels)
        rows = {}
        for split in self.split_names:
            y = labels[self.splits == split]
            rows[split] = [int((y == c).sum()) for c in range(self.num_classes)] + [len(y)]
        return pd.DataFrame.from_dict(rows, orient="index", columns=[*self.classes, "total"])

    def subtitle(self, name: str) -> tuple[str, str]:
        """(chinese, english) subtitle of a clip; empty strings where there is none."""
        if self.subtitles is None or name not in self.subtitles.index:
            return "", ""
        row = self.subtitles.loc[name]
        return str(row["chinese"]), str(row["english"])


def load_dataset(data_root: str | os.PathLike, features: Mapping[str, str],
                 label_file: str = LABEL_FILE,
                 subtitle_file: str | None = SUBTITLE_FILE,
                 classes: list[str] | None = None, use_cache: bool = True,
                 progress: bool = True, **label_sources) -> Dataset:
    """Load features, labels and subtitles of a dataset in the MER layout.

    ``features`` maps a modality name to its extractor folder under ``<data_root>/features``,
    e.g. ``{"audio": "chinese-hubert-large-UTT", "video": "clip-vit-large-patch14-UTT",
    "text": "bloom-7b1-UTT"}``; the ``-UTT``/``-FRA`` suffix may be left out; modalities left out are
    absent. ``classes`` fixes the class order; by default it comes from the label file (MER's order for
    MER labels). ``label_sources``: ``unlabelled_splits``, ``test_label_file``, ``test_split``,
    ``extra_label_file`` (see :func:`dataset_index`).
    """
    root = _existing_root(data_root)
    if not features:
        raise DataError(f"{root}: no feature folders given. Fix: pass features={{'audio': ..., ...}}.")
    packed = {m: load_packed(resolve_feature_folder(root, m, spec), use_cache=use_cache,
                             progress=progress) for m, spec in features.items()}
    rows_of = {m: {n: i for i, n in enumerate(p.names.tolist())} for m, p in packed.items()}
    common = set.intersection(*(set(r) for r in rows_of.values()))
    ds = dataset_index(root, label_file=label_file, pool_names=common, subtitle_file=subtitle_file,
                       classes=classes, **label_sources)
    for m, rows in rows_of.items():
        for split in ds.split_names:
            names = ds.names[ds.splits == split]
            missing = [n for n in names if n not in rows] if split != UNLABELLED else []
            if missing:
                raise DataError(
                    f"{packed[m].folder}: {len(missing)} labelled sample(s) of split '{split}' have no {m} "
                    f"features: {listing(missing)} (labels from {ds.label_sources.get(split, root / label_file)}). "
                    f"Fix: extract {m} features for them, or remove them from that label file.")
    # pool clips named by a placeholder split but without features of every modality cannot be used
    ds = ds.subset(np.flatnonzero(np.isin(ds.names, list(common)) | (ds.labels >= 0)))
    feats = {}
    for m, p in packed.items():
        rows = np.fromiter((rows_of[m][n] for n in ds.names), dtype=np.int64, count=len(ds.names))
        feats[m] = p.take(rows)
    return replace(ds, features=feats, feature_names={m: p.folder.name for m, p in packed.items()})


def dataset_index(data_root: str | os.PathLike, *, label_file: str = LABEL_FILE, pool_names=(),
                  subtitle_file: str | None = SUBTITLE_FILE,
                  classes: list[str] | None = None, unlabelled_splits: Sequence[str] = (),
                  test_label_file: str | os.PathLike | None = None, test_split: str = "test",
                  extra_label_file: str | os.PathLike | None = None) -> Dataset:
    """The clips of a dataset without their features: labelled clips in label-file order, then the
    unlabelled pool (``pool_names`` not in the label file), sorted; with subtitles and, on the demo,
    the pool's hidden truth. ``load_dataset`` fills in the features; the inspector uses it as is.

    As MER2024 comes (MERTools' ``label-6way.npz`` holds ``train_corpus`` and the whole unlabelled pool
    as ``test1_corpus`` with the placeholder label "neutral"; the organisers' test labels are a
    separate CSV ``name,discrete``):
    - ``unlabelled_splits``: label-file splits whose labels are placeholders: their clips join the pool;
    - ``test_label_file``: a CSV ``name,discrete`` or a MER label ``.npz``; its clips form the split
      ``test_split`` (and leave the pool: a test clip is never pseudo-labelled);
    - ``extra_label_file``: an external labelled set in the same formats (the split ``"extra_labelled"``),
      added to training only where asked (Table 3).
    Relative paths are taken from ``data_root``.
    """
    root = _existing_root(data_root)
    label_path = root / label_file
    corpus, valence = read_label_file(label_path)
    missing = [s for s in unlabelled_splits if s not in corpus]
    if missing:
        raise DataError(f"{label_path}: no split(s) {missing} to read as unlabelled; the file has "
                        f"{list(corpus)}. Fix: set unlabelled_splits to some of those (or leave it empty).")
    placeholder_pool = {n for s in unlabelled_splits for n in corpus.pop(s)}
    sources = {s: label_path for s in corpus}
    for split, file in ((test_split, test_label_file), (EXTRA, extra_label_file)):
        if not file:
            continue
        path = Path(file) if Path(file).is_absolute() else root / file
        items, extra_valence = read_labels(path)
        if split in corpus:
            raise DataError(f"{path}: defines the split '{split}', which {label_path} has too. Fix: name the "
                            f"test split otherwise (test_split) or drop that split from the label file.")
        corpus[split], sources[split] = items, path
        valence |= extra_valence
    seen: dict[str, str] = {}
    for split, items in corpus.items():
        for name in items:
            if name in seen:
                raise DataError(f"sample '{name}' is labelled in split '{seen[name]}' ({sources[seen[name]]}) and in "
                                f"'{split}' ({sources[split]}). Fix: keep each sample in exactly one split.")
            seen[name] = split
    classes = resolve_classes(corpus, label_path, classes)
    class_index = {c: i for i, c in enumerate(classes)}
    labelled = [(n, split, emo) for split, items in corpus.items() for n, emo in items.items()]
    pool = sorted((set(pool_names) | placeholder_pool) - set(seen))
    names = np.asarray([n for n, _, _ in labelled] + pool, dtype=str)
    labels = np.asarray([class_index[e] for _, _, e in labelled] + [-1] * len(pool), dtype=np.int64)
    splits = np.asarray([s for _, s, _ in labelled] + [UNLABELLED] * len(pool), dtype=str)
    subtitles = None
    if subtitle_file and (root / subtitle_file).exists():
        subtitles = read_subtitles(root / subtitle_file)
    hidden = None
    if (root / HIDDEN_LABELS_FILE).exists():
        truth, _ = read_label_file(root / HIDDEN_LABELS_FILE)
        truth = {n: class_index.get(e, -1) for items in truth.values() for n, e in items.items()}
        hidden = np.asarray([truth.get(n, -1) if y < 0 else -1 for n, y in zip(names, labels)], dtype=np.int64)
    return Dataset(root=root, names=names, classes=tuple(classes), labels=labels, splits=splits, features={},
                   subtitles=subtitles, hidden_labels=hidden,
                   valence=np.asarray([valence.get(n, np.nan) for n in names], dtype=np.float64),
                   label_sources={s: str(p) for s, p in sources.items()},
                   label_splits=tuple(corpus))


def read_labels(path: Path) -> tuple[dict[str, str], dict[str, float]]:
    """``{name: emotion}`` (and valence where given) of a test or external label file: a CSV with
    columns ``name`` and ``discrete`` (the MER2024 organisers' format), or a MER label ``.npz``
    (every split of it)."""
    if not path.exists():
        raise DataError(f"{path}: label file not found. Fix: pass the path of a CSV (columns name,discrete) "
                        "or of a MER label .npz; a relative path is taken from data_root.")
    if path.suffix == ".npz":
        corpus, valence = read_label_file(path)
        return {n: e for items in corpus.values() for n, e in items.items()}, valence
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DataError(f"{path}: cannot read the label CSV ({exc}). Fix: save it as UTF-8 CSV with the "
                        "columns name,discrete.") from exc
    if not {"name", "discrete"} <= set(df.columns):
        raise DataError(f"{path}: a label CSV needs the columns name and discrete (the MER2024 organisers' "
                        f"format); it has {list(df.columns)}. Fix: rename the columns.")
    empty = df["name"][df["discrete"].str.strip() == ""].tolist()
    if empty:
        raise DataError(f"{path}: sample(s) {listing(empty)} have no label in 'discrete'. Fix: label or drop them.")
    dup = df["name"][df["name"].duplicated()].tolist()
    if dup:
        raise DataError(f"{path}: sample(s) {listing(dup)} appear more than once. Fix: keep one row per sample.")
    return dict(zip(df["name"], df["discrete"].str.strip().str.lower())), {}


def warn_placeholder_splits(ds: Dataset, train_split: str) -> None:
    """Warn about a split that looks like an unlabelled pool read as labelled: all one class and several
    times larger than the training split (MER2024's test1_corpus: 115,595 clips, all "neutral")."""
    n_train = int((ds.splits == train_split).sum())
    for split in ds.split_names:
        y = ds.labels[ds.splits == split]
        if split not in (train_split, UNLABELLED) and len(y) > 3 * max(n_train, 1) and len(np.unique(y)) == 1:
            warnings.warn(f"{ds.label_sources.get(split, ds.root)}: split '{split}' has {len(y)} clips, all labelled "
                          f"'{ds.classes[y[0]]}', {len(y) / max(n_train, 1):.0f} times the training split: its labels "
                          f"look like placeholders. If they are, add it to unlabelled_splits (MER2024: "
                          f"unlabelled_splits: test1_corpus), so its clips form the unlabelled pool.", stacklevel=2)


def feature_file_names(root: Path, features: Mapping[str, str]) -> tuple[set[str] | None, str]:
    """Names with a feature file for every modality (a directory scan, no file read), and a note;
    ``None`` and the reason when a feature folder is missing."""
    common: set[str] | None = None
    for modality, spec in features.items():
        try:
            folder = resolve_feature_folder(root, modality, spec)
        except DataError:
            return None, f"no feature folder '{spec}' under {root / 'features'}"
        with os.scandir(folder) as entries:
            names = {e.name[:-4] for e in entries if e.name.endswith(".npy")}
        common = names if common is None else common & names
    return common, ""


def _existing_root(data_root) -> Path:
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found. Fix: pass the folder that holds features/ "
                        "and the label file (for the demo: python -m mer_lib.data --root data/demo).")
    return root


def resolve_feature_folder(root: Path, modality: str, spec: str) -> Path:
    base = root / "features"
    for candidate in (spec, f"{spec}-UTT", f"{spec}-FRA"):
        if (base / candidate).is_dir():
            return base / candidate
    available = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if base.is_dir() else []
    raise DataError(f"{base / spec}: no feature folder for {modality} '{spec}'. Fix: choose one of "
                    f"{available or 'nothing (features/ is empty or missing)'}, or extract features "
                    f"(python -m mer_lib.extract).")


def read_label_file(path: Path) -> tuple[dict[str, dict[str, str]], dict[str, float]]:
    """``{split: {name: emotion}}`` and ``{name: valence}`` from a MER label ``.npz``.

    MERTools stores each split as a pickled dict; it is unpickled by :class:`_PlainDataUnpickler`,
    which refuses anything but plain data, so a label file from anywhere is safe to read.
    """
    expected = ("Expected the MER toolkit's format: an .npz whose keys are splits ('train_corpus', "
                "'test1_corpus', ...), each a dict name -> {'emo': str, 'val': float}")
    if not path.exists():
        others = sorted(p.name for p in path.parent.glob("*.npz"))
        raise DataError(f"{path}: label file not found. Fix: pass label_file= one of {others} "
                        f"or create it. {expected}.")
    archive = _read_npz(path, expected)
    if not archive:
        raise DataError(f"{path}: the label file is empty. {expected}.")
    corpus, valence, seen = {}, {}, {}
    for split, value in archive.items():
        items = value.item() if value.dtype == object and value.shape == () else None
        if not isinstance(items, dict):
            raise DataError(f"{path}: split '{split}' holds an array of shape {value.shape} and dtype "
                            f"{value.dtype}, not a dict of samples. {expected}.")
        emos = {}
        for name, entry in items.items():
            emo = entry.get("emo") if isinstance(entry, dict) else None
            if not isinstance(emo, str) or not emo:
                raise DataError(f"{path}: sample '{name}' in split '{split}' has label {entry!r}; "
                                f"expected {{'emo': <class name>, ...}}. Fix: correct this entry.")
            if name in seen:
                raise DataError(f"{path}: sample '{name}' is labelled in both '{seen[name]}' and "
                                f"'{split}'. Fix: keep each sample in exactly one split.")
            seen[name] = split
            emos[str(name)] = emo.strip().lower()
            val = entry.get("val")  # a Python float, or a numpy scalar in some MERTools versions
            if isinstance(val, numbers.Real) and not isinstance(val, bool) and val != -10:
                valence[str(name)] = float(val)  # MER writes -10 for "no valence"
        corpus[split] = emos
    return corpus, valence


def _read_npz(path: Path, expected: str) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz``, object arrays unpickled by :class:`_PlainDataUnpickler` (not
    ``np.load(allow_pickle=True)``, which runs whatever code a crafted file names)."""
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    continue
                f = io.BytesIO(archive.read(member))  # label files are small
                version = np.lib.format.read_magic(f)
                reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                dtype = reader(f)[2]
                if dtype.hasobject:
                    value = _PlainDataUnpickler(f, path, member).load()
                else:
                    f.seek(0)
                    value = np.lib.format.read_array(f, allow_pickle=False)
                arrays[member[: -len(".npy")]] = np.asarray(value)
    except DataError:
        raise
    except Exception as exc:  # not a zip, a truncated member, a broken pickle...
        raise DataError(f"{path}: not a readable .npz label file ({exc}). {expected}.") from exc
    return arrays


_MULTIARRAY = (getattr(np, "_core", None) or np.core).multiarray  # numpy >= 2 moved it to numpy._core
# what np.save writes for an object array of plain data, under numpy 1's and numpy 2's module names
_PICKLE_ALLOWED = {
    **{(module, name): getattr(_MULTIARRAY, name)
       for module in ("numpy.core.multiarray", "numpy._core.multiarray")
       for name in ("_reconstruct", "scalar")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _PlainDataUnpickler(pickle.Unpickler):
    """Builds dicts, lists, strings and numbers, and numpy's own reconstruction of the object
    array that holds them; refuses every other class or function a pickle may name (os.system,
    eval, ...: the ways a crafted file would run code on load)."""

    def __init__(self, file, path: Path, member: str):
        super().__init__(file)
        self.where = f"{path} (member {member})"

    def find_class(self, module: str, name: str):
        try:
            return _PICKLE_ALLOWED[(module, name)]
        except KeyError:
            raise DataError(
                f"{self.where}: the label file's pickle asks for {module}.{name}; refused, since a MER "
                "label file holds only dicts, strings and numbers and loading it could run code. Fix: "
                "use the label file from the dataset's own source, or rewrite it as plain data "
                "(np.savez(path, split=np.array({name: {'emo': ..., 'val': ...}}, dtype=object)))."
            ) from None


def resolve_classes(corpus: dict[str, dict[str, str]], path: Path,
                    classes: list[str] | None) -> list[str]:
    """Class order: the one given, MER's for MER labels, else sorted label names."""
    present = {e for items in corpus.values() for e in items.values()}
    if classes is not None:
        classes = [c.strip().lower() for c in classes]
        allowed = set(classes)
        hint = f"this dataset's classes are {classes}"
    elif present <= set(MER_CLASSES):
        return [c for c in MER_CLASSES if c in present]
    elif len(present & set(MER_CLASSES)) >= 4:
        # mostly MER labels plus a stray one: almost surely a typo, not a new label set
        allowed = set(MER_CLASSES)
        hint = f"MER's classes are {list(MER_CLASSES)}; pass classes=[...] if this is another label set"
    else:
        return sorted(present)
    for split, items in corpus.items():
        for name, emo in items.items():
            if emo not in allowed:
                close = difflib.get_close_matches(emo, sorted(allowed), n=1)
                guess = f" (did you mean '{close[0]}'?)" if close else ""
                raise DataError(f"{path}: sample '{name}' in split '{split}' has unknown label "
                                f"'{emo}'{guess}; {hint}. Fix: correct the label.")
    return classes if classes is not None else [c for c in MER_CLASSES if c in present]


def read_subtitles(path: Path) -> pd.DataFrame:
    """Subtitle CSV ``name,chinese,english`` indexed by name; missing text becomes ''."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DataError(f"{path}: cannot read the subtitle CSV ({exc}). Fix: save it as UTF-8 CSV "
                        "with columns name,chinese,english.") from exc
    missing = {"name", "chinese", "english"} - set(df.columns)
    if missing:
        raise DataError(f"{path}: subtitle CSV lacks column(s) {sorted(missing)} (it has "
                        f"{list(df.columns)}). Fix: use the header name,chinese,english.")
    dup = df["name"][df["name"].duplicated()].tolist()
    if dup:
        raise DataError(f"{path}: duplicate subtitle rows for sample(s) {listing(dup)}. "
                        "Fix: keep one row per sample.")
    return df.set_index("name")[["chinese", "english"]]
