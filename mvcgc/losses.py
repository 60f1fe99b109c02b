"""InfoNCE (paper eq. 1) and the cross-guidance multi-instance InfoNCE (paper eq. 4-5).

Symbols follow the paper: ``q`` queries ``(N, D)``, ``k`` keys ``(N, D)``,
``Q`` a queue ``(K, D)`` whose row ``j`` is the key of an earlier sample; all L2-normalised.
Each loss is the mean over the batch.
"""

from __future__ import annotations

from typing import get_args

import torch
import torch.nn.functional as F

from mvcgc.errors import InvalidArgumentError
from mvcgc.options import MiningMode



def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, *, temperature: float = 0.07) -> torch.Tensor:
    """``-log softmax([q.k, q.Q] / tau)[0]``, mean over the batch; the positive is column 0."""
    l_pos = torch.einsum("nd,nd->n", q, k).unsqueeze(1)  # (N, 1)
    l_neg = torch.einsum("nd,kd->nk", q, queue)  # (N, K)
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature  # (N, 1 + K)
    labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)  # (N,)
    return F.cross_entropy(logits, labels)


def mine_positives(
    k_rgb: torch.Tensor,
    k_mv: torch.Tensor,
    queue_rgb: torch.Tensor,
    queue_mv: torch.Tensor,
    *,
    topk: int,
    mode: MiningMode = "intersection",
) -> torch.Tensor:
    """Queue rows that count as extra positives, ``S_i = A_rgb_i ∩ A_mv_i`` (or ``∪``), as a mask ``(N, K)``.

    ``A_v_i = topk_j(k_v_i . Q_v_j)``: the ``topk`` queue rows most similar to sample ``i``'s
    key in view ``v``. ``topk = 0`` mines nothing (an all-False mask).
    """
    check_mining_mode(mode)
    size = queue_rgb.shape[0]
    if not 0 <= topk <= size:
        raise InvalidArgumentError(f"topk must be in [0, queue size {size}], got {topk}")
    mask = torch.zeros(k_rgb.shape[0], size, dtype=torch.bool, device=k_rgb.device)  # (N, K)
    if topk == 0:
        return mask
    with torch.no_grad():
        idx_rgb = torch.einsum("nd,kd->nk", k_rgb, queue_rgb).topk(topk, dim=1).indices  # (N, topk)
        idx_mv = torch.einsum("nd,kd->nk", k_mv, queue_mv).topk(topk, dim=1).indices  # (N, topk)
    a_rgb = mask.scatter(1, idx_rgb, True)  # (N, K)
    a_mv = mask.scatter(1, idx_mv, True)  # (N, K)
    return a_rgb & a_mv if mode == "intersection" else a_rgb | a_mv  # (N, K)


def mining_statistics(
    k_rgb: torch.Tensor,
    k_mv: torch.Tensor,
    queue_rgb: torch.Tensor,
    queue_mv: torch.Tensor,
    *,
    topk: int,
    mode: MiningMode = "intersection",
    labels: torch.Tensor | None = None,
    queue_labels: torch.Tensor | None = None,
) -> dict[str, float | None]:
    """How well mining works on this batch -- a diagnostic; labels never enter a loss.

    ``mined_per_query``: mean ``|S_i|``; ``queries_with_mined``: share of queries with ``S_i``
    non-empty. With ``labels (N,)`` and ``queue_labels (K,)`` (``-1`` = unknown):
    ``mined_same_class`` (share of mined rows whose class is the query's), and the same share
    for each view's own top-k, ``rgb_topk_same_class`` / ``mv_topk_same_class`` -- what
    intersecting buys over either view alone. A share with nothing to count is ``None``.
    """
    with torch.no_grad():
        s = mine_positives(k_rgb, k_mv, queue_rgb, queue_mv, topk=topk, mode=mode)  # (N, K)
        counts = s.sum(dim=1)  # (N,)
        out: dict[str, float | None] = {
            "mined_per_query": counts.float().mean().item(),
            "queries_with_mined": (counts > 0).float().mean().item(),
        }
        if labels is None or queue_labels is None or topk == 0:
            return out
        known = (labels[:, None] >= 0) & (queue_labels[None, :] >= 0)  # (N, K)
        same = (labels[:, None] == queue_labels[None, :]) & known  # (N, K)

        def share(mask: torch.Tensor) -> float | None:
            n = (mask & known).sum().item()
            return (mask & same).sum().item() / n if n else None

        out["mined_same_class"] = share(s)
        for view, k, queue in (("rgb", k_rgb, queue_rgb), ("mv", k_mv, queue_mv)):
            idx = torch.einsum("nd,kd->nk", k, queue).topk(topk, dim=1).indices  # (N, topk)
            out[f"{view}_topk_same_class"] = share(torch.zeros_like(s).scatter(1, idx, True))
        return out


def multi_positive_nce(
    q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, positives: torch.Tensor, *, temperature: float
) -> torch.Tensor:
    """``-log Σ_{p ∈ {k} ∪ S} softmax([q.k, q.Q] / tau)_p``, mean over the batch.

    ``positives``: bool ``(N, K)``, the queue rows counted as positives besides the own key.
    """
    l_pos = torch.einsum("nd,nd->n", q, k).unsqueeze(1)  # (N, 1)
    l_neg = torch.einsum("nd,kd->nk", q, queue)  # (N, K)
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature  # (N, 1 + K)
    own = torch.ones_like(positives[:, :1])  # (N, 1)
    pos_mask = torch.cat([own, positives], dim=1)  # (N, 1 + K)
    log_pos = torch.logsumexp(logits.masked_fill(~pos_mask, float("-inf")), dim=1)  # (N,)
    return (torch.logsumexp(logits, dim=1) - log_pos).mean()


def cross_guidance_nce(
    q_rgb: torch.Tensor,
    q_mv: torch.Tensor,
    k_rgb: torch.Tensor,
    k_mv: torch.Tensor,
    queue_rgb: torch.Tensor,
    queue_mv: torch.Tensor,
    *,
    topk: int = 5,
    temperature: float = 0.07,
    mode: MiningMode = "intersection",
) -> torch.Tensor:
    """Paper eq. 4-5: RGB query against MV keys plus MV query against RGB keys.

    Positives in both directions: the own key ∪ ``S_i`` mined from the two aligned queues
    (:func:`mine_positives`). Pass ``topk=0`` until the queues hold only real keys -- mining
    among the random initial rows would add meaningless positives.
    """
    s = mine_positives(k_rgb, k_mv, queue_rgb, queue_mv, topk=topk, mode=mode)  # (N, K)
    loss_rgb = multi_positive_nce(q_rgb, k_mv, queue_mv, s, temperature=temperature)  # RGB q vs MV keys
    loss_mv = multi_positive_nce(q_mv, k_rgb, queue_rgb, s, temperature=temperature)  # MV q vs RGB keys
    return loss_rgb + loss_mv


def check_mining_mode(mode: str) -> None:
    if mode not in get_args(MiningMode):
        raise InvalidArgumentError(f"mode must be one of {', '.join(get_args(MiningMode))}; got {mode!r}")
