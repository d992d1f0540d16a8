"""What the inspector reads: clips' names, labels and subtitles, priors, predictions, clip files.

Every source is optional except the label file, and a missing one becomes a sentence in
:attr:`InspectorData.notes` rather than an error: the real MER2023 samples have clips but no
extracted features and no predictions, the demo has features and predictions but no clip files.

The inspector does not need features, so :func:`index_dataset` does not load them (MER2024's
would be 2.8 GB): it reads the label file and the subtitles, and takes the unlabelled pool from
the names of the feature files (as :func:`mer_lib.data.load_dataset` does), the clip files and
the priors.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import LABEL_FILE, SUBTITLE_FILE, VIDEO_SUFFIXES
from ..data import ClipScan, Dataset, dataset_index, feature_file_names, scan_clips
from ..priors import (
    DEFAULT_MIN_AU_CONSISTENCY,
    DEFAULT_POLICY,
    Prior,
    latest_status,
    load_priors,
    reliability_table,
)
from .table import ClipTable, InspectorError, aligned_probabilities, read_predictions


@dataclass
class InspectorData:
    """Everything the panel shows, joined by clip name (build with :func:`load_inspector_data`)."""
    dataset: Dataset  # names, classes, labels, splits, subtitles (features may be empty)
    table: ClipTable  # the per-clip arrays the filters run on
    priors: Mapping[str, Prior]  # name -> valid prior
    reliability: pd.DataFrame | None  # mer_lib.priors.reliability_table, None without priors
    prior_failures: dict[str, str] = field(default_factory=dict)  # name -> why its latest prior call failed
    clips_dir: Path | None = None  # folder of <name>.mp4 files
    clip_files: dict[str, Path] = field(default_factory=dict)  # name -> clip file, for clips that have one
    notes: dict[str, str] = field(default_factory=dict)  # source -> what is there or missing, in a sentence
    policy: str = DEFAULT_POLICY  # reliability policy of the table's `reliable` column
    min_au_consistency: float = DEFAULT_MIN_AU_CONSISTENCY  # its AU-consistency threshold


def index_dataset(data_root: str | os.PathLike, label_file: str = LABEL_FILE,
                  features: Mapping[str, str] | None = None, subtitle_file: str | None = SUBTITLE_FILE,
                  extra_names: Sequence[str] = (), classes: Sequence[str] | None = None) -> tuple[Dataset, str]:
    """A :class:`~mer_lib.data.Dataset` without features, and a sentence on where its pool came from.

    Labelled clips come in label-file order (as in ``load_dataset``); the unlabelled pool is every
    other name with a feature file for each modality in ``features``, plus ``extra_names`` (clip
    files, priors), sorted.
    """
    with_features, missing = feature_file_names(Path(data_root).expanduser(), features) if features \
        else (None, "no features given")
    note = ("not loaded (the inspector does not need them); the unlabelled pool is "
            + ("the clips with features" if with_features is not None else f"the clips with a video or a "
               f"prior ({missing})"))
    dataset = dataset_index(data_root, label_file=label_file, pool_names=set(extra_names) | (with_features or set()),
                            subtitle_file=subtitle_file, classes=list(classes) if classes else None)
    return replace(dataset, feature_names=dict(features or {})), note


def clips_dataset(data_root: str | os.PathLike, clips_dir: str | os.PathLike, label_file: str = LABEL_FILE,
                  subtitle_file: str | None = SUBTITLE_FILE) -> Dataset:
    """The clips of ``clips_dir`` as a feature-less :class:`~mer_lib.data.Dataset` with their labels
    and subtitles from ``data_root`` (clips missing from the label file are unlabelled).

    For making priors of a folder of clips that has no extracted features, e.g. the offline
    back-end on the real MER2023 samples::

        ds = clips_dataset(SHARED_SAMPLES_DIR, SHARED_SAMPLES_DIR / "clips")
        generate_for_dataset(ds, make_backend("offline"), "priors-offline.jsonl",
                             splits=ds.split_names, clips_dir=SHARED_SAMPLES_DIR / "clips")
    """
    scan = scan_clips(clips_dir)
    scan.warn()
    clips = scan.clips
    if not clips:
        raise InspectorError(f"{clips_dir}: no video files ({', '.join(VIDEO_SUFFIXES)}) here. Fix: pass the "
                             "folder that holds the <name>.mp4 clips.")
    dataset, _ = index_dataset(data_root, label_file, subtitle_file=subtitle_file, extra_names=list(clips))
    return dataset.subset(np.flatnonzero(np.isin(dataset.names, list(clips))))


def load_inspector_data(data_root: str | os.PathLike | None = None, *, label_file: str = LABEL_FILE,
                        features: Mapping[str, str] | None = None, prior_file: str | os.PathLike | None = None,
                        predictions_file: str | os.PathLike | None = None,
                        clips_dir: str | os.PathLike | None = None, dataset: Dataset | None = None,
                        priors: Mapping[str, Prior] | None = None, policy: str = DEFAULT_POLICY,
                        min_au_consistency: float = DEFAULT_MIN_AU_CONSISTENCY) -> InspectorData:
    """Join a dataset's clips with their priors, predictions and clip files.

    Pass ``data_root`` (+ ``label_file``, ``features``) to index a dataset in the MER layout
    without loading features, or an already loaded ``dataset``. ``prior_file``: a JSONL prior
    store (``mer_lib.priors``), or ``priors`` (name -> Prior) already loaded; ``predictions_file``:
    notebook 04's ``predictions.csv``; ``clips_dir``: the folder of ``<name>.mp4`` clips. Any of
    them may be None or missing: the panel then says so and shows the rest. A file that exists but
    is broken is an error.
    """
    clips_dir = Path(clips_dir).expanduser() if clips_dir else None
    if clips_dir is not None and not clips_dir.is_dir():
        raise InspectorError(f"{clips_dir}: clips folder not found. Fix: pass clips_dir= the folder that "
                             "holds <name>.mp4, or leave it empty to inspect without video.")
    scan = scan_clips(clips_dir) if clips_dir is not None else ClipScan(Path(), {})
    clip_files = scan.clips
    all_priors, failures, prior_note = _read_priors(prior_file, priors)
    notes: dict[str, str] = {}
    if dataset is None:
        if data_root is None:
            raise ValueError("load_inspector_data needs data_root= or dataset=.")
        dataset, notes["features"] = index_dataset(data_root, label_file, features,
                                                   extra_names=[*clip_files, *all_priors])
    names = [str(n) for n in dataset.names]
    in_dataset = set(names)
    kept = {n: p for n, p in all_priors.items() if n in in_dataset}
    if len(kept) < len(all_priors):
        prior_note += f"; {len(all_priors) - len(kept)} priors are for clips not in this dataset"

    prior_labels = np.full(len(names), -1, dtype=np.int64)  # (N,) c* as a class index
    reliable = np.zeros(len(names), dtype=bool)
    reliability = None
    if kept:
        reliability = reliability_table(kept, dataset, policy=policy, min_au_consistency=min_au_consistency)
        prior_labels = reliability["prior_label"].to_numpy(dtype=np.int64)
        reliable = reliability["reliable"].to_numpy(dtype=bool)
        off_class = sum(p.emotion not in dataset.classes for p in kept.values())
        if off_class:
            prior_note += f"; {off_class} name an emotion outside the classes {list(dataset.classes)}"
    notes["priors"] = prior_note

    stage1, stage2, notes["predictions"] = _read_predictions(predictions_file, dataset)
    has_video = np.fromiter((n in clip_files for n in names), dtype=bool, count=len(names))
    notes["video"] = (f"{int(has_video.sum())} clips have a video file in {clips_dir}" if clips_dir else
                      "no clips_dir given: no video is shown (the demo data has none)") \
        + (f"; {scan.note()}" if scan.unusable else "")
    table = ClipTable(names=np.asarray(names, dtype=str), classes=tuple(dataset.classes),
                      splits=np.asarray(dataset.splits, dtype=str), labels=np.asarray(dataset.labels),
                      prior_labels=prior_labels, reliable=reliable, has_video=has_video,
                      stage1_probs=stage1, stage2_probs=stage2, predictions_note=notes["predictions"])
    return InspectorData(dataset=dataset, table=table, priors=kept, reliability=reliability,
                         prior_failures=failures, clips_dir=clips_dir,
                         clip_files={n: clip_files[n] for n in names if n in clip_files}, notes=notes,
                         policy=policy, min_au_consistency=min_au_consistency)


def _read_priors(prior_file, priors) -> tuple[dict[str, Prior], dict[str, str], str]:
    """Valid priors, why the others failed (name -> error of the latest call), and a note."""
    if priors is not None:
        if prior_file:
            raise ValueError("load_inspector_data: pass prior_file= or priors=, not both.")
        return dict(priors), {}, f"{len(priors)} priors given"
    if not prior_file:
        return {}, {}, "no prior file given (run 01_prior_generation, then pass prior_file=)"
    path = Path(prior_file).expanduser()
    if not path.exists():
        return {}, {}, f"no prior file at {path} (run 01_prior_generation to write it)"
    valid = load_priors(path)  # emotions are checked against the dataset's classes by the caller
    failures = {name: str(record.get("error") or "failed") for name, record in latest_status(path).items()
                if record.get("status") != "ok" and name not in valid}
    return valid, failures, f"{len(valid)} priors from {path.name}" + (
        f", {len(failures)} clips whose latest call failed" if failures else "")


def _read_predictions(path, dataset: Dataset) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """Stage-1 and stage-2 probabilities (N, C) in dataset order, and a note; None where absent."""
    if path is None:
        return None, None, "no predictions file given (notebook 04 writes <run_dir>/results/predictions.csv)"
    path = Path(path)
    if not path.exists():
        return None, None, f"no predictions at {path} (run 04_prior_tuning to write them)"
    frame = read_predictions(path, dataset.classes)
    stage1 = aligned_probabilities(frame, dataset.names, dataset.classes, "stage1")
    stage2 = aligned_probabilities(frame, dataset.names, dataset.classes, "stage2")
    covered = int((~np.isnan(stage1).any(axis=1)).sum())
    if covered == 0:
        return None, None, f"{path} names none of this dataset's clips (is it another dataset's run?)"
    return stage1, stage2, (f"{covered} clips have predictions in {path.name}"
                            + ("" if stage2 is not None else " (stage 1 only)"))
