"""The stage-1 latent space (the paper's Figure 4): which clips, their z_m, a 2-D map, and numbers.

A picture of a t-SNE map is easy to over-read, so two numbers computed on z itself go with it: the
silhouette of the classes (cosine distance; higher = classes better separated) and the modality
alignment (mean cosine similarity between the latents of one clip's modalities; BDCL's inter term
pulls them together).
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import silhouette_score

from .data import Dataset
from .stage1 import Stage1Run, feature_tensors, predict


def sample_rows(ds: Dataset, first_split: str, then_split: str, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` rows: ``first_split`` (the test clips) first, then random clips of ``then_split``."""
    rng = np.random.default_rng(seed)
    first = ds.indices(first_split)
    if len(first) >= n:
        return np.sort(rng.choice(first, n, replace=False))
    rest = ds.indices(then_split)
    return np.concatenate([first, np.sort(rng.choice(rest, min(n - len(first), len(rest)), replace=False))])


def latents(ds: Dataset, run: Stage1Run, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L2-normalised latents of every (clip, modality) of ``rows`` from the run's first fold model:
    ``z`` (n*M, L), the clip's class (n*M,) and the modality name (n*M,)."""
    model = run.folds[0].model
    z = predict(model, feature_tensors(ds, next(model.parameters()).device, model.modalities), rows)["z"]  # (n, M, L)
    n, M, L = z.shape
    z = z / np.linalg.norm(z, axis=-1, keepdims=True).clip(1e-12)
    return z.reshape(n * M, L), np.repeat(ds.labels[rows], M), np.tile(np.asarray(model.modalities), n)


def embed_2d(z: np.ndarray, method: str = "tsne", perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
    """(n, 2) map of the latents: t-SNE (scikit-learn) or UMAP (umap-learn), deterministic from ``seed``."""
    if method == "tsne":
        from sklearn.manifold import TSNE
        return TSNE(n_components=2, perplexity=min(perplexity, (len(z) - 1) / 3), init="pca",
                    metric="cosine", random_state=seed).fit_transform(z)
    if method == "umap":
        import umap
        return umap.UMAP(n_neighbors=int(perplexity), metric="cosine", random_state=seed).fit_transform(z)
    raise ValueError(f"unknown method {method!r}: use 'tsne' or 'umap'")


def separation(z: np.ndarray, labels: np.ndarray, modality: np.ndarray) -> dict[str, float]:
    """Class silhouette (cosine) and the mean cosine similarity between a clip's modality latents."""
    M = len(np.unique(modality))
    per_clip = torch.from_numpy(z.reshape(-1, M, z.shape[1]))  # (n, M, L), rows of a clip are adjacent
    sims = per_clip @ per_clip.transpose(1, 2)  # (n, M, M)
    off_diagonal = sims[:, ~torch.eye(M, dtype=torch.bool)]
    keep = labels >= 0
    silhouette = float(silhouette_score(z[keep], labels[keep], metric="cosine")) if len(np.unique(labels[keep])) > 1 else float("nan")
    return {"class_silhouette": silhouette,
            "modality_alignment": float(off_diagonal.mean()) if M > 1 else float("nan")}
