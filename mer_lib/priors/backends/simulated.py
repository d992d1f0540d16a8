"""Simulated priors for the demo dataset: well-formed, deterministic, and as right as the paper's Gemini.

No model reads the demo's synthetic clips (there are none), so this back-end stands in for one:
- c* agrees with the truth at per-class rates given as input; the default is the paper's Table 1
  row for Gemini-2.0-flash (neutral 54, angry 82, happy 92, sad 92, worried 50, surprise 61 %).
  A wrong c* goes to the truth's confusable neighbour (the demo's confusion map) 60 % of the time,
  else to any other class;
- the AU list is drawn from the *chosen* emotion's support set S_c (each AU kept with
  probability 0.85, at least one), plus sometimes an incidental AU (lips part, blink, ...).
  Optionally (``truth_aus_when_wrong`` > 0) a share of the wrong answers take their AUs from the
  truth's support set instead: a model that saw the face right but named it wrong. Such priors
  are AU-inconsistent, which gives the AU-consistency filter something to find; the default 0
  keeps every prior self-consistent;
- I_V, I_A and I_T carry the chosen emotion's cues in words (FACS names, prosody words, a
  reading of the subtitle), so stage 2 can learn from the prior's content: that is the signal
  the demo plants;
- the contributions R favour the informative modality (on the demo audio > video > text), drawn
  from a Dirichlet around ``modality_weights``.

Everything about one clip is drawn from a generator seeded by (seed, sample name), so a clip's
prior does not depend on which other clips are asked, in which order or with what concurrency.
"""
from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np

from ..facs import AU_SUPPORT_SETS, FACS_NAMES
from .base import Backend, BackendAnswer, ClipRequest, PermanentError

# Inputs of the simulation (the paper's Table 1, Gemini-2.0-flash row), not results.
PAPER_GEMINI_FLASH_CLASS_ACCURACY = {"neutral": 0.54, "angry": 0.82, "happy": 0.92, "sad": 0.92,
                                     "worried": 0.50, "surprise": 0.61}
# Where a wrong answer goes most often: the class annotators confuse (mer_lib.data.demo.CONFUSION).
CONFUSABLE = {"neutral": "worried", "angry": "sad", "happy": "surprise", "sad": "worried",
              "worried": "sad", "surprise": "happy"}
INCIDENTAL_AUS = (25, 45, 17, 14, 43)  # lips part, blink, chin raiser, dimpler, eyes closed

# Per-emotion cues in words: (pitch level, pitch variation, loudness, speech rate, voice quality,
# other vocal cues, facial description, reading of the words). Two phrasings each, picked at random.
_CUES = {
    "neutral": (("medium", "moderate"), ("flat", "little"), ("moderate", "even"), ("moderate", "steady"),
                ("clear", "relaxed"), ("A calm, matter-of-fact delivery.", "An even, conversational tone."),
                ("A relaxed face with a steady gaze.", "A composed expression, looking at the listener."),
                ("The words state a plain fact without emotional charge.",
                 "The words are an ordinary, matter-of-fact remark.")),
    "angry": (("high", "raised"), ("wide", "sharp"), ("loud", "very loud"), ("fast", "rapid"),
              ("tense", "harsh"), ("Shouting with sharp emphasis on single words.",
                                   "A forceful, clipped delivery."),
              ("A glaring stare with a tight jaw.", "Narrowed eyes and a hostile glare."),
              ("The words read as a hostile confrontation.", "The words attack and blame the listener.")),
    "happy": (("high", "bright"), ("wide", "lively"), ("loud", "moderately loud"), ("fast", "brisk"),
              ("bright", "warm"), ("Laughter in the voice.", "A cheerful, smiling tone of voice."),
              ("A broad smile with raised cheeks.", "Smiling eyes and a relaxed, open face."),
              ("The words express delight and good news.", "The words are warm and enthusiastic.")),
    "sad": (("low", "deep"), ("flat", "monotone"), ("soft", "quiet"), ("slow", "dragging"),
            ("breathy", "trembling"), ("Sighs and a cracking voice.", "A heavy, tearful delivery."),
            ("Downcast eyes and drooping mouth corners.", "A lowered head and a tearful face."),
            ("The words express loss and grief.", "The words are mournful and resigned.")),
    "worried": (("medium", "slightly raised"), ("unsteady", "wavering"), ("soft", "subdued"),
                ("hesitant", "uneven"), ("tense", "shaky"),
                ("Hesitant pauses and a nervous tone.", "An anxious, hurried whisper."),
                ("Knitted brows and a restless gaze.", "A tense forehead and darting eyes."),
                ("The words voice fear that something bad will happen.",
                 "The words are anxious questions about a threat.")),
    "surprise": (("high", "very high"), ("rising sharply", "sudden"), ("loud", "abrupt"),
                 ("fast", "sudden"), ("breathy", "exclaiming"),
                 ("A sudden exclamation with a gasp.", "A startled, rising exclamation."),
                 ("Wide-open eyes and a dropped jaw.", "Raised brows and an open mouth."),
                 ("The words express astonishment at something unexpected.",
                  "The words are an incredulous question.")),
}
_GENERIC_CUES = (("medium",), ("moderate",), ("moderate",), ("moderate",), ("ordinary",),
                 ("No distinctive vocal cues.",), ("An unremarkable expression.",),
                 ("The words carry little emotional meaning.",))


class SimulatedBackend(Backend):
    """Simulated Gemini-like priors from known truth (see the module docstring)."""
    kind = "simulated"
    inline = True

    def __init__(self, truth: Mapping[str, str], *, seed: int = 0,
                 class_accuracy: Mapping[str, float] = PAPER_GEMINI_FLASH_CLASS_ACCURACY,
                 default_accuracy: float = 0.75,
                 modality_weights: tuple[float, float, float] = (0.45, 0.35, 0.20),
                 concentration: float = 30.0, truth_aus_when_wrong: float = 0.0,
                 model: str = "simulated-gemini-2.0-flash"):
        self.truth = dict(truth)  # sample name -> true class name
        self.seed = seed
        self.class_accuracy = dict(class_accuracy)  # P(c* = truth | truth = c)
        self.default_accuracy = default_accuracy  # for classes not in class_accuracy
        self.modality_weights = tuple(modality_weights)  # mean (audio, video, text) contribution
        self.concentration = concentration  # Dirichlet concentration around modality_weights
        self.truth_aus_when_wrong = truth_aus_when_wrong  # P(AUs from the truth's set | c* wrong)
        self.model = model

    def settings(self) -> dict:
        return {"seed": self.seed, "class_accuracy": self.class_accuracy,
                "default_accuracy": self.default_accuracy, "modality_weights": self.modality_weights,
                "concentration": self.concentration, "truth_aus_when_wrong": self.truth_aus_when_wrong}

    def fingerprint(self, request: ClipRequest) -> str | None:
        return self.truth.get(request.name)

    def generate(self, request: ClipRequest) -> BackendAnswer:
        true = self.truth.get(request.name)
        if true is None:
            raise PermanentError(f"simulated back-end: no truth for sample '{request.name}'. Fix: build it "
                                 "with make_backend('simulated', dataset=...) or pass truth={name: class}.")
        classes = request.classes
        rng = np.random.default_rng([self.seed, zlib.crc32(request.name.encode("utf-8"))])
        emotion = self._choose_emotion(true, classes, rng)
        cues = _CUES.get(emotion, _GENERIC_CUES)

        def pick(options):
            return options[int(rng.integers(len(options)))]

        seen = true if emotion != true and rng.random() < self.truth_aus_when_wrong else emotion
        aus = self._draw_aus(seen, rng)
        audio_words = [pick(options) for options in cues[:6]]
        w_audio, w_visual, w_text = rng.dirichlet(self.concentration * np.asarray(self.modality_weights))
        subtitle = request.subtitle_english.strip()
        reading = pick(cues[7])
        text_semantics = f'The speaker says "{subtitle}". {reading}' if subtitle else \
            f"There is no subtitle. {reading}"
        au_words = ", ".join(FACS_NAMES[a["au"]].lower() for a in aus) or "no marked facial action"
        answer = {
            "visual_aus": aus,
            "visual_description": pick(cues[6]),
            "audio": dict(zip(("pitch_level", "pitch_variation", "loudness", "speech_rate",
                               "voice_quality", "description"), audio_words)),
            "text_semantics": text_semantics,
            "w_visual": float(w_visual), "w_audio": float(w_audio), "w_text": float(w_text),
            "emotion": emotion,
            "rationale": (f"The face shows {au_words}, and the voice is {audio_words[2]} with "
                          f"{audio_words[0]} pitch, which together suggest {emotion}."),
        }
        return BackendAnswer(answer=answer)

    def _choose_emotion(self, true: str, classes: tuple[str, ...], rng) -> str:
        accuracy = self.class_accuracy.get(true, self.default_accuracy)
        if rng.random() < accuracy or len(classes) < 2:
            return true
        others = [c for c in classes if c != true]
        neighbour = CONFUSABLE.get(true)
        if neighbour in others and rng.random() < 0.6:
            return neighbour
        return others[int(rng.integers(len(others)))]

    @staticmethod
    def _draw_aus(emotion: str, rng) -> list[dict]:
        support = sorted(AU_SUPPORT_SETS.get(emotion, ()))
        chosen = [au for au in support if rng.random() < 0.85]
        if support and not chosen:
            chosen = [support[int(rng.integers(len(support)))]]
        if rng.random() < 0.3:
            extra = INCIDENTAL_AUS[int(rng.integers(len(INCIDENTAL_AUS)))]
            if extra not in chosen:
                chosen.append(extra)
        return [{"au": au, "intensity": round(float(rng.uniform(1.0, 4.5)), 1),
                 "evidence": f"{FACS_NAMES[au].lower()} visible"} for au in chosen]


def truth_from_dataset(dataset) -> dict[str, str]:
    """``{name: class}`` from a dataset's labels, and from ``hidden_labels`` for the unlabelled
    pool where the demo keeps its truth aside (never used to train, only to simulate and score)."""
    labels = np.asarray(dataset.labels)
    if dataset.hidden_labels is not None:
        labels = np.where(labels >= 0, labels, np.asarray(dataset.hidden_labels))
    return {str(n): dataset.classes[int(y)] for n, y in zip(dataset.names, labels) if y >= 0}
