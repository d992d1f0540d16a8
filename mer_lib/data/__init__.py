"""Data layer: the MER toolkit's on-disk layout in, a :class:`Dataset` out; the clip files of a
folder; plus the demo data."""
from .clips import ClipScan, scan_clips
from .dataset import (UNLABELLED, Dataset, dataset_index, feature_file_names, load_dataset, read_label_file,
                      read_subtitles)
from .demo import make_demo_dataset
from .errors import DataError

__all__ = ["UNLABELLED", "ClipScan", "DataError", "Dataset", "dataset_index", "feature_file_names", "load_dataset", "make_demo_dataset",
           "read_label_file", "read_subtitles", "scan_clips"]
