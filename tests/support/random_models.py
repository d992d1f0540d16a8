"""Randomly initialised stand-ins for the paper's encoders, saved exactly like real checkpoints.

They let the extraction pipeline run end to end without downloading anything: ``tiny`` models
(a few thousand weights) for the tests (:func:`tiny_models`), and ``full`` ones with the real
architectures (CLIP ViT-L/14, chinese-hubert-large, bloom-7b1; configs as published on their
model cards) for timing on a GPU (``benchmarks/bench_extract.py``). The features they produce are
noise: never train on them, which is why this lives beside the tests and not in ``mer_lib``.

Each builder writes a folder that ``from_pretrained`` reads (config, weights, preprocessing files,
and for the language model a small byte-level BPE tokenizer trained on the texts you pass), so
the pipeline's real loading code is what runs. ``device``/``dtype`` keywords choose where the
weights are initialised and how they are stored (full-size BLOOM: build on a GPU, store float16).
"""
from __future__ import annotations

import atexit
import functools
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch

from mer_lib.config import AUDIO_SAMPLE_RATE

from .samples import SAMPLE_SUBTITLES

SIZES = ("tiny", "full")
# Subtitles to encode and to train the tiny BPE tokenizer on: Chinese, English, punctuation, empty.
SUBTITLE_TEXTS = ["今天天气真好", "我不想去了", "你到底在说什么", "Hello there", "why would you do that?",
                  "太好了！我们赢了", "别走，求你了", ""]

# openai/clip-vit-large-patch14 (vision tower), TencentGameMate/chinese-hubert-large, bigscience/bloom-7b1
_CLIP = {
    "tiny": dict(vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                             image_size=32, patch_size=8), projection_dim=24, image_size=32),
    "full": dict(vision=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                             num_attention_heads=16, image_size=224, patch_size=14, hidden_act="quick_gelu"),
                 projection_dim=768, image_size=224),
}
_HUBERT = {
    "tiny": dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                 conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4),
    "full": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                 conv_dim=(512,) * 7, num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16),
}
_BLOOM = {
    "tiny": dict(hidden_size=32, n_layer=4, n_head=2, vocab_size=600),
    "full": dict(hidden_size=4096, n_layer=30, n_head=32, vocab_size=250_880),
}


def make_clip(folder: str | Path, size: str = "tiny", seed: int = 0, **build) -> Path:
    """A full CLIP checkpoint (both towers, as openai/clip-vit-large-patch14 ships) with its processor."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    spec = _CLIP[_check(size)]
    text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                vocab_size=100, bos_token_id=0, eos_token_id=1, pad_token_id=1)  # unused by the pipeline
    config = CLIPConfig(text_config=text, vision_config=spec["vision"], projection_dim=spec["projection_dim"])
    torch.manual_seed(seed)
    folder = Path(folder)
    _build(CLIPModel, config, **build).save_pretrained(folder)
    side = spec["image_size"]
    processor = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    processor.save_pretrained(folder)
    return folder


def make_hubert(folder: str | Path, size: str = "tiny", seed: int = 0, **build) -> Path:
    """A HuBERT with chinese-hubert-large's front end (layer-norm convs, stable layer norm)."""
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    config = HubertConfig(**_HUBERT[_check(size)], feat_extract_norm="layer", do_stable_layer_norm=True,
                          conv_bias=True, conv_stride=(5, 2, 2, 2, 2, 2, 2),
                          conv_kernel=(10, 3, 3, 3, 3, 2, 2))
    torch.manual_seed(seed)
    folder = Path(folder)
    _build(HubertModel, config, **build).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=AUDIO_SAMPLE_RATE, padding_value=0.0, do_normalize=True,
                             return_attention_mask=True).save_pretrained(folder)
    return folder


def make_bloom(folder: str | Path, texts: Iterable[str], size: str = "tiny", seed: int = 0, **build) -> Path:
    """A BLOOM model plus a byte-level BPE tokenizer trained on ``texts`` (BLOOM's kind of tokenizer)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import BloomConfig, BloomModel, PreTrainedTokenizerFast

    spec = _BLOOM[_check(size)]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=min(spec["vocab_size"], 600),
                                  special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([t for t in texts if t] or ["hello world"], trainer=trainer)
    folder = Path(folder)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                       pad_token="<pad>").save_pretrained(folder)
    config = BloomConfig(**spec, bos_token_id=1, eos_token_id=2, pad_token_id=3)
    torch.manual_seed(seed)
    _build(BloomModel, config, **build).save_pretrained(folder)
    return folder


def _build(model_class, config, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
    """Initialise on ``device`` (a GPU builds bloom-7b1 in seconds) and store in ``dtype``
    (float16 halves the 28 GB a full-size BLOOM takes in float32)."""
    with torch.device(device):
        model = model_class(config)
    return model.to(dtype).eval()


def _check(size: str) -> str:
    if size not in SIZES:
        raise ValueError(f"size={size!r}; choose one of {SIZES}.")
    return size


@functools.cache
def tiny_models() -> dict[str, Path]:
    """Tiny random CLIP, HuBERT and BLOOM saved with save_pretrained, keyed by modality (built once
    per test session, removed at exit)."""
    folder = tempfile.TemporaryDirectory(prefix="mer-extract-models-")
    atexit.register(folder.cleanup)
    root = Path(folder.name)
    texts = SUBTITLE_TEXTS * 20
    if SAMPLE_SUBTITLES.exists():
        import pandas as pd
        texts += pd.read_csv(SAMPLE_SUBTITLES, keep_default_na=False)["chinese"].tolist()[:300]
    return {"video": make_clip(root / "clip-vit-tiny"), "audio": make_hubert(root / "chinese-hubert-tiny"),
            "text": make_bloom(root / "bloom-tiny", texts)}
