"""FACS Action Units and the AU support sets S_c of each emotion (the paper's Fig. 1, section 3.1).

The 44 action units are those of the Facial Action Coding System (Ekman & Friesen 1978; Ekman,
Friesen & Hager 2002): AU 1, 2, 4-39 and 41-46 (3 and 40 are unused numbers). The prototypes are
EMFACS's (Friesen & Ekman 1983, as tabulated in the FACS investigator's guide):

    happiness 6+12          sadness 1+4+15          surprise 1+2+5+26
    fear 1+2+4+5+7+20+26    anger 4+5+7+23          disgust 9+15+16        contempt 12+14 (one side)

MER's six classes map onto them as follows (our choices, documented because the paper gives none):
- ``worried`` has no EMFACS prototype. Worry is low-intensity fear, and the part of fear's face
  that survives at low intensity is the brow: 1+2+4 (the "fear brow", raised and drawn together),
  without fear's widened eyes (5), lip stretch (20) or dropped jaw (26). So S_worried = {1, 2, 4}.
- ``neutral`` is the absence of a prototype: S_neutral is empty, and a prior that says "neutral"
  is consistent when it reports no AU from another emotion's support set (see
  :func:`au_consistency`).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

FACS_NAMES: dict[int, str] = {
    1: "Inner Brow Raiser", 2: "Outer Brow Raiser", 4: "Brow Lowerer", 5: "Upper Lid Raiser",
    6: "Cheek Raiser", 7: "Lid Tightener", 8: "Lips Toward Each Other", 9: "Nose Wrinkler",
    10: "Upper Lip Raiser", 11: "Nasolabial Deepener", 12: "Lip Corner Puller",
    13: "Sharp Lip Puller", 14: "Dimpler", 15: "Lip Corner Depressor", 16: "Lower Lip Depressor",
    17: "Chin Raiser", 18: "Lip Pucker", 19: "Tongue Show", 20: "Lip Stretcher",
    21: "Neck Tightener", 22: "Lip Funneler", 23: "Lip Tightener", 24: "Lip Pressor",
    25: "Lips Part", 26: "Jaw Drop", 27: "Mouth Stretch", 28: "Lip Suck", 29: "Jaw Thrust",
    30: "Jaw Sideways", 31: "Jaw Clencher", 32: "Lip Bite", 33: "Cheek Blow", 34: "Cheek Puff",
    35: "Cheek Suck", 36: "Tongue Bulge", 37: "Lip Wipe", 38: "Nostril Dilator",
    39: "Nostril Compressor", 41: "Lid Droop", 42: "Slit", 43: "Eyes Closed", 44: "Squint",
    45: "Blink", 46: "Wink",
}
assert len(FACS_NAMES) == 44

# EMFACS prototypes under Ekman's emotion names.
EMFACS_PROTOTYPES: dict[str, frozenset[int]] = {
    "happiness": frozenset({6, 12}),
    "sadness": frozenset({1, 4, 15}),
    "surprise": frozenset({1, 2, 5, 26}),
    "fear": frozenset({1, 2, 4, 5, 7, 20, 26}),
    "anger": frozenset({4, 5, 7, 23}),
    "disgust": frozenset({9, 15, 16}),
    "contempt": frozenset({12, 14}),
}

# S_c keyed by MER class names (see the module docstring for worried and neutral).
AU_SUPPORT_SETS: dict[str, frozenset[int]] = {
    "neutral": frozenset(),
    "angry": EMFACS_PROTOTYPES["anger"],
    "happy": EMFACS_PROTOTYPES["happiness"],
    "sad": EMFACS_PROTOTYPES["sadness"],
    "worried": frozenset({1, 2, 4}),
    "surprise": EMFACS_PROTOTYPES["surprise"],
    # Ekman's other basic emotions, for label sets beyond MER's six
    "fear": EMFACS_PROTOTYPES["fear"],
    "disgust": EMFACS_PROTOTYPES["disgust"],
    "contempt": EMFACS_PROTOTYPES["contempt"],
}

_AU_TOKEN = re.compile(r"^\s*(?:AU)?\s*0*(\d{1,2})(?:_[rc])?\s*[LRlr]?\s*$", re.IGNORECASE)
_NAME_TO_AU = {name.lower(): au for au, name in FACS_NAMES.items()}


def parse_au(token: object) -> int:
    """An AU number from ``12``, ``"12"``, ``"AU12"``, ``"AU06_r"`` or a FACS name ("Cheek Raiser").

    Raises ``ValueError`` naming the token when it is no valid FACS AU.
    """
    if isinstance(token, bool):
        raise ValueError(f"{token!r} is not an action unit")
    if isinstance(token, int):
        number = token
    elif isinstance(token, float) and token.is_integer():
        number = int(token)
    elif isinstance(token, str):
        if token.strip().lower() in _NAME_TO_AU:
            return _NAME_TO_AU[token.strip().lower()]
        match = _AU_TOKEN.match(token)
        if not match:
            raise ValueError(f"{token!r} is not an action unit (expected e.g. 12, 'AU12' or a FACS name)")
        number = int(match.group(1))
    else:
        raise ValueError(f"{token!r} is not an action unit")
    if number not in FACS_NAMES:
        raise ValueError(f"AU {number} is not one of the 44 FACS action units (1, 2, 4-39, 41-46)")
    return number


def au_label(au: int) -> str:
    """``"AU12 (Lip Corner Puller)"``: the form prior texts use, so an encoder sees the name."""
    return f"AU{au} ({FACS_NAMES[au]})"


def au_consistency(aus: Iterable[int], emotion: str,
                   support_sets: Mapping[str, frozenset[int]] = AU_SUPPORT_SETS) -> float:
    """How well a prior's AUs fit the support set of its emotion, in [0, 1].

    - An emotion with a prototype: the share of its support set that the prior reports,
      |A ∩ S_c| / |S_c|. Extra AUs outside S_c (blinks, lips part) cost nothing: models and
      OpenFace report many incidental AUs, and the prototype is what must be present.
    - ``neutral`` (empty S_c): 1 - the share of the reported AUs that belong to some emotion's
      support set; a neutral prior with no AUs, or only incidental ones, scores 1.
    - An emotion without a known support set: NaN (cannot be judged).
    """
    aus = set(aus)
    support = support_sets.get(emotion)
    if support is None:
        return float("nan")
    if support:
        return len(aus & support) / len(support)
    if not aus:
        return 1.0
    emotional = frozenset().union(*(s for c, s in support_sets.items() if s))
    return 1.0 - len(aus & emotional) / len(aus)


def best_matching_emotion(aus: Iterable[int], classes: Iterable[str],
                          support_sets: Mapping[str, frozenset[int]] = AU_SUPPORT_SETS,
                          min_consistency: float = 0.5) -> str | None:
    """The class whose support set the AUs cover best (ties: the smaller support set, i.e. the more
    specific match; then class order); ``neutral`` when no class reaches ``min_consistency`` and
    neutral is a class; None when nothing can be said (no AUs and no neutral class)."""
    aus = set(aus)
    scored = [(len(aus & support_sets[c]) / len(support_sets[c]), -len(support_sets[c]), -i, c)
              for i, c in enumerate(classes) if support_sets.get(c)]
    if scored:
        score, _, _, best = max(scored)
        if score >= min_consistency:
            return best
    return "neutral" if "neutral" in classes else None
