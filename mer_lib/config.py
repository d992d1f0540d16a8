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
# Modality order wherever code lists all three (extraction passes, notebook feature parameters, demo
# data). What is stored per modality is keyed by name, so the order is for people, not for files.
MODALITIES = ("audio", "video", "text")

# File names of the MER layout (MERTools): labels and subtitles in a dataset's root folder.
LABEL_FILE = "label-6way.npz"
SUBTITLE_FILE = "transcription-engchi-polish.csv"
# Audio is decoded to this rate everywhere: chinese-hubert-large and every wav2vec2-family model
# expect it, MERTools converts clips with `ffmpeg -ar 16000`, Whisper-style encoders (Qwen2.5-Omni)
# take it, and openSMILE's prosody needs no more.
AUDIO_SAMPLE_RATE = 16_000  # Hz
# What a clip file may be called: <name><suffix>, any case (PyAV reads them all).
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv", ".m4v", ".mpg", ".mpeg", ".wmv", ".ts")

# Where packed feature caches go when the data folder itself is read-only.
USER_CACHE_DIR = Path(os.environ.get("MER_LIB_CACHE", Path.home() / ".cache" / "mer_lib"))

# Real MER2023 samples that tests and demos may use; absent on a user's machine.
SHARED_SAMPLES_DIR = Path(
    os.environ.get("MER_SAMPLES_DIR", PROJ_ROOT.parent / "shared" / "data" / "mer2023-samples")
)
