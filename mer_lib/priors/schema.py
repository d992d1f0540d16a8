"""The reasoning prior of one clip, validated (the paper's section 3.1: I_V, I_A, I_T, R and c*).

Two views of the same record:
- :func:`answer_json_schema` is what a model is asked to fill: only required, simple fields
  (strings, integers, numbers, lists of objects) and the three contributions as three explicit
  numbers, because structured-output APIs (Gemini's response schema, vLLM's guided decoding)
  handle maps and optional fields badly.
- :class:`Prior` is what the store keeps: the answer plus the sample name, optional measured
  numbers (eGeMAPS functionals from the offline back-end) and provenance (model, prompt version,
  timing, tokens).

Invalid AU numbers, emotions outside the dataset's classes and contributions that are not
numbers are rejected with a reason (:class:`MalformedAnswer` carries it to the store).
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .facs import FACS_NAMES, parse_au

# Contributions must be real numbers: a string "0.5" or a NaN is a malformed answer, not a weight.
Contribution = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0.0)]
Measurement = Annotated[float | None, Field(allow_inf_nan=False)]

# Spellings models use for MER's classes; anything else must be one of the dataset's classes.
EMOTION_SYNONYMS = {
    "anger": "angry", "angered": "angry", "happiness": "happy", "joy": "happy", "sadness": "sad",
    "surprised": "surprise", "worry": "worried", "anxious": "worried", "anxiety": "worried",
    "calm": "neutral", "neutrality": "neutral",
}


class MalformedAnswer(ValueError):
    """A model's answer that is not valid JSON or not a valid prior; the message says why."""


class ActionUnit(BaseModel):
    """One FACS action unit the model saw, with an intensity (0-5, OpenFace's AU_r scale; FACS
    letters A-E map to 1-5) and/or the visual evidence in words."""
    model_config = ConfigDict(extra="forbid")

    au: int  # FACS number, one of the 44 (1, 2, 4-39, 41-46); "AU12" and FACS names are accepted
    intensity: Annotated[float | None, Field(ge=0.0, le=5.0, allow_inf_nan=False)] = None
    evidence: str = ""

    @field_validator("au", mode="before")
    @classmethod
    def _valid_au(cls, value: Any) -> int:
        return parse_au(value)

    @model_validator(mode="after")
    def _has_support(self) -> ActionUnit:
        if self.intensity is None and not self.evidence.strip():
            raise ValueError(f"AU{self.au} has neither an intensity nor evidence text")
        return self

    @property
    def name(self) -> str:
        return FACS_NAMES[self.au]


class AudioCues(BaseModel):
    """Prosody of the clip in words (what a model hears), plus eGeMAPS numbers where measured."""
    model_config = ConfigDict(extra="forbid")

    pitch_level: str  # e.g. "high", "low", "medium"
    pitch_variation: str  # e.g. "wide", "flat", "rising at the end"
    loudness: str  # e.g. "loud", "soft"
    speech_rate: str  # e.g. "fast", "slow"
    voice_quality: str  # e.g. "tense", "breathy", "trembling", "clear"
    description: str = ""  # anything else about the voice (sighs, laughter, crying)
    # measured numbers (offline back-end; eGeMAPSv02 functionals, Eyben et al. 2016)
    f0_mean_semitones: Measurement = None  # F0semitoneFrom27.5Hz_sma3nz_amean
    f0_variation: Measurement = None  # F0semitoneFrom27.5Hz_sma3nz_stddevNorm (coefficient of variation)
    loudness_mean: Measurement = None  # loudness_sma3_amean (sones, auditory-weighted)
    voiced_segments_per_sec: Measurement = None  # VoicedSegmentsPerSec (a speech-rate proxy)
    hnr_db: Measurement = None  # HNRdBACF_sma3nz_amean (harmonics-to-noise ratio)


class Prior(BaseModel):
    """One clip's reasoning prior: I_V (``visual_aus``, ``visual_description``), I_A (``audio``),
    I_T (``text_semantics``), R (``w_visual``, ``w_audio``, ``w_text``, normalised to sum 1) and
    c* (``emotion``), with provenance.

    Validate with ``Prior.model_validate(data, context={"classes": dataset.classes})`` to check the
    emotion against a class set; without a context any non-empty label is kept as it is.
    """
    model_config = ConfigDict(extra="forbid")

    name: str  # sample name (the clip's file stem)
    emotion: str  # c*: one of the dataset's classes
    visual_aus: list[ActionUnit]  # the AUs seen, possibly empty
    visual_description: str  # the rest of I_V in words (gaze, head, gestures)
    audio: AudioCues  # I_A
    text_semantics: str  # I_T: what the subtitle means, including irony or hedging
    w_visual: Contribution  # R: contribution of the face/video
    w_audio: Contribution  # R: contribution of the voice
    w_text: Contribution  # R: contribution of the words
    rationale: str  # a short reason for c*
    model: str  # model id (e.g. "gemini-2.0-flash"), or the back-end's own name
    backend: str  # "gemini", "openai", "offline", "simulated", "replay"
    prompt_version: str  # PROMPT_VERSION of the prompt that produced it
    elapsed_s: float | None = None  # wall time of the successful call
    input_tokens: int | None = None  # summed over every attempt of this clip (what was paid)
    output_tokens: int | None = None
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @field_validator("emotion", mode="before")
    @classmethod
    def _known_emotion(cls, value: Any, info) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"emotion must be a class name, got {value!r}")
        label = value.strip().lower()
        label = EMOTION_SYNONYMS.get(label, label)
        classes = (info.context or {}).get("classes")
        if classes is not None and label not in classes:
            raise ValueError(f"emotion '{value}' is not one of the classes {list(classes)}")
        return label

    @model_validator(mode="after")
    def _normalise_contributions(self) -> Prior:
        total = self.w_visual + self.w_audio + self.w_text
        if not total > 0:
            raise ValueError("contributions w_visual, w_audio, w_text are all 0; at least one must be > 0")
        if not math.isclose(total, 1.0, rel_tol=0, abs_tol=1e-9):
            self.w_visual, self.w_audio, self.w_text = (
                self.w_visual / total, self.w_audio / total, self.w_text / total)
        return self

    @property
    def aus(self) -> list[int]:
        return [a.au for a in self.visual_aus]


ANSWER_FIELDS = ("visual_aus", "visual_description", "audio", "text_semantics", "w_visual", "w_audio",
                 "w_text", "emotion", "rationale")
_AUDIO_WORD_FIELDS = ("pitch_level", "pitch_variation", "loudness", "speech_rate", "voice_quality",
                      "description")


def answer_json_schema(classes: Sequence[str], dialect: str = "json_schema") -> dict:
    """The JSON schema of a model's answer (the fields of :class:`Prior` a model fills).

    ``dialect="json_schema"`` (OpenAI ``response_format``, strict: every field required, no extra
    properties) or ``"gemini"`` (Gemini's response schema, an OpenAPI subset without
    ``additionalProperties``). Ranges are stated in descriptions, not as ``minimum``/``maximum``,
    which some servers' strict modes reject; :class:`Prior` enforces them.
    """
    if dialect not in ("json_schema", "gemini"):
        raise ValueError(f"unknown schema dialect '{dialect}'; use 'json_schema' or 'gemini'")
    closed = {"additionalProperties": False} if dialect == "json_schema" else {}

    def obj(properties: dict) -> dict:
        return {"type": "object", "properties": properties, "required": list(properties), **closed}

    def text(desc: str) -> dict:
        return {"type": "string", "description": desc}

    def number(desc: str) -> dict:
        return {"type": "number", "description": desc}

    au = obj({
        "au": {"type": "integer", "description": "FACS action unit number: 1, 2, 4-39 or 41-46"},
        "intensity": number("intensity from 0 (trace) to 5 (maximum)"),
        "evidence": text("what in the face shows this action unit"),
    })
    audio = obj({
        "pitch_level": text("pitch level in words, e.g. low, medium, high"),
        "pitch_variation": text("pitch variation in words, e.g. flat, moderate, wide, rising"),
        "loudness": text("loudness in words, e.g. soft, moderate, loud"),
        "speech_rate": text("speech rate in words, e.g. slow, moderate, fast"),
        "voice_quality": text("voice quality in words, e.g. clear, tense, breathy, trembling"),
        "description": text("other vocal cues: sighs, laughter, crying, emphasis"),
    })
    return obj({
        "visual_aus": {"type": "array", "items": au,
                       "description": "facial action units visible in the clip"},
        "visual_description": text("facial expression, gaze, head and body movement in words"),
        "audio": audio,
        "text_semantics": text("what the subtitle means and the attitude it expresses"),
        "w_visual": number("contribution of the face/video to the emotion, 0 to 1"),
        "w_audio": number("contribution of the voice to the emotion, 0 to 1"),
        "w_text": number("contribution of the words to the emotion, 0 to 1; the three sum to 1"),
        "emotion": {"type": "string", "enum": list(classes),
                    "description": "the emotion of the speaker"},
        "rationale": text("one or two sentences on how the cues lead to the emotion"),
    })


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL | re.IGNORECASE)


def parse_answer_text(raw: str) -> dict:
    """The JSON object in a model's answer (code fences tolerated); :class:`MalformedAnswer` when
    the text is empty, truncated or not one JSON object."""
    if not isinstance(raw, str) or not raw.strip():
        raise MalformedAnswer("the model returned an empty answer")
    match = _FENCE.match(raw)
    text = match.group(1) if match else raw.strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        tail = text[-60:].replace("\n", " ")
        raise MalformedAnswer(f"the answer is not valid JSON ({exc.msg} at character {exc.pos} of "
                              f"{len(text)}; it ends with ...{tail!r}); truncated or malformed") from None
    if not isinstance(data, dict):
        raise MalformedAnswer(f"the answer is JSON {type(data).__name__}, not an object")
    return data


def build_prior(answer: dict, *, name: str, classes: Sequence[str], **provenance: Any) -> Prior:
    """Validate a model's answer (a dict with :data:`ANSWER_FIELDS`) into a :class:`Prior`.

    Unknown answer fields are dropped (a model may add some); missing or invalid ones raise
    :class:`MalformedAnswer` listing every problem.
    """
    data = {k: answer[k] for k in ANSWER_FIELDS if k in answer}
    audio = data.get("audio")
    if isinstance(audio, dict):  # keep the numbers a local back-end measured, drop others' extras
        data["audio"] = {k: v for k, v in audio.items() if k in AudioCues.model_fields}
    try:
        return Prior.model_validate({**data, "name": name, **provenance}, context={"classes": tuple(classes)})
    except ValidationError as exc:
        raise MalformedAnswer(f"the answer is not a valid prior: {validation_reasons(exc)}") from None


def validation_reasons(exc: ValidationError, limit: int = 6) -> str:
    """Pydantic's errors as one readable line: ``visual_aus.0.au: AU 3 is not ...; emotion: ...``."""
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(x) for x in err["loc"]) or "answer"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "missing"
        elif err["type"] in ("float_type", "finite_number"):
            msg = f"{msg} (got {err.get('input')!r})"
        parts.append(f"{where}: {msg}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
