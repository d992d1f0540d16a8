"""The offline back-end (openSMILE prosody + OpenFace AUs + subtitle) and the replay back-end."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mer_lib.config import AUDIO_SAMPLE_RATE, MER_CLASSES
from mer_lib.data import read_label_file, read_subtitles, scan_clips
from mer_lib.priors import generate_for_dataset, load_priors, make_backend, prior_texts, read_records
from mer_lib.priors.backends.offline import arousal, band
from mer_lib.priors.media import decode_audio
from tests.support.datasets import small_dataset
from tests.support.media import write_clips
from tests.support.samples import SAMPLE_CLIPS, SAMPLE_LABELS, SAMPLE_SUBTITLES, require_samples


def openface_csv(path, present: dict[int, float], frames: int = 20):
    """An OpenFace 2 FeatureExtraction CSV (its spaced headers included) with AUs present in a share of frames."""
    rows = {"frame": np.arange(1, frames + 1), " face_id": 0, " timestamp": np.arange(frames) / 25,
            " confidence": 0.98, " success": 1}
    for au in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45):
        rate = present.get(au, 0.0)
        on = np.arange(frames) < round(rate * frames)
        rows[f" AU{au:02d}_r"] = np.where(on, 2.5, 0.1)
    for au in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45):
        rows[f" AU{au:02d}_c"] = (np.arange(frames) < round(present.get(au, 0.0) * frames)).astype(float)
    pd.DataFrame(rows).to_csv(path, index=False)


def test_offline_priors_from_audio_and_openface(tmp_path):
    names = ["smiling", "no_openface", "silent"]
    ds = small_dataset(names, ["happy", "neutral", "sad"], subtitles=["Great news!", "", "..."])
    clips = write_clips(tmp_path / "clips", names[:2])
    write_clips(tmp_path / "clips", names[2:], audio=False)
    (tmp_path / "openface").mkdir()
    openface_csv(tmp_path / "openface" / "smiling.csv", {6: 0.8, 12: 0.9, 25: 0.3, 45: 0.6})
    openface_csv(tmp_path / "openface" / "silent.csv", {1: 0.7, 4: 0.7, 15: 0.6})
    backend = make_backend("offline", openface_dir=tmp_path / "openface")
    summary = generate_for_dataset(ds, backend, tmp_path / "p.jsonl", clips_dir=clips, show_progress=False)
    assert (summary["done"], summary["failed"]) == (3, 0)
    priors = load_priors(tmp_path / "p.jsonl", classes=ds.classes)

    smiling = priors["smiling"]
    assert smiling.aus == [6, 12, 45]  # AU25 in 30% of frames stays below the 50% presence rule
    assert smiling.visual_aus[0].intensity == pytest.approx(2.5)
    assert smiling.emotion == "happy" and "support set" in smiling.rationale
    assert smiling.audio.f0_mean_semitones == pytest.approx(12 * np.log2(180 / 27.5), abs=1.5)  # the 180 Hz tone
    assert smiling.audio.pitch_level == band(smiling.audio.f0_mean_semitones, "f0_mean_semitones")
    assert smiling.text_semantics == 'The subtitle says "Great news!".'
    assert (smiling.w_visual, smiling.w_audio, smiling.w_text) == pytest.approx((1 / 3, 1 / 3, 1 / 3))

    plain = priors["no_openface"]  # no CSV: no AUs, c* from prosody, no video or text share
    assert plain.aus == [] and plain.w_visual == 0 and plain.w_text == 0 and plain.w_audio == 1
    numbers = {"f0_variation": plain.audio.f0_variation, "loudness_mean": plain.audio.loudness_mean,
               "voiced_segments_per_sec": plain.audio.voiced_segments_per_sec}
    expected = "angry" if arousal(numbers) > 1.5 else "sad" if arousal(numbers) < -1.5 else "neutral"
    assert plain.emotion == expected and "arousal" in plain.rationale

    silent = priors["silent"]  # no audio track: words say so, no audio share
    assert silent.audio.pitch_level == "unknown" and silent.audio.f0_mean_semitones is None
    assert silent.w_audio == 0 and silent.emotion == "sad"  # AU 1+4+15 covers sadness


@pytest.mark.real_data
def test_offline_backend_on_the_real_mer2023_clips(tmp_path):
    require_samples()
    clips = SAMPLE_CLIPS
    names = list(scan_clips(clips).clips)
    corpus, _ = read_label_file(SAMPLE_LABELS)
    truth = {n: e for split in corpus.values() for n, e in split.items()}
    subtitles = read_subtitles(SAMPLE_SUBTITLES)
    english = [subtitles.loc[n, "english"] if n in subtitles.index else "" for n in names]
    ds = small_dataset(names, [truth.get(n, -1) for n in names], subtitles=english)
    summary = generate_for_dataset(ds, make_backend("offline"), tmp_path / "p.jsonl", clips_dir=clips,
                                   splits=["train_corpus", "unlabelled"], concurrency=2, show_progress=False)
    assert (summary["selected"], summary["done"], summary["failed"]) == (16, 16, 0)
    priors = load_priors(tmp_path / "p.jsonl", classes=MER_CLASSES)
    assert len(priors) == 16
    for name, prior in priors.items():
        audio = prior.audio
        duration = len(decode_audio(clips / f"{name}.mp4")) / AUDIO_SAMPLE_RATE
        assert 1.0 < duration < 15.0  # the README's 1.7-13.6 s, decoded at 16 kHz
        assert 10 < audio.f0_mean_semitones < 60 and 0 < audio.loudness_mean < 5  # human speech ranges
        assert audio.pitch_level in ("low", "medium", "high") and audio.loudness in ("soft", "moderate", "loud")
        assert prior.emotion in MER_CLASSES and prior.model == "offline-egemaps"
        assert all(t.strip() for t in prior_texts(prior).values())
    # the records know which file they hashed, so a re-run rehashes nothing it has seen and asks nothing
    again = generate_for_dataset(ds, make_backend("offline"), tmp_path / "p.jsonl", clips_dir=clips,
                                 splits=["train_corpus", "unlabelled"], show_progress=False)
    assert (again["skipped"], again["calls"]) == (16, 0)


def test_replay_of_merr_json(tmp_path):
    merr = {
        "sample_1": {"AU_list": ["AU06", "AU12"], "visual_prior_list": ["cheek raiser", "lip corner puller"],
                     "audio_prior_list": "The tone is cheerful and bright.", "peak_index": "12",
                     "pseu_emotion": "happy", "smp_reason_caption": "She smiles while sharing good news.",
                     "text": "I passed!"},
        "sample_2": {"AU_list": ["AU03"], "visual_prior_list": ["?"], "audio_prior_list": "",
                     "pseu_emotion": "sad"},  # AU 3 does not exist
        "sample_3": {"AU_list": ["AU01", "AU04"], "visual_prior_list": [], "audio_prior_list": "quiet",
                     "pseu_emotion": "doubt"},  # not one of MER's classes
    }
    path = tmp_path / "MERR_coarse_grained.json"
    path.write_text(json.dumps(merr))
    names = ["sample_1", "sample_2", "sample_3", "sample_4"]
    ds = small_dataset(names, ["happy", "sad", "worried", "neutral"])
    summary = generate_for_dataset(ds, make_backend("replay", path=path), tmp_path / "p.jsonl", show_progress=False)
    assert (summary["done"], summary["failed"], summary["calls"]) == (1, 3, 4)  # no retry of a file's answer
    errors = {r["name"]: r["error"] for r in read_records(tmp_path / "p.jsonl") if r["status"] == "failed"}
    assert "AU 3 is not one of the 44" in errors["sample_2"]
    assert "'doubt' is not one of the classes" in errors["sample_3"]
    assert "not in the replay file" in errors["sample_4"]
    prior = load_priors(tmp_path / "p.jsonl")["sample_1"]
    assert prior.aus == [6, 12] and prior.emotion == "happy" and prior.backend == "replay"
    assert prior.w_audio == pytest.approx(1 / 3) and prior.rationale.startswith("She smiles")
    texts = prior_texts(prior)
    assert "AU6 (Cheek Raiser)" in texts["video"] and texts["audio"] == "The tone is cheerful and bright."
    assert texts["text"] == 'The subtitle says "I passed!".'


def test_replay_of_our_own_store_reproduces_the_answers(tmp_path):
    names = [f"s{i}" for i in range(12)]
    ds = small_dataset(names, [MER_CLASSES[i % 6] for i in range(12)])
    backend = make_backend("simulated", shown=dict(zip(names, (MER_CLASSES[i % 6] for i in range(12)))), seed=4)
    generate_for_dataset(ds, backend, tmp_path / "a.jsonl", show_progress=False)
    replayed = generate_for_dataset(ds, make_backend("replay", path=tmp_path / "a.jsonl"), tmp_path / "b.jsonl",
                                    show_progress=False)
    assert replayed["done"] == 12
    a, b = load_priors(tmp_path / "a.jsonl"), load_priors(tmp_path / "b.jsonl")
    fields = {"emotion", "visual_aus", "audio", "text_semantics", "w_visual", "w_audio", "w_text", "model"}
    assert all(a[n].model_dump(include=fields) == b[n].model_dump(include=fields) for n in names)
    assert all(b[n].backend == "replay" for n in names)
