"""Data layer: the MER toolkit's on-disk layout in, a :class:`Dataset` out; the clip files of a
folder; plus the demo data."""
from .clips import ClipScan, scan_clips
from .dataset import (EXTRA, UNLABELLED, Dataset, dataset_index, feature_file_names, load_dataset, read_label_file,
                      read_labels, read_subtitles, warn_placeholder_splits)
from .demo import make_demo_dataset
from .errors import DataError

__all__ = ["EXTRA", "UNLABELLED", "ClipScan", "DataError", "Dataset", "dataset_index", "feature_file_names",
           "load_dataset", "make_demo_dataset", "read_label_file", "read_labels", "read_subtitles", "scan_clips",
           "warn_placeholder_splits"]
