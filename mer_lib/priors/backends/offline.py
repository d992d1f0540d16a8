"""Offline cues without any LLM: a free baseline, and a way to fill the schema where no model is reachable.

- I_A: prosody from openSMILE's eGeMAPSv02 functionals (Eyben et al. 2016, "The Geneva Minimalistic
  Acoustic Parameter Set") on the clip's audio, decoded with PyAV and resampled to 16 kHz mono,
  put into words with fixed thresholds (:data:`PROSODY_THRESHOLDS`) and kept as numbers too.
- I_V: AUs from an OpenFace 2 CSV (``<openface_dir>/<name>.csv``, Baltrusaitis et al. 2018) when
  the user has one: an AU is reported when its presence column ``AUxx_c`` is 1 in at least
  ``au_presence_rate`` of the successfully tracked frames, with the mean ``AUxx_r`` intensity over
  those frames. Without OpenFace output the AU list is empty.
- I_T: the subtitle as given.
- c* by a documented rule: with AUs, the class whose support set S_c the AUs cover best
  (:func:`~mer_lib.priors.facs.best_matching_emotion`, at least half of S_c, else neutral);
  without AUs, a crude arousal rule on prosody (loud, variable and fast speech -> angry; soft,
  flat and slow -> sad; else neutral). It is a baseline, expected to be weak.
- R: equal shares over the modalities that have evidence (no AUs -> no video share, no subtitle
  -> no text share).
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd

from ...config import AUDIO_SAMPLE_RATE
from ..facs import FACS_NAMES, best_matching_emotion
from ..media import MediaError, decode_audio, file_sha256
from .base import Backend, BackendAnswer, ClipRequest, PermanentError

# eGeMAPS functional -> AudioCues field with its number
EGEMAPS_FIELDS = {
    "F0semitoneFrom27.5Hz_sma3nz_amean": "f0_mean_semitones",
    "F0semitoneFrom27.5Hz_sma3nz_stddevNorm": "f0_variation",
    "loudness_sma3_amean": "loudness_mean",
    "VoicedSegmentsPerSec": "voiced_segments_per_sec",
    "HNRdBACF_sma3nz_amean": "hnr_db",
}
# (lower bound of the middle band, lower bound of the top band, words low/middle/high).
# F0 in semitones above 27.5 Hz: 27 st ~ 130 Hz, 37 st ~ 230 Hz (typical male / female ranges);
# the others are set around the spread of MER2023 clips (loudness in sones, F0 coefficient of
# variation, voiced segments per second).
PROSODY_THRESHOLDS = {
    "f0_mean_semitones": (27.0, 37.0, ("low", "medium", "high")),
    "f0_variation": (0.10, 0.20, ("flat", "moderate", "wide")),
    "loudness_mean": (0.5, 1.1, ("soft", "moderate", "loud")),
    "voiced_segments_per_sec": (2.0, 3.5, ("slow", "moderate", "fast")),
}
HNR_CLEAR_DB, HNR_ROUGH_DB = 8.0, 4.0  # harmonics-to-noise ratio: above clear, below rough/noisy


def band(value: float | None, field: str) -> str:
    if value is None or not np.isfinite(value):
        return "unknown"
    low, high, words = PROSODY_THRESHOLDS[field]
    return words[0] if value < low else words[1] if value < high else words[2]


def arousal(numbers: dict) -> float:
    """A crude arousal score: loudness, pitch variation and rate, each centred on its middle band."""
    score = 0.0
    for field, (low, high, _) in PROSODY_THRESHOLDS.items():
        value = numbers.get(field)
        if field != "f0_mean_semitones" and value is not None and np.isfinite(value):
            score += (value - (low + high) / 2) / (high - low)
    return score


def read_openface_aus(csv_path: Path, presence_rate: float = 0.5, min_confidence: float = 0.8) -> list[dict]:
    """AUs an OpenFace 2 FeatureExtraction CSV shows (see the module docstring)."""
    try:
        frames = pd.read_csv(csv_path, skipinitialspace=True)
    except Exception as exc:
        raise PermanentError(f"{csv_path}: cannot read the OpenFace CSV ({exc}). Fix: pass the CSV "
                             "that OpenFace's FeatureExtraction wrote for this clip.") from exc
    frames.columns = [c.strip() for c in frames.columns]
    present_cols = [c for c in frames.columns if c.startswith("AU") and c.endswith("_c")]
    if not present_cols:
        raise PermanentError(f"{csv_path}: no AUxx_c columns; not an OpenFace 2 AU CSV. Fix: run "
                             "FeatureExtraction with -aus.")
    if "success" in frames:
        frames = frames[frames["success"] == 1]
    if "confidence" in frames:
        frames = frames[frames["confidence"] >= min_confidence]
    aus = []
    if frames.empty:
        return aus
    for col in present_cols:
        number = int(col[2:-2])
        if number not in FACS_NAMES:
            continue
        present = frames[col] >= 0.5
        rate = float(present.mean())
        if rate < presence_rate:
            continue
        intensity_col = f"AU{col[2:-2]}_r"
        intensity = None
        if intensity_col in frames:
            intensity = float(np.clip(frames.loc[present, intensity_col].mean(), 0.0, 5.0))
        aus.append({"au": number, "intensity": None if intensity is None else round(intensity, 2),
                    "evidence": f"present in {rate:.0%} of tracked frames (OpenFace {col})"})
    return aus


class OfflineCuesBackend(Backend):
    """Prosody (openSMILE eGeMAPS) + OpenFace AUs + subtitle, and a rule for c* (module docstring)."""
    kind = "offline"
    needs_media = True

    def __init__(self, *, openface_dir: str | Path | None = None, au_presence_rate: float = 0.5,
                 arousal_threshold: float = 1.5, model: str | None = None):
        self.openface_dir = Path(openface_dir) if openface_dir else None  # <name>.csv per clip
        self.au_presence_rate = au_presence_rate  # share of frames an AU must be present in
        self.arousal_threshold = arousal_threshold  # |arousal| above it -> angry / sad without AUs
        self.model = model or ("offline-egemaps+openface" if self.openface_dir else "offline-egemaps")
        self._local = threading.local()  # one openSMILE extractor per thread

    def settings(self) -> dict:
        return {"au_presence_rate": self.au_presence_rate, "arousal_threshold": self.arousal_threshold,
                "thresholds": PROSODY_THRESHOLDS, "hnr": (HNR_CLEAR_DB, HNR_ROUGH_DB),
                "openface": self.openface_dir is not None}

    def fingerprint(self, request: ClipRequest) -> str | None:
        csv = self._openface_csv(request.name)
        return file_sha256(csv) if csv is not None else None

    def _openface_csv(self, name: str) -> Path | None:
        if self.openface_dir is None:
            return None
        path = self.openface_dir / f"{name}.csv"
        return path if path.is_file() else None

    def _smile(self):
        if getattr(self._local, "smile", None) is None:
            import opensmile  # optional dependency (the "media" extra)
            self._local.smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                                feature_level=opensmile.FeatureLevel.Functionals)
        return self._local.smile

    def prosody(self, clip_path: Path) -> dict:
        """eGeMAPS numbers of a clip's audio, keyed by AudioCues field (empty without audio)."""
        try:
            signal = decode_audio(clip_path, AUDIO_SAMPLE_RATE)
        except MediaError as exc:
            raise PermanentError(str(exc)) from None
        if signal is None or len(signal) < AUDIO_SAMPLE_RATE // 10:
            return {}
        functionals = self._smile().process_signal(signal, AUDIO_SAMPLE_RATE)
        return {field: float(functionals[column].iloc[0]) for column, field in EGEMAPS_FIELDS.items()}

    def generate(self, request: ClipRequest) -> BackendAnswer:
        if request.clip_path is None:
            raise PermanentError(f"no clip file for '{request.name}'")
        numbers = self.prosody(request.clip_path)
        csv = self._openface_csv(request.name)
        aus = read_openface_aus(csv, self.au_presence_rate) if csv is not None else []

        hnr = numbers.get("hnr_db")
        quality = ("unknown" if hnr is None else "clear" if hnr >= HNR_CLEAR_DB
                   else "rough and noisy" if hnr < HNR_ROUGH_DB else "ordinary")
        audio = {"pitch_level": band(numbers.get("f0_mean_semitones"), "f0_mean_semitones"),
                 "pitch_variation": band(numbers.get("f0_variation"), "f0_variation"),
                 "loudness": band(numbers.get("loudness_mean"), "loudness_mean"),
                 "speech_rate": band(numbers.get("voiced_segments_per_sec"), "voiced_segments_per_sec"),
                 "voice_quality": quality,
                 "description": "" if numbers else "The clip has no usable audio track.",
                 **{k: (v if np.isfinite(v) else None) for k, v in numbers.items()}}

        classes = request.classes
        if aus:
            emotion = best_matching_emotion([a["au"] for a in aus], classes)
            rule = "the AUs cover its support set best" if emotion != "neutral" else \
                "no class's AU support set is half covered"
        else:
            score = arousal(numbers)
            emotion = ("angry" if score > self.arousal_threshold else
                       "sad" if score < -self.arousal_threshold else "neutral")
            rule = f"no AUs; prosodic arousal score {score:+.2f}"
        if emotion not in classes:
            emotion = "neutral" if "neutral" in classes else classes[0]
            rule += f"; fell back to '{emotion}'"

        subtitle = request.subtitle_english.strip() or request.subtitle_chinese.strip()
        shares = {"w_visual": 1.0 if aus else 0.0, "w_audio": 1.0 if numbers else 0.0,
                  "w_text": 1.0 if subtitle else 0.0}
        if not any(shares.values()):
            shares["w_audio"] = 1.0
        answer = {
            "visual_aus": aus,
            "visual_description": "AUs from OpenFace." if aus else "No facial action unit data.",
            "audio": audio,
            "text_semantics": f'The subtitle says "{subtitle}".' if subtitle else "There is no subtitle.",
            **shares,
            "emotion": emotion,
            "rationale": f"Rule-based: {emotion} because {rule}.",
        }
        return BackendAnswer(answer=answer)
