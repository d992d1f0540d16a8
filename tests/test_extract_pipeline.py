"""The extraction run end to end on clips written in the test: layout, reports, resume, CLI."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from mer_lib.config import LABEL_FILE
from mer_lib.data import load_dataset
from mer_lib.extract import ExtractError, extract_features, pipeline
from mer_lib.extract.__main__ import main
from tests.support.datasets import write_labels
from tests.support.media import write_broken_clips, write_mp4
from tests.support.random_models import tiny_models

GOOD = ("a_talk", "b_talk", "c_talk")


@pytest.fixture
def corpus(tmp_path):
    """Three good clips, six broken ones, two entries that are no clips, and a subtitle CSV."""
    clips = tmp_path / "clips"
    clips.mkdir()
    write_mp4(clips / "a_talk.mp4", seconds=2.0)
    write_mp4(clips / "b_talk.mp4", seconds=3.0, tone_hz=220.0)
    write_mp4(clips / "c_talk.mp4", seconds=1.5, size=(96, 64), sample_rate=48_000)
    broken = write_broken_clips(clips)
    (clips / "moved.mp4").symlink_to(tmp_path / "elsewhere.mp4")  # dangling: named in the summary
    (clips / "extras.mp4").mkdir()  # a directory named like a clip: likewise
    names = list(GOOD) + list(broken)
    chinese = {"a_talk": "我很高兴见到你", "b_talk": "你为什么不早点告诉我", "c_talk": ""}
    subtitles = pd.DataFrame({"name": names, "chinese": [chinese.get(n, "坏掉的片段") for n in names],
                              "english": ["some words"] * len(names)})
    subtitles.to_csv(tmp_path / "subtitles.csv", index=False)
    return {"clips": clips, "subtitles": tmp_path / "subtitles.csv", "broken": broken,
            "out": tmp_path / "out"}


def run(corpus, models, **settings):
    base = {"clips_dir": corpus["clips"], "out_root": corpus["out"], "subtitle_file": corpus["subtitles"],
            "video_model": models["video"], "audio_model": models["audio"], "text_model": models["text"],
            "fps": 2.0, "levels": ("UTT", "FRA"), "progress": False}
    return extract_features(**{**base, **settings})


def test_run_writes_the_mer_layout_reports_broken_clips_and_a_second_run_does_nothing(
        corpus, monkeypatch):
    summary = run(corpus, tiny_models())
    out, broken = corpus["out"], corpus["broken"]
    video, audio, text = (summary.result(m) for m in ("video", "audio", "text"))
    assert video.folders == ["clip-vit-tiny-UTT", "clip-vit-tiny-FRA"]

    # broken clips are reported per modality, with the file and the fix, and get no file
    assert set(video.failed) == {n for n, m in broken.items() if m in ("video", "both")}
    assert set(audio.failed) == {n for n, m in broken.items() if m in ("audio", "both")}
    assert video.done == 4 and audio.done == 4  # the 3 good clips + the one that lacks the other track
    assert text.done == 9 and not text.failed and text.counts["empty_subtitles"] == 1
    for result in (video, audio):
        for name, error in result.failed.items():
            assert name in error and "Fix:" in error
            assert not (out / "features" / f"{result.folders[0]}" / f"{name}.npy").exists()
    assert "no audio track" in audio.failed["silent"] and "no video track" in video.failed["voice_only"]

    # shapes: frame-level [T, D] and its mean as the utterance vector
    feats = out / "features"
    for name, seconds in (("a_talk", 2.0), ("b_talk", 3.0), ("c_talk", 1.5)):
        frames = np.load(feats / "clip-vit-tiny-FRA" / f"{name}.npy")
        assert frames.shape == (int(np.ceil(seconds * 2)), 24) and frames.dtype == np.float32  # 2 fps
        utterance = np.load(feats / "clip-vit-tiny-UTT" / f"{name}.npy")
        np.testing.assert_allclose(utterance, frames.mean(0), atol=1e-6)
        speech = np.load(feats / "chinese-hubert-tiny-FRA" / f"{name}.npy")
        assert abs(speech.shape[0] - 50 * seconds) <= 3 and speech.shape[1] == 32  # 50/s (+ AAC priming)
        np.testing.assert_allclose(np.load(feats / "chinese-hubert-tiny-UTT" / f"{name}.npy"), speech.mean(0),
                                   atol=1e-5)
    assert not np.load(feats / "bloom-tiny-UTT" / "c_talk.npy").any()  # empty subtitle -> zeros (MERTools)

    # the report says which frames got a face (flat grey frames: none, so whole frames were used)
    report = json.loads((out / "extract-reports" / "clip-vit-tiny.json").read_text())
    assert report["clips"]["a_talk"]["face_frames"] == "0000" and report["clips"]["b_talk"]["frames"] == 6
    assert report["clips"]["garbage"]["status"] == "failed" and report["recipe"]["fps"] == 2.0
    assert "face in 0/" in str(summary) and "failure(s)" in str(summary)
    assert "not extracted: 2 entries of" in str(summary) and "moved.mp4: a symbolic link" in str(summary)
    assert "extras.mp4: a directory" in str(summary)

    # the data layer reads it: labelled clips plus the unlabelled pool of clips with all three modalities
    write_labels(out / LABEL_FILE, {"train_corpus": {"a_talk": "happy", "b_talk": "sad"},
                                          "test_corpus": {"c_talk": "angry"}})
    data = load_dataset(out, features={"video": "clip-vit-tiny", "audio": "chinese-hubert-tiny",
                                       "text": "bloom-tiny"},
                        subtitle_file=None, use_cache=False, progress=False)
    assert list(data.names) == list(GOOD) and data.dims == {"video": 24, "audio": 32, "text": 32}
    b_talk = np.load(feats / "chinese-hubert-tiny-UTT" / "b_talk.npy")
    np.testing.assert_allclose(data.features["audio"][1], b_talk)

    # a second run writes nothing and loads no model (only broken clips are left, and they fail in decoding)
    stamps = {p: p.stat().st_mtime_ns for p in feats.rglob("*.npy")}
    for cls in ("ImageEncoder", "AudioEncoder", "TextEncoder"):
        monkeypatch.setattr(pipeline, cls, _refuse)
    again = run(corpus, tiny_models())
    assert [(r.done, r.skipped, len(r.failed)) for r in again.results] == [(0, 4, 5), (0, 4, 5), (0, 9, 0)]
    assert {p: p.stat().st_mtime_ns for p in feats.rglob("*.npy")} == stamps


def _refuse(*args, **kwargs):
    raise AssertionError("a model was loaded although every clip was done")


def test_resume_redoes_only_missing_files_and_batches_do_not_change_numbers(corpus):
    names = list(GOOD)
    first = run(corpus, tiny_models(), names=names, text_model=None)
    assert [r.done for r in first.results] == [3, 3]
    feats = corpus["out"] / "features"
    reference = {p.relative_to(feats): np.load(p) for p in feats.rglob("*.npy")}
    (feats / "clip-vit-tiny-UTT" / "b_talk.npy").unlink()  # as if the run had been killed there
    resumed = run(corpus, tiny_models(), names=names, text_model=None)
    assert {r.modality: (r.done, r.skipped) for r in resumed.results} == {"video": (1, 2), "audio": (0, 3)}
    np.testing.assert_allclose(np.load(feats / "clip-vit-tiny-UTT" / "b_talk.npy"),
                               reference[(feats / "clip-vit-tiny-UTT" / "b_talk.npy").relative_to(feats)],
                               atol=1e-6)
    # one frame / one clip per forward pass gives the same features as packed, padded batches
    single_root = corpus["out"].parent / "single"
    single = run(corpus, tiny_models(), names=names, text_model=None, out_root=single_root,
                 video_batch_size=1, audio_batch_size=1, num_workers=0)
    assert [r.done for r in single.results] == [3, 3]
    for rel, array in reference.items():
        np.testing.assert_allclose(np.load(single_root / "features" / rel), array, atol=1e-5)


def test_a_folder_made_with_other_settings_is_not_mixed(corpus):
    run(corpus, tiny_models(), names=["a_talk"], audio_model=None, text_model=None)
    with pytest.raises(ExtractError, match="fps: 2.0 then, 1.0 now.*Fix"):
        run(corpus, tiny_models(), names=["a_talk", "b_talk"], audio_model=None, text_model=None, fps=1.0)
    other = run(corpus, tiny_models(), names=["a_talk"], audio_model=None, text_model=None, fps=1.0,
                video_folder="clip-1fps-UTT", levels=("UTT",))
    assert other.results[0].folders == ["clip-1fps-UTT"] and other.results[0].done == 1


def test_names_without_a_clip_or_a_subtitle_fail_alone(corpus):
    summary = run(corpus, tiny_models(), names=["a_talk", "ghost"], audio_model=None, levels=("UTT",))
    assert set(summary.result("video").failed) == {"ghost"} and summary.result("video").done == 1
    assert "no clip named 'ghost'" in summary.result("video").failed["ghost"]
    assert "no subtitle row for clip 'ghost'" in summary.result("text").failed["ghost"]


def test_a_batch_that_fails_is_retried_clip_by_clip():
    def encode(encoder, inputs):
        if "bad" in inputs:
            raise RuntimeError("CUDA out of memory (simulated)")
        return [(np.ones((1, 2)), np.ones(2)) for _ in inputs]

    task = pipeline._Task(load=lambda: None, prepare=None, encode=encode, batch_units=3, workers=0)
    outcomes = pipeline._encode_isolating_failures(task, None, [("a", "ok", 1, {}), ("b", "bad", 1, {}),
                                                                ("c", "ok", 1, {})])
    assert isinstance(outcomes[1], RuntimeError)
    assert all(isinstance(o, tuple) for o in (outcomes[0], outcomes[2]))


def test_settings_are_checked_before_any_work(corpus, tmp_path):
    with pytest.raises(ExtractError, match="no encoder chosen"):
        extract_features(clips_dir=corpus["clips"], out_root=tmp_path)
    with pytest.raises(ExtractError, match="text_model needs subtitle_file"):
        extract_features(text_model=tiny_models()["text"], out_root=tmp_path)
    with pytest.raises(ExtractError, match="levels"):
        extract_features(clips_dir=corpus["clips"], video_model=tiny_models()["video"],
                         levels=("UTT", "FRAMES"))
    with pytest.raises(TypeError):
        extract_features(clips_dir=corpus["clips"], video_modle=tiny_models()["video"])  # a typo is an error
    write_mp4(corpus["clips"] / "a_talk.avi")
    with pytest.raises(ExtractError, match="'a_talk' exists twice"):
        run(corpus, tiny_models())


def test_command_line_calls_the_same_function(corpus, capsys):
    args = ["--clips", str(corpus["clips"]), "--out", str(corpus["out"]), "--no-progress",
            "--audio-model", str(tiny_models()["audio"]), "--max-seconds", "1"]
    assert main(args + ["--names", "a_talk", "b_talk"]) == 0
    assert sorted(p.name for p in (corpus["out"] / "features" / "chinese-hubert-tiny-UTT").iterdir()) == \
        ["a_talk.npy", "b_talk.npy"]
    # done, skipped, failed
    assert re.search(r"audio\s+chinese-hubert-tiny-UTT\s+2\s+0\s+0\s", capsys.readouterr().out)
    assert main(args) == 1  # broken clips: reported, exit status 1
    assert "garbage" in capsys.readouterr().out
    assert main(["--out", str(corpus["out"])]) == 2
    assert "no encoder chosen" in capsys.readouterr().err
