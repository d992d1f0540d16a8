"""The selected clip's media: a few frames for a strip, the 16 kHz waveform, decoded on demand.

Decoding goes through :mod:`mer_lib.extract.decode` (PyAV), the workspace's one decoder, behind
:func:`read_frames` and :func:`read_audio` so a change of decoder is one line each. Only the clip
on screen is decoded, and the last few are kept (:func:`load_media`'s cache, keyed by path, size
and modification time, so an edited file is decoded again).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..config import AUDIO_SAMPLE_RATE  # what read_audio returns

STRIP_FRAMES = 6  # frames in the strip, spread evenly over the clip
STRIP_SAMPLING_FPS = 4.0  # frames decoded per second to choose the strip from
FRAME_MAX_SIDE = 320  # pixels: frames are scaled down while decoding (1080p clips stay small)
MAX_SECONDS = 60.0  # decode at most this much of a clip (MER clips are 1-30 s)
CACHED_CLIPS = 8  # decoded clips kept in memory (a clip is ~1-2 MB of frames and audio)


def read_frames(path: Path, fps: float, max_seconds: float, max_side: int):
    """Frames of a clip as ``VideoFrames(frames, times, duration)``; raises ``ClipError``."""
    from ..extract.decode import read_video_frames
    return read_video_frames(path, fps=fps, max_seconds=max_seconds, max_side=max_side)


def read_audio(path: Path, max_seconds: float) -> np.ndarray:
    """(S,) float32 mono samples at 16 kHz; raises ``ClipError``."""
    from ..extract.decode import read_audio as decode_audio
    return decode_audio(path, max_seconds=max_seconds)


@dataclass
class ClipMedia:
    path: Path
    frames: list[np.ndarray] = field(default_factory=list)  # up to STRIP_FRAMES x (H, W, 3) uint8 RGB
    frame_times: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (F,) seconds
    audio: np.ndarray | None = None  # (S,) float32 at AUDIO_SAMPLE_RATE, None when it could not be read
    duration: float = 0.0  # seconds (video's, else audio's)
    problems: list[str] = field(default_factory=list)  # what could not be decoded, one sentence each

    @property
    def sample_rate(self) -> int:
        return AUDIO_SAMPLE_RATE


def evenly_spaced(count: int, available: int) -> np.ndarray:
    """Indices of ``count`` items spread over ``available`` (all of them when there are fewer)."""
    if available <= count:
        return np.arange(available)
    return np.round(np.linspace(0, available - 1, count)).astype(int)


def decode_media(path: Path, strip_frames: int = STRIP_FRAMES) -> ClipMedia:
    """Decode a clip's strip frames and waveform; a track that fails becomes a problem, not an error."""
    media = ClipMedia(path=path)
    try:
        from ..extract.decode import ClipError
    except ImportError as exc:  # PyAV is in the "media" extra
        media.problems.append(f"cannot decode {path.name}: {exc}. Fix: pip install 'mer-lib[media]'")
        return media
    try:
        video = read_frames(path, STRIP_SAMPLING_FPS, MAX_SECONDS, FRAME_MAX_SIDE)
        keep = evenly_spaced(strip_frames, len(video.frames))
        media.frames = [video.frames[i] for i in keep]
        media.frame_times = np.asarray(video.times)[keep]
        media.duration = float(video.duration)
    except ClipError as exc:
        media.problems.append(f"video: {exc}")
    try:
        media.audio = read_audio(path, MAX_SECONDS)
        media.duration = media.duration or len(media.audio) / AUDIO_SAMPLE_RATE
    except ClipError as exc:
        media.problems.append(f"audio: {exc}")
    return media


@lru_cache(maxsize=CACHED_CLIPS)
def _cached(path: str, size: int, mtime_ns: int) -> ClipMedia:
    return decode_media(Path(path))


def load_media(path: str | os.PathLike) -> ClipMedia:
    """The decoded media of one clip, from the cache when the file has not changed."""
    stat = os.stat(path)
    return _cached(str(path), stat.st_size, stat.st_mtime_ns)


def waveform_envelope(audio: np.ndarray, bins: int = 800) -> tuple[np.ndarray, np.ndarray]:
    """(bins,) min and max of ``audio`` per bin: a waveform that draws in constant time."""
    if len(audio) == 0:
        return np.zeros(0), np.zeros(0)
    bins = min(bins, len(audio))
    usable = len(audio) // bins * bins
    blocks = audio[:usable].reshape(bins, -1)  # (bins, samples per bin)
    return blocks.min(axis=1), blocks.max(axis=1)
