"""The paper's feature encoders through ``transformers``, following the MER toolkit's recipes.

MERTools (Lian et al., MER2023/MER2024 baselines, github.com/zeroQiaoba/MERTools,
``feature_extraction/{visual,audio,text}``) extracts:
- video: CLIP ViT-L/14 image embeddings (``get_image_features``: the projected pooled token,
  768-d) of every face crop, averaged over frames -> ``clip-vit-large-patch14-UTT``;
- audio: chinese-hubert-large on 16 kHz audio normalised by its feature extractor, the last four
  hidden layers summed and averaged over time (50 frames/s) -> ``chinese-hubert-large-UTT``;
- text: a causal LM such as bloom-7b1 on the subtitle, the last four hidden layers summed and
  averaged over the subtitle's tokens (special tokens left out); an empty subtitle gives a zero
  vector -> ``bloom-7b1-UTT``.
Frame-level (``-FRA``) files hold the same features before the average: ``[T, D]``.

A sentence encoder (a sentence-transformers folder such as all-MiniLM-L6-v2) is read with its own
recipe instead: last hidden layer averaged over the attention mask, L2-normalised when the model's
``modules.json`` lists a Normalize step, so the vectors equal ``SentenceTransformer.encode``'s.

Every encoder loads with ``from_pretrained`` from a local folder or a hub id, runs in batches
(padded inputs are masked, so a batch gives the same numbers as one clip at a time) and in half
precision on a GPU. ``encode`` returns, per input, ``(frames [T, D], utterance [D])`` in float32.
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import transformers

from .. import devices

LAST_FOUR_LAYERS = (-4, -3, -2, -1)  # MERTools' layer_ids for speech and language models
TEXT_POOLINGS = ("auto", "layers", "sentence")
_TRANSFORMERS_VERSION = tuple(int(p) for p in transformers.__version__.split(".")[:2])

Encoded = tuple[np.ndarray, np.ndarray]  # (frames (T, D), utterance (D,)) float32


class ModelLoadError(RuntimeError):
    """A model that cannot be loaded; the message names the model and the fix."""


def resolve_device(device: str = "auto") -> torch.device:
    try:
        return devices.resolve_device(device)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from None


def resolve_dtype(device: torch.device, half: bool | None) -> torch.dtype:
    """float16 on a GPU (the toolkit's ``model.half()``), float32 on CPU unless asked."""
    if half is None:
        half = device.type == "cuda"
    return torch.float16 if half else torch.float32


def model_basename(model: str | Path) -> str:
    """The folder name for a model: ``openai/clip-vit-large-patch14`` -> ``clip-vit-large-patch14``."""
    name = Path(str(model).rstrip("/\\")).name
    if not name:
        raise ValueError(f"cannot name a feature folder after model {model!r}; pass the folder name.")
    return name


class ImageEncoder:
    """CLIP image tower with its projection (``image_embeds`` == ``CLIPModel.get_image_features``)."""

    def __init__(self, model: str | Path, device: torch.device, dtype: torch.dtype):
        from transformers import AutoConfig, AutoImageProcessor, CLIPVisionModelWithProjection

        config = _load(AutoConfig.from_pretrained, model, "CLIP config")
        if config.model_type == "clip":  # a full CLIP checkpoint: take its vision half
            vision_config = config.vision_config
            vision_config.projection_dim = config.projection_dim  # lives on the outer config
        elif config.model_type == "clip_vision_model":
            vision_config = config
        else:
            raise ModelLoadError(f"{model}: a {config.model_type!r} model; the video encoder expects a CLIP "
                                 "checkpoint (model_type 'clip', e.g. openai/clip-vit-large-patch14). "
                                 "Fix: pass a CLIP model as video_model.")
        self.processor = _load(AutoImageProcessor.from_pretrained, model, "CLIP image processor")
        self.model = _load(CLIPVisionModelWithProjection.from_pretrained, model, "CLIP vision model",
                           config=vision_config, dtype=dtype).to(device).eval()
        self.device, self.dtype = device, dtype
        self.dim = int(vision_config.projection_dim)

    @torch.inference_mode()
    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, D) float32 embeddings of N RGB uint8 images, in one forward pass."""
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]  # (N, 3, S, S)
        pixels = pixels.to(self.device, self.dtype)
        return self.model(pixel_values=pixels).image_embeds.float().cpu().numpy()  # (N, D)


class AudioEncoder:
    """A wav2vec2-family speech model (HuBERT, wav2vec 2.0, WavLM): last four layers summed."""

    def __init__(self, model: str | Path, device: torch.device, dtype: torch.dtype):
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

        config = _load(AutoConfig.from_pretrained, model, "audio model config")
        if not hasattr(config, "conv_kernel"):  # the wav2vec2 family's convolutional front end
            raise ModelLoadError(f"{model}: a {config.model_type!r} model; the audio encoder expects a "
                                 "wav2vec2-family model (HuBERT, wav2vec 2.0, WavLM), e.g. "
                                 "TencentGameMate/chinese-hubert-large. Fix: pass one as audio_model.")
        self.feature_extractor = _load(AutoFeatureExtractor.from_pretrained, model, "audio feature extractor")
        self.model = _load(AutoModel.from_pretrained, model, "audio model", config=config,
                           dtype=dtype).to(device).eval()
        self.device, self.dtype = device, dtype
        self.dim = int(self.model.config.hidden_size)
        self.num_layers = int(self.model.config.num_hidden_layers)
        # GroupNorm in the conv front end (base models) mixes padding into the features: no batching
        self.can_pad = getattr(self.model.config, "feat_extract_norm", "layer") != "group"
        self.sampling_rate = int(self.feature_extractor.sampling_rate)

    @torch.inference_mode()
    def encode(self, waves: list[np.ndarray]) -> list[Encoded]:
        """Per 16 kHz mono wave: (frames (T, D), mean over T). Waves are padded and masked."""
        if len(waves) > 1 and not self.can_pad:
            return [out for wave in waves for out in self.encode([wave])]
        # the feature extractor normalises each wave on its own, before any padding
        values = [self.feature_extractor(w, sampling_rate=self.sampling_rate, return_tensors="np")
                  ["input_values"][0].astype(np.float32) for w in waves]
        lengths = torch.tensor([v.shape[0] for v in values])
        batch = torch.zeros(len(values), int(lengths.max()))  # (B, S)
        for i, v in enumerate(values):
            batch[i, : v.shape[0]] = torch.from_numpy(v)
        mask = (torch.arange(batch.shape[1])[None, :] < lengths[:, None]).long()  # (B, S)
        out = self.model(batch.to(self.device, self.dtype), attention_mask=mask.to(self.device),
                         output_hidden_states=True)
        summed = _sum_layers(out.hidden_states)  # (B, T, D)
        frames = self.model._get_feat_extract_output_lengths(lengths).tolist()
        return [_pool(summed[i, : frames[i]]) for i in range(len(waves))]


class TextEncoder:
    """A language model over subtitles: MER's last-four-layers recipe, or a sentence encoder's."""

    def __init__(self, model: str | Path, device: torch.device, dtype: torch.dtype,
                 pooling: str = "auto", max_tokens: int = 512):
        from transformers import AutoModel, AutoTokenizer

        if pooling not in TEXT_POOLINGS:
            raise ValueError(f"text_pooling={pooling!r}; choose one of {TEXT_POOLINGS}.")
        sentence = read_sentence_transformers_recipe(model)
        self.pooling = pooling if pooling != "auto" else ("sentence" if sentence else "layers")
        self.normalize = bool(sentence and sentence["normalize"]) and self.pooling == "sentence"
        self.max_tokens = min(max_tokens, sentence["max_seq_length"]) if sentence and \
            sentence.get("max_seq_length") else max_tokens
        self.tokenizer = _load(AutoTokenizer.from_pretrained, model, "tokenizer")
        self.tokenizer.padding_side = "right"  # causal models: real tokens never see the padding
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.model = _load(AutoModel.from_pretrained, model, "text model", dtype=dtype).to(device).eval()
        self.device = device
        self.dim = int(self.model.config.hidden_size)

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> list[Encoded]:
        """Per subtitle: (token features (T, D), pooled (D,)); an empty subtitle gives zeros."""
        results: list[Encoded | None] = [None] * len(texts)
        todo = [i for i, t in enumerate(texts) if t.strip()]
        for i in set(range(len(texts))) - set(todo):  # MERTools writes zeros for an empty subtitle
            results[i] = (np.zeros((1, self.dim), np.float32), np.zeros(self.dim, np.float32))
        if not todo:
            return results
        if self.tokenizer.pad_token is None and len(todo) > 1:  # no way to pad: one at a time
            for i in todo:
                results[i] = self.encode([texts[i]])[0]
            return results
        tokens = self.tokenizer([texts[i] for i in todo], padding=True, truncation=True,
                                max_length=self.max_tokens, return_tensors="pt",
                                return_special_tokens_mask=True)
        special = tokens.pop("special_tokens_mask").bool()  # (B, L)
        attention = tokens["attention_mask"].bool()  # (B, L)
        tokens = {k: v.to(self.device) for k, v in tokens.items()}
        if self.pooling == "sentence":
            states = self.model(**tokens).last_hidden_state  # (B, L, D)
            keep = attention  # sentence-transformers averages over every attended token
        else:
            states = _sum_layers(self.model(**tokens, output_hidden_states=True).hidden_states)  # (B, L, D)
            keep = attention & ~special
            keep = torch.where(keep.any(1, keepdim=True), keep, attention)  # only special tokens: keep them
        for row, i in enumerate(todo):
            frames, utterance = _pool(states[row][keep[row].to(states.device)])
            if self.normalize:
                utterance = utterance / max(float(np.linalg.norm(utterance)), 1e-12)
            results[i] = (frames, utterance)
        return results


def read_sentence_transformers_recipe(model: str | Path) -> dict | None:
    """Pooling of a local sentence-transformers folder (``modules.json``), or None for other models."""
    folder = Path(model)
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return None
    try:
        modules = json.loads(modules_file.read_text())
        pooling_dirs = [m["path"] for m in modules if m["type"].endswith("Pooling")]
        pooling = json.loads((folder / pooling_dirs[0] / "config.json").read_text()) if pooling_dirs else {}
        st_config = folder / "sentence_bert_config.json"
        max_len = json.loads(st_config.read_text()).get("max_seq_length") if st_config.is_file() else None
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise ModelLoadError(f"{folder}: unreadable sentence-transformers files ({exc}). Fix: restore the "
                             "folder (modules.json, 1_Pooling/config.json) or pass text_pooling='layers'.")
    if pooling and not pooling.get("pooling_mode_mean_tokens", False):
        modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
        raise ModelLoadError(f"{folder}: this sentence encoder pools with {modes}; only mean pooling is "
                             "implemented. Fix: use a mean-pooling model, or text_pooling='layers'.")
    return {"normalize": any(m["type"].endswith("Normalize") for m in modules), "max_seq_length": max_len}


def _sum_layers(hidden_states: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Sum of the last four hidden layers, in float32 so half-precision sums do not overflow."""
    return torch.stack([hidden_states[i].float() for i in LAST_FOUR_LAYERS]).sum(dim=0)  # (B, T, D)


def _pool(frames: torch.Tensor) -> Encoded:
    frames = frames.float().cpu().numpy()  # (T, D)
    return frames, frames.mean(axis=0)


def _load(loader, model: str | Path, what: str, **kwargs):
    """``loader(model)`` with an error that names the model and the fix, and without the load report
    noise (a full CLIP checkpoint read as its vision half lists every text weight as unused)."""
    if "dtype" in kwargs and _TRANSFORMERS_VERSION < (4, 56):
        kwargs["torch_dtype"] = kwargs.pop("dtype")  # renamed in transformers 4.56
    try:
        with _quiet_transformers():
            return loader(str(model), **kwargs)
    except (OSError, ValueError) as exc:
        local = Path(str(model)).exists()
        fix = ("it must hold config.json, the weights and the preprocessing files that save_pretrained "
               "writes" if local else "pass a local folder (save_pretrained), or a hub id while the hub "
                                      "is reachable (no HF_HUB_OFFLINE)")
        reason = (str(exc).splitlines() or [""])[0]
        reason = reason if len(reason) <= 300 else reason[:300] + " ..."
        raise ModelLoadError(f"{model}: cannot load the {what} ({type(exc).__name__}: {reason}). "
                             f"Fix: {fix}.") from exc


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # "Loading weights" bars would flood papermill logs
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
