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


def _user_cache_dir() -> Path | None:
    if os.environ.get("MER_LIB_CACHE"):
        return Path(os.environ["MER_LIB_CACHE"]).expanduser()
    try:
        return Path.home() / ".cache" / "mer_lib"
    except RuntimeError:  # no HOME and no passwd entry (some containers); io.cache_dir says what to do
        return None


# Where caches (packed features, prior embeddings) go when the folder beside the data is read-only;
# set MER_LIB_CACHE to choose it. None when there is no home folder either.
USER_CACHE_DIR = _user_cache_dir()

# Real MER2023 samples that tests and demos may use; absent on a user's machine.
SHARED_SAMPLES_DIR = Path(
    os.environ.get("MER_SAMPLES_DIR", PROJ_ROOT.parent / "shared" / "data" / "mer2023-samples")
)


def resolve_path(path: str | os.PathLike) -> Path:
    """``~`` expanded; absolute paths stay; relative ones are taken from the project root (not the
    current or the notebook's folder), so a config or a notebook parameter means the same file
    wherever it is run from."""
    p = Path(os.path.expanduser(os.fspath(path)))
    return p if p.is_absolute() else (PROJ_ROOT / p).resolve()
