"""The real MER2023 samples (``../shared/data/mer2023-samples``): absent on a user's machine, so the
tests that need them skip."""
from __future__ import annotations

from pathlib import Path

from mer_lib.config import LABEL_FILE, SHARED_SAMPLES_DIR, SUBTITLE_FILE

SAMPLE_CLIPS = SHARED_SAMPLES_DIR / "clips"
SAMPLE_LABELS = SHARED_SAMPLES_DIR / LABEL_FILE
SAMPLE_SUBTITLES = SHARED_SAMPLES_DIR / SUBTITLE_FILE


def require_samples() -> Path:
    """The real MER2023 samples folder with its clips and subtitles, or skip the test."""
    import pytest  # here, not at the top: the extraction benchmark imports this module too

    if not (SAMPLE_CLIPS.is_dir() and SAMPLE_SUBTITLES.exists()):
        pytest.skip(f"real MER2023 sample clips not found at {SHARED_SAMPLES_DIR}")
    return SHARED_SAMPLES_DIR
