"""A prior as the three sentences stage 2 embeds (I_A, I_V, I_T) and its modality weights R.

The texts are plain English so a sentence encoder (all-MiniLM-L6-v2 in the workspace) reads
them well: AUs appear with their FACS names ("AU12 (Lip Corner Puller)"), not as bare numbers,
because "Lip Corner Puller" means something to a text encoder and "12" does not.
"""
from __future__ import annotations

from .facs import au_label
from .schema import Prior


def _intensity(value: float | None) -> str:
    return "" if value is None else f" at intensity {value:.1f}"


def video_text(prior: Prior, description: bool = False) -> str:
    """I_V: the action units the model saw (the paper's I_V), and with ``description`` also its
    free-text description of the face (this project's option; Table 4 measures it)."""
    if prior.visual_aus:
        aus = ", ".join(f"{au_label(a.au)}{_intensity(a.intensity)}" for a in prior.visual_aus)
        sentence = f"The face shows the action units {aus}."
    else:
        sentence = "No facial action units were reported."
    detail = prior.visual_description.strip() if description else ""
    return f"{sentence} {detail}".strip()


def audio_text(prior: Prior) -> str:
    a = prior.audio
    parts = [(a.pitch_level, "pitch"), (a.pitch_variation, "pitch variation"), (a.loudness, "loudness"),
             (a.speech_rate, "speech rate"), (a.voice_quality, "voice quality")]
    parts = [f"{words.strip()} {what}" for words, what in parts if words.strip()]
    # fields a source left empty (MERR's free-text audio priors) are left out, not said as ""
    sentence = f"The voice has {_join(parts)}." if parts else ""
    return f"{sentence} {a.description.strip()}".strip() or "No vocal cues were reported."


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def text_text(prior: Prior) -> str:
    return prior.text_semantics.strip() or "The subtitle carries no emotional meaning."


def prior_texts(prior: Prior, visual_description: bool = False) -> dict[str, str]:
    """``{"audio": I_A, "video": I_V, "text": I_T}`` as readable English sentences (I_V: the AUs, and
    the visual description too when ``visual_description``)."""
    return {"audio": audio_text(prior), "video": video_text(prior, visual_description), "text": text_text(prior)}


def prior_weights(prior: Prior) -> dict[str, float]:
    """``{"audio": w_audio, "video": w_visual, "text": w_text}`` (R; they sum to 1)."""
    return {"audio": prior.w_audio, "video": prior.w_visual, "text": prior.w_text}
