"""Clips written with PyAV for the tests (and the extraction benchmark), with planted signal.

Frame i of a video is a flat grey of level ``grey_level(i)`` (so a test can tell which frames were
sampled) or, with ``picture="noise"``, random pixels (a realistic load for a decoder). The audio
is a pure tone (a test can find its frequency after resampling), a voiced-like sound (180 Hz and
its harmonics under a slow envelope, for pitch trackers) or noise.
"""
from __future__ import annotations

import tempfile
from fractions import Fraction
from functools import cache
from pathlib import Path

import numpy as np

from mer_lib.config import AUDIO_SAMPLE_RATE


def grey_level(i: int) -> int:
    """Grey of frame i: distinct for the first 36 frames (3.6 s at the default 10 fps)."""
    return 20 + (6 * i) % 216


def write_mp4(path: Path, *, seconds: float = 2.0, fps: int = 10, size=(64, 48), video: bool = True,
              audio: bool = True, frames: int | None = None, picture: str = "grey", codec: str = "mpeg4",
              bit_rate: int | None = 2_000_000, sound: str = "tone", tone_hz: float = 440.0,
              sample_rate: int = 44_100, layout: str = "stereo", seed: int = 0) -> Path:
    """A clip with a ``codec`` video track (``frames=0``: a track with no frame) and an AAC track;
    the container follows the suffix (mp4, mkv, ...). ``bit_rate=None``: the encoder's default."""
    import av

    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as out:
        vstream = astream = None
        if video:
            vstream = out.add_stream(codec, rate=fps)
            vstream.width, vstream.height = size
            vstream.pix_fmt = "yuv420p"
            if bit_rate is not None:
                vstream.bit_rate = bit_rate  # the default is plenty for flat frames: grey levels survive
        if audio:
            astream = out.add_stream("aac", rate=sample_rate)
            astream.layout = layout
        if vstream is not None:
            for i in range(round(seconds * fps) if frames is None else frames):
                img = (np.full((size[1], size[0], 3), grey_level(i), dtype=np.uint8) if picture == "grey"
                       else rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8))
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, fps)
                out.mux(vstream.encode(frame))
            out.mux(vstream.encode(None))
        if astream is not None:
            wave = _sound(sound, seconds, sample_rate, tone_hz, rng)
            channels = np.stack([wave] * astream.layout.nb_channels)  # (C, S)
            for start in range(0, channels.shape[1], 1024):
                chunk = np.ascontiguousarray(channels[:, start:start + 1024])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
                frame.sample_rate, frame.pts = sample_rate, start
                out.mux(astream.encode(frame))
            out.mux(astream.encode(None))
    return path


def _sound(kind: str, seconds: float, sample_rate: int, tone_hz: float, rng) -> np.ndarray:
    """(S,) float32 in [-1, 1]."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    if kind == "tone":
        wave = 0.3 * np.sin(2 * np.pi * tone_hz * t)
    elif kind == "voice":
        wave = sum(np.sin(2 * np.pi * 180 * k * t) / k for k in range(1, 6))
        wave = 0.2 * wave * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    elif kind == "noise":
        wave = 0.1 * rng.normal(size=t.size)
    else:
        raise ValueError(f"sound={kind!r}: 'tone', 'voice' or 'noise'")
    return wave.astype(np.float32)


@cache
def _voiced_clip_bytes(audio: bool, seconds: float) -> bytes:
    """A small clip with 16 kHz mono voiced-like audio, written once per test session."""
    with tempfile.TemporaryDirectory() as folder:
        path = write_mp4(Path(folder) / "clip.mp4", seconds=seconds, audio=audio, sound="voice",
                         sample_rate=AUDIO_SAMPLE_RATE, layout="mono")
        return path.read_bytes()


def write_clips(folder: Path, names, audio: bool = True, seconds: float = 0.4) -> Path:
    """``<folder>/<name>.mp4`` for each name: tiny real clips (mpeg4 video, AAC voiced-like audio)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.mp4").write_bytes(_voiced_clip_bytes(audio, seconds))
    return folder


def write_broken_clips(folder: Path) -> dict[str, str]:
    """Clips that must fail, with the modalities they fail in: name -> 'video', 'audio' or 'both'."""
    folder.mkdir(parents=True, exist_ok=True)
    write_mp4(folder / "silent.mp4", audio=False)  # no audio track
    write_mp4(folder / "voice_only.mp4", video=False)  # no video track
    (folder / "empty.mp4").write_bytes(b"")  # zero bytes
    (folder / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(5000))  # not a container
    good = write_mp4(folder / "truncated.mp4").read_bytes()
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
