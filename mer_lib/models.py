"""Stage-1 fusion model: modality encoders, a unified feature projector, attention fusion, a classifier.

The paper's stage 1 (section 3.2): each modality's utterance feature goes through its encoder and
then "a unified feature projector" into one latent space; z_v, z_a, z_t are those projected
features, Balanced Dual-Contrastive Learning (:func:`mer_lib.losses.bdcl_loss`) shapes them, and the
fusion and classifier build on them, so BDCL and cross-entropy shape the same space.

- encoders follow the MER toolkit (MERTools, ``toolkit/models/attention.py``): dropout on the input,
  three Linear+ReLU layers;
- the projector maps every modality's hidden vector into the latent space. "Unified" is read two ways
  (the paper does not say which): one projector shared by the modalities (``projector="shared"``) or
  one per modality (``"per_modality"``); Table 4 measures both;
- the fusion is MERTools' attention: an MLP on the concatenated latents and a linear layer give one
  weight per modality (no softmax in the toolkit: kept as the default, softmax is an option), and the
  weighted sum of the latents goes to a linear classifier.

``architecture="mertools"`` is MERTools' Attention model exactly (fusion over the encoder outputs,
no projector), for comparing with the benchmark's published baseline; its z are the encoder outputs.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

ARCHITECTURES = ("projected", "mertools")
PROJECTORS = ("shared", "per_modality")


@dataclass
class FusionConfig:
    hidden_dim: int = 128  # width of each modality encoder (MERTools searches 64-256)
    dropout: float = 0.3  # dropout on every encoder input, as in MERTools' MLPEncoder
    latent_dim: int = 128  # dimension of z_m, the latent space BDCL and the fusion work in
    attention_softmax: bool = False  # MERTools applies no softmax to the modality weights
    architecture: str = "projected"  # "projected": encoder -> projector -> z -> fusion (the paper); "mertools"
    projector: str = "shared"  # the "unified feature projector": one for all modalities, or "per_modality"

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"FusionConfig.architecture must be one of {ARCHITECTURES}, not {self.architecture!r}")
        if self.projector not in PROJECTORS:
            raise ValueError(f"FusionConfig.projector must be one of {PROJECTORS}, not {self.projector!r}")


class MLPEncoder(nn.Module):
    """Dropout on the input, then three Linear+ReLU layers (MERTools' utterance encoder)."""

    def __init__(self, in_dim: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(in_dim, hidden_dim), nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def projector(hidden_dim: int, latent_dim: int) -> nn.Module:
    """Hidden vector -> latent space: Linear, ReLU, Linear (a SimCLR-style projection head)."""
    return nn.Sequential(nn.Linear(hidden_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, latent_dim))


class FusionOutput(NamedTuple):
    logits: torch.Tensor  # (B, C)
    weights: torch.Tensor  # (B, M) modality weights of the attention fusion
    hidden: torch.Tensor  # (B, M, H) per-modality encoder outputs
    z: torch.Tensor  # (B, M, L) per-modality latents: what BDCL shapes and the fusion reads


class AttentionFusion(nn.Module):
    """Attention fusion over any set of modalities (one modality gives a plain MLP classifier).

    Features are standardised inside the model (``feature_mean``/``feature_std`` buffers, identity
    until :meth:`set_standardisation` is called with training statistics), so the statistics travel
    with every checkpoint and apply wherever the model predicts.
    """

    def __init__(self, dims: Mapping[str, int], num_classes: int, cfg: FusionConfig | None = None):
        super().__init__()
        cfg = cfg or FusionConfig()
        self.modalities = tuple(dims)
        self.cfg = cfg
        H, M = cfg.hidden_dim, len(dims)
        L = self.latent_dim
        for m, d in dims.items():
            self.register_buffer(f"mean_{m}", torch.zeros(d))
            self.register_buffer(f"std_{m}", torch.ones(d))
        self.encoders = nn.ModuleDict({m: MLPEncoder(d, H, cfg.dropout) for m, d in dims.items()})
        if cfg.architecture == "projected":
            if cfg.projector == "shared":
                self.projector = projector(H, L)
            else:
                self.projectors = nn.ModuleDict({m: projector(H, L) for m in dims})
        self.attention_mlp = MLPEncoder(L * M, H, cfg.dropout)
        self.fc_att = nn.Linear(H, M)
        self.classifier = nn.Linear(L, num_classes)

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim if self.cfg.architecture == "projected" else self.cfg.hidden_dim

    def set_standardisation(self, mean: Mapping[str, torch.Tensor], std: Mapping[str, torch.Tensor]) -> None:
        """Per-feature statistics (of the training rows) that inputs are standardised with."""
        for m in self.modalities:
            getattr(self, f"mean_{m}").copy_(mean[m])
            getattr(self, f"std_{m}").copy_(std[m])

    def latents(self, features: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder outputs (B, M, H) and latents z (B, M, L) of every modality."""
        x = {m: (features[m] - getattr(self, f"mean_{m}")) / getattr(self, f"std_{m}") for m in self.modalities}
        hidden = torch.stack([self.encoders[m](x[m]) for m in self.modalities], dim=1)  # (B, M, H)
        if self.cfg.architecture == "mertools":
            return hidden, hidden
        if self.cfg.projector == "shared":
            return hidden, self.projector(hidden)  # one projector for every modality: (B, M, L)
        return hidden, torch.stack([self.projectors[m](hidden[:, i]) for i, m in enumerate(self.modalities)], 1)

    def attention(self, z: torch.Tensor) -> torch.Tensor:
        """Modality weights (B, M) of the attention fusion, from the latents (B, M, L)."""
        weights = self.fc_att(self.attention_mlp(z.flatten(1)))
        return weights.softmax(dim=-1) if self.cfg.attention_softmax else weights

    def classify(self, z: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) of the weighted sum of the latents (B, M, L) with weights (B, M)."""
        return self.classifier((z * weights.unsqueeze(-1)).sum(dim=1))

    def forward(self, features: Mapping[str, torch.Tensor]) -> FusionOutput:
        hidden, z = self.latents(features)
        weights = self.attention(z)
        return FusionOutput(self.classify(z, weights), weights, hidden, z)
