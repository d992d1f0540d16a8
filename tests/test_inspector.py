"""The prior inspector without a browser: filters, navigation, views, export, driven through widget values."""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text
from PIL import Image

from mer_lib import figures
from mer_lib.config import AUDIO_SAMPLE_RATE, MER_CLASSES
from mer_lib.data import Dataset
from mer_lib.inspector import (
    ClipTable,
    Filters,
    Inspector,
    InspectorData,
    InspectorError,
    clip_view,
    clips_dataset,
    filter_rows,
    find_row,
    load_inspector_data,
    load_media,
    step,
)
from mer_lib.inspector import media as media_module
from mer_lib.inspector.render import export_view, view_figure
from mer_lib.inspector.view import outcome_html, prior_html
from mer_lib.priors import ActionUnit, AudioCues, Prior, generate_for_dataset, make_backend
from tests.support.media import write_clips
from tests.support.pdf import pdf_fonts

CLASSES = tuple(MER_CLASSES)  # neutral, angry, happy, sad, worried, surprise

# The toy set: (name, split, human label or "", prior's emotion or None, prior AUs, stage 1, stage 2)
PLANTED = [
    ("c00", "train_corpus", "neutral", "neutral", [], "neutral", "neutral"),
    ("c01", "train_corpus", "angry", "sad", [1, 4, 15], "angry", "sad"),  # disagrees; AU4 is in S_angry too
    ("c02", "train_corpus", "happy", "happy", [6, 12], "happy", "happy"),
    ("c03", "train_corpus", "sad", "sad", [12], "worried", "sad"),  # agrees but AU-inconsistent: unreliable
    ("c04", "train_corpus", "worried", "surprise", [1, 2], "worried", "worried"),  # disagrees
    ("c05", "test_corpus", "surprise", None, [], "happy", "happy"),  # no prior; model wrong
    ("c06", "test_corpus", "angry", "angry", [4, 5, 7], "sad", "angry"),  # changed its mind, to the truth
    ("c07", "test_corpus", "happy", "happy", [6], "happy", "surprise"),  # changed its mind, wrongly
    ("c08", "unlabelled", "", "sad", [1, 4, 15], None, None),  # no label, no prediction
    ("c09", "unlabelled", "", None, [], None, None),
]
NAMES = [row[0] for row in PLANTED]


def make_prior(name: str, emotion: str, aus: list[int], **audio_numbers) -> Prior:
    return Prior(name=name, emotion=emotion,
                 visual_aus=[ActionUnit(au=a, intensity=2.0, evidence=f"seen {a}") for a in aus],
                 visual_description="a face", text_semantics=f"the words of {name}",
                 audio=AudioCues(pitch_level="high", pitch_variation="wide", loudness="loud", speech_rate="fast",
                                 voice_quality="tense", **audio_numbers),
                 w_visual=0.5, w_audio=0.3, w_text=0.2, rationale=f"because of {name}", model="test-model",
                 backend="simulated", prompt_version="test")


def toy_dataset() -> Dataset:
    labels = np.asarray([CLASSES.index(r[2]) if r[2] else -1 for r in PLANTED], dtype=np.int64)
    subtitles = pd.DataFrame({"name": NAMES, "chinese": [f"中文 {n}" for n in NAMES],
                              "english": [f"English of {n}" for n in NAMES]}).set_index("name")
    return Dataset(root=Path("."), names=np.asarray(NAMES), classes=CLASSES, labels=labels,
                   splits=np.asarray([r[1] for r in PLANTED]), features={}, subtitles=subtitles)


def one_hot_probabilities(predicted: str) -> list[float]:
    p = np.full(len(CLASSES), 0.02)
    p[CLASSES.index(predicted)] = 0.9
    return p.tolist()


def write_predictions(path: Path, rows=PLANTED) -> Path:
    """A predictions.csv as notebook 04 writes it (mer_lib.stage2.prediction_table's columns)."""
    records = []
    for name, split, label, prior, _, stage1, stage2 in rows:
        if stage1 is None:
            continue
        record = {"name": name, "split": split, "label": label, "has_prior": prior is not None}
        record.update({f"stage1_{c}": p for c, p in zip(CLASSES, one_hot_probabilities(stage1))})
        record.update({f"stage2_{c}": p for c, p in zip(CLASSES, one_hot_probabilities(stage2))})
        records.append(record)
    pd.DataFrame(records).to_csv(path, index=False)
    return path


@pytest.fixture
def toy(tmp_path) -> InspectorData:
    priors = {name: make_prior(name, emotion, aus) for name, _, _, emotion, aus, _, _ in PLANTED if emotion}
    return load_inspector_data(dataset=toy_dataset(), priors=priors,
                               predictions_file=write_predictions(tmp_path / "predictions.csv"))


def names_of(data: InspectorData, rows) -> list[str]:
    return [str(data.table.names[r]) for r in rows]


# --- filters and navigation (pure functions) ---------------------------------------------------------

def test_filters_find_exactly_the_planted_clips(toy):
    def pick(**kwargs):
        return names_of(toy, filter_rows(toy.table, Filters(**kwargs)))

    assert pick() == NAMES
    assert pick(prior_disagrees=True) == ["c01", "c04"]
    assert pick(low_reliability=True) == ["c03"]
    assert pick(model_wrong=True) == ["c01", "c05", "c07"]  # stage 2 is the final model
    assert pick(model_changed=True) == ["c01", "c03", "c06", "c07"]
    assert pick(split="test_corpus") == ["c05", "c06", "c07"]
    assert pick(split="test_corpus", model_changed=True, model_wrong=True) == ["c07"]
    assert pick(label="angry") == ["c01", "c06"]
    assert pick(label="unlabelled") == ["c08", "c09"]
    assert pick(prior="sad") == ["c01", "c03", "c08"]
    assert pick(prior="no prior") == ["c05", "c09"]
    assert pick(prior="any prior", split="unlabelled") == ["c08"]
    assert pick(label="neutral", prior_disagrees=True) == []


def test_filters_reject_values_the_data_does_not_have(toy):
    with pytest.raises(InspectorError, match=r"no split 'test3_corpus'; this dataset has \['train_corpus', "
                                             r"'test_corpus', 'unlabelled'\]"):
        filter_rows(toy.table, Filters(split="test3_corpus"))
    with pytest.raises(InspectorError, match="human label 'joy' is not one of"):
        filter_rows(toy.table, Filters(label="joy"))
    without = load_inspector_data(dataset=toy_dataset())  # no priors, no predictions, no clips
    for flag in ("prior_disagrees", "model_wrong", "model_changed", "with_video"):
        with pytest.raises(InspectorError, match=f"the filter '{flag}' cannot be used here"):
            filter_rows(without.table, Filters(**{flag: True}))


def test_step_wraps_around_and_returns_from_a_hidden_clip():
    rows = np.array([2, 5, 9])
    assert step(rows, 9, +1) == 2 and step(rows, 2, -1) == 9  # wrap at both ends
    assert step(rows, 5, +1) == 9 and step(rows, 5, -1) == 2
    assert step(rows, 6, +1) == 9 and step(rows, 6, -1) == 5  # a clip the filters hide (reached by name)
    assert step(rows, 0, -1) == 9 and step(rows, 10, +1) == 2
    assert step(rows, None, +1) == 2 and step(rows, 5, +4) == 9
    assert step(np.array([], dtype=int), 3, +1) is None


def test_find_row_by_name_and_close_names_for_a_typo(toy):
    assert find_row(toy.table, " c04 ") == 4
    with pytest.raises(InspectorError, match=r"no clip named 'c4' in this dataset \(10 clips\)\. Did you mean"):
        find_row(toy.table, "c4")
    with pytest.raises(InspectorError, match="type a clip name"):
        find_row(toy.table, "  ")


# --- one clip's view ---------------------------------------------------------------------------------

def test_view_marks_aus_against_the_support_sets_of_prior_and_human_label(toy):
    view = clip_view(toy, 1)  # human angry, prior sad with AU 1, 4, 15
    assert [(a.au, a.name, a.in_prior_support, a.in_label_support) for a in view.aus] == [
        (1, "Inner Brow Raiser", True, False), (4, "Brow Lowerer", True, True),
        (15, "Lip Corner Depressor", True, False)]
    assert view.prior_support == (1, 4, 15) and view.label_support == (4, 5, 7, 23)
    assert view.missing_support("label") == [5, 7, 23] and view.missing_support("prior") == []
    assert view.agrees_with_label is False and view.reliable is True and view.au_consistency == 1.0
    assert [(p.stage, p.predicted) for p in view.predictions] == [("Stage 1", "angry"), ("Stage 2", "sad")]
    html = prior_html(view)
    assert "Brow Lowerer" in html and "Lip Corner Depressor" in html and "not reported: AU5, AU7, AU23" in html
    assert "video 50%" in html and "because of c01" in html
    outcome = outcome_html(view)
    assert "disagrees" in outcome and "changed its mind: angry (stage 1) -&gt; sad (stage 2)" in outcome

    unreliable = clip_view(toy, 3)  # sad prior that reports only AU12
    assert unreliable.au_consistency == 0.0 and unreliable.reliable is False
    assert "fail" in prior_html(unreliable)


def test_view_says_what_is_missing(tmp_path):
    failed = tmp_path / "priors.jsonl"  # a store whose only record for c05 is a failure
    failed.write_text('{"key": "k05", "name": "c05", "status": "failed", '
                      '"error": "HTTP 500 from the server"}\n')
    data = load_inspector_data(dataset=toy_dataset(), prior_file=failed,
                               predictions_file=tmp_path / "absent.csv")
    view = clip_view(data, 5)
    assert view.prior is None and "the latest call for this clip failed (HTTP 500 from the server)" in view.prior_note
    assert "no predictions at" in view.predictions_note and "run 04_prior_tuning" in view.predictions_note
    assert "no clips_dir is set" in view.video_note
    assert "HTTP 500" in prior_html(view) and "run 04_prior_tuning" in outcome_html(view)
    unlabelled = clip_view(load_inspector_data(dataset=toy_dataset(), priors={"c08": make_prior("c08", "sad", [1])}), 8)
    assert unlabelled.label == "" and unlabelled.agrees_with_label is None
    assert "n/a (no label)" in prior_html(unlabelled)


def test_entries_of_the_clips_folder_that_are_no_clips_are_named_in_the_notes(tmp_path):
    write_clips(tmp_path / "clips", ["c01"])
    (tmp_path / "clips" / "c02.mp4").symlink_to(tmp_path / "moved-away.mp4")
    data = load_inspector_data(dataset=toy_dataset(), clips_dir=tmp_path / "clips")
    assert set(data.clip_files) == {"c01"} and data.table.has_video.sum() == 1
    assert data.notes["video"].startswith("1 clips have a video file")
    assert "c02.mp4: a symbolic link to" in data.notes["video"]


def test_a_broken_predictions_file_names_the_file_and_the_fix(tmp_path):
    bad = tmp_path / "predictions.csv"
    pd.DataFrame({"name": ["c00"], "stage1_neutral": [1.0], "stage1_angry": [0.0]}).to_csv(bad, index=False)
    with pytest.raises(InspectorError, match=r"predictions.csv: lacks column\(s\) \['stage1_happy'.*Fix: pass"):
        load_inspector_data(dataset=toy_dataset(), predictions_file=bad)
    other = write_predictions(tmp_path / "other.csv", [("x1", "train_corpus", "sad", None, [], "sad", "sad")])
    data = load_inspector_data(dataset=toy_dataset(), predictions_file=other)
    assert not data.table.has_predictions and "names none of this dataset's clips" in data.notes["predictions"]


# --- the panel, driven through its widgets -----------------------------------------------------------

def test_panel_filters_follow_the_widget_values(toy, tmp_path):
    panel = Inspector(toy, figures_dir=tmp_path)
    assert panel.view.name == "c00" and panel.count.value == "of 10 matching (10 clips)"
    panel.flags["prior_disagrees"].value = True
    assert names_of(toy, panel.rows) == ["c01", "c04"] and panel.view.name == "c01"
    assert "c01" in panel.header.value and "Brow Lowerer" in panel.prior_panel.value
    panel.split.value = "test_corpus"
    assert len(panel.rows) == 0 and panel.view is None and "No clip matches" in panel.header.value
    assert panel.next_button.disabled and panel.export_button.disabled
    panel.flags["prior_disagrees"].value = False
    panel.flags["model_changed"].value = True
    assert names_of(toy, panel.rows) == ["c06", "c07"] and panel.view.name == "c06"
    panel.prior.value = "happy"
    assert names_of(toy, panel.rows) == ["c07"] and "surprise" in panel.outcome.value


def test_panel_navigation_wraps_and_keeps_the_clip_when_it_still_matches(toy, tmp_path):
    panel = Inspector(toy, figures_dir=tmp_path, filters=Filters(split="train_corpus"))
    assert panel.view.name == "c00"
    panel.previous_button.click()
    assert panel.view.name == "c04" and panel.position.value == 5  # wrapped to the last of five
    panel.next_button.click()
    assert panel.view.name == "c00" and panel.position.value == 1
    panel.position.value = 3
    assert panel.view.name == "c02"
    panel.label.value = "happy"  # c02 still matches: it stays on screen
    assert panel.view.name == "c02" and panel.position.value == 1 and panel.count.value.startswith("of 1 ")


def test_jump_to_an_unknown_name_shows_the_error_in_the_panel(toy, tmp_path):
    panel = Inspector(toy, figures_dir=tmp_path)
    panel.next_button.click()
    panel.jump_text.value = "c4"
    assert "no clip named &#x27;c4&#x27;" in panel.message.value and "c04" in panel.message.value
    assert "#c62828" in panel.message.value  # shown as an error
    assert panel.view.name == "c01"  # nothing else changed
    panel.jump_text.value = "c08"  # known, but hidden by the filter below
    panel.split.value = "train_corpus"
    assert panel.view.name == "c00"
    panel.jump_text.value = ""
    panel.jump_text.value = "c08"
    assert panel.view.name == "c08" and "outside the current filters" in panel.message.value
    assert "outside the filters" in panel.status.value
    panel.next_button.click()  # back into the filtered clips
    assert panel.view.name == "c00"


def test_start_at_and_model_filters_off_without_predictions(tmp_path):
    data = load_inspector_data(dataset=toy_dataset(), priors={"c03": make_prior("c03", "sad", [12])})
    panel = Inspector(data, figures_dir=tmp_path, start_at="c03")
    assert panel.view.name == "c03"
    for flag in ("model_wrong", "model_changed", "with_video"):
        assert panel.flags[flag].disabled
    assert panel.flags["low_reliability"].disabled is False
    assert ("<b>off</b>: &#x27;model wrong&#x27;, &#x27;changed its mind (stage 1 → 2)&#x27; (no predictions file "
            "given") in panel.status.value
    assert "no clips_dir is set" in panel.media_note.value and panel.media_image.layout.display == "none"


def test_export_writes_the_current_view_as_pdf_and_png(toy, tmp_path):
    panel = Inspector(toy, figures_dir=tmp_path / "figures", start_at="c01")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no missing-glyph or clipping warnings (Chinese needs a CJK font)
        warnings.filterwarnings("ignore", "no CJK font")  # where none is installed: said once, tested below
        panel.export_button.click()
    pdf, png = tmp_path / "figures" / "inspector_c01.pdf", tmp_path / "figures" / "inspector_c01.png"
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5000
    image = np.asarray(Image.open(png).convert("L"))
    assert image.shape[1] > 1000 and image.std() > 10  # a drawn page, not a blank canvas
    assert str(pdf) in panel.message.value


def test_exported_page_keeps_long_text_on_the_page_with_or_without_a_cjk_font(toy, monkeypatch):
    from mer_lib.figures import figure_style
    from mer_lib.inspector import render

    long = make_prior("c01", "sad", [1, 4, 15, 17, 25, 43, 45])
    long.rationale = "A very long rationale that keeps going " * 12
    long.text_semantics = "Wordy reading of the subtitle, " * 10
    data = load_inspector_data(dataset=toy_dataset(), priors={"c01": long})
    installed = render.cjk_font()  # the CJK path runs where the machine has such a font
    for font in (None, installed) if installed else (None,):
        monkeypatch.setattr(render, "cjk_font", lambda font=font: font)
        fig = render.view_figure(clip_view(data, 1), None)
        with figure_style(), warnings.catch_warnings():
            warnings.simplefilter("error")  # a missing glyph would warn
            fig.draw_without_rendering()
        width, height = fig.get_size_inches() * fig.dpi
        texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
        for text in texts:
            box = text.get_window_extent()
            assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= width + 1 and box.y1 <= height + 1, text.get_text()
        content = " ".join(" ".join(t.get_text() for t in texts).split())  # wrapped lines joined again
        assert "AU43 Eyes Closed" in content and content.count("A very long rationale") == 12
        assert ("ZH: 中文 c01" in content) == (font is not None)
        assert ("no CJK font to draw Chinese" in content) == (font is None)


CHINESE = "今天天气真好，我们去公园散步吧"


def test_a_chinese_subtitle_is_drawn_with_an_embedded_cjk_font(tmp_path):
    font = figures.cjk_font()
    if font is None:
        pytest.skip(f"no CJK font installed for matplotlib: {figures.CJK_FONT_FIX}")
    dataset = toy_dataset()
    dataset.subtitles.loc["c01", "chinese"] = CHINESE
    data = load_inspector_data(dataset=dataset, priors={"c01": make_prior("c01", "happy", [6, 12])})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdf, _ = export_view(clip_view(data, 1), None, tmp_path)
    assert not [str(w.message) for w in caught if "missing from font" in str(w.message)]  # no boxes
    embedded = {f["name"].split("+")[-1].lower(): f["emb"] for f in pdf_fonts(pdf)}  # "ABCDEF+Name" subsets
    cjk = [name for name in embedded if font.replace(" ", "").lower() in name]
    assert cjk and all(embedded[name] == "yes" for name in cjk), embedded


def test_without_a_cjk_font_the_page_says_how_to_get_one_and_warns_once(monkeypatch):
    monkeypatch.setattr(figures, "CJK_FONTS", ("No Such CJK Font",))
    monkeypatch.setattr(figures, "CJK_FONT_FILES", ())
    figures.cjk_font.cache_clear()
    try:
        dataset = toy_dataset()
        dataset.subtitles.loc["c01", "chinese"] = CHINESE
        data = load_inspector_data(dataset=dataset, priors={"c01": make_prior("c01", "happy", [6, 12])})
        with pytest.warns(UserWarning, match="no CJK font for matplotlib.*apt-get install fonts-noto-cjk"):
            fig = view_figure(clip_view(data, 1), None)
        with figures.figure_style(), warnings.catch_warnings():
            warnings.simplefilter("error")  # said once per process, and no missing-glyph warning either
            assert view_figure(clip_view(data, 1), None) is not None
            fig.draw_without_rendering()
        content = " ".join(" ".join(t.get_text() for t in fig.findobj(Text)).split())
        assert CHINESE[:4] not in content and "ZH: (left out: this machine has no CJK font" in content
        assert "apt-get install fonts-noto-cjk" in content
    finally:
        figures.cjk_font.cache_clear()


def test_an_unexpected_error_in_a_callback_lands_in_the_panel(toy, tmp_path, monkeypatch):
    class FakeShell:  # what Output.capture talks to inside a kernel
        kernel = None

        def __init__(self):
            self.shown = []

        def showtraceback(self, exc_info, tb_offset=None):
            self.shown.append(exc_info[1])

    shell = FakeShell()
    monkeypatch.setattr("ipywidgets.widgets.widget_output.get_ipython", lambda: shell)
    panel = Inspector(toy, figures_dir=tmp_path)

    def broken(view, media, folder):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("mer_lib.inspector.widget.export_view", broken)
    panel.export_button.click()  # must not raise: the Output widget shows it
    assert [str(e) for e in shell.shown] == ["disk on fire"]


# --- the demo data and real clips --------------------------------------------------------------------

def test_demo_with_planted_disagreements_and_no_video(tiny_demo, tmp_path):
    from mer_lib.data.demo import FEATURES
    data0 = load_inspector_data(tiny_demo, features=FEATURES)
    labelled = data0.table.labels >= 0
    names = data0.table.names[labelled]
    truth = {str(n): CLASSES[y] for n, y in zip(names, data0.table.labels[labelled])}
    planted = sorted(str(n) for n in names[::17])  # these priors name the next class instead of the truth
    for name in planted:
        truth[name] = CLASSES[(CLASSES.index(truth[name]) + 1) % len(CLASSES)]
    backend = make_backend("simulated", shown=truth, seed=0, accuracy=1.0)
    generate_for_dataset(data0.dataset, backend, tmp_path / "priors.jsonl", show_progress=False)

    data = load_inspector_data(tiny_demo, features=FEATURES, prior_file=tmp_path / "priors.jsonl")
    assert len(data.table) == len(data0.table) and (data.table.splits == "unlabelled").sum() > 0  # the pool
    panel = Inspector(data, figures_dir=tmp_path / "figures")
    panel.flags["prior_disagrees"].value = True
    assert sorted(names_of(data, panel.rows)) == planted
    assert "No video" in panel.media_note.value and panel.video.layout.display == "none"
    assert "English" in panel.subtitles.value and "Reasoning prior" in panel.prior_panel.value
    assert panel.flags["model_wrong"].disabled  # no predictions.csv for this dataset
    panel.export()
    assert (tmp_path / "figures" / f"inspector_{panel.view.name}.png").stat().st_size > 10_000


@pytest.mark.real_data
def test_real_clips_with_offline_priors(samples_dir, tmp_path):
    clips = samples_dir / "clips"
    dataset = clips_dataset(samples_dir, clips)
    assert len(dataset) == 16 and (dataset.labels >= 0).sum() == 13  # the README: 13 labelled, 3 new
    summary = generate_for_dataset(dataset, make_backend("offline"), tmp_path / "priors.jsonl",
                                   splits=dataset.split_names, clips_dir=clips, concurrency=2, show_progress=False)
    assert summary["done"] == 16

    data = load_inspector_data(samples_dir, prior_file=tmp_path / "priors.jsonl", clips_dir=clips)
    assert len(data.table) == 5030 + 3 and "no feature folder" not in data.notes["features"]  # no features given
    panel = Inspector(data, figures_dir=tmp_path, filters=Filters(with_video=True))
    assert len(panel.rows) == 16 and panel.flags["model_wrong"].disabled
    view, media = panel.view, panel.media
    assert view.clip_path == clips / f"{view.name}.mp4"
    assert len(media.frames) == 6 and media.frames[0].dtype == np.uint8 and max(media.frames[0].shape[:2]) <= 320
    assert 1.0 < len(media.audio) / AUDIO_SAMPLE_RATE < 15.0 and abs(media.duration - len(media.audio) / AUDIO_SAMPLE_RATE) < 0.3
    assert "measured: mean F0" in panel.prior_panel.value  # the offline back-end's eGeMAPS numbers
    chinese, english = dataset.subtitle(view.name)
    assert english[:20] in panel.subtitles.value.replace("&#x27;", "'") and chinese[:4] in panel.subtitles.value
    assert panel.media_image.value[:4] == b"\x89PNG" and panel.video.value[4:8] == b"ftyp"
    paths = panel.export()
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_media_decodes_once_per_clip_and_reports_a_missing_track(tmp_path, monkeypatch):
    write_clips(tmp_path, ["talk"], seconds=1.0)
    write_clips(tmp_path, ["mute"], audio=False, seconds=1.0)
    calls = []
    real = media_module.read_frames
    monkeypatch.setattr(media_module, "read_frames", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    media_module._cached.cache_clear()
    first = load_media(tmp_path / "talk.mp4")
    assert load_media(tmp_path / "talk.mp4") is first and len(calls) == 1  # cached
    assert 1 <= len(first.frames) <= 6 and first.audio is not None and not first.problems
    mute = load_media(tmp_path / "mute.mp4")
    assert mute.audio is None and mute.frames and "audio:" in mute.problems[0] and "no audio track" in mute.problems[0]


# --- MER2024 scale -------------------------------------------------------------------------------------

class CountingPriors(Mapping):
    """A prior mapping that counts lookups, to show that filtering never looks at clips one by one."""

    def __init__(self, priors: dict):
        self.priors, self.lookups = priors, 0

    def __getitem__(self, name):
        self.lookups += 1
        return self.priors[name]

    def __iter__(self):
        return iter(self.priors)

    def __len__(self):
        return len(self.priors)


def test_120k_clips_filter_from_masks_and_look_at_one_clip_only(tmp_path):
    n = 120_000
    rng = np.random.default_rng(0)
    names = np.asarray([f"sample_{i:06d}" for i in range(n)])
    splits = np.where(np.arange(n) < 5_000, "train_corpus", "unlabelled")
    labels = np.where(splits == "train_corpus", rng.integers(0, 6, n), -1)
    prior_labels = np.where(rng.random(n) < 0.6, rng.integers(0, 6, n), -1)
    probs1, probs2 = rng.dirichlet(np.ones(6), n), rng.dirichlet(np.ones(6), n)
    table = ClipTable(names=names, classes=CLASSES, splits=splits, labels=labels, prior_labels=prior_labels,
                      reliable=rng.random(n) < 0.7, has_video=np.zeros(n, bool), stage1_probs=probs1,
                      stage2_probs=probs2)
    dataset = Dataset(root=tmp_path, names=names, classes=CLASSES, labels=labels, splits=splits, features={})
    shown = {str(names[i]): make_prior(str(names[i]), CLASSES[prior_labels[i]], [6, 12])
             for i in np.flatnonzero(prior_labels >= 0)[:50]}
    priors = CountingPriors(shown)
    data = InspectorData(dataset=dataset, table=table, priors=priors, reliability=None)
    loads = []
    panel = Inspector(data, figures_dir=tmp_path, media_loader=loads.append)

    frame = pd.DataFrame({"split": splits, "label": labels, "prior": prior_labels,
                          "s1": probs1.argmax(1), "s2": probs2.argmax(1)})
    priors.lookups = 0
    panel.flags["prior_disagrees"].value = True
    expected = frame.query("label >= 0 and prior >= 0 and prior != label").index.to_numpy()
    assert np.array_equal(panel.rows, expected)
    panel.flags["model_changed"].value = True
    panel.flags["model_wrong"].value = True
    expected = frame.query("label >= 0 and prior >= 0 and prior != label and s1 != s2 and s2 != label").index
    assert np.array_equal(panel.rows, expected.to_numpy()) and len(expected) > 100
    panel.previous_button.click()
    assert panel.view.row == expected[-1]  # wrapped to the last of thousands
    panel.jump_text.value = "sample_119999"
    assert panel.view.name == "sample_119999"
    # five filter changes and three moves looked up at most one prior per clip shown, and decoded nothing
    assert priors.lookups <= 8 and loads == []


@pytest.mark.slow
def test_notebook_runs_headless_with_papermill(tiny_demo, tmp_path, monkeypatch):
    """Notebook 07 as papermill runs it (no browser): parameters checked, the panel built and displayed."""
    import nbformat
    import papermill

    from mer_lib.config import NOTEBOOKS_DIR, PROJ_ROOT
    from mer_lib.kernel import ensure_kernel

    monkeypatch.setenv("PYTHONPATH", str(PROJ_ROOT))  # the kernel imports this checkout's mer_lib
    from mer_lib.data import read_label_file
    first_clip = next(iter(read_label_file(tiny_demo / "label-6way.npz")[0]["train_corpus"]))
    out = tmp_path / "07_inspector.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS_DIR / "07_inspector.ipynb"), str(out), kernel_name=ensure_kernel(),
                               parameters={"data_root": str(tiny_demo), "run_dir": str(tmp_path / "run"),
                                           "prior_file": str(tmp_path / "none.jsonl"), "start_at": first_clip},
                               cwd=str(NOTEBOOKS_DIR), progress_bar=False, execution_timeout=120)
    outputs = [o for cell in nbformat.read(out, as_version=4).cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert any("Synthetic demo data" in o.get("text", "") for o in outputs)
    with pytest.raises(papermill.PapermillExecutionError, match="unknown parameter"):
        papermill.execute_notebook(str(NOTEBOOKS_DIR / "07_inspector.ipynb"), str(out), kernel_name=ensure_kernel(),
                                   parameters={"data_root": str(tiny_demo), "clip_dir": "typo"},
                                   cwd=str(NOTEBOOKS_DIR), progress_bar=False, execution_timeout=120)


def test_an_initial_filter_the_data_cannot_serve_is_refused(toy, tmp_path):
    with pytest.raises(InspectorError, match="the filter 'with_video' cannot be used here: no clip has a video file"):
        Inspector(toy, figures_dir=tmp_path, filters=Filters(with_video=True))
    with pytest.raises(InspectorError, match="no split 'test3_corpus'"):
        Inspector(toy, figures_dir=tmp_path, filters=Filters(split="test3_corpus"))


def test_a_clip_without_a_prior_says_why(toy, tmp_path):
    assert "the prior file has none for it" in clip_view(toy, 5).prior_note  # c05: others have priors
    bare = load_inspector_data(dataset=toy_dataset(), prior_file=tmp_path / "absent.jsonl")
    assert clip_view(bare, 0).prior_note == (f"No prior: no prior file at {tmp_path / 'absent.jsonl'} "
                                             "(run 01_prior_generation to write it)")
