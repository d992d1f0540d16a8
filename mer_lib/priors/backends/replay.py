"""Replay priors that exist already: a prior file of ours, or MERR-style JSON from Emotion-LLaMA.

Our files: a ``.jsonl`` store (its latest successful prior per sample) or a ``.json`` list of
prior records. MERR-style JSON (Emotion-LLaMA's MERR annotations, Cheng et al. 2024) is a dict
``name -> {"AU_list": ["AU04", ...], "visual_prior_list": [...], "audio_prior_list": "...",
"pseu_emotion": "angry", "smp_reason_caption" | "reason_caption" | "caption": "...", "text": "..."}``
and maps onto a prior as: AUs from ``AU_list`` (each "AUxx" parsed, evidence from the matching
``visual_prior_list`` entry), I_V from ``visual_prior_list``, I_A's description from
``audio_prior_list`` (MERR has no per-cue words, so those stay empty), I_T from ``text``, c* from
``pseu_emotion``, the rationale from the caption; MERR gives no contributions, so R is equal thirds.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..media import file_sha256
from ..schema import ANSWER_FIELDS, Prior
from ..store import load_priors
from .base import Backend, BackendAnswer, ClipRequest, PermanentError

CAPTION_KEYS = ("smp_reason_caption", "reason_caption", "caption")


def merr_to_answer(entry: dict) -> dict:
    """One MERR entry as an answer dict (see the module docstring)."""
    aus = entry.get("AU_list") or []
    visual = entry.get("visual_prior_list") or []
    if isinstance(aus, str):
        aus = [a for a in aus.replace(",", " ").split() if a]
    visual_list = visual if isinstance(visual, list) else [visual]
    evidence = [str(v) for v in visual_list]
    au_items = [{"au": au, "intensity": None,
                 "evidence": evidence[i] if i < len(evidence) and evidence[i] else "listed in MERR AU_list"}
                for i, au in enumerate(aus)]
    audio = entry.get("audio_prior_list") or ""
    if isinstance(audio, list):
        audio = "; ".join(str(a) for a in audio)
    subtitle = str(entry.get("text") or "").strip()
    caption = next((str(entry[k]) for k in CAPTION_KEYS if entry.get(k)), "")
    return {
        "visual_aus": au_items,
        "visual_description": "; ".join(evidence),
        "audio": {"pitch_level": "", "pitch_variation": "", "loudness": "", "speech_rate": "",
                  "voice_quality": "", "description": str(audio)},
        "text_semantics": f'The subtitle says "{subtitle}".' if subtitle else "",
        "w_visual": 1 / 3, "w_audio": 1 / 3, "w_text": 1 / 3,
        "emotion": entry.get("pseu_emotion") or entry.get("emotion"),
        "rationale": caption,
    }


def read_replay_file(path: Path) -> dict[str, tuple[dict, str | None]]:
    """``{name: (answer dict, model)}`` from any supported file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: replay file not found. Fix: pass a prior .jsonl of ours or "
                                "a MERR-style .json file.")
    if path.suffix == ".jsonl":
        return {name: (p.model_dump(include=set(ANSWER_FIELDS)), p.model)
                for name, p in load_priors(path).items()}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON file ({exc}). Fix: pass a prior .jsonl or a MERR "
                         ".json.") from None
    if isinstance(data, list):  # a list of our prior records
        out = {}
        for item in data:
            prior = Prior.model_validate(item.get("prior", item))
            out[prior.name] = (prior.model_dump(include=set(ANSWER_FIELDS)), prior.model)
        return out
    if isinstance(data, dict) and all(isinstance(v, dict) for v in data.values()):
        return {str(name): (merr_to_answer(entry), None) for name, entry in data.items()}
    raise ValueError(f"{path}: neither a list of priors nor a MERR-style dict name -> entry.")


class ReplayBackend(Backend):
    """Answers from an existing file; a sample not in it fails with a clear reason."""
    kind = "replay"
    inline = True

    def __init__(self, path: str | Path, *, model: str | None = None):
        self.path = Path(path)
        self._answers = read_replay_file(self.path)
        self._file_hash = file_sha256(self.path)
        # model recorded when the file does not name one (MERR files do not)
        self.model = model or f"replay:{self.path.stem}"

    def settings(self) -> dict:
        return {"file_sha256": self._file_hash}

    def generate(self, request: ClipRequest) -> BackendAnswer:
        if request.name not in self._answers:
            raise PermanentError(f"'{request.name}' is not in the replay file {self.path}")
        answer, model = self._answers[request.name]
        return BackendAnswer(answer=dict(answer), model=model or self.model)
