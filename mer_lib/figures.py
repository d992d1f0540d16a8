"""The paper's figures (MER2024 reasoning-priors paper) in one print-ready style, from plain arrays and results JSON.

- :func:`fig_tsne`: latent space without / with BDCL, coloured by class, marker by modality (paper Figure 4);
- :func:`fig_au_map`: emotions x Action Units, how often each AU appears in the priors of an emotion,
  support-set cells marked (the idea of paper Figure 1);
- :func:`fig_confusion`: row-normalised confusion matrix; :func:`fig_per_class`: per-class accuracy bars.

Every function returns a matplotlib ``Figure`` (not registered with pyplot, so notebooks do not pile
up open figures) and leaves saving to :func:`save_figure`, which writes ``<stem>.pdf`` (vector, fonts
embedded) and ``<stem>.png`` atomically. Files are named after the paper artifact (``fig4_tsne``,
``fig1_au_map``, ``fig_confusion``, ``fig_per_class``).

Sizes follow Springer LNCS: the text block is 122 mm ≈ 4.8 in wide, so ``"double"`` (4.8 in) spans
the text width and ``"single"`` (2.4 in) is half of it, for two panels side by side. Figures are laid
out with constrained layout at exactly that size and saved without ``bbox_inches="tight"``, so
LaTeX includes them at 100 % and the 7-9 pt fonts stay 7-9 pt in print; :func:`save_figure` warns
if anything would be clipped instead.
"""
from __future__ import annotations

import colorsys
import functools
import math
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from . import io

WIDTHS = {"single": 2.4, "double": 4.8}  # inches: half and full LNCS text width (122 mm)

STYLE = {
    # One sans-serif font shipped with matplotlib, so a figure looks the same on every machine.
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "mathtext.fontset": "dejavusans",
    # 7-9 pt at print size (figures are never scaled, see module docstring).
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "figure.titlesize": 9,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.fontsize": 7, "legend.title_fontsize": 7,
    # TrueType fonts embedded in PDF/PS (Type 3 fonts are rejected by many publishers' checks).
    "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none",
    # Thin lines that match 7-8 pt text.
    "axes.linewidth": 0.6, "lines.linewidth": 1.0, "patch.linewidth": 0.5,
    "xtick.major.width": 0.6, "ytick.major.width": 0.6, "xtick.major.size": 2.5, "ytick.major.size": 2.5,
    "xtick.major.pad": 2, "ytick.major.pad": 2, "axes.labelpad": 2, "axes.titlepad": 3,
    "axes.spines.top": False, "axes.spines.right": False,
    "legend.frameon": False, "legend.handletextpad": 0.3, "legend.columnspacing": 1.0,
    "legend.borderaxespad": 0.2, "legend.handlelength": 1.2,
    "figure.dpi": 150, "savefig.dpi": 300,
}

# MER's six classes always get these colours (seaborn's colourblind palette, which is Okabe-Ito based),
# chosen so the colour fits the emotion: neutral grey, angry vermillion, happy orange, sad blue.
MER_CLASS_COLORS = {
    "neutral": "#949494", "angry": "#d55e00", "happy": "#de8f05",
    "sad": "#0173b2", "worried": "#cc78bc", "surprise": "#029e73",
}
# Other label sets (e.g. binary sentiment) take colours from the same palette, in order, skipping those
# already used in the set.
COLORBLIND = ["#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc",
              "#ca9161", "#fbafe4", "#949494", "#ece133", "#56b4e9"]
UNLABELLED_COLOR = "#d9d9d9"  # t-SNE points with label -1 (the unlabelled pool)
# Fonts that draw Chinese (DejaVu Sans cannot): the first one installed backs DejaVu Sans up in text that
# holds Chinese (the subtitles on the inspector's exported page). Family names as matplotlib lists them,
# then the file names to look for in the system's font folders (see cjk_font).
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "Noto Sans CJK JP", "SimHei", "Microsoft YaHei", "PingFang SC",
             "Droid Sans Fallback", "AR PL UMing CN")
CJK_FONT_FILES = ("notosanscjk", "notosanssc", "sourcehansans", "wqy-", "droidsansfallback", "uming", "simhei",
                  "msyh", "pingfang")
CJK_FONT_FIX = "install one (Debian, Ubuntu: apt-get install fonts-noto-cjk; macOS and Windows have one)"
MODALITY_MARKERS = {"audio": "o", "video": "s", "text": "^", "A": "o", "V": "s", "T": "^"}
EXTRA_MARKERS = ["D", "v", "P", "X", "*", "<", ">"]


@contextmanager
def figure_style() -> Iterator[None]:
    """The workspace's figure style (fonts, sizes, embedded TrueType) for the figures made or saved inside."""
    with mpl.rc_context(STYLE):
        yield


def figure_width(size: str | float) -> float:
    """Width in inches: ``"single"`` (2.4, half the LNCS text width), ``"double"`` (4.8) or a number."""
    if isinstance(size, str):
        if size not in WIDTHS:
            raise ValueError(f"figure size {size!r} is not one of {sorted(WIDTHS)} (or a width in inches).")
        return WIDTHS[size]
    return float(size)


def class_colors(classes: Sequence[str]) -> dict[str, str]:
    """A colour per class: MER's six classes always the same (whatever subset or order), any other
    label deterministically from the colourblind palette (by position among the unknown labels)."""
    colors = {c: MER_CLASS_COLORS[c.lower()] for c in classes if c.lower() in MER_CLASS_COLORS}
    free = [c for c in COLORBLIND if c not in colors.values()]
    unknown = [c for c in classes if c not in colors]
    if len(unknown) > len(free):  # many classes: evenly spaced hues after the palette runs out
        n_extra = len(unknown) - len(free)
        free += [mpl.colors.to_hex(colorsys.hls_to_rgb(i / n_extra, 0.55, 0.65)) for i in range(n_extra)]
    colors.update(zip(unknown, free))
    return {c: colors[c] for c in classes}


@functools.cache
def cjk_font() -> str | None:
    """The family name of an installed font that draws Chinese (first of :data:`CJK_FONTS`), or None,
    with a warning once per process that Chinese text is left out of figures until one is installed.

    Matplotlib lists fonts once, in a cache that outlives installs: where the list has none, the
    system's font folders are searched once more for CJK font files (cheap: file names only)."""
    def known() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FONTS if name in names), None)

    if known() is None:
        for path in font_manager.findSystemFonts():
            if any(key in Path(path).name.lower() for key in CJK_FONT_FILES):
                font_manager.fontManager.addfont(path)
    found = known()
    if found is None:
        warnings.warn(f"no CJK font for matplotlib: figures say where Chinese text was left out. Fix: "
                      f"{CJK_FONT_FIX}.", stacklevel=2)
    return found


def save_figure(fig: Figure, stem: str, out_dir: str | os.PathLike, dpi: int = 300) -> list[Path]:
    """Write ``<stem>.pdf`` (vector, TrueType fonts embedded) and ``<stem>.png`` (``dpi``) atomically,
    at the figure's exact size; warns if some text or artist falls outside the figure."""
    out_dir = Path(out_dir)
    paths = [out_dir / f"{stem}.pdf", out_dir / f"{stem}.png"]
    with figure_style(), _frozen_layout(fig):
        _warn_if_clipped(fig, stem)
        for path in paths:
            fmt = path.suffix[1:]
            # No creation date in the PDF: re-running a notebook with the same numbers gives the same bytes.
            metadata = {"CreationDate": None} if fmt == "pdf" else None
            with io.atomic_path(path, suffix=path.suffix) as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata)
    return paths


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------

def fig_tsne(panels: Mapping[str, Mapping], classes: Sequence[str], size: str | float = "double",
             seed: int = 0) -> Figure:
    """Paper Figure 4: 2-D embeddings (t-SNE/UMAP) side by side, coloured by class, marker by modality.

    ``panels``: ``{title: {"xy": (n, 2), "labels": (n,) int (-1: unlabelled), "modality": (n,) str or
    None, optional "annotation": str shown under the panel, e.g. a silhouette score}}``. Points are drawn
    in one shuffled order (``seed``) so no class hides another just by being drawn last.
    """
    colors = class_colors(classes)
    width = figure_width(size)
    n_panels = max(1, len(panels))
    has_modality = any(p.get("modality") is not None for p in panels.values())
    legend_cols = 6 if width > 3 else 3
    legend_rows = math.ceil((len(classes) + 1) / legend_cols) + (1 if has_modality else 0)
    panel_width = width / n_panels
    height = panel_width + 0.2 + 0.16 * legend_rows
    with figure_style():
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(1, n_panels, squeeze=False)[0]
        modalities_seen: list[str] = []
        for ax, (title, panel) in zip(axes, panels.items()):
            xy, labels, modality = _check_panel(title, panel, len(classes))
            order = np.random.default_rng(seed).permutation(len(labels))
            order = order[np.argsort(labels[order] >= 0, kind="stable")]  # unlabelled points underneath
            # dots shrink with crowding: about the same inked share of the panel at any n
            point_size = float(np.clip(1700 * panel_width ** 2 / max(len(labels), 1), 0.5, 9.0))
            point_colors = np.array([colors[classes[k]] if k >= 0 else UNLABELLED_COLOR for k in labels])
            groups = [(None, order)] if modality is None else [
                (m, order[modality[order] == m]) for m in _modality_order(modality)]
            for m, idx in groups:
                if m is not None and m not in modalities_seen:
                    modalities_seen.append(m)
                ax.scatter(xy[idx, 0], xy[idx, 1], s=point_size, c=point_colors[idx], linewidths=0,
                           marker=_marker(m, modalities_seen), alpha=0.8, rasterized=len(labels) > 3000)
            ax.set_title(title)
            ax.set(xticks=[], yticks=[], aspect="equal")
            ax.set_aspect("equal", adjustable="datalim")
            for side in ("top", "right"):
                ax.spines[side].set_visible(True)
            if panel.get("annotation"):
                ax.set_xlabel(str(panel["annotation"]), fontsize=7)
        class_handles = [Line2D([], [], ls="", marker="o", ms=4, mec="none", color=colors[c], label=c)
                         for c in classes]
        if any((np.asarray(p["labels"]) < 0).any() for p in panels.values()):
            class_handles.append(Line2D([], [], ls="", marker="o", ms=4, mec="none", color=UNLABELLED_COLOR,
                                        label="unlabelled"))
        modality_handles = [Line2D([], [], ls="", marker=_marker(m, modalities_seen), ms=4, mfc="none",
                                   mec="0.25", label=m) for m in modalities_seen]
        ncol = min(legend_cols, max(len(class_handles), len(modality_handles)))
        fig.legend(handles=_row_major([class_handles, modality_handles], ncol), loc="outside lower center",
                   ncol=ncol, handletextpad=0.1)
    return fig


def fig_au_map(au_support_sets: Mapping[str, Sequence[int]], au_frequency: Mapping[str, Mapping],
               facs_names: Mapping, classes: Sequence[str], size: str | float = "double",
               with_names: bool | None = None, min_share: float = 0.0) -> Figure:
    """The idea of paper Figure 1: how often each Action Unit appears in the priors of each emotion.

    Emotions in class order against AUs by number (those with a share >= ``min_share`` somewhere, and
    every support-set AU); colour: share of that emotion's priors naming the AU (%); a dot marks the
    AUs in the emotion's support set S_c. At double width emotions are rows and AUs columns (labelled
    with FACS names if ``with_names``, the default there); at half width the map is transposed (AUs as
    rows), so twenty AU labels stay legible. ``au_frequency`` is ``{emotion: {au: share 0..1}}``.
    """
    width = figure_width(size)
    transposed = width < 3
    with_names = not transposed if with_names is None else with_names
    names = {int(k): v for k, v in facs_names.items()}
    support = {e: {int(a) for a in aus} for e, aus in au_support_sets.items()}
    shares = {e: {int(a): float(s) for a, s in freq.items()} for e, freq in au_frequency.items()}
    aus = sorted({a for f in shares.values() for a, s in f.items() if s > 0 and s >= min_share}
                 | {a for s in support.values() for a in s})
    matrix = np.array([[shares[e].get(a, 0.0) * 100 if e in shares else np.nan for a in aus]
                       for e in classes]).reshape(len(classes), len(aus))  # (emotions, AUs)
    au_labels = [f"AU{a} {names[a]}" if with_names and a in names else f"AU{a}" for a in aus]
    marked = [(i, j) for i, e in enumerate(classes) for j, a in enumerate(aus) if a in support.get(e, ())]
    longest = 0.055 * max((len(t) for t in au_labels), default=4)  # inches a rotated label needs
    if transposed:
        height = 0.15 * len(aus) + 0.055 * max((len(c) for c in classes), default=4) + 0.55
    else:
        height = 0.2 * len(classes) + longest + 0.55
    with figure_style():
        fig = Figure(figsize=(width, height), layout="constrained")
        ax = fig.subplots()
        cmap = mpl.colormaps["Blues"].with_extremes(bad="#f0f0f0")
        shown = matrix.T if transposed else matrix
        image = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, vmin=0,
                          vmax=max(np.nanmax(matrix, initial=0.0), 1.0), aspect="auto", interpolation="nearest")
        if marked:
            rows, cols = zip(*((j, i) if transposed else (i, j) for i, j in marked))
            ax.scatter(cols, rows, s=9, c="white", edgecolors="black", linewidths=0.6, zorder=3)
        if transposed:
            ax.set_yticks(range(len(aus)), au_labels)
            ax.set_xticks(range(len(classes)), list(classes), rotation=45, ha="right", rotation_mode="anchor")
        else:
            ax.set_xticks(range(len(aus)), au_labels, rotation=90)
            ax.set_yticks(range(len(classes)), list(classes))
        ax.tick_params(length=0)
        ax.spines[:].set_visible(False)
        bar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.01, aspect=15 if not transposed else 25)
        bar.set_label("Priors naming the AU (%)", fontsize=7)
        bar.outline.set_linewidth(0.4)
        ax.legend(handles=[Line2D([], [], ls="", marker="o", ms=3.5, mfc="white", mec="black", mew=0.6,
                                  label="AU in the emotion's support set $S_c$")],
                  loc="lower right", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.1)
    return fig


def fig_confusion(confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str | None = None,
                  size: str | float = "single", annotate: str = "percent") -> Figure:
    """Row-normalised confusion matrix (rows: truth, columns: prediction) as percentages of each true
    class; cells annotated with the percentage (``annotate="percent"``) or the count (``"count"``)."""
    counts = np.asarray(confusion, dtype=float)
    if counts.shape != (len(classes), len(classes)):
        raise ValueError(f"confusion matrix has shape {counts.shape} but there are {len(classes)} classes "
                         f"({list(classes)}); pass the matrix and class list of the same results file.")
    if annotate not in ("percent", "count"):
        raise ValueError(f"annotate must be 'percent' or 'count', got {annotate!r}.")
    support = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        percent = np.where(support > 0, 100 * counts / support, np.nan)
    width = figure_width(size)
    height = min(width * 0.92, 3.2) + (0.15 if title else 0)  # a square matrix; no taller than 3.2 in
    with figure_style():
        fig = Figure(figsize=(width, height), layout="constrained")
        ax = fig.subplots()
        cmap = mpl.colormaps["Blues"].with_extremes(bad="#f0f0f0")
        image = ax.imshow(np.ma.masked_invalid(percent), cmap=cmap, vmin=0, vmax=100, interpolation="nearest")
        text_size = 7 if len(classes) <= 6 or width > 3 else 6
        for i in range(len(classes)):
            for j in range(len(classes)):
                if np.isnan(percent[i, j]):
                    text = "–"
                else:
                    text = f"{percent[i, j]:.0f}" if annotate == "percent" else f"{int(counts[i, j])}"
                dark = not np.isnan(percent[i, j]) and percent[i, j] > 55
                ax.text(j, i, text, ha="center", va="center", fontsize=text_size,
                        color="white" if dark else "0.15")
        ax.set_xticks(range(len(classes)), list(classes), rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(len(classes)), list(classes))
        ax.tick_params(length=0)
        ax.spines[:].set_visible(False)
        ax.set_xlabel("Predicted")
        ax.set_ylabel("True" + (" (row %)" if annotate == "percent" else ""))
        if title:
            ax.set_title(title)
        if annotate == "count":  # the cells show counts, so say what the shading is
            bar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02, aspect=20)
            bar.set_label("Share of the true class (%)", fontsize=7)
            bar.outline.set_linewidth(0.4)
    return fig


def fig_per_class(methods: Mapping[str, Mapping], classes: Sequence[str], size: str | float = "double",
                  ylabel: str = "Accuracy (%)") -> Figure:
    """Grouped bars of per-class accuracy, one bar per method, with std-over-seeds error bars.

    ``methods``: ``{label: AGGREGATE}`` (:func:`mer_lib.metrics.aggregate_scores`); a class with no
    test sample (mean None) gets no bar; single runs get no error bar. Methods are shaded light to dark
    in the given order (baseline first, ours last), so they do not borrow the class colours.
    """
    width = figure_width(size)
    n = max(1, len(methods))
    colors = [mpl.colors.to_hex(c) for c in mpl.colormaps["Blues"](np.linspace(0.3, 0.95, n))] if n > 1 \
        else ["#0173b2"]
    legend_cols = min(n, 4 if width > 3 else 1)  # long method names: one per row at half width
    height = (2.0 if width > 3 else 1.9) + 0.16 * math.ceil(n / legend_cols)
    bar_width = 0.8 / n
    with figure_style():
        fig = Figure(figsize=(width, height), layout="constrained")
        ax = fig.subplots()
        x = np.arange(len(classes))
        for k, (label, aggregate) in enumerate(methods.items()):
            per_class = aggregate.get("per_class_accuracy") or {}
            means = np.array([_or_nan((per_class.get(c) or {}).get("mean")) for c in classes])
            stds = np.array([_or_nan((per_class.get(c) or {}).get("std")) for c in classes])
            if (aggregate.get("n_seeds") or 1) <= 1:
                stds = None
            ax.bar(x + (k - (n - 1) / 2) * bar_width, means, bar_width * 0.92, color=colors[k], label=label,
                   edgecolor="0.25", linewidth=0.3,
                   yerr=stds, error_kw={"elinewidth": 0.6, "capsize": 1.2, "capthick": 0.6, "ecolor": "0.2"})
        ax.set_xticks(x, list(classes), rotation=30 if width < 3 and len(classes) > 4 else 0,
                      ha="right" if width < 3 and len(classes) > 4 else "center")
        ax.set_ylim(0, 100)
        ax.set_ylabel(ylabel)
        ax.yaxis.grid(True, lw=0.4, color="0.88")
        ax.set_axisbelow(True)
        fig.legend(loc="outside upper center", ncol=legend_cols)
    return fig


def fig_teacher_sensitivity(rows: Sequence[Mapping], size: str | float = "double") -> Figure:
    """Stage 2's gain in weighted F1 over stage 1 (left) and over the shuffled-prior control (right)
    against the teacher's mean per-class accuracy, one line per error sharing; error bars: std over
    seeds (:func:`mer_lib.sensitivity.teacher_sensitivity`'s rows)."""
    width = figure_width(size)
    sharings = sorted({r["error_sharing"] for r in rows})
    colors = dict(zip(sharings, COLORBLIND))
    with figure_style():
        fig = Figure(figsize=(width, 2.4), layout="constrained")
        axes = fig.subplots(1, 2)
        for ax, key, title in ((axes[0], "gain_over_stage1", "over stage 1"),
                               (axes[1], "gain_over_control", "over the shuffled control")):
            for sharing in sharings:
                part = sorted((r for r in rows if r["error_sharing"] == sharing), key=lambda r: r["teacher"]["uar"])
                x = [r["teacher"]["uar"] for r in part]
                y = [_or_nan(r[key]["mean"]) for r in part]
                err = [_or_nan(r[key]["std"]) for r in part]
                ax.errorbar(x, y, yerr=err, color=colors[sharing], marker="o", ms=3, lw=1.0, capsize=1.5,
                            elinewidth=0.6, label=f"error sharing {sharing:g}")
            ax.axhline(0.0, color="0.4", lw=0.6, ls="--")
            ax.set_title(title)
            ax.set_xlabel("teacher: UAR of c* (%)")
            ax.set_ylabel("stage 2's WF1 gain (points)")
            ax.yaxis.grid(True, lw=0.4, color="0.88")
            ax.set_axisbelow(True)
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncol=len(sharings))
    return fig


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def _check_panel(title: str, panel: Mapping, n_classes: int):
    xy = np.asarray(panel["xy"], dtype=float)
    labels = np.asarray(panel["labels"]).astype(int)
    modality = None if panel.get("modality") is None else np.asarray(panel["modality"]).astype(str)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"t-SNE panel '{title}': xy must have shape (n, 2), got {xy.shape}.")
    if labels.shape != (len(xy),) or (modality is not None and modality.shape != (len(xy),)):
        raise ValueError(f"t-SNE panel '{title}': xy has {len(xy)} points but labels have shape {labels.shape}"
                         + ("" if modality is None else f" and modality {modality.shape}") + "; pass one per point.")
    if len(labels) and labels.max() >= n_classes:
        raise ValueError(f"t-SNE panel '{title}': label {labels.max()} but only {n_classes} classes given; "
                         "pass the class list the labels index into.")
    return xy, labels, modality


def _row_major(groups: list[list[Line2D]], ncol: int) -> list[Line2D]:
    """Legend entries reordered so a legend (filled column by column) reads row by row, each group
    starting on a new row (classes first, then modalities); gaps are invisible entries."""
    rows = [group[i:i + ncol] for group in groups for i in range(0, len(group), ncol)]
    blank = Line2D([], [], ls="", marker="", label=" ")
    grid = [row + [blank] * (ncol - len(row)) for row in rows]
    return [grid[r][c] for c in range(ncol) for r in range(len(grid))]


def _modality_order(modality: np.ndarray) -> list[str]:
    """Known modalities in a fixed order (audio, video, text), then others in order of appearance."""
    present = list(dict.fromkeys(modality.tolist()))
    return [m for m in MODALITY_MARKERS if m in present] + [m for m in present if m not in MODALITY_MARKERS]


def _marker(modality: str | None, seen: list[str]) -> str:
    if modality is None:
        return "o"
    if modality in MODALITY_MARKERS:
        return MODALITY_MARKERS[modality]
    others = [m for m in seen if m not in MODALITY_MARKERS]
    return EXTRA_MARKERS[others.index(modality) % len(EXTRA_MARKERS)] if modality in others else "o"


def _or_nan(x) -> float:
    return math.nan if x is None else float(x)


@contextmanager
def _frozen_layout(fig: Figure) -> Iterator[None]:
    """Lay the figure out once and keep that layout for every file saved inside.

    Constrained layout moves artists by fractions of a point on every draw, so without this the PDF
    and the PNG would differ slightly and each save would give different bytes.
    """
    engine = fig.get_layout_engine()
    if engine is None:
        yield
        return
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    try:
        yield
    finally:
        fig.set_layout_engine(engine)


def _warn_if_clipped(fig: Figure, stem: str, tolerance_in: float = 0.02) -> None:
    """Warn when drawn content reaches outside the figure (it would be cut off in the saved file)."""
    fig.draw_without_rendering()
    box = fig.get_tightbbox()  # inches
    width, height = fig.get_size_inches()
    overflow = max(-box.x0, -box.y0, box.x1 - width, box.y1 - height)
    if overflow > tolerance_in:
        warnings.warn(f"figure '{stem}': content reaches {overflow:.2f} in outside its {width:.1f} x "
                      f"{height:.1f} in canvas and is clipped in the saved file; give it more room "
                      "(a larger size, fewer or shorter labels).", stacklevel=3)
