"""Paths and constants shared by the whole workspace (one place, as in cookiecutter-data-science)."""
from __future__ import annotations

import os
from pathlib import Path

PROJ_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"
FIGURES_DIR = PROJ_ROOT / "figures"
DATA_DIR = PROJ_ROOT / "data"
RUNS_DIR = PROJ_ROOT / "runs"  # executed notebooks and results; git-ignored
PROFILES_DIR = Path(__file__).resolve().parent / "profiles"

# Class order of the MER toolkit (MERTools, emo2idx_mer); used whenever a label set is MER's.
MER_CLASSES = ("neutral", "angry", "happy", "sad", "worried", "surprise")
MODALITIES = ("audio", "video", "text")

# Where packed feature caches go when the data folder itself is read-only.
USER_CACHE_DIR = Path(os.environ.get("MER_LIB_CACHE", Path.home() / ".cache" / "mer_lib"))

# Real MER2023 samples that tests and demos may use; absent on a user's machine.
SHARED_SAMPLES_DIR = Path(
    os.environ.get("MER_SAMPLES_DIR", PROJ_ROOT.parent / "shared" / "data" / "mer2023-samples")
)
