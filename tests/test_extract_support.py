"""Helpers for the extraction tests: clips written with PyAV, tiny random encoders.

Generated clips carry planted signal: frame i of a video is a flat grey of level ``grey_level(i)``
(so a test can tell which frames were sampled), and the audio is a pure tone (so a test can find
its frequency after resampling).
"""
from __future__ import annotations

import atexit
import functools
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from mer_lib.config import SHARED_SAMPLES_DIR

SAMPLE_CLIPS = SHARED_SAMPLES_DIR / "clips"
SAMPLE_SUBTITLES = SHARED_SAMPLES_DIR / "transcription-engchi-polish.csv"
SUBTITLE_TEXTS = ["今天天气真好", "我不想去了", "你到底在说什么", "Hello there", "why would you do that?",
                  "太好了！我们赢了", "别走，求你了", ""]


def grey_level(i: int) -> int:
    """Grey of frame i: distinct for the first 36 frames (3.6 s at the default 10 fps)."""
    return 20 + (6 * i) % 216


def write_clip(path: Path, *, seconds: float = 2.0, fps: int = 10, size=(64, 48), video: bool = True,
               audio: bool = True, tone_hz: float = 440.0, sample_rate: int = 44_100,
               frames: int | None = None) -> Path:
    """An mp4 (MPEG-4 part 2 video, AAC stereo audio); ``frames=0`` writes a video track with no frame."""
    import av

    with av.open(str(path), "w") as out:
        vstream = astream = None
        if video:
            vstream = out.add_stream("mpeg4", rate=fps)
            vstream.width, vstream.height = size
            vstream.pix_fmt = "yuv420p"
            vstream.bit_rate = 2_000_000  # plenty for flat frames, so the grey levels survive
        if audio:
            astream = out.add_stream("aac", rate=sample_rate)
            astream.layout = "stereo"
        if vstream is not None:
            n = round(seconds * fps) if frames is None else frames
            for i in range(n):
                img = np.full((size[1], size[0], 3), grey_level(i), dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, fps)
                out.mux(vstream.encode(frame))
            out.mux(vstream.encode(None))
        if astream is not None:
            t = np.arange(int(seconds * sample_rate)) / sample_rate
            wave = (0.3 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
            stereo = np.stack([wave, wave])  # (2, S)
            for start in range(0, stereo.shape[1], 1024):
                chunk = np.ascontiguousarray(stereo[:, start:start + 1024])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = sample_rate, start
                out.mux(astream.encode(frame))
            out.mux(astream.encode(None))
    return path


def write_broken_clips(folder: Path) -> dict[str, str]:
    """Clips that must fail, with the modalities they fail in: name -> 'video', 'audio' or 'both'."""
    folder.mkdir(parents=True, exist_ok=True)
    write_clip(folder / "silent.mp4", audio=False)  # no audio track
    write_clip(folder / "voice_only.mp4", video=False)  # no video track
    (folder / "empty.mp4").write_bytes(b"")  # zero bytes
    (folder / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(5000))  # not a container
    good = write_clip(folder / "truncated.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(good[: len(good) // 2])  # cut mid-download
    write_zero_length(folder / "zero_length.avi")  # tracks declared, not one frame or sample in them
    return {"silent": "audio", "voice_only": "video", "empty": "both", "garbage": "both", "truncated": "both",
            "zero_length": "both"}


def write_zero_length(path: Path) -> Path:
    """An AVI whose video and audio tracks exist but hold nothing (MP4 would drop empty tracks)."""
    import av

    with av.open(str(path), "w") as out:
        vstream = out.add_stream("mpeg4", rate=10)
        vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        out.add_stream("aac", rate=44_100)
        out.start_encoding()  # writes the header; without a packet nothing else is written
    return path


@functools.cache
def tiny_models() -> dict[str, Path]:
    """Tiny random CLIP, HuBERT and BLOOM saved with save_pretrained (built once per test session,
    removed at exit)."""
    from mer_lib.extract.random_models import make_bloom, make_clip, make_hubert

    folder = tempfile.TemporaryDirectory(prefix="mer-extract-models-")
    atexit.register(folder.cleanup)
    root = Path(folder.name)
    texts = SUBTITLE_TEXTS * 20
    if SAMPLE_SUBTITLES.exists():
        import pandas as pd
        texts += pd.read_csv(SAMPLE_SUBTITLES, keep_default_na=False)["chinese"].tolist()[:300]
    return {"video": make_clip(root / "clip-vit-tiny"), "audio": make_hubert(root / "chinese-hubert-tiny"),
            "text": make_bloom(root / "bloom-tiny", texts)}


def require_samples() -> Path:
    """The real MER2023 samples folder, or skip the test (as on a user's machine)."""
    if not (SAMPLE_CLIPS.is_dir() and SAMPLE_SUBTITLES.exists()):
        pytest.skip(f"real MER2023 sample clips not found at {SHARED_SAMPLES_DIR}")
    return SHARED_SAMPLES_DIR


def write_labels(path: Path, splits: dict[str, dict[str, str]]) -> Path:
    """A MER label file (split -> {name: {'emo', 'val'}})."""
    np.savez(path, **{k: np.array({n: {"emo": e, "val": 0.0} for n, e in v.items()}, dtype=object)
                      for k, v in splits.items()})
    return path
