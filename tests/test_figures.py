"""Figures: fixed class colours, print sizes, embedded fonts, and that each figure draws its inputs."""
from __future__ import annotations

import struct
import warnings

import matplotlib as mpl
import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.container import BarContainer
from matplotlib.image import AxesImage
from matplotlib.text import Text

from mer_lib import figures
from mer_lib.config import MER_CLASSES
from mer_lib.metrics import aggregate_scores, classification_scores
from tests.support.pdf import pdf_fonts

CLASSES = list(MER_CLASSES)
FACS = {"1": "Inner brow raiser", "2": "Outer brow raiser", "4": "Brow lowerer", "6": "Cheek raiser",
        "12": "Lip corner puller", "15": "Lip corner depressor", "26": "Jaw drop"}
SUPPORT = {"neutral": [], "angry": [4], "happy": [6, 12], "sad": [1, 4, 15], "worried": [1, 2, 4],
           "surprise": [1, 2, 26]}


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def tsne_panels(n: int = 300, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASSES), n)
    return {"Without BDCL": {"xy": rng.normal(size=(n, 2)), "labels": labels,
                             "modality": rng.choice(["audio", "video", "text"], n), "annotation": "silhouette 0.05"},
            "With BDCL": {"xy": rng.normal(size=(n, 2)) + labels[:, None] * 3, "labels": labels, "modality": None}}


def au_inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    frequency = {e: {au: float(rng.uniform(0.05, 0.9)) for au in FACS} for e in CLASSES if e != "neutral"}
    return SUPPORT, frequency, FACS


def method_aggregates() -> dict:
    rng = np.random.default_rng(0)

    def agg(acc, seeds):
        runs = []
        for _ in range(seeds):
            y = np.arange(120) % len(CLASSES)
            y_pred = np.where(rng.random(120) < acc, y, (y + 1) % len(CLASSES))
            runs.append(classification_scores(y, y_pred, CLASSES))
        return aggregate_scores(runs)
    return {"Simulated MLLM (zero-shot)": agg(0.4, 1), "Attention (CE)": agg(0.6, 3), "Ours (prior-guided)": agg(0.8, 3)}


def all_figures(size: str) -> dict:
    aggregates = method_aggregates()
    return {
        "fig4_tsne": figures.fig_tsne(tsne_panels(), CLASSES, size=size),
        "fig1_au_map": figures.fig_au_map(*au_inputs(), CLASSES, size=size),
        "fig_confusion": figures.fig_confusion(aggregates["Ours (prior-guided)"]["confusion"], CLASSES,
                                               title="Ours (prior-guided)", size=size),
        "fig_per_class": figures.fig_per_class(aggregates, CLASSES, size=size),
    }


# ---------------------------------------------------------------------------------------------
# Colours and sizes
# ---------------------------------------------------------------------------------------------

def test_class_colours_are_fixed_across_calls_orders_and_subsets():
    full = figures.class_colors(CLASSES)
    assert full == figures.class_colors(CLASSES)
    assert len(set(full.values())) == 6
    assert figures.class_colors(["sad", "happy"]) == {"sad": full["sad"], "happy": full["happy"]}
    assert figures.class_colors(list(reversed(CLASSES))) == full
    assert figures.class_colors(["Happy"])["Happy"] == full["happy"]  # capitalised names too
    palette = {c.lower() for c in figures.COLORBLIND}
    assert set(full.values()) <= palette


def test_other_label_sets_get_distinct_deterministic_colours():
    binary = figures.class_colors(["negative", "positive"])
    assert binary == figures.class_colors(["negative", "positive"]) and len(set(binary.values())) == 2
    mixed = figures.class_colors(["negative", "neutral", "positive"])
    assert mixed["neutral"] == figures.MER_CLASS_COLORS["neutral"]  # a known name keeps its colour
    assert len(set(mixed.values())) == 3
    many = figures.class_colors([f"class{i}" for i in range(15)])
    assert len(set(many.values())) == 15


def test_figure_width_names_and_errors():
    assert figures.figure_width("double") == 4.8 and figures.figure_width("single") == 2.4
    assert figures.figure_width(3.5) == 3.5
    with pytest.raises(ValueError, match="not one of"):
        figures.figure_width("full")


@pytest.mark.parametrize("size", ["single", "double"])
def test_every_figure_fits_its_width_with_print_size_fonts_and_nothing_clipped(size, tmp_path):
    for stem, fig in all_figures(size).items():
        assert fig.get_size_inches()[0] == pytest.approx(figures.WIDTHS[size])
        fig.draw_without_rendering()
        sizes = {t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()}
        assert sizes and min(sizes) >= 7 and max(sizes) <= 9, (stem, sizes)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the clipping check warns; here it must stay silent
            figures.save_figure(fig, f"{stem}_{size}", tmp_path, dpi=40)


def test_saved_png_has_the_pixel_size_of_width_times_dpi_and_pdf_embeds_truetype(tmp_path):
    fig = figures.fig_confusion(np.eye(6, dtype=int) * 10 + 1, CLASSES, size="single")
    pdf, png = figures.save_figure(fig, "fig_confusion", tmp_path, dpi=300)
    assert (pdf.name, png.name) == ("fig_confusion.pdf", "fig_confusion.png")
    width, height = fig.get_size_inches()
    assert png_size(png) == (round(width * 300), round(height * 300)) and png_size(png)[0] == 720
    fig = figures.fig_per_class(method_aggregates(), CLASSES, size="double")
    _, png = figures.save_figure(fig, "fig_per_class", tmp_path, dpi=100)
    assert png_size(png)[0] == 480

    data = pdf.read_bytes()
    assert b"/FontFile2" in data  # TrueType font programs embedded (pdf.fonttype 42)
    assert b"/Type3" not in data
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fig_confusion.pdf", "fig_confusion.png", "fig_per_class.pdf", "fig_per_class.png"]  # no temp files


def test_pdffonts_lists_every_font_embedded_as_truetype(tmp_path):
    pdf, _ = figures.save_figure(figures.fig_confusion(np.eye(6, dtype=int), CLASSES, size="single"), "fig", tmp_path)
    fonts = pdf_fonts(pdf)
    assert fonts and all(f["emb"] == "yes" and "TrueType" in f["type"] for f in fonts), fonts


def test_same_inputs_give_the_same_pdf_bytes(tmp_path):
    """Re-running a notebook with the same numbers rewrites identical files (no date, no layout drift)."""
    def render(stem):
        fig = figures.fig_confusion(np.eye(2, dtype=int) * 5, ["negative", "positive"], title="Sentiment")
        return figures.save_figure(fig, stem, tmp_path)[0].read_bytes()
    assert render("a") == render("b")


def test_clipped_content_is_reported(tmp_path):
    fig = figures.fig_confusion(np.eye(3, dtype=int), ["a", "b", "c"])
    fig.text(1.3, 0.5, "far outside the canvas")
    with pytest.warns(UserWarning, match="outside its"):
        figures.save_figure(fig, "clipped", tmp_path, dpi=40)


# ---------------------------------------------------------------------------------------------
# Each figure draws its inputs
# ---------------------------------------------------------------------------------------------

def test_tsne_colours_points_by_class_and_shares_one_legend():
    rng = np.random.default_rng(1)
    labels = np.array([2] * 50 + [4] * 30 + [-1] * 10)
    panels = {"With BDCL": {"xy": rng.normal(size=(90, 2)), "labels": labels,
                            "modality": np.array(["audio", "text", "video"] * 30), "annotation": "silhouette 0.41"}}
    fig = figures.fig_tsne(panels, CLASSES)
    colors = figures.class_colors(CLASSES)
    drawn = np.concatenate([c.get_facecolors()[:, :3] for c in fig.axes[0].collections if isinstance(c, PathCollection)])
    expected = {tuple(np.round(mpl.colors.to_rgb(colors[c]), 4)) for c in ("happy", "worried")}
    expected.add(tuple(np.round(mpl.colors.to_rgb(figures.UNLABELLED_COLOR), 4)))
    assert {tuple(np.round(c, 4)) for c in drawn} == expected
    assert len(drawn) == 90
    (legend,) = fig.legends
    fig.draw_without_rendering()
    entries = [t for t in legend.get_texts() if t.get_text().strip()]
    # reading order on the page: top row first, left to right; classes first, then modalities
    reading = sorted(entries, key=lambda t: (-round(t.get_window_extent().y0), t.get_window_extent().x0))
    assert [t.get_text() for t in reading] == [*CLASSES, "unlabelled", "audio", "video", "text"]
    rows = {round(t.get_window_extent().y0) for t in entries}
    assert len(rows) == 3  # six per row at double width: 7 class entries on two rows, modalities on a third
    assert fig.axes[0].get_xlabel() == "silhouette 0.41" and fig.axes[0].get_title() == "With BDCL"


def test_tsne_rejects_mismatched_panels_with_the_panel_name():
    with pytest.raises(ValueError, match="panel 'With BDCL'.*labels"):
        figures.fig_tsne({"With BDCL": {"xy": np.zeros((5, 2)), "labels": np.zeros(4, int)}}, CLASSES)
    with pytest.raises(ValueError, match="panel 'X'.*only 2 classes"):
        figures.fig_tsne({"X": {"xy": np.zeros((3, 2)), "labels": np.array([0, 1, 2])}}, ["neg", "pos"])


@pytest.mark.parametrize("size", ["double", "single"])
def test_au_map_shows_frequencies_in_class_order_and_marks_support_sets(size):
    support, frequency, names = au_inputs()
    fig = figures.fig_au_map(support, frequency, names, CLASSES, size=size)
    ax = fig.axes[0]
    (image,) = [a for a in ax.get_children() if isinstance(a, AxesImage)]
    shown = np.ma.filled(image.get_array(), np.nan)
    matrix = shown.T if size == "single" else shown  # half width draws AUs as rows
    aus = sorted(int(a) for a in names)
    assert matrix.shape == (len(CLASSES), len(aus))
    assert np.isnan(matrix[0]).all()  # no priors for neutral: an empty row, not zeros
    for i, emotion in enumerate(CLASSES[1:], start=1):
        np.testing.assert_allclose(matrix[i], [frequency[emotion][str(a)] * 100 for a in aus])
    dots = {tuple(p) for p in ax.collections[0].get_offsets().tolist()}
    expected = {(aus.index(a), i) for i, e in enumerate(CLASSES) for a in support[e]}
    if size == "single":
        expected = {(i, j) for j, i in expected}
    assert dots == {tuple(map(float, d)) for d in expected}
    au_ticks = [t.get_text() for t in (ax.get_yticklabels() if size == "single" else ax.get_xticklabels())]
    assert au_ticks[aus.index(12)] == ("AU12" if size == "single" else "AU12 Lip corner puller")


def test_confusion_is_row_normalised_and_annotated():
    confusion = [[8, 2, 0], [1, 3, 0], [0, 0, 0]]  # the last class has no test sample
    fig = figures.fig_confusion(confusion, ["negative", "neutral", "positive"], title="Sentiment")
    ax = fig.axes[0]
    (image,) = [a for a in ax.get_children() if isinstance(a, AxesImage)]
    shown = np.ma.filled(image.get_array(), np.nan)
    np.testing.assert_allclose(shown[:2], [[80, 20, 0], [25, 75, 0]])
    assert np.isnan(shown[2]).all()
    cells = [t.get_text() for t in ax.texts]
    assert cells == ["80", "20", "0", "25", "75", "0", "–", "–", "–"]
    counts = figures.fig_confusion(confusion, ["negative", "neutral", "positive"], annotate="count")
    assert [t.get_text() for t in counts.axes[0].texts][:3] == ["8", "2", "0"]
    with pytest.raises(ValueError, match="shape"):
        figures.fig_confusion(confusion, CLASSES)


def test_per_class_bars_equal_the_means_with_error_bars_only_over_seeds():
    methods = method_aggregates()
    fig = figures.fig_per_class(methods, CLASSES)
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == len(methods)
    for container, (label, aggregate) in zip(bars, methods.items()):
        heights = [patch.get_height() for patch in container.patches]
        means = [aggregate["per_class_accuracy"][c]["mean"] for c in CLASSES]
        np.testing.assert_allclose(heights, means)
        has_error_bars = container.errorbar is not None
        assert has_error_bars == (aggregate["n_seeds"] > 1), label
    legend_texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend_texts == list(methods)
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES


def test_per_class_leaves_out_a_class_without_test_samples():
    stat = lambda m, s: {"mean": m, "std": s, "values": [m, m]}
    aggregate = {"n_seeds": 2, "per_class_accuracy": {"negative": stat(70.0, 2.0), "positive": stat(None, None)}}
    fig = figures.fig_per_class({"Ours": aggregate}, ["negative", "positive"], size="single")
    (bars,) = [c for c in fig.axes[0].containers if isinstance(c, BarContainer)]
    heights = [p.get_height() for p in bars.patches]
    assert heights[0] == 70.0 and np.isnan(heights[1])
