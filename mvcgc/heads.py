"""Projection head used only in pretraining (never for evaluation features)."""

from __future__ import annotations

import torch
from torch import nn


class ProjectionHead(nn.Module):
    """Two-layer MLP ``in_dim -> hidden_dim -> out_dim`` with a ReLU between (S3D: 1024 -> 1024 -> 128).

    ``hidden_dim`` defaults to ``in_dim``, as in MoCo v2.
    """

    def __init__(self, in_dim: int, *, hidden_dim: int | None = None, out_dim: int = 128) -> None:
        super().__init__()
        hidden_dim = in_dim if hidden_dim is None else hidden_dim
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.mlp(h)  # (B, in_dim) -> (B, out_dim)
