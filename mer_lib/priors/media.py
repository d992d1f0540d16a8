"""Clip files: decode a clip's audio track with PyAV (no system ffmpeg needed) and package media
for model APIs. (Which file is a sample's clip: :func:`mer_lib.data.scan_clips`.)"""
from __future__ import annotations

import hashlib
import io
import os
import wave
from pathlib import Path

import numpy as np

from ..config import AUDIO_SAMPLE_RATE

# one per suffix of mer_lib.config.VIDEO_SUFFIXES
MIME_TYPES = {".mp4": "video/mp4", ".avi": "video/x-msvideo", ".mkv": "video/x-matroska",
              ".mov": "video/quicktime", ".webm": "video/webm", ".flv": "video/x-flv", ".m4v": "video/mp4",
              ".mpg": "video/mpeg", ".mpeg": "video/mpeg", ".wmv": "video/x-ms-wmv", ".ts": "video/mp2t"}


class MediaError(ValueError):
    """A clip that cannot be read; the message names the file."""


def mime_type(path: Path) -> str:
    return MIME_TYPES.get(path.suffix.lower(), "video/mp4")


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def decode_audio(path: str | os.PathLike, sample_rate: int = AUDIO_SAMPLE_RATE) -> np.ndarray | None:
    """The clip's first audio track as float32 mono at ``sample_rate`` Hz, shape (T,);
    None when the clip has no audio track. (The decoder of :mod:`mer_lib.extract.decode`.)"""
    from ..extract.decode import ClipError, decode_audio_track  # PyAV: the optional "media" extra

    try:
        return decode_audio_track(path, sample_rate)
    except ClipError as exc:
        raise MediaError(f"{exc} (cannot decode the audio track; check the file plays, re-encode it "
                         "to H.264/AAC mp4 if it is damaged)") from exc


def wav_bytes(signal: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM mono WAV of a float signal in [-1, 1]."""
    pcm = (np.clip(signal, -1.0, 1.0) * 32767.0).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buffer.getvalue()
