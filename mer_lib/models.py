"""Stage-1 fusion model: the MER2024 "Attention" baseline plus projection heads for BDCL.

The baseline follows the MER toolkit (MERTools, ``toolkit/models/attention.py``): per modality an
MLP encoder (dropout on the input, three Linear+ReLU layers); the hidden vectors are concatenated,
an MLP and a linear layer give one weight per modality (no softmax in the toolkit: kept as the
default, softmax is an option), and the weighted sum of the hidden vectors goes to a linear
classifier. The projection heads map each modality's hidden vector into one latent space, the
z_a, z_v, z_t that Balanced Dual-Contrastive Learning (``mer_lib.losses.bdcl_loss``) aligns.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn


@dataclass
class FusionConfig:
    hidden_dim: int = 128  # width of each modality encoder (MERTools searches 64-256)
    dropout: float = 0.3  # dropout on every encoder input, as in MERTools' MLPEncoder
    latent_dim: int = 128  # dimension of z_m, the latent space BDCL works in
    attention_softmax: bool = False  # MERTools applies no softmax to the modality weights


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


class FusionOutput(NamedTuple):
    logits: torch.Tensor  # (B, C)
    weights: torch.Tensor  # (B, M) modality weights of the attention fusion
    hidden: torch.Tensor  # (B, M, H) per-modality encoder outputs
    z: torch.Tensor  # (B, M, L) per-modality latents for BDCL


class AttentionFusion(nn.Module):
    """Attention fusion over any set of modalities (one modality gives a plain MLP classifier)."""

    def __init__(self, dims: Mapping[str, int], num_classes: int, cfg: FusionConfig | None = None):
        super().__init__()
        cfg = cfg or FusionConfig()
        self.modalities = tuple(dims)
        self.cfg = cfg
        H, M = cfg.hidden_dim, len(dims)
        self.encoders = nn.ModuleDict({m: MLPEncoder(d, H, cfg.dropout) for m, d in dims.items()})
        self.attention_mlp = MLPEncoder(H * M, H, cfg.dropout)
        self.fc_att = nn.Linear(H, M)
        self.classifier = nn.Linear(H, num_classes)
        self.projections = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(H, H), nn.ReLU(), nn.Linear(H, cfg.latent_dim)) for m in dims})

    def forward(self, features: Mapping[str, torch.Tensor]) -> FusionOutput:
        hidden = torch.stack([self.encoders[m](features[m]) for m in self.modalities], dim=1)  # (B, M, H)
        weights = self.fc_att(self.attention_mlp(hidden.flatten(1)))  # (B, M)
        if self.cfg.attention_softmax:
            weights = weights.softmax(dim=-1)
        fused = (hidden * weights.unsqueeze(-1)).sum(dim=1)  # (B, H)
        z = torch.stack([self.projections[m](hidden[:, i]) for i, m in enumerate(self.modalities)], dim=1)
        return FusionOutput(self.classifier(fused), weights, hidden, z)
