"""Decode clips with PyAV (FFmpeg's libraries inside the wheel, no system ffmpeg needed).

Video: frames sampled at a set rate (every frame when ``fps`` is None), as RGB uint8 arrays.
Audio: the first audio track resampled to 16 kHz mono float32, the input every speech encoder of
the MER toolkit expects (it converts clips with ``ffmpeg -ac 1 -ar 16000`` first; we resample in
memory instead of writing .wav files).

Anything wrong with a clip (no such track, zero length, a corrupt or truncated container) raises a
:class:`ClipError` that names the file and the fix, so the pipeline reports the clip and goes on.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from ..config import AUDIO_SAMPLE_RATE  # 16 kHz: what chinese-hubert-large and its kin expect

MIN_AUDIO_SAMPLES = 400  # 25 ms: shorter than one receptive field of the wav2vec2/HuBERT conv stack


class ClipError(Exception):
    """A clip that cannot be used for one modality. The message names the file and the fix."""

    def __init__(self, path: str | Path, message: str):
        self.path = Path(path)
        super().__init__(f"{self.path}: {message}")


@dataclass
class VideoFrames:
    frames: list[np.ndarray]  # T x (H, W, 3) uint8 RGB
    times: np.ndarray  # (T,) float seconds from the clip start
    duration: float  # seconds of video decoded


def read_video_frames(path: str | Path, fps: float | None = 2.0, max_seconds: float | None = None,
                      max_side: int | None = 1280) -> VideoFrames:
    """Frames of the first video track sampled at ``fps`` (every frame when None).

    A frame is kept when its timestamp reaches the next sampling instant k/fps, so a 25 fps clip
    read at 2 fps keeps frames near 0, 0.5, 1.0, ... s. Frames whose longer side exceeds
    ``max_side`` are scaled down while decoding (swscale), which bounds memory on 1080p clips.
    """
    path = Path(path)
    container = _open(path)
    with container:
        if not container.streams.video:
            raise ClipError(path, "the clip has no video track. Fix: drop it from the video extraction "
                                  "(its audio and text can still be extracted), or re-encode it with video.")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads inside libavcodec
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        frames, times, next_time, last_time, start = [], [], 0.0, 0.0, None
        try:
            for index, frame in enumerate(container.decode(stream)):
                t = float(frame.time) if frame.time is not None else index / rate
                start = t if start is None else start
                t -= start  # streams may start at a non-zero timestamp (edit lists)
                if max_seconds is not None and t >= max_seconds:
                    break
                last_time = t
                if fps is not None and t + 1e-6 < next_time:
                    continue
                if fps is not None:  # the next instant after t (a gap in the stream skips instants)
                    next_time = (np.floor(t * fps + 1e-6) + 1) / fps
                frames.append(_to_rgb(frame, max_side))
                times.append(t)
        except av.error.FFmpegError as exc:
            raise ClipError(path, f"the video track is corrupt after {len(frames)} sampled frame(s) "
                                  f"({exc}). Fix: re-encode or re-download the clip.") from exc
    if not frames:
        raise ClipError(path, "the video track holds no decodable frame (zero-length clip). "
                              "Fix: re-encode or re-download the clip, or drop it.")
    return VideoFrames(frames=frames, times=np.asarray(times), duration=last_time + 1.0 / rate)


def decode_audio_track(path: str | Path, sample_rate: int = AUDIO_SAMPLE_RATE,
                       max_seconds: float | None = None) -> np.ndarray | None:
    """The first audio track as mono float32 samples at ``sample_rate``, shape (S,); None when the
    clip has no audio track. A corrupt container or track raises :class:`ClipError`."""
    path = Path(path)
    container = _open(path)
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        limit = None if max_seconds is None else round(max_seconds * sample_rate)
        chunks, n = [], 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    n += chunks[-1].size
                if limit is not None and n >= limit:
                    break
            for out in resampler.resample(None):  # flush what the resampler still holds
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise ClipError(path, f"the audio track is corrupt ({exc}). Fix: re-encode or re-download "
                                  "the clip.") from exc
    audio = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    return audio if limit is None else audio[:limit]


def read_audio(path: str | Path, max_seconds: float | None = None) -> np.ndarray:
    """The first audio track as 16 kHz mono float32 samples, shape (S,), long enough for a speech
    encoder; a clip without one raises :class:`ClipError`."""
    audio = decode_audio_track(path, AUDIO_SAMPLE_RATE, max_seconds)
    if audio is None:
        raise ClipError(path, "the clip has no audio track. Fix: drop it from the audio extraction "
                              "(its video and text can still be extracted), or add the sound track.")
    if audio.size < MIN_AUDIO_SAMPLES:
        held_ms = audio.size * 1000 / AUDIO_SAMPLE_RATE
        needed_ms = MIN_AUDIO_SAMPLES * 1000 // AUDIO_SAMPLE_RATE
        raise ClipError(path, f"the audio track holds {held_ms:.0f} ms of sound; at least {needed_ms} ms are "
                              "needed. Fix: re-encode the clip with its sound, or drop it from the audio "
                              "extraction.")
    return audio


def _open(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise ClipError(path, "file not found. Fix: check the clips folder.")
    if path.stat().st_size == 0:
        raise ClipError(path, "the file is empty (0 bytes). Fix: re-download or re-encode the clip.")
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise ClipError(path, f"not a readable media container ({exc}). Fix: re-download or "
                              "re-encode the clip (a truncated download looks like this).") from exc


def _to_rgb(frame: av.VideoFrame, max_side: int | None) -> np.ndarray:
    w, h = frame.width, frame.height
    if max_side is not None and max(w, h) > max_side:
        scale = max_side / max(w, h)
        w, h = max(2, round(w * scale)), max(2, round(h * scale))
        return frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
    return frame.to_ndarray(format="rgb24")
