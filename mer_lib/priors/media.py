"""Clip files: find a sample's clip, decode its audio track with PyAV (no system ffmpeg needed),
and package media for model APIs."""
from __future__ import annotations

import hashlib
import io
import os
import wave
from pathlib import Path

import numpy as np

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv")
MIME_TYPES = {".mp4": "video/mp4", ".avi": "video/x-msvideo", ".mkv": "video/x-matroska",
              ".mov": "video/quicktime", ".webm": "video/webm", ".flv": "video/x-flv"}


class MediaError(ValueError):
    """A clip that cannot be read; the message names the file."""


def find_clip(clips_dir: str | os.PathLike | None, name: str) -> Path | None:
    """``<clips_dir>/<name>.<video suffix>`` if it exists (MER names clips after the sample)."""
    if clips_dir is None:
        return None
    for suffix in VIDEO_SUFFIXES:
        path = Path(clips_dir) / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def mime_type(path: Path) -> str:
    return MIME_TYPES.get(path.suffix.lower(), "video/mp4")


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def decode_audio(path: str | os.PathLike, sample_rate: int = 16000) -> np.ndarray | None:
    """The clip's first audio track as float32 mono at ``sample_rate`` Hz, shape (T,);
    None when the clip has no audio track."""
    import av  # optional dependency (the "media" extra)

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return None
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            chunks = []
            for frame in container.decode(audio=0):
                chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))  # flush
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: cannot decode the audio track ({exc}). Fix: check the file plays; "
                         "re-encode it (e.g. to H.264/AAC mp4) if it is damaged.") from exc
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


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
