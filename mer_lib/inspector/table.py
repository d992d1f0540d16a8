"""The inspector's table: one row per clip, every filter a boolean mask computed once.

The inspector must stay interactive on MER2024's ~120k clips, so nothing here loops over clips
after construction: :class:`ClipTable` derives its masks (prior disagrees with the human label,
unreliable prior, model wrong, model changed its mind between stages) from numpy arrays when it
is built, :func:`filter_rows` is an AND of those masks, and navigation (:func:`step`,
:func:`find_row`) is a binary search or a dict lookup. Only the selected clip is ever looked at
in detail (:mod:`.view`).

Predictions come from notebook 04's ``<run_dir>/results/predictions.csv``
(:func:`mer_lib.stage2.prediction_table`: ``name, split, label, has_prior,
stage1_<class>..., stage2_<class>...`` probabilities); :func:`read_predictions` reads and checks it.
"""
from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

ALL = "all"  # split filter: every split
ANY = "any"  # label / prior filters: no constraint
UNLABELLED = "unlabelled"  # human-label filter: clips without a human label
NO_PRIOR = "no prior"  # prior filter: clips without a valid prior
ANY_PRIOR = "any prior"  # prior filter: clips with a valid prior, whatever its emotion
STAGES = ("stage1", "stage2")


class InspectorError(ValueError):
    """Something the user asked for that cannot be shown (an unknown clip, a filter without data);
    the panel shows the message instead of a traceback."""


@dataclass(frozen=True)
class Filters:
    """Which clips the inspector walks through; every condition set must hold."""
    split: str = ALL  # a split of the label file ("unlabelled" for the pool), or "all"
    label: str = ANY  # human label: a class, "unlabelled", or "any"
    prior: str = ANY  # prior's emotion c*: a class, "no prior", "any prior", or "any"
    prior_disagrees: bool = False  # only labelled clips whose prior's c* differs from the human label
    low_reliability: bool = False  # only clips whose prior fails the reliability policy
    model_wrong: bool = False  # only labelled clips the final model (stage 2, else stage 1) gets wrong
    model_changed: bool = False  # only clips whose predicted class changes from stage 1 to stage 2
    with_video: bool = False  # only clips with a video file in clips_dir


@dataclass
class ClipTable:
    """Per-clip arrays the filters and navigation work on (N clips, C classes)."""
    names: np.ndarray  # (N,) str, the dataset's order
    classes: tuple[str, ...]  # class index -> name
    splits: np.ndarray  # (N,) str
    labels: np.ndarray  # (N,) int64 human label, -1 where there is none
    prior_labels: np.ndarray  # (N,) int64 prior's c* as a class index, -1 without a valid prior
    reliable: np.ndarray  # (N,) bool: the prior passes the reliability policy
    has_video: np.ndarray  # (N,) bool: a clip file exists
    stage1_probs: np.ndarray | None = None  # (N, C) float, NaN rows for clips without a prediction
    stage2_probs: np.ndarray | None = None  # (N, C) float, or None when the file has no stage 2
    predictions_note: str = "no predictions file given"  # why there are no predictions (when there are none)
    split_names: list[str] = field(init=False)  # splits in order of first appearance
    split_codes: np.ndarray = field(init=False)  # (N,) int: index into split_names

    def __post_init__(self):
        n = len(self.names)
        for name in ("splits", "labels", "prior_labels", "reliable", "has_video"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"ClipTable: '{name}' has {len(getattr(self, name))} rows, names has {n}")
        for name in ("stage1_probs", "stage2_probs"):
            probs = getattr(self, name)
            if probs is not None and probs.shape != (n, len(self.classes)):
                raise ValueError(f"ClipTable: '{name}' has shape {probs.shape}, expected {(n, len(self.classes))}")
        uniques, first, codes = np.unique(self.splits, return_index=True, return_inverse=True)
        order = np.argsort(first)  # keep the label file's split order, not alphabetical
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        self.split_names = [str(s) for s in uniques[order]]
        self.split_codes = rank[codes.reshape(-1)]

    def __len__(self) -> int:
        return len(self.names)

    # --- masks, each computed once -------------------------------------------------------------
    @cached_property
    def has_prior(self) -> np.ndarray:
        return self.prior_labels >= 0

    @cached_property
    def prior_disagrees(self) -> np.ndarray:
        return (self.labels >= 0) & self.has_prior & (self.prior_labels != self.labels)

    @cached_property
    def low_reliability(self) -> np.ndarray:
        return self.has_prior & ~self.reliable

    @property
    def has_predictions(self) -> bool:
        return self.stage1_probs is not None

    @cached_property
    def stage1_pred(self) -> np.ndarray:
        """(N,) int64 predicted class of stage 1, -1 without a prediction."""
        return _argmax_or_missing(self.stage1_probs, len(self))

    @cached_property
    def stage2_pred(self) -> np.ndarray:
        return _argmax_or_missing(self.stage2_probs, len(self))

    @cached_property
    def final_pred(self) -> np.ndarray:
        """The final model's class: stage 2 where it predicted, else stage 1."""
        return np.where(self.stage2_pred >= 0, self.stage2_pred, self.stage1_pred)

    @cached_property
    def model_wrong(self) -> np.ndarray:
        return (self.labels >= 0) & (self.final_pred >= 0) & (self.final_pred != self.labels)

    @cached_property
    def model_changed(self) -> np.ndarray:
        return (self.stage1_pred >= 0) & (self.stage2_pred >= 0) & (self.stage1_pred != self.stage2_pred)

    @cached_property
    def row_of(self) -> dict[str, int]:
        """name -> row, built on the first jump (a dict of 120k names takes ~30 ms)."""
        return {str(n): i for i, n in enumerate(self.names.tolist())}


def _argmax_or_missing(probs: np.ndarray | None, n: int) -> np.ndarray:
    if probs is None:
        return np.full(n, -1, dtype=np.int64)
    known = ~np.isnan(probs).any(axis=1)
    return np.where(known, np.argmax(np.nan_to_num(probs, nan=-1.0), axis=1), -1).astype(np.int64)


def unavailable_filters(table: ClipTable) -> dict[str, str]:
    """Filters that cannot be used on this table, with the reason (the panel disables them)."""
    reasons = {}
    if not table.has_prior.any():
        for name in ("prior_disagrees", "low_reliability"):
            reasons[name] = "no clip has a prior"
    if not table.has_predictions:
        reasons["model_wrong"] = reasons["model_changed"] = table.predictions_note
    elif table.stage2_probs is None:
        reasons["model_changed"] = "the predictions file has no stage-2 columns"
    if not table.has_video.any():
        reasons["with_video"] = "no clip has a video file"
    return reasons


def filter_mask(table: ClipTable, filters: Filters) -> np.ndarray:
    """(N,) bool: the clips that pass every condition of ``filters``."""
    blocked = {k: v for k, v in unavailable_filters(table).items() if getattr(filters, k)}
    if blocked:
        name, reason = next(iter(blocked.items()))
        raise InspectorError(f"the filter '{name}' cannot be used here: {reason}.")
    mask = np.ones(len(table), dtype=bool)
    if filters.split != ALL:
        if filters.split not in table.split_names:
            raise InspectorError(f"no split '{filters.split}'; this dataset has {table.split_names}.")
        mask &= table.split_codes == table.split_names.index(filters.split)
    if filters.label != ANY:
        mask &= table.labels == _class_code(table, filters.label, UNLABELLED, "human label")
    if filters.prior == ANY_PRIOR:
        mask &= table.has_prior
    elif filters.prior != ANY:
        mask &= table.prior_labels == _class_code(table, filters.prior, NO_PRIOR, "prior label")
    for flag in ("prior_disagrees", "low_reliability", "model_wrong", "model_changed"):
        if getattr(filters, flag):
            mask &= getattr(table, flag)
    if filters.with_video:
        mask &= table.has_video
    return mask


def _class_code(table: ClipTable, value: str, none_word: str, what: str) -> int:
    if value == none_word:
        return -1
    if value not in table.classes:
        raise InspectorError(f"{what} '{value}' is not one of {list(table.classes)} (or '{none_word}').")
    return table.classes.index(value)


def filter_rows(table: ClipTable, filters: Filters) -> np.ndarray:
    """(M,) int64 sorted row indices of the clips that pass ``filters``."""
    return np.flatnonzero(filter_mask(table, filters))


def step(rows: np.ndarray, current: int | None, delta: int) -> int | None:
    """The row ``delta`` places after ``current`` among the sorted ``rows``, wrapping around at
    both ends. A ``current`` outside ``rows`` (a clip reached by name that the filters hide) steps
    to the nearest filtered clip in that direction. None when ``rows`` is empty."""
    if len(rows) == 0:
        return None
    if current is None:
        return int(rows[0] if delta >= 0 else rows[-1])
    pos = int(np.searchsorted(rows, current))
    inside = pos < len(rows) and rows[pos] == current
    if not inside and delta > 0:
        delta -= 1  # rows[pos] is already the next clip after current
    return int(rows[(pos + delta) % len(rows)])


def position(rows: np.ndarray, row: int | None) -> int | None:
    """0-based place of ``row`` in the filtered ``rows``, None when the filters hide it."""
    if row is None:
        return None
    pos = int(np.searchsorted(rows, row))
    return pos if pos < len(rows) and rows[pos] == row else None


def find_row(table: ClipTable, name: str) -> int:
    """The row of the clip called ``name``; :class:`InspectorError` with close names otherwise."""
    query = name.strip()
    if not query:
        raise InspectorError("type a clip name to jump to.")
    row = table.row_of.get(query)
    if row is not None:
        return row
    hits = [str(n) for n in table.names[np.char.find(table.names.astype(str), query) >= 0][:5]]
    if not hits and len(table) <= 20_000:  # fuzzy matching over 120k names would take seconds
        hits = difflib.get_close_matches(query, table.row_of.keys(), n=3)
    hint = f" Did you mean {', '.join(hits)}?" if hits else ""
    raise InspectorError(f"no clip named '{query}' in this dataset ({len(table)} clips).{hint}")


def read_predictions(path: str | Path, classes: Sequence[str]) -> pd.DataFrame:
    """Notebook 04's per-clip predictions, checked: a ``name`` column, ``stage1_<class>`` for every
    class (``stage2_<class>`` optional), one row per clip."""
    path = Path(path)
    fix = "Fix: pass the predictions.csv that notebook 04 wrote for this dataset (<run_dir>/results/)."
    try:
        frame = pd.read_csv(path, dtype={"name": str})
    except FileNotFoundError:
        raise InspectorError(f"{path}: predictions file not found. {fix}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise InspectorError(f"{path}: cannot read the predictions CSV ({exc}). {fix}") from None
    if "name" not in frame.columns:
        raise InspectorError(f"{path}: no 'name' column (it has {list(frame.columns)[:8]}). {fix}")
    for stage in STAGES:
        present = [c for c in classes if f"{stage}_{c}" in frame.columns]
        if stage == "stage1" or present:
            missing = [f"{stage}_{c}" for c in classes if c not in present]
            if missing:
                others = sorted({c.split("_", 1)[1] for c in frame.columns if c.startswith(stage + "_")})
                raise InspectorError(f"{path}: lacks column(s) {missing}; its {stage} classes are {others}, "
                                     f"the dataset's {list(classes)}. {fix}")
    duplicated = frame["name"][frame["name"].duplicated()].tolist()
    if duplicated:
        raise InspectorError(f"{path}: clip(s) {duplicated[:5]} appear more than once. {fix}")
    return frame


def aligned_probabilities(predictions: pd.DataFrame, names: np.ndarray, classes: Sequence[str],
                          stage: str) -> np.ndarray | None:
    """(N, C) probabilities of one stage in ``names`` order (NaN rows for clips without a
    prediction), or None when the table has no columns for that stage."""
    columns = [f"{stage}_{c}" for c in classes]
    if not all(c in predictions.columns for c in columns):
        return None
    where = pd.Index(predictions["name"]).get_indexer(names)  # (N,), -1 where the clip has no row
    values = predictions[columns].to_numpy(dtype=float)
    out = np.full((len(names), len(classes)), np.nan)
    found = where >= 0
    out[found] = values[where[found]]
    return out
