"""Pictures of one clip: the panel's frame strip and waveform, and the exported page (PDF/PNG).

:func:`view_figure` draws a :class:`~.view.ClipView` (and its decoded media, if any) as one
figure at the LNCS text width, in the workspace's figure style (:mod:`mer_lib.figures`); it
depends on its arguments only, never on widget state. :func:`export_view` saves it as
``inspector_<clip>.pdf`` and ``.png`` with :func:`mer_lib.figures.save_figure`.

Chinese subtitles need a CJK font, which matplotlib's DejaVu Sans lacks; one found on the system
(Noto Sans CJK, WenQuanYi, ...; :func:`mer_lib.figures.cjk_font`) draws them, and without one the
page says the Chinese line was left out and how to install a font, rather than printing empty boxes.
"""
from __future__ import annotations

import io
import os
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image as PILImage

from ..figures import CJK_FONT_FIX, cjk_font, class_colors, figure_style, figure_width, save_figure
from .media import ClipMedia, waveform_envelope
from .view import MODALITY_COLORS, ClipView

TEXT_PT = 6.5  # font size of the page's text block
LINE_PT = 8.6  # its line pitch
STRIP_HEIGHT_IN = 0.75  # frame strip height on the page
WAVE_HEIGHT_IN = 0.8  # waveform band height on the page (with its time axis)


def frame_strip(frames: list[np.ndarray]) -> np.ndarray:
    """(H, sum W, 3) uint8: the frames side by side, cropped to a common height."""
    height = min(f.shape[0] for f in frames)
    return np.concatenate([f[:height] for f in frames], axis=1)


def _draw_strip(ax, media: ClipMedia) -> None:
    strip = frame_strip(media.frames)
    ax.imshow(strip, interpolation="bilinear")
    width = strip.shape[1] / len(media.frames)
    ax.set_xticks([(i + 0.5) * width for i in range(len(media.frames))],
                  [f"{t:.1f} s" for t in media.frame_times])
    ax.set_yticks([])
    ax.tick_params(length=0, pad=1)
    ax.spines[:].set_visible(False)


def _draw_waveform(ax, media: ClipMedia) -> None:
    low, high = waveform_envelope(media.audio)
    seconds = np.linspace(0, len(media.audio) / media.sample_rate, len(low))
    ax.fill_between(seconds, low, high, color="#0173b2", linewidth=0)
    ax.set_xlim(0, max(seconds[-1] if len(seconds) else 0, 1e-3))
    peak = float(np.abs(media.audio).max()) if len(media.audio) else 1.0
    ax.set_ylim(-max(peak, 1e-3), max(peak, 1e-3))
    ax.set_yticks([])
    ax.set_xlabel("time (s)", labelpad=1)
    ax.spines[["left", "top", "right"]].set_visible(False)


PANEL_DPI = 110  # resolution of the panel's picture (about the width of half a notebook)


def media_figure(media: ClipMedia, width_in: float = 5.2, columns: int = 3) -> Figure | None:
    """The panel's picture of a clip: its frames in a grid of ``columns`` over the waveform; None
    when nothing decoded.

    Laid out by hand (no layout engine) and with the frames shrunk to their size on screen first:
    drawn on every move to a new clip, it must take a fraction of the decoding time.
    """
    has_audio = media.audio is not None and len(media.audio) > 0
    frames = media.frames
    if not (frames or has_audio):
        return None
    columns = min(columns, max(1, len(frames)))
    rows = -(-len(frames) // columns)  # ceil
    gap, label = 0.05, 0.15  # inches between frames, and for a frame's time above it
    cell_width = (width_in - gap * (columns - 1)) / columns
    cell_height = cell_width * frames[0].shape[0] / frames[0].shape[1] if frames else 0.0
    wave_height, axis_room = (0.55, 0.3) if has_audio else (0.0, 0.0)
    height = rows * (cell_height + label) + (gap + wave_height + axis_room if has_audio else 0.0)
    pixels = (round(cell_width * PANEL_DPI), round(cell_height * PANEL_DPI))
    with figure_style():
        fig = Figure(figsize=(width_in, height))
        for i, (frame, time) in enumerate(zip(frames, media.frame_times)):
            row, column = divmod(i, columns)
            top = height - row * (cell_height + label) - label
            ax = fig.add_axes((column * (cell_width + gap) / width_in, (top - cell_height) / height,
                               cell_width / width_in, cell_height / height))
            ax.imshow(np.asarray(PILImage.fromarray(frame).resize(pixels, PILImage.LANCZOS)),
                      interpolation="nearest", aspect="auto")
            ax.set_axis_off()
            ax.set_title(f"{time:.1f} s", fontsize=7, pad=1)
        if has_audio:
            margin = 0.1 / width_in  # room for the first and last tick label
            _draw_waveform(fig.add_axes((margin, axis_room / height, 1 - 2 * margin, wave_height / height)), media)
    return fig


def figure_png(fig: Figure, dpi: int = PANEL_DPI) -> bytes:
    """A figure as PNG bytes (for an ``ipywidgets.Image``)."""
    buffer = io.BytesIO()
    with figure_style():
        fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _text_lines(view: ClipView, chars: int) -> list[tuple[str, dict]]:
    """The page's text block as (line, text style) pairs, wrapped to ``chars`` characters."""
    lines: list[tuple[str, dict]] = []

    def add(text: str, indent: str = "", **style) -> None:
        for k, part in enumerate(textwrap.wrap(text, chars, subsequent_indent=indent) or [""]):
            lines.append((part, style))

    def heading(text: str) -> None:
        lines.append((text, {"weight": "bold"}))

    heading("Subtitle")
    add(f"EN: {view.subtitle_english or '(none)'}", "     ")
    if view.subtitle_chinese.strip():
        if cjk_font() is not None:
            add(f"ZH: {view.subtitle_chinese}", "     ", family=["DejaVu Sans", cjk_font()])
        else:
            add(f"ZH: (left out: this machine has no CJK font to draw Chinese with; the panel shows it. Fix: "
                f"{CJK_FONT_FIX}.)", "     ", color="0.45")
    prior = view.prior
    if prior is None:
        heading("Reasoning prior")
        add(view.prior_note, color="0.45")
        return lines
    heading(f"Reasoning prior ({prior.model}): c* = {prior.emotion}")
    tags = f"✓ = in S({prior.emotion}) of c*" + (f";  ◆ = in S({view.label}) of the human label" if view.label else "")
    add(f"Face (I_V), action units [{tags}]:")
    if not view.aus:
        add(f"    none reported ({prior.visual_description})", color="0.45")
    for a in view.aus:
        marks = ("✓" if a.in_prior_support else " ") + ("◆" if a.in_label_support else " ")
        intensity = "" if a.intensity is None else f" ({a.intensity:.1f})"
        color = "#1a7f37" if a.in_prior_support or a.in_label_support else "0.15"
        add(f"  {marks} AU{a.au} {a.name}{intensity}: {a.evidence}", "        ", color=color)
    missing = view.missing_support("prior")
    if view.prior_support:
        add(f"    S({prior.emotion}) AUs not reported: {', '.join(f'AU{x}' for x in missing) or 'none'}")
    if view.label and view.label_support:
        missing = view.missing_support("label")
        add(f"    S({view.label}) AUs not reported: {', '.join(f'AU{x}' for x in missing) or 'none'}")
    audio = prior.audio
    add(f"Voice (I_A): pitch {audio.pitch_level}, variation {audio.pitch_variation}, loudness {audio.loudness}, "
        f"rate {audio.speech_rate}, quality {audio.voice_quality}. {audio.description}".strip(), "    ")
    if view.prosody_numbers:
        add("    measured: " + "; ".join(f"{k} {v}" for k, v in view.prosody_numbers.items()), "    ")
    add(f"Words (I_T): {prior.text_semantics}", "    ")
    add(f"Rationale: {prior.rationale}", "    ", style="italic")
    return lines


def _draw_lines(ax, lines: list[tuple[str, dict]]) -> None:
    ax.axis("off")
    for i, (text, style) in enumerate(lines):
        ax.annotate(text, xy=(0, 1), xycoords="axes fraction", xytext=(4, -2 - i * LINE_PT),
                    textcoords="offset points", va="top", ha="left", fontsize=TEXT_PT, **style)


def _draw_probabilities(ax, view: ClipView) -> None:
    classes = list(view.classes)
    y = np.arange(len(classes))
    if not view.predictions:
        ax.axis("off")
        ax.text(0, 1, textwrap.fill(view.predictions_note, 45), va="top", fontsize=TEXT_PT, color="0.45",
                transform=ax.transAxes)
        return
    colors = class_colors(classes)
    height = 0.8 / len(view.predictions)
    for k, prediction in enumerate(view.predictions):
        values = [prediction.probabilities[c] for c in classes]
        ax.barh(y - 0.4 + (k + 0.5) * height, values, height * 0.9, color=[colors[c] for c in classes],
                alpha=0.45 if k == 0 and len(view.predictions) > 1 else 1.0, label=prediction.stage)
    ax.set_yticks(y, [c + (" (human)" if c == view.label else "") for c in classes])
    for tick, c in zip(ax.get_yticklabels(), classes):
        if c == view.label:
            tick.set_fontweight("bold")
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability" + ("  (light: stage 1, dark: stage 2)" if len(view.predictions) > 1 else
                                   f"  ({view.predictions[0].stage})"))


def _draw_weights_and_flags(ax, view: ClipView) -> None:
    ax.axis("off")
    if view.prior is None:
        return
    left = 0.0
    for modality, share in view.weights.items():
        ax.barh(0.82, share, 0.16, left=left, color=MODALITY_COLORS[modality], transform=ax.transAxes)
        left += share
    ax.text(0, 0.66, "   ".join(f"{m} {w:.0%}" for m, w in view.weights.items()), transform=ax.transAxes,
            va="top", fontsize=TEXT_PT)
    ax.text(0, 1.0, "Contributions R", transform=ax.transAxes, va="bottom", fontsize=TEXT_PT, weight="bold")
    consistency = "n/a" if view.au_consistency is None else f"{view.au_consistency:.2f}"
    agrees = {None: "n/a", True: "yes", False: "no"}[view.agrees_with_label]
    flags = (f"AU consistency {consistency} (needs ≥ {view.min_au_consistency:g})\n"
             f"agrees with human label: {agrees}\n"
             f"reliable ({view.policy}): {'yes' if view.reliable else 'no'}")
    ax.text(0, 0.42, flags, transform=ax.transAxes, va="top", fontsize=TEXT_PT, linespacing=1.35)


def view_figure(view: ClipView, media: ClipMedia | None = None, size: str | float = "double") -> Figure:
    """One clip as a page: title, frame strip, waveform, predictions, R and reliability, the prior in words.

    Each band is a subfigure with its own layout, so the text block spans the page whatever the
    tick labels of the probability chart need, and its height is its line count.
    """
    width = figure_width(size)
    chars = int(width * 72 / (TEXT_PT * 0.58))  # DejaVu Sans averages ~0.55 em per character
    lines = _text_lines(view, chars)
    for note in (view.video_note, *(media.problems if media else [])):
        if note:
            lines += [(part, {"color": "0.45"}) for part in textwrap.wrap(note, chars)]
    has_frames = media is not None and bool(media.frames)
    has_audio = media is not None and media.audio is not None and len(media.audio) > 0
    bands = ["title"] + (["strip"] if has_frames else []) + (["wave"] if has_audio else []) + ["scores", "text"]
    heights = {"title": 0.3, "strip": STRIP_HEIGHT_IN, "wave": WAVE_HEIGHT_IN, "scores": 1.25,
               "text": (len(lines) + 0.6) * LINE_PT / 72}
    with figure_style():
        fig = Figure(figsize=(width, sum(heights[b] for b in bands)), layout="constrained")
        subfigures = fig.subfigures(len(bands), 1, height_ratios=[heights[b] for b in bands], hspace=0)
        band = dict(zip(bands, np.atleast_1d(subfigures)))
        title = f"{view.name}  ·  {view.split}  ·  human: {view.label or 'unlabelled'}  ·  prior: " \
                f"{view.prior_emotion or 'none'}"
        band["title"].text(0.5, 0.5, title, ha="center", va="center", fontsize=8, weight="bold")
        if has_frames:
            _draw_strip(band["strip"].subplots(), media)
        if has_audio:
            _draw_waveform(band["wave"].subplots(), media)
        left, right = band["scores"].subplots(1, 2, width_ratios=[1.25, 1])
        _draw_probabilities(left, view)
        _draw_weights_and_flags(right, view)
        _draw_lines(band["text"].add_axes((0, 0, 1, 1)), lines)  # outside the layout: placed by points
    return fig


def export_view(view: ClipView, media: ClipMedia | None, figures_dir: str | os.PathLike) -> list[Path]:
    """Write ``<figures_dir>/inspector_<clip>.pdf`` and ``.png``; returns their paths."""
    folder = Path(figures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return save_figure(view_figure(view, media), f"inspector_{view.name}", folder)
