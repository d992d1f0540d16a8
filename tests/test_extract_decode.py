"""Decoding (PyAV) and face crops (OpenCV) of mer_lib.extract, on clips written in the test."""
from __future__ import annotations

import numpy as np
import pytest

from mer_lib.extract.decode import AUDIO_SAMPLE_RATE, ClipError, read_audio, read_video_frames
from mer_lib.extract.faces import FaceCropConfig, FaceCropper, crop_square, resize_short_side
from tests.support.media import grey_level, write_broken_clips, write_mp4
from tests.support.samples import SAMPLE_CLIPS, require_samples


def test_frames_are_sampled_at_the_requested_rate(tmp_path):
    clip = write_mp4(tmp_path / "ramp.mp4", seconds=3.0, fps=10)  # frame i is grey level grey_level(i)
    video = read_video_frames(clip, fps=2.0)
    np.testing.assert_allclose(video.times, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5], atol=1e-6)
    # the frames returned are the ones at those instants (indices 0, 5, 10, ...), not their neighbours
    levels = [float(f.mean()) for f in video.frames]
    np.testing.assert_allclose(levels, [grey_level(i) for i in range(0, 30, 5)], atol=2.5)
    assert video.frames[0].shape == (48, 64, 3) and video.frames[0].dtype == np.uint8
    assert video.duration == pytest.approx(3.0)


def test_every_frame_max_seconds_and_downscaling(tmp_path):
    clip = write_mp4(tmp_path / "ramp.mp4", seconds=3.0, fps=10, size=(160, 96))
    every = read_video_frames(clip, fps=None, max_seconds=1.0)
    assert len(every.frames) == 10  # 10 fps, first second only
    np.testing.assert_allclose([f.mean() for f in every.frames], [grey_level(i) for i in range(10)], atol=2.5)
    small = read_video_frames(clip, fps=1.0, max_side=80)
    assert small.frames[0].shape == (48, 80, 3)  # longer side 160 -> 80, aspect kept
    assert len(small.frames) == 3


def test_audio_is_16k_mono_and_keeps_the_tone(tmp_path):
    clip = write_mp4(tmp_path / "tone.mp4", seconds=2.0, tone_hz=440.0, sample_rate=44_100)
    audio = read_audio(clip)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size / AUDIO_SAMPLE_RATE - 2.0) < 0.1  # AAC adds a few ms of priming
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.argmax(spectrum) * AUDIO_SAMPLE_RATE / audio.size == pytest.approx(440.0, abs=2.0)
    # two identical channels of amplitude 0.3 mix to 0.3 * sqrt(2): FFmpeg adds them at -3 dB each, as
    # the `ffmpeg -ac 1` conversion of the MER toolkit does (RMS of a sine = amplitude / sqrt(2))
    rms = float(np.sqrt(np.mean(audio[4000:-4000] ** 2)))
    assert rms == pytest.approx(0.3, rel=0.05)
    short = read_audio(clip, max_seconds=0.5)
    assert short.size == AUDIO_SAMPLE_RATE // 2


@pytest.mark.parametrize("reader,track", [(read_video_frames, "video"), (read_audio, "audio")])
def test_broken_clips_raise_a_clip_error_naming_file_and_fix(tmp_path, reader, track):
    expected = write_broken_clips(tmp_path)
    for name, fails_in in expected.items():
        path = next(tmp_path.glob(f"{name}.*"))
        if fails_in not in (track, "both"):
            reader(path)  # the other track is fine
            continue
        with pytest.raises(ClipError) as info:
            reader(path)
        message = str(info.value)
        assert str(path) in message and "Fix:" in message, message
    with pytest.raises(ClipError, match=f"no {track} track"):
        reader(tmp_path / ("voice_only.mp4" if track == "video" else "silent.mp4"))
    with pytest.raises(ClipError, match="zero-length|0 ms"):
        reader(tmp_path / "zero_length.avi")
    with pytest.raises(ClipError, match="empty"):
        reader(tmp_path / "empty.mp4")


def test_crop_square_grows_the_box_and_stays_inside_the_frame():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[40:60, 90:110] = 255  # a 20x20 white "face"
    crop = crop_square(frame, (90, 40, 20, 20), margin=0.5, out_size=40)  # 40x40 window around it
    assert crop.shape == (40, 40, 3)
    assert crop[10:30, 10:30].min() == 255 and crop[:5].max() == 0  # face in the middle, border black
    frame[:20, :20] = 255  # a second "face" in the corner
    edge = crop_square(frame, (0, 0, 20, 20), margin=0.5, out_size=40)  # shifted in, not padded
    assert edge.shape == (40, 40, 3) and edge[:20, :20].min() == 255 and edge[20:, 20:].max() == 0
    huge = crop_square(frame, (50, 10, 90, 90), margin=0.5, out_size=32)  # clamped to the short side
    assert huge.shape == (32, 32, 3)
    assert resize_short_side(frame, 50).shape == (50, 100, 3)


def test_frames_without_a_face_fall_back_to_the_whole_frame():
    cropper = FaceCropper(FaceCropConfig(out_size=56))
    flat = np.full((120, 160, 3), 128, np.uint8)
    image, found = cropper(flat)
    assert not found and image.shape == (56, 75, 3)  # whole frame, short side 56
    image, found = FaceCropper(FaceCropConfig(detector="none", out_size=56))(flat)
    assert not found and image.shape == (56, 75, 3)
    with pytest.raises(ValueError, match="face_detector"):
        FaceCropper(FaceCropConfig(detector="mtcnn"))


def test_haar_finds_the_face_in_a_real_close_up():
    require_samples()
    # sample_00000167 is a frontal close-up: the cascade finds a face in every sampled frame
    video = read_video_frames(SAMPLE_CLIPS / "sample_00000167.mp4", fps=1.0, max_seconds=2.0)
    cropper = FaceCropper(FaceCropConfig(out_size=64))
    results = [cropper(frame) for frame in video.frames]
    assert all(found for _, found in results)
    box = cropper.detect(video.frames[0])
    height, width = video.frames[0].shape[:2]
    x, y, _, h = box
    assert 0.1 * height < h < 0.9 * height and 0 <= x < width and 0 <= y < height
    assert all(img.shape == (64, 64, 3) for img, _ in results)
    # the crop is not the whole frame: it differs from a centre crop of the frame
    centre = resize_short_side(video.frames[0], 64)
    offset = (centre.shape[1] - 64) // 2
    assert np.abs(results[0][0].astype(int) - centre[:, offset:offset + 64].astype(int)).mean() > 5
