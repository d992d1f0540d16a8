"""One clip, everything the panel says about it: :func:`clip_view` gathers it, the ``*_html``
functions write it out. Pure functions of explicit arguments, so tests check them without a browser.

What a view holds (the paper's section 3.1): the prior's AUs (I_V) with their FACS names, each
marked against the AU support set S_c of the prior's emotion c* and of the human label; the
prosody (I_A) in words and, where measured, in numbers; the subtitle's meaning (I_T); the
modality contributions R; the rationale; the reliability checks; and the human label next to
stage 1's and stage 2's predictions. Whatever is missing carries a sentence saying why.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..figures import class_colors
from ..priors import AU_SUPPORT_SETS, FACS_NAMES, Prior, au_consistency
from .sources import InspectorData

# modality -> colour of its share in the contribution bar (colourblind palette, none of the class colours)
MODALITY_COLORS = {"video": "#56b4e9", "audio": "#ca9161", "text": "#fbafe4"}
# AudioCues' measured numbers, with how to show them
PROSODY_NUMBERS = {
    "f0_mean_semitones": ("mean F0", "{:.1f} st above 27.5 Hz"),
    "f0_variation": ("F0 variation", "{:.3f} (coefficient of variation)"),
    "loudness_mean": ("loudness", "{:.2f} sones"),
    "voiced_segments_per_sec": ("voiced segments", "{:.2f} per s"),
    "hnr_db": ("HNR", "{:.1f} dB"),
}


@dataclass
class AUEntry:
    au: int  # FACS number
    name: str  # FACS name
    intensity: float | None  # 0-5
    evidence: str  # what the model saw
    in_prior_support: bool  # in S_c of the prior's emotion
    in_label_support: bool  # in S_c of the human label


@dataclass
class StagePrediction:
    stage: str  # "Stage 1" or "Stage 2"
    probabilities: dict[str, float]  # class -> probability
    predicted: str  # argmax class

    @property
    def probability(self) -> float:
        return self.probabilities[self.predicted]


@dataclass
class ClipView:
    """What the panel shows for one clip; built by :func:`clip_view`."""
    name: str
    row: int  # row in the dataset
    split: str
    classes: tuple[str, ...]
    label: str  # human label, "" when unlabelled
    subtitle_chinese: str
    subtitle_english: str
    prior: Prior | None
    prior_note: str  # why there is no prior ("" when there is one)
    aus: list[AUEntry] = field(default_factory=list)
    prior_support: tuple[int, ...] | None = None  # S_c of c*, None when c* has no known support set
    label_support: tuple[int, ...] | None = None  # S_c of the human label
    au_consistency: float | None = None  # mer_lib.priors.au_consistency of c*
    agrees_with_label: bool | None = None  # None when there is no label or no prior
    reliable: bool | None = None  # under `policy`; None without a prior
    policy: str = ""
    min_au_consistency: float = 0.5
    predictions: list[StagePrediction] = field(default_factory=list)
    predictions_note: str = ""  # why there are no predictions ("" when there are)
    clip_path: Path | None = None
    video_note: str = ""  # why there is no video ("" when there is)

    @property
    def prior_emotion(self) -> str:
        return self.prior.emotion if self.prior is not None else ""

    @property
    def weights(self) -> dict[str, float]:
        """The prior's modality contributions R (empty without a prior)."""
        if self.prior is None:
            return {}
        return {"video": self.prior.w_visual, "audio": self.prior.w_audio, "text": self.prior.w_text}

    @property
    def prosody_numbers(self) -> dict[str, str]:
        """Measured prosody (eGeMAPS, offline back-end) as label -> formatted value."""
        if self.prior is None:
            return {}
        audio = self.prior.audio
        return {label: fmt.format(getattr(audio, key)) for key, (label, fmt) in PROSODY_NUMBERS.items()
                if getattr(audio, key) is not None}

    def missing_support(self, which: str) -> list[int]:
        """AUs of S_c (``which``: "prior" or "label") that the prior does not report."""
        support = self.prior_support if which == "prior" else self.label_support
        reported = {a.au for a in self.aus}
        return [a for a in (support or ()) if a not in reported]


def clip_view(data: InspectorData, row: int) -> ClipView:
    """Everything about clip ``row`` of ``data`` (one dict lookup per source, no table scans)."""
    table = data.table
    name = str(table.names[row])
    classes = table.classes
    label = classes[table.labels[row]] if table.labels[row] >= 0 else ""
    chinese, english = data.dataset.subtitle(name)
    prior = data.priors.get(name)
    view = ClipView(name=name, row=int(row), split=str(table.splits[row]), classes=classes, label=label,
                    subtitle_chinese=chinese, subtitle_english=english, prior=prior, prior_note="",
                    policy=data.policy, min_au_consistency=data.min_au_consistency,
                    label_support=_support(label))
    if prior is None:
        failure = data.prior_failures.get(name)
        if failure:
            view.prior_note = f"No prior: the latest call for this clip failed ({failure})"
        elif data.priors:
            view.prior_note = ("No prior for this clip: the prior file has none for it (01_prior_generation "
                               "covers the splits it is asked for)")
        else:
            view.prior_note = f"No prior: {data.notes.get('priors', 'no prior file given')}"
    else:
        view.prior_support = _support(prior.emotion)
        view.aus = [AUEntry(au=a.au, name=FACS_NAMES[a.au], intensity=a.intensity, evidence=a.evidence,
                            in_prior_support=a.au in (view.prior_support or ()),
                            in_label_support=a.au in (view.label_support or ())) for a in prior.visual_aus]
        consistency = au_consistency(prior.aus, prior.emotion)
        view.au_consistency = None if math.isnan(consistency) else consistency
        view.agrees_with_label = (prior.emotion == label) if label else None
        view.reliable = bool(table.reliable[row]) if prior.emotion in classes else False

    for stage, probs in (("Stage 1", table.stage1_probs), ("Stage 2", table.stage2_probs)):
        if probs is not None and not np.isnan(probs[row]).any():
            values = {c: float(p) for c, p in zip(classes, probs[row])}
            view.predictions.append(StagePrediction(stage, values, max(values, key=values.get)))
    if not view.predictions:
        view.predictions_note = (table.predictions_note if not table.has_predictions else
                                 "No prediction for this clip (notebook 04 predicts the labelled clips)")
    view.clip_path = data.clip_files.get(name)
    if view.clip_path is None:
        view.video_note = (f"No video file for this clip in {data.clips_dir}" if data.clips_dir else
                           "No video: no clips_dir is set (the demo data has no clip files)")
    return view


def _support(emotion: str) -> tuple[int, ...] | None:
    support = AU_SUPPORT_SETS.get(emotion) if emotion else None
    return None if support is None else tuple(sorted(support))


# --- HTML --------------------------------------------------------------------------------------

def _esc(text) -> str:
    return html.escape(str(text))


def chip(emotion: str, classes: tuple[str, ...]) -> str:
    """An emotion name on its class colour (the colours of every figure in the workspace)."""
    if not emotion:
        return '<span style="color:#777">none</span>'
    color = class_colors(list(classes)).get(emotion, "#777777") if emotion in classes else "#777777"
    return (f'<span style="background:{color};color:white;padding:1px 7px;border-radius:9px;'
            f'font-weight:600">{_esc(emotion)}</span>')


def _mark(value: bool | None, yes: str = "yes", no: str = "no", unknown: str = "n/a") -> str:
    if value is None:
        return f'<span style="color:#777">{unknown}</span>'
    return (f'<span style="color:#1a7f37;font-weight:600">&#10003; {yes}</span>' if value else
            f'<span style="color:#c62828;font-weight:600">&#10007; {no}</span>')


# ipywidgets' HTML widget inherits a 28 px line height (its inline-widget height): set a text one
TEXT_STYLE = "line-height:1.4;font-size:13px"


def _section(title: str, body: str) -> str:
    return (f'<div style="margin:6px 0 10px 0;{TEXT_STYLE}"><div style="font-weight:700;'
            f'border-bottom:1px solid #ddd;margin-bottom:4px">{_esc(title)}</div>{body}</div>')


def _note(text: str) -> str:
    return f'<div style="color:#8a6d3b;background:#fcf8e3;padding:3px 6px;border-radius:3px">{_esc(text)}</div>'


def _support_text(support: tuple[int, ...] | None) -> str:
    if support is None:
        return "unknown"
    return "{" + ", ".join(str(a) for a in support) + "}" if support else "{} (no prototype)"


def subtitles_html(view: ClipView) -> str:
    rows = []
    for language, text in (("English", view.subtitle_english), ("Chinese", view.subtitle_chinese)):
        shown = _esc(text) if text.strip() else '<span style="color:#777">(none)</span>'
        rows.append(f'<tr><td style="color:#555;padding-right:8px;vertical-align:top">{language}</td>'
                    f'<td>{shown}</td></tr>')
    return _section("Subtitle", f'<table>{"".join(rows)}</table>')


def _probability_bars(prediction: StagePrediction, label: str, classes: tuple[str, ...]) -> str:
    colors = class_colors(list(classes))
    rows = []
    for c in classes:
        p = prediction.probabilities[c]
        weight = "700" if c == prediction.predicted else "400"
        truth = " &#9664; human" if c == label else ""
        rows.append(
            f'<div style="display:flex;align-items:center;font-size:12px;line-height:15px">'
            f'<span style="width:62px;font-weight:{weight}">{_esc(c)}</span>'
            f'<span style="display:inline-block;width:{max(1, round(110 * p))}px;height:9px;'
            f'background:{colors[c]};margin-right:4px"></span>{p:.2f}{truth}</div>')
    return "".join(rows)


def outcome_html(view: ClipView) -> str:
    """Human label, the prior's c*, and each stage's prediction with its probabilities."""
    head = (f'<table style="border-collapse:collapse"><tr>'
            f'<td style="padding-right:8px">Human label</td><td>{chip(view.label, view.classes)}'
            f'{"" if view.label else " (unlabelled)"}</td></tr>'
            f'<tr><td style="padding-right:8px">Prior (c*)</td><td>{chip(view.prior_emotion, view.classes)}'
            f'{"" if not (view.label and view.prior) else " " + _mark(view.agrees_with_label, "agrees", "disagrees")}'
            f'</td></tr>')
    for prediction in view.predictions:
        correct = (prediction.predicted == view.label) if view.label else None
        head += (f'<tr><td style="padding-right:8px">{prediction.stage}</td><td>'
                 f'{chip(prediction.predicted, view.classes)} p={prediction.probability:.2f} '
                 f'{_mark(correct, "right", "wrong", "")}</td></tr>')
    head += "</table>"
    if len(view.predictions) == 2 and view.predictions[0].predicted != view.predictions[1].predicted:
        head += _note(f"The model changed its mind: {view.predictions[0].predicted} (stage 1) -> "
                      f"{view.predictions[1].predicted} (stage 2).")
    bars = "".join(f'<div style="margin-right:14px"><div style="font-size:12px;color:#555">{p.stage}</div>'
                   f'{_probability_bars(p, view.label, view.classes)}</div>' for p in view.predictions)
    body = head + (f'<div style="display:flex;margin-top:4px">{bars}</div>' if bars else _note(view.predictions_note))
    return _section("Labels and predictions", body)


def weights_bar_html(weights: dict[str, float]) -> str:
    """The contributions R as one stacked bar with the shares written under it."""
    segments = "".join(f'<div title="{m} {w:.0%}" style="width:{100 * w:.1f}%;background:{MODALITY_COLORS[m]}">'
                       f'</div>' for m, w in weights.items() if w > 0)
    legend = " &middot; ".join(f'<span style="color:{MODALITY_COLORS[m]}">&#9632;</span> {m} {w:.0%}'
                               for m, w in weights.items())
    return (f'<div style="display:flex;height:12px;width:260px;border:1px solid #999">{segments}</div>'
            f'<div style="font-size:12px">{legend}</div>')


def prior_html(view: ClipView) -> str:
    """The prior: AUs against the support sets, audio and text cues, R, rationale, reliability."""
    if view.prior is None:
        return _section("Reasoning prior", _note(view.prior_note))
    prior = view.prior
    emotion, label = view.prior_emotion, view.label
    th = 'style="text-align:left;padding:1px 6px;border-bottom:1px solid #ccc"'
    header = (f'<tr><th {th}>AU</th><th {th}>FACS name</th><th {th}>int.</th>'
              f'<th {th}>in S<sub>{_esc(emotion)}</sub> (prior)</th>'
              + (f'<th {th}>in S<sub>{_esc(label)}</sub> (human)</th>' if label else "") + f'<th {th}>evidence</th></tr>')
    rows = []
    for a in view.aus:
        highlight = "#e8f5e9" if a.in_prior_support or a.in_label_support else "white"
        intensity = "" if a.intensity is None else f"{a.intensity:.1f}"
        rows.append(f'<tr style="background:{highlight}"><td style="padding:1px 6px">AU{a.au}</td>'
                    f'<td style="padding:1px 6px;white-space:nowrap">{_esc(a.name)}</td><td style="padding:1px 6px">{intensity}</td>'
                    f'<td style="padding:1px 6px">{"&#9679;" if a.in_prior_support else ""}</td>'
                    + (f'<td style="padding:1px 6px">{"&#9679;" if a.in_label_support else ""}</td>' if label else "")
                    + f'<td style="padding:1px 6px;color:#555">{_esc(a.evidence)}</td></tr>')
    aus = (f'<table style="border-collapse:collapse;font-size:12px">{header}{"".join(rows)}</table>' if rows else
           _note(f"No AUs reported ({prior.visual_description or 'the back-end gave no facial data'})"))
    support = [f"S<sub>{_esc(emotion)}</sub> = {_support_text(view.prior_support)}"
               + (f", not reported: {_aus_text(view.missing_support('prior'))}" if view.prior_support else "")]
    if label:
        support.append(f"S<sub>{_esc(label)}</sub> (human) = {_support_text(view.label_support)}"
                       + (f", not reported: {_aus_text(view.missing_support('label'))}" if view.label_support else ""))
    visual = (aus + f'<div style="font-size:12px;margin-top:3px">{"<br>".join(support)}</div>'
              + (f'<div style="font-size:12px;color:#555">{_esc(prior.visual_description)}</div>'
                 if view.aus and prior.visual_description else ""))

    audio = prior.audio
    words = " &middot; ".join(f"{k.replace('_', ' ')}: <b>{_esc(getattr(audio, k))}</b>" for k in
                              ("pitch_level", "pitch_variation", "loudness", "speech_rate", "voice_quality"))
    numbers = " &middot; ".join(f"{_esc(k)} {_esc(v)}" for k, v in view.prosody_numbers.items())
    audio_html = (f'<div style="font-size:12px">{words}</div>'
                  + (f'<div style="font-size:12px;color:#555">measured: {numbers}</div>' if numbers else
                     '<div style="font-size:12px;color:#777">no measured prosody numbers in this prior</div>')
                  + (f'<div style="font-size:12px;color:#555">{_esc(audio.description)}</div>' if audio.description else ""))

    consistency = ("n/a (no support set for this emotion)" if view.au_consistency is None
                   else f"{view.au_consistency:.2f}")
    passes = None if view.au_consistency is None else view.au_consistency >= view.min_au_consistency
    flags = (f'<table style="font-size:12px">'
             f'<tr><td>AU consistency with S<sub>{_esc(emotion)}</sub></td><td>{consistency} '
             f'(needs &ge; {view.min_au_consistency:g}) {_mark(passes, "pass", "fail", "")}</td></tr>'
             f'<tr><td>agrees with the human label</td><td>{_mark(view.agrees_with_label, unknown="n/a (no label)")}</td></tr>'
             f'<tr><td>reliable (policy <code>{_esc(view.policy)}</code>)</td><td>{_mark(view.reliable)}</td></tr>'
             f'</table>')
    body = (f'<div style="font-size:12px;color:#555">{_esc(prior.model)} ({_esc(prior.backend)} back-end)</div>'
            + _section("Face: action units (I_V)", visual)
            + _section("Voice: prosody (I_A)", audio_html)
            + _section("Words: meaning (I_T)", f'<div style="font-size:12px">{_esc(prior.text_semantics)}</div>')
            + _section("Contributions R", weights_bar_html(view.weights))
            + _section("Rationale", f'<div style="font-size:12px;font-style:italic">{_esc(prior.rationale)}</div>')
            + _section("Reliability", flags))
    return _section("Reasoning prior", body)


def _aus_text(aus: list[int]) -> str:
    return ", ".join(f"AU{a}" for a in aus) if aus else "none"
