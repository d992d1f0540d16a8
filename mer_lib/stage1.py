"""Stage 1: semi-supervised pre-training of the fusion model with CE + BDCL and pseudo-labels.

The recipe of the paper's stage 1 on top of the MER2024 baseline protocol:
1. cold start: ``cold_start_epochs`` epochs on the labelled training samples;
2. from then on, at the end of every epoch the unlabelled pool is pseudo-labelled (softmax
   confidence >= ``pseudo_threshold``, optionally at most ``pseudo_class_cap`` per class, most
   confident first, so head classes do not swamp tail classes) and the next epoch trains on
   labelled + pseudo-labelled samples;
3. every epoch is scored on a held-out validation part of the training split; the epoch with the
   best weighted F1 (MER2024's metric) is kept. With ``folds=5`` this is MERTools' protocol: five
   fold models, their test logits averaged.

Checkpoints are written atomically after every epoch with the optimiser and RNG states
(:mod:`mer_lib.checkpoints`), named after the run's key, so a killed run resumes where it stopped
and ends with the same numbers as an uninterrupted one, and any notebook asking for the same stage 1
(same data, splits, settings and seed) finds it instead of training it again.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

from .checkpoints import Checkpointer, load_checkpoint, run_key, seed_everything
from .data import Dataset
from .devices import adam, autocast, reproducible, resolve_device
from .losses import bdcl_loss
from .metrics import classification_scores
from .models import AttentionFusion, FusionConfig
from .parallel import map_trainings
from .progress import progress


@dataclass
class Stage1Config:
    """Stage-1 settings. Provenance: [paper] the paper fixes it; [MERTools] the MER2024 toolkit's
    baseline; [ours] this project's choice where both are silent (Table 4 measures the readings)."""
    model: FusionConfig = field(default_factory=FusionConfig)
    epochs: int = 40  # [ours] epochs in all, cold start included (MERTools trains 100)
    batch_size: int = 256  # [ours] large enough that most batches hold every class for BDCL
    lr: float = 1e-3  # [MERTools] Adam
    weight_decay: float = 1e-5  # [MERTools]
    bdcl: bool = True  # [paper] add Balanced Dual-Contrastive Learning to cross-entropy
    tau: float = 0.1  # [paper] BDCL temperature
    lambda_inter: float = 0.2  # [paper] weight of BDCL's inter-modality term
    lambda_intra: float = 0.2  # [paper] weight of BDCL's intra-modality term
    bdcl_symmetric: bool = False  # [paper] False: the three pairs (v,a), (v,t), (a,t) of eq. 7; True: all six
    bdcl_include_self: bool = True  # [paper] eq. 6-8 read literally: the anchor is in its own class's B_c
    pseudo_labels: bool = False  # [paper] pseudo-label the unlabelled pool after the cold start
    cold_start_epochs: int = 10  # [ours] labelled-only epochs before the first pseudo-labelling
    pseudo_threshold: float = 0.0  # [paper] 0: every pool clip relabelled after each epoch; >0 [ours]: confidence needed
    pseudo_class_cap: int | None = None  # [ours] at most this many pseudo-labels per class (None: no cap)
    standardize: bool = True  # [ours] standardise each feature with the training rows' statistics (MERTools: raw)
    selection: str = "average"  # [ours] the weights averaged over the last selection_window epochs (above the
    # best epoch in mean test WF1 on the demo and real text, below it where a model overfits late:
    # benchmarks/bench_selection.py); "best": the epoch with the best validation WF1 [MERTools];
    # "smoothed": the best mean over the last selection_window epochs
    selection_window: int = 5  # [ours] epochs that "smoothed" and "average" look at
    selection_start: int = 0  # [ours] the first epoch (0-based) that may be selected
    val_fraction: float = 0.2  # [ours] share of the training split held out for model selection (folds=1)
    folds: int = 1  # >1: k-fold cross-validation on the training split ([MERTools] uses 5)
    device: str = "auto"  # "auto" picks CUDA when available
    amp: bool = True  # bf16 autocast on GPU (ignored on CPU)
    eval_batch_size: int = 8192  # inference batch, also for pseudo-labelling 115k clips


def paper_order(modalities: Sequence[str]) -> list[int]:
    """Positions of the modalities in the paper's order (video, audio, text; others after)."""
    rank = {"video": 0, "audio": 1, "text": 2}
    return sorted(range(len(modalities)), key=lambda i: (rank.get(modalities[i], 3), i))


def standardisation(ds: Dataset, rows: np.ndarray, modalities) -> tuple[dict, dict]:
    """Per-feature mean and std of ``rows`` (the training rows only), as tensors; a constant feature
    keeps std 1 so it stays finite."""
    mean = {m: torch.from_numpy(ds.features[m][rows].mean(0, dtype=np.float64).astype(np.float32)) for m in modalities}
    std = {m: torch.from_numpy(ds.features[m][rows].std(0, dtype=np.float64).astype(np.float32)) for m in modalities}
    return mean, {m: torch.where(s > 1e-6, s, torch.ones_like(s)) for m, s in std.items()}


def feature_tensors(ds: Dataset, device: torch.device, modalities=None) -> dict[str, torch.Tensor]:
    """All features of the dataset on the device, once (batches are then index lookups)."""
    return {m: torch.from_numpy(ds.features[m]).to(device) for m in (modalities or ds.modalities)}


@reproducible
@torch.no_grad()
def predict(model: AttentionFusion, feats: Mapping[str, torch.Tensor], idx: np.ndarray,
            batch_size: int = 8192, amp: bool = True) -> dict[str, np.ndarray]:
    """Logits and softmax probabilities (n, C), latents z (n, M, L) and modality weights (n, M) of rows ``idx``."""
    model.eval()
    device = next(model.parameters()).device
    out = {"logits": [], "probs": [], "z": [], "weights": []}
    for start in range(0, len(idx), batch_size):
        rows = torch.as_tensor(idx[start:start + batch_size], device=device)
        with autocast(device, amp):
            res = model({m: feats[m][rows] for m in model.modalities})
        out["logits"].append(res.logits.float().cpu())
        out["probs"].append(res.logits.float().softmax(-1).cpu())
        out["z"].append(res.z.float().cpu())
        out["weights"].append(res.weights.float().cpu())
    C, M, L = model.classifier.out_features, len(model.modalities), model.latent_dim
    empty = {"logits": (0, C), "probs": (0, C), "z": (0, M, L), "weights": (0, M)}
    return {k: torch.cat(v).numpy() if v else np.zeros(empty[k], np.float32) for k, v in out.items()}


def select_pseudo_labels(probs: np.ndarray, threshold: float, class_cap: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into ``probs``) and labels of confident predictions, at most ``class_cap`` per class."""
    labels, conf = probs.argmax(1), probs.max(1)
    keep = np.flatnonzero(conf >= threshold)
    if class_cap is not None:
        capped = []
        for c in np.unique(labels[keep]):
            of_c = keep[labels[keep] == c]
            capped.append(of_c[np.argsort(-conf[of_c], kind="stable")[:class_cap]])
        keep = np.sort(np.concatenate(capped)) if capped else keep
    return keep, labels[keep]


@dataclass
class FitResult:
    model: AttentionFusion  # with the best validation epoch's weights
    best_epoch: int
    best_val_f1: float
    history: list[dict]  # one entry per epoch: losses, validation scores, pseudo-label statistics
    pseudo_idx: np.ndarray  # dataset rows pseudo-labelled after the last epoch
    pseudo_labels: np.ndarray


@reproducible
def fit(ds: Dataset, train_idx: np.ndarray, val_idx: np.ndarray, cfg: Stage1Config, seed: int, *,
        pool_idx: np.ndarray | None = None, extra_idx: np.ndarray | None = None,
        extra_labels: np.ndarray | None = None, modalities=None, checkpoint_dir: Path | None = None,
        tag: str = "stage1", desc: str = "stage 1") -> FitResult:
    """Train one model. ``pool_idx``: the unlabelled rows to pseudo-label (when cfg.pseudo_labels);
    ``extra_idx/extra_labels``: a fixed set of extra training rows with given labels (Table 3).
    Checkpointed as ``<checkpoint_dir>/<tag>-<run key>.pt``: resumed, or reused once finished."""
    device = resolve_device(cfg.device)
    modalities = tuple(modalities or ds.modalities)
    pool_idx = np.asarray([] if pool_idx is None else pool_idx, dtype=np.int64)
    extra_idx = np.asarray([] if extra_idx is None else extra_idx, dtype=np.int64)
    extra_labels = np.asarray([] if extra_labels is None else extra_labels, dtype=np.int64)
    key = _run_key(ds, train_idx, val_idx, pool_idx, extra_idx, extra_labels, modalities, cfg, seed)
    checkpoint = None if checkpoint_dir is None else Path(checkpoint_dir) / f"{tag}-{key[:12]}.pt"

    seed_everything(seed)
    model = AttentionFusion({m: ds.dims[m] for m in modalities}, ds.num_classes, cfg.model)
    if cfg.standardize:  # statistics of this fold's labelled training rows: never validation, test or pool
        model.set_standardisation(*standardisation(ds, train_idx, modalities))
    model = model.to(device)
    opt = adam(model.parameters(), cfg.lr, cfg.weight_decay, device)
    rng = np.random.default_rng(seed)
    if cfg.selection not in SELECTIONS:
        raise ValueError(f"Stage1Config.selection must be one of {SELECTIONS}, not {cfg.selection!r}")
    if cfg.selection != "average" and cfg.selection_start >= cfg.epochs:
        raise ValueError(f"Stage1Config.selection_start={cfg.selection_start} leaves no epoch of {cfg.epochs} to "
                         "select. Fix: a smaller selection_start, or more epochs.")
    state = {"epoch": -1, "best_state": None, "best_score": -1.0, "best_val_f1": -1.0, "best_epoch": -1,
             "history": [], "recent_states": [], "pseudo_idx": np.zeros(0, np.int64),
             "pseudo_labels": np.zeros(0, np.int64)}
    state = load_checkpoint(checkpoint, key, model, opt, rng) or state
    checkpointer = Checkpointer(checkpoint, key)

    feats = feature_tensors(ds, device, modalities)
    labels = torch.as_tensor(ds.labels, device=device)
    truth = ds.hidden_labels if ds.hidden_labels is not None else np.full(len(ds), -1)
    epochs = progress(range(state["epoch"] + 1, cfg.epochs), desc=desc, total=cfg.epochs,
                      initial=state["epoch"] + 1)
    for epoch in epochs:
        rows = np.concatenate([train_idx, extra_idx, state["pseudo_idx"]])
        targets = torch.cat([labels[torch.as_tensor(train_idx, device=device)],
                             torch.as_tensor(extra_labels, device=device),
                             torch.as_tensor(state["pseudo_labels"], device=device)])
        started = time.perf_counter()
        terms = _train_epoch(model, opt, feats, rows, targets, cfg, rng, device)
        train_seconds = time.perf_counter() - started

        val = predict(model, feats, val_idx, cfg.eval_batch_size, cfg.amp)
        val_scores = classification_scores(ds.labels[val_idx], val["probs"].argmax(1), ds.classes)
        record = {"epoch": epoch, **terms, "val_accuracy": val_scores["accuracy"],
                  "val_weighted_f1": val_scores["weighted_f1"], "train_samples": len(rows),
                  "pseudo_trained": len(state["pseudo_idx"]),  # pseudo-labels this epoch trained on
                  "train_seconds": train_seconds}  # throughput figures for benchmarks (not in the run key)
        score = _selection_score([h["val_weighted_f1"] for h in state["history"]] + [val_scores["weighted_f1"]], cfg)
        if score is not None and score > state["best_score"]:
            state.update(best_score=score, best_val_f1=val_scores["weighted_f1"], best_epoch=epoch,
                         best_state=copy.deepcopy(model.state_dict()))
        if cfg.selection == "average":  # the last selection_window epochs' weights, averaged at the end
            state["recent_states"] = [*state["recent_states"], copy.deepcopy(model.state_dict())][-cfg.selection_window:]

        if cfg.pseudo_labels and epoch + 1 >= cfg.cold_start_epochs and len(pool_idx):
            started = time.perf_counter()
            pool = predict(model, feats, pool_idx, cfg.eval_batch_size, cfg.amp)["probs"]
            record["pseudo_seconds"] = time.perf_counter() - started
            pos, plabels = select_pseudo_labels(pool, cfg.pseudo_threshold, cfg.pseudo_class_cap)
            state["pseudo_idx"], state["pseudo_labels"] = pool_idx[pos], plabels
            # selected at the end of this epoch, for the next one
            record.update(pseudo_selected=len(pos), **_pseudo_stats(plabels, truth[pool_idx[pos]], ds.classes))
        state["history"].append(record)
        state["epoch"] = epoch
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix(val_f1=f"{val_scores['weighted_f1']:.1f}", pseudo=len(state["pseudo_idx"]), refresh=False)
        checkpointer.save(model, opt, rng, state, final=epoch == cfg.epochs - 1)

    if cfg.selection == "average":
        model.load_state_dict(_average_states(state["recent_states"]))
        val = predict(model, feats, val_idx, cfg.eval_batch_size, cfg.amp)["probs"].argmax(1)
        averaged_f1 = classification_scores(ds.labels[val_idx], val, ds.classes)["weighted_f1"]
        return FitResult(model, state["epoch"], averaged_f1, state["history"], state["pseudo_idx"],
                         state["pseudo_labels"])
    model.load_state_dict(state["best_state"])
    return FitResult(model, state["best_epoch"], state["best_val_f1"], state["history"],
                     state["pseudo_idx"], state["pseudo_labels"])


SELECTIONS = ("best", "smoothed", "average")


def _selection_score(val_f1: list[float], cfg: Stage1Config) -> float | None:
    """How good the latest epoch is as the model to keep (None: it may not be kept)."""
    epoch = len(val_f1) - 1
    if epoch < cfg.selection_start or cfg.selection == "average":
        return None
    if cfg.selection == "smoothed":  # a lucky epoch among bad neighbours is not picked
        return float(np.mean(val_f1[-cfg.selection_window:]))
    return val_f1[-1]


def _average_states(states: list[dict]) -> dict:
    """The element-wise mean of model state dicts (the weights of the last epochs)."""
    return {k: torch.stack([s[k].float() for s in states]).mean(0).to(states[0][k].dtype) for k in states[0]}


def _train_epoch(model, opt, feats, rows, targets, cfg: Stage1Config, rng, device) -> dict[str, float]:
    """One epoch. The order and the rows go to the device once and the logged terms are summed there
    (in float64, as Python floats would be), so a step waits for the GPU only where the loss must."""
    model.train()
    order = torch.as_tensor(rng.permutation(len(rows)), device=device)
    rows = torch.as_tensor(rows, device=device)
    sums = {k: torch.zeros((), dtype=torch.float64, device=device)
            for k in ("loss", "ce", "bdcl", "inter", "intra")}
    batches = 0
    for start in range(0, len(order), cfg.batch_size):
        pick = order[start:start + cfg.batch_size]
        if len(pick) < 2:  # a lone sample has no contrastive partner and skews the mean
            continue
        rows_b = rows[pick]
        y = targets[pick]
        with autocast(device, cfg.amp):
            out = model({m: feats[m][rows_b] for m in model.modalities})
        ce = F.cross_entropy(out.logits.float(), y)
        loss = ce
        if cfg.bdcl:
            # the paper's pairs are (v, a), (v, t), (a, t): the modality axis in that order, anchor first
            con = bdcl_loss(out.z[:, paper_order(model.modalities)], y, cfg.tau, cfg.lambda_inter, cfg.lambda_intra,
                            symmetric=cfg.bdcl_symmetric, include_self=cfg.bdcl_include_self)
            loss = ce + con["loss"]
            for k in ("inter", "intra"):
                sums[k] += con[k].detach()
            sums["bdcl"] += con["loss"].detach()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sums["loss"] += loss.detach()
        sums["ce"] += ce.detach()
        batches += 1
    return {k: v.item() / max(batches, 1) for k, v in sums.items()}


def _pseudo_stats(plabels: np.ndarray, truth: np.ndarray, classes) -> dict:
    """Pseudo-label counts per class and, where the truth is known (demo data), their accuracy."""
    stats = {"pseudo_counts": {c: int((plabels == i).sum()) for i, c in enumerate(classes)}}
    known = truth >= 0
    if known.any():
        stats["pseudo_accuracy"] = float(100 * (plabels[known] == truth[known]).mean())
        stats["pseudo_class_accuracy"] = {
            c: (float(100 * (truth[known & (plabels == i)] == i).mean()) if (known & (plabels == i)).any() else None)
            for i, c in enumerate(classes)}
    return stats




def _run_key(ds, train_idx, val_idx, pool_idx, extra_idx, extra_labels, modalities, cfg, seed) -> str:
    """What a checkpoint must match to be resumed or reused: data (features' content included),
    split, modalities, every setting and the seed."""
    return run_key(ds.fingerprint, train_idx, val_idx, pool_idx, extra_idx, extra_labels,
                   repr((modalities, {m: ds.dims[m] for m in modalities}, asdict(cfg), seed)))


def stage1_over_seeds(ds: Dataset, cfg: Stage1Config, train_split: str, test_split: str, seeds: Sequence[int],
                      checkpoint_dir: Path | None, tag: str, **kwargs) -> list[Stage1Run]:
    """``run_stage1`` for each seed (in parallel worker processes on a multi-core CPU). A run that any
    notebook of this run folder already finished with the same data, splits and settings is loaded
    from its checkpoints, not trained again."""
    jobs = [(cfg, train_split, test_split, seed, {"checkpoint_dir": checkpoint_dir, "tag": tag, **kwargs})
            for seed in seeds]
    return map_trainings(run_stage1_job, ds, jobs, cfg.device)


def run_stage1_job(ds: Dataset, cfg: Stage1Config, train_split: str, test_split: str, seed: int, kwargs: dict):
    """:func:`run_stage1` with its keyword arguments as one value (a job for :mod:`mer_lib.parallel`)."""
    return run_stage1(ds, cfg, train_split, test_split, seed, **kwargs)


# --- the protocol: single validation split or k folds, test probabilities averaged ----------------

@dataclass
class Stage1Run:
    seed: int
    classes: tuple[str, ...]
    test_idx: np.ndarray
    test_probs: np.ndarray  # (n_test, C), softmax of the fold models' averaged logits (as MERTools)
    test_scores: dict  # classification_scores on the test split
    folds: list[FitResult]
    splits: list[tuple[np.ndarray, np.ndarray]]  # (train rows, validation rows) per fold

    def summary(self) -> dict:
        last = [f.history[-1] for f in self.folds]
        history = [h for f in self.folds for h in f.history]
        timed = [h for h in history if h.get("train_seconds")]
        pseudo = [h for h in history if h.get("pseudo_seconds")]
        return {"seed": self.seed, "test": self.test_scores,
                "val_weighted_f1": [f.best_val_f1 for f in self.folds],
                "best_epoch": [f.best_epoch for f in self.folds],
                "pseudo_selected": [h.get("pseudo_selected", 0) for h in last],
                # throughput: training clips per second of an epoch, pool clips pseudo-labelled per second
                "train_clips_per_s": float(np.mean([h["train_samples"] / h["train_seconds"] for h in timed]))
                if timed else None,
                "pseudo_clips_per_s": float(np.mean([h["pseudo_selected"] / h["pseudo_seconds"] for h in pseudo]))
                if pseudo else None}


def validation_splits(labels: np.ndarray, train_idx: np.ndarray, cfg: Stage1Config, seed: int):
    """(train rows, validation rows) pairs: one stratified split, or ``cfg.folds`` stratified folds."""
    y = labels[train_idx]
    if cfg.folds > 1:
        folds = StratifiedKFold(cfg.folds, shuffle=True, random_state=seed).split(train_idx, y)
    else:
        folds = StratifiedShuffleSplit(1, test_size=cfg.val_fraction, random_state=seed).split(train_idx, y)
    return [(train_idx[a], train_idx[b]) for a, b in folds]


def run_stage1(ds: Dataset, cfg: Stage1Config, train_split: str, test_split: str, seed: int, *,
               modalities=None, extra_idx=None, extra_labels=None,
               checkpoint_dir: Path | None = None, tag: str = "stage1") -> Stage1Run:
    """Train (one model or one per fold) on ``train_split`` and score the test split."""
    train_idx, test_idx = ds.indices(train_split), ds.indices(test_split)
    pool_idx = np.flatnonzero(ds.labels < 0) if cfg.pseudo_labels else None
    splits = validation_splits(ds.labels, train_idx, cfg, seed)
    fits, logits = [], []
    for k, (tr, va) in enumerate(splits):
        fit_k = fit(ds, tr, va, cfg, seed + 1000 * k, pool_idx=pool_idx, extra_idx=extra_idx,
                    extra_labels=extra_labels, modalities=modalities, checkpoint_dir=checkpoint_dir,
                    tag=f"{tag}-seed{seed}-fold{k}",
                    desc=f"{tag} seed {seed}" + (f" fold {k + 1}/{len(splits)}" if len(splits) > 1 else ""))
        fits.append(fit_k)
        feats = feature_tensors(ds, next(fit_k.model.parameters()).device, fit_k.model.modalities)
        logits.append(predict(fit_k.model, feats, test_idx, cfg.eval_batch_size, cfg.amp)["logits"])
    test_probs = torch.from_numpy(np.mean(logits, axis=0)).softmax(-1).numpy()
    scores = classification_scores(ds.labels[test_idx], test_probs.argmax(1), ds.classes)
    return Stage1Run(seed, ds.classes, test_idx, test_probs, scores, fits, splits)


def predict_run(ds: Dataset, run: Stage1Run, idx: np.ndarray, eval_batch_size: int = 8192) -> np.ndarray:
    """Softmax of the fold models' averaged logits on rows ``idx`` (as the test predictions are made)."""
    device = next(run.folds[0].model.parameters()).device
    feats = feature_tensors(ds, device, run.folds[0].model.modalities)
    logits = [predict(f.model, feats, idx, eval_batch_size)["logits"] for f in run.folds]
    return torch.from_numpy(np.mean(logits, axis=0)).softmax(-1).numpy()


def stage1_for_stage2(ds: Dataset, cfg: Stage1Config, train_split: str, test_split: str, seeds: Sequence[int],
                      checkpoint_dir: Path | None) -> tuple[str, list[Stage1Run]]:
    """The stage 1 that stage 2 builds on, and its tag: the paper's semi-supervised model (``cfg`` with
    pseudo-labels, as 03 trains it) when the dataset has an unlabelled pool, else ``cfg`` as it is (as 02
    trains it). Loaded when a notebook of this run folder trained it with the same settings; else trained."""
    tag, cfg = ("bdcl_pl", replace(cfg, pseudo_labels=True)) if (ds.labels < 0).any() else ("bdcl", cfg)
    return tag, stage1_over_seeds(ds, cfg, train_split, test_split, seeds, checkpoint_dir, tag=tag)
