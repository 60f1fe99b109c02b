"""MoCo for one or two views: query encoders f_q, momentum key encoders f_k, aligned queues.

After facebookresearch/moco ``builder.py``: the key encoder is an exponential moving average of
the query encoder (m = 0.999) and is never trained by gradients; keys are L2-normalised, gathered
across ranks and enqueued after the step. Loss-agnostic: :meth:`MoCo.forward` returns queries and
keys per view, and a stage decides which loss applies.
"""

from __future__ import annotations

import copy
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from mvcgc.distributed import concat_all_gather
from mvcgc.errors import InvalidArgumentError
from mvcgc.heads import ProjectionHead
from mvcgc.models import VideoEncoder
from mvcgc.queue import KeyQueue


class Embedder(nn.Module):
    """Encoder + projection head -> L2-normalised embedding ``(B, dim)``."""

    def __init__(self, encoder: VideoEncoder, *, dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = ProjectionHead(encoder.feature_dim, out_dim=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder.forward_features(x)  # (B, feature_dim)
        z = self.head(h)  # (B, dim)
        return F.normalize(z.float(), dim=1)  # (B, dim), unit length, float32 for the loss


class MoCo(nn.Module):
    """Momentum contrast over ``views`` (``{"rgb": enc}``, ``{"mv": enc}`` or both).

    ``queue_size`` is K, ``dim`` the embedding size, ``m`` the key-encoder momentum.
    """

    def __init__(
        self, encoders: Mapping[str, VideoEncoder], *, queue_size: int, dim: int = 128, m: float = 0.999
    ) -> None:
        super().__init__()
        if not 0.0 <= m < 1.0:
            raise InvalidArgumentError(f"momentum m must be in [0, 1), got {m}")
        self.views = tuple(encoders)
        self.m = m
        self.dim = dim
        self.encoder_q = nn.ModuleDict({v: Embedder(enc, dim=dim) for v, enc in encoders.items()})
        self.encoder_k = copy.deepcopy(self.encoder_q)
        self.encoder_k.requires_grad_(False)
        self.queue = KeyQueue(views=self.views, size=queue_size, dim=dim)

    def copy_query_to_key(self) -> None:
        """Make f_k equal to f_q (after loading query weights from elsewhere)."""
        self.encoder_k.load_state_dict(self.encoder_q.state_dict())

    @torch.no_grad()
    def momentum_update(self) -> None:
        """theta_k <- m * theta_k + (1 - m) * theta_q."""
        for p_q, p_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            p_k.mul_(self.m).add_(p_q.detach(), alpha=1.0 - self.m)

    def forward(
        self, x_q: Mapping[str, torch.Tensor], x_k: Mapping[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Queries from clip A, keys from clip B: each ``{view: (B, dim)}``, L2-normalised.

        ``x_q[v]``, ``x_k[v]``: float32 ``(B, C_v, T, H, W)``. The key encoder is updated by
        momentum before computing keys, as in MoCo.
        """
        q = {v: self.encoder_q[v](x_q[v]) for v in self.views}  # {v: (B, dim)}
        with torch.no_grad():
            self.momentum_update()
            k = {v: self.encoder_k[v](x_k[v]) for v in self.views}  # {v: (B, dim)}
        return q, k

    @torch.no_grad()
    def dequeue_and_enqueue(self, k: Mapping[str, torch.Tensor], labels: torch.Tensor | None = None) -> None:
        """Gather keys ``(B, dim)`` from every rank (rank order) and enqueue ``(world * B, dim)``.

        ``labels`` ``(B,)`` (-1 = unknown) travel with the keys, for mining diagnostics only."""
        gathered = None if labels is None else concat_all_gather(labels.to(next(iter(k.values())).device))
        self.queue.enqueue({v: concat_all_gather(k[v]) for v in self.views}, gathered)
