"""Stage 2: prior-guided tuning, the paper's section 3.2 (eq. 10-11), its "Ours" row.

With e_m the embedding of the clip's prior text I_m (:mod:`mer_lib.prior_inputs`), R = (w_a, w_v, w_t)
its contributions and z_m the frozen stage-1 latents of the clip:

    e_m = Proj_m(Embedding(I_m))             a sentence encoder, mean-pooled; a linear projection
    F_m = Transformer(MLP(e_m + z_m))        one token per modality

and then, with ``head="paper"`` (the default, as the paper builds it), the F_m go through the frozen
stage-1 fusion and linear layer, with R as the fusion weights in place of stage 1's attention:

    y   = Linear_stage1(sum_m w_m * F_m)

The stage-1 encoders, projector, fusion and linear layer stay frozen; only the prior path trains.
``head="residual"`` is this project's alternative: a new linear head on sum_m w_m * F_m, started at
zero and added to the frozen stage-1 logits, y = Stage1(x) + Head(sum_m w_m F_m), so stage 2 starts
exactly at stage 1 (Table 4 measures both). ``weights="uniform"`` ignores R (an ablation).
A clip without a usable prior (missing, failed, filtered out) still gets a prediction: by default a
learned "no prior" embedding with uniform weights (trained by hiding a share of the training
priors), or, with ``missing="stage1"``, the stage-1 model's own prediction.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .checkpoints import Checkpointer, load_checkpoint, run_key, seed_everything, state_fingerprint
from .data import Dataset
from .devices import adam, autocast, reproducible, resolve_device
from .metrics import classification_scores
from .models import AttentionFusion
from .parallel import map_trainings
from .prior_inputs import PriorInputs
from .progress import progress
from .stage1 import Stage1Run, feature_tensors, predict, predict_run

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Stage2Config:
    """Stage-2 settings: [paper] as the paper builds it; [ours] where it is silent (Table 4)."""
    epochs: int = 30  # [ours] training epochs of the prior path
    batch_size: int = 128  # [ours]
    lr: float = 1e-3  # [ours] Adam
    weight_decay: float = 1e-5  # [ours]
    head: str = "paper"  # [paper] F_m through the frozen stage-1 fusion and linear layer; "residual" [ours]
    weights: str = "prior"  # [paper] R as the fusion weights; "uniform" (an ablation)
    transformer_layers: int = 1  # [ours] depth of the Transformer over the modality tokens
    heads: int = 4  # [ours] attention heads (must divide stage 1's latent dimension)
    dropout: float = 0.1  # [ours] dropout inside the prior path
    prior_dropout: float = 0.15  # [ours] share of training clips whose prior is hidden, to train the no-prior path
    missing: str = "embedding"  # [ours] clips without a prior: "embedding" (learned, uniform weights) or "stage1"
    device: str = "auto"
    amp: bool = True  # bf16 autocast on GPU
    eval_batch_size: int = 8192


STAGE2_HEADS = ("paper", "residual")
FUSION_WEIGHTS = ("prior", "uniform")


class PriorGuidedFusion(nn.Module):
    """F_m = Transformer(MLP(e_m + z_m)), fused with the prior's contributions, on a frozen stage 1."""

    def __init__(self, stage1: AttentionFusion, text_dim: int, num_classes: int, cfg: Stage2Config):
        super().__init__()
        if cfg.head not in STAGE2_HEADS or cfg.weights not in FUSION_WEIGHTS:
            raise ValueError(f"Stage2Config: head must be one of {STAGE2_HEADS} (got {cfg.head!r}) and weights "
                             f"one of {FUSION_WEIGHTS} (got {cfg.weights!r})")
        self.cfg = cfg
        self.stage1 = stage1
        for p in self.stage1.parameters():
            p.requires_grad_(False)
        self.modalities = stage1.modalities
        L, M = stage1.latent_dim, len(stage1.modalities)
        self.prior_proj = nn.ModuleDict({m: nn.Linear(text_dim, L) for m in self.modalities})
        self.no_prior = nn.Parameter(torch.zeros(M, L))  # e_m of a clip without a prior
        self.mlp = nn.Sequential(nn.Linear(L, L), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(L, L))
        self.modality_tokens = nn.Parameter(torch.zeros(M, L))  # tells the Transformer which token is which
        layer = nn.TransformerEncoderLayer(L, cfg.heads, dim_feedforward=2 * L, dropout=cfg.dropout,
                                           batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, cfg.transformer_layers, enable_nested_tensor=False)
        if cfg.head == "residual":
            self.classifier = nn.Linear(L, num_classes)
            nn.init.zeros_(self.classifier.weight)  # stage 2 starts exactly at stage 1
            nn.init.zeros_(self.classifier.bias)

    def train(self, mode: bool = True):
        super().train(mode)
        self.stage1.eval()  # frozen: no dropout, no statistics updates
        return self

    def forward(self, features: Mapping[str, torch.Tensor], prior_emb: torch.Tensor, prior_w: torch.Tensor,
                has_prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, C) of stage 2 and of the frozen stage 1 alone, from prior_emb (B, M, E),
        prior_w (B, M) and has_prior (B,) bool."""
        with torch.no_grad():
            s1 = self.stage1(features)
        return self.logits(s1.z, s1.logits, prior_emb, prior_w, has_prior), s1.logits

    def logits(self, z: torch.Tensor, stage1_logits: torch.Tensor, prior_emb: torch.Tensor, prior_w: torch.Tensor,
               has_prior: torch.Tensor) -> torch.Tensor:
        """Stage 2's logits (B, C) given the frozen stage-1 latents z (B, M, L) and logits (B, C)."""
        e = torch.stack([self.prior_proj[m](prior_emb[:, i]) for i, m in enumerate(self.modalities)], 1)  # (B, M, L)
        e = torch.where(has_prior[:, None, None], e, self.no_prior.to(e.dtype).expand_as(e))
        uniform = torch.full_like(prior_w, 1.0 / len(self.modalities))
        w = torch.where(has_prior[:, None], prior_w, uniform) if self.cfg.weights == "prior" else uniform
        tokens = self.transformer(self.mlp(e + z) + self.modality_tokens)  # (B, M, L): F_m
        if self.cfg.head == "paper":  # the frozen stage-1 linear layer, R in place of its attention weights
            return self.stage1.classify(tokens, w.to(tokens.dtype)).float()
        return stage1_logits.float() + self.classifier((tokens * w.unsqueeze(-1)).sum(1)).float()


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
    return torch.cat(probs).numpy() if probs else np.zeros((0, model.stage1.classifier.out_features), np.float32)


@reproducible
def fit_stage2(ds: Dataset, stage1: AttentionFusion, inputs: PriorInputs, train_idx: np.ndarray,
               val_idx: np.ndarray, cfg: Stage2Config, seed: int, *, train_available: np.ndarray | None = None,
               eval_available: np.ndarray | None = None, checkpoint_dir: Path | None = None,
               tag: str = "stage2", desc: str = "stage 2") -> Stage2Fit:
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
    # what the result depends on: data, rows, the priors (content and filters), settings, seed, stage 1
    key = run_key(ds.fingerprint, train_idx, val_idx, train_inputs.available, inputs.available, inputs.fingerprint,
                  repr(asdict(cfg)), seed, state_fingerprint(stage1))
    checkpoint = None if checkpoint_dir is None else Path(checkpoint_dir) / f"{tag}-{key[:12]}.pt"
    state = {"epoch": -1, "best_state": None, "best_val_f1": -1.0, "best_epoch": -1, "history": []}
    state = load_checkpoint(checkpoint, key, model, opt, rng) or state
    checkpointer = Checkpointer(checkpoint, key)
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
        # the loss is summed on the device: a step does not wait for the GPU
        total, batches = torch.zeros((), dtype=torch.float64, device=device), 0
        for start in range(0, len(order), cfg.batch_size):
            rows = order[start:start + cfg.batch_size]
            emb, w, has = _batch(train_inputs, rows, device)
            if cfg.missing == "embedding":
                has = has & ~torch.as_tensor(hide[start:start + cfg.batch_size], device=device)
            r = torch.as_tensor(rows, device=device)
            with autocast(device, cfg.amp):
                logits = model.logits(z_all[r], s1_logits_all[r], emb, w, has)
            loss = F.cross_entropy(logits.float(), labels[r])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, batches = total + loss.detach(), batches + 1
        val_pred = predict_stage2(model, feats, inputs, val_idx, cfg).argmax(1)
        val = classification_scores(ds.labels[val_idx], val_pred, ds.classes)
        state["history"].append({"epoch": epoch, "loss": total.item() / max(batches, 1),
                                 "val_accuracy": val["accuracy"], "val_weighted_f1": val["weighted_f1"]})
        if val["weighted_f1"] > state["best_val_f1"]:
            state.update(best_val_f1=val["weighted_f1"], best_epoch=epoch,
                         best_state={k: v.clone() for k, v in model.state_dict().items()})
        state["epoch"] = epoch
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix(val_f1=f"{val['weighted_f1']:.1f}", refresh=False)
        checkpointer.save(model, opt, rng, state, final=epoch == cfg.epochs - 1)
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
    fits = [fit_stage2(ds, s1.model, inputs, tr, va, cfg, stage1.seed + 1000 * k, train_available=train_available,
                       eval_available=eval_available, checkpoint_dir=checkpoint_dir,
                       tag=f"{tag}-seed{stage1.seed}-fold{k}", desc=f"{tag} seed {stage1.seed}")
            for k, ((tr, va), s1) in enumerate(zip(stage1.splits, stage1.folds))]
    train_inputs = inputs if train_available is None else inputs.with_available(train_available)
    inputs = inputs if eval_available is None else inputs.with_available(eval_available)
    test_probs = predict_stage2_folds(ds, fits, inputs, stage1.test_idx, cfg)
    coverage = {"train": float(np.mean([train_inputs.coverage(tr) for tr, _ in stage1.splits])),
                "validation": float(np.mean([inputs.coverage(va) for _, va in stage1.splits])),
                "test": inputs.coverage(stage1.test_idx)}
    scores = classification_scores(ds.labels[stage1.test_idx], test_probs.argmax(1), ds.classes)
    return Stage2Run(stage1.seed, stage1.test_idx, test_probs, scores, coverage, fits)


def predict_stage2_folds(ds: Dataset, fits: Sequence[Stage2Fit], inputs: PriorInputs, idx: np.ndarray,
                         cfg: Stage2Config) -> np.ndarray:
    """Probabilities (n, C) on rows ``idx``, averaged over the fold models (as the test predictions
    are made), with the priors ``inputs`` lets in."""
    device = next(fits[0].model.parameters()).device
    feats = feature_tensors(ds, device, fits[0].model.modalities)
    return np.mean([predict_stage2(f.model, feats, inputs, idx, cfg) for f in fits], axis=0)


# --- over seeds, and per-clip predictions for the inspector ---------------------------------------

LABEL_FREE_POLICIES = ("all", "au_consistent")  # usable at test time: they never read a human label


def stage2_over_seeds(ds: Dataset, stage1_runs: Sequence[Stage1Run], inputs, cfg, table, *,
                      train_policy: str, test_policy: str, checkpoint_dir: Path, tag: str,
                      shuffled: bool = False) -> list:
    """Stage 2 on each seed's stage-1 run. Priors pass ``train_policy`` in training (it may use the
    human labels) and ``test_policy`` for validation and test (it must not). ``shuffled``: every
    clip gets another clip's prior (the control)."""
    from . import priors as P

    if test_policy not in LABEL_FREE_POLICIES:
        raise ValueError(f"test-time prior policy '{test_policy}' reads the human label, which a test clip "
                         f"does not have (here it would leak the answer). Use one of {LABEL_FREE_POLICIES}.")
    train_mask, eval_mask = P.reliable_mask(table, train_policy), P.reliable_mask(table, test_policy)
    jobs = [(s1, inputs.shuffled(seed=s1.seed) if shuffled else inputs, cfg, train_mask, eval_mask, checkpoint_dir,
             tag) for s1 in stage1_runs]
    return map_trainings(run_stage2_job, ds, jobs, cfg.device)


def run_stage2_job(ds: Dataset, stage1: Stage1Run, inputs: PriorInputs, cfg: Stage2Config, train_available,
                   eval_available, checkpoint_dir, tag) -> Stage2Run:
    """:func:`run_stage2` with positional arguments (a job for :mod:`mer_lib.parallel`)."""
    return run_stage2(ds, stage1, inputs, cfg, train_available=train_available, eval_available=eval_available,
                      checkpoint_dir=checkpoint_dir, tag=tag)


def coverage_summary(runs: Sequence) -> dict:
    """Prior coverage per split, averaged over seeds (it is the same for every seed)."""
    return {k: float(np.mean([r.coverage[k] for r in runs])) for k in runs[0].coverage} if runs else {}


def prediction_table(ds: Dataset, stage1_run: Stage1Run, stage2_run, inputs, eval_available: np.ndarray,
                     rows: np.ndarray, cfg) -> pd.DataFrame:
    """Per-clip predictions for the inspector: ``name, split, label, stage1_<class>..., stage2_<class>...``
    (probabilities of one seed's models; stage 2 with the priors that ``eval_available`` lets in)."""
    import pandas as pd

    p1 = predict_run(ds, stage1_run, rows)
    used = inputs.with_available(eval_available)
    p2 = predict_stage2_folds(ds, stage2_run.folds, used, rows, cfg)
    table = pd.DataFrame({"name": ds.names[rows], "split": ds.splits[rows],
                          "label": [ds.classes[y] if y >= 0 else "" for y in ds.labels[rows]],
                          "has_prior": used.available[rows]})
    for prefix, probs in (("stage1", p1), ("stage2", p2)):
        for i, c in enumerate(ds.classes):
            table[f"{prefix}_{c}"] = probs[:, i].round(5)
    return table


def teacher_complementarity(predictions: pd.DataFrame, reliability: pd.DataFrame, split: str) -> dict:
    """How the teacher's c* fares where stage 1 is right and where it is wrong, on ``split`` (clips with
    a prior): if c* is right as often on stage 1's errors as on its successes, the two err independently
    and any fusion of them gains; a real MLLM errs on the clips that are hard for everyone."""
    rows = predictions[(predictions["split"] == split) & (predictions["label"] != "")]
    classes = [c.removeprefix("stage1_") for c in rows.columns if c.startswith("stage1_")]
    stage1_right = rows[[f"stage1_{c}" for c in classes]].to_numpy().argmax(1) == rows["label"].map(classes.index)
    prior = reliability.loc[rows["name"], "prior_emotion"].to_numpy()
    has = prior != ""
    cstar_right = prior == rows["label"].to_numpy()
    return {"n": int(has.sum()),
            "cstar_accuracy_where_stage1_right": float(100 * cstar_right[has & stage1_right.to_numpy()].mean()),
            "cstar_accuracy_where_stage1_wrong": float(100 * cstar_right[has & ~stage1_right.to_numpy()].mean())}
