"""Nearest-neighbour video retrieval, R@k: test videos query the train videos.

Each set of video features is centred on its own mean and L2-normalised; similarity is the cosine
(a dot product of the normalised features); R@k is the share of queries with at least one video of
their class among the k most similar gallery videos. Two views are fused by summing their
similarity matrices.

    >>> recall_at_k(test_feats, test_labels, train_feats, train_labels)   # {1: 0.42, 5: 0.61, ...}

Ties are broken by gallery order (a stable sort): among equally similar gallery videos the one
listed first ranks first, so a number never depends on the sort implementation. A ``k`` larger than
the gallery counts the whole gallery.
"""

from __future__ import annotations

from typing import Sequence

import torch

from mvcgc.errors import ClassMismatchError, DataError, EmptyDataError, InvalidArgumentError

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20, 50)


def centre_normalise(features: torch.Tensor) -> torch.Tensor:
    """``(N, D)`` -> ``(N, D)``: subtract the set's mean, then L2-normalise each row (a zero row stays 0)."""
    x = _as_matrix(features, "features").double()
    x = x - x.mean(dim=0, keepdim=True)  # (N, D)
    return torch.nn.functional.normalize(x, dim=1)  # (N, D), unit rows


def similarity(query: torch.Tensor, gallery: torch.Tensor) -> torch.Tensor:
    """Cosine similarity ``(Q, G)`` of the centred, L2-normalised query and gallery sets (float64)."""
    q, g = centre_normalise(query), centre_normalise(gallery)  # (Q, D), (G, D)
    if q.shape[1] != g.shape[1]:
        raise InvalidArgumentError(f"query features are {q.shape[1]}-d but gallery features are {g.shape[1]}-d")
    return q @ g.T  # (Q, G)


def fuse_similarities(*sims: torch.Tensor) -> torch.Tensor:
    """Two-view retrieval: the element-wise sum of same-shaped similarity matrices (e.g. RGB + MV)."""
    if len(sims) < 1:
        raise InvalidArgumentError("give at least one similarity matrix")
    shapes = {tuple(s.shape) for s in sims}
    if len(shapes) != 1:
        raise InvalidArgumentError(f"similarity matrices must have one shape to be summed, got {sorted(shapes)}")
    return torch.stack([s.double() for s in sims]).sum(dim=0)  # (Q, G)


def recall_from_similarity(
    sim: torch.Tensor,
    query_labels: torch.Tensor | Sequence[int],
    gallery_labels: torch.Tensor | Sequence[int],
    *,
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[int, float]:
    """R@k from a precomputed similarity ``(Q, G)`` (higher = more similar); see the module docstring."""
    return recall_from_ranks(first_hit_ranks(sim, query_labels, gallery_labels), ks=ks)


def recall_from_ranks(first_hit: torch.Tensor, *, ks: Sequence[int] = DEFAULT_KS) -> dict[int, float]:
    """R@k from each query's first-hit rank ``(Q,)`` (see :func:`first_hit_ranks`)."""
    return {k: (first_hit < k).double().mean().item() for k in _check_ks(ks)}


def first_hit_ranks(
    sim: torch.Tensor,
    query_labels: torch.Tensor | Sequence[int],
    gallery_labels: torch.Tensor | Sequence[int],
) -> torch.Tensor:
    """``(Q,)`` float64: 0-based rank of each query's first same-class gallery video (inf: none).

    Query i counts for R@k iff its rank < k; kept per query so that the noise of R@k and the
    difference between two models on the same queries (paired) can be estimated.
    """
    sim = _as_matrix(sim, "similarity")
    ql, gl = _labels(query_labels, "query_labels"), _labels(gallery_labels, "gallery_labels")
    if sim.shape != (len(ql), len(gl)):
        raise InvalidArgumentError(f"similarity is {tuple(sim.shape)} but there are {len(ql)} queries and "
                                   f"{len(gl)} gallery videos")
    check_shared_classes(ql, gl, what="query and gallery")
    order = torch.sort(sim, dim=1, descending=True, stable=True).indices  # (Q, G), ties: gallery order
    hits = gl[order] == ql[:, None]  # (Q, G) bool, ranked
    return torch.where(hits.any(dim=1), hits.int().argmax(dim=1).double(), torch.tensor(float("inf")))


def recall_at_k(
    query: torch.Tensor,
    query_labels: torch.Tensor | Sequence[int],
    gallery: torch.Tensor,
    gallery_labels: torch.Tensor | Sequence[int],
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[int, float]:
    """R@k of raw video features ``query (Q, D)`` against ``gallery (G, D)`` -> ``{k: share in [0, 1]}``.

    Centres each set on its own mean, L2-normalises, ranks by cosine similarity. Raises
    :class:`~mvcgc.errors.EmptyDataError` for an empty set and :class:`ClassMismatchError` when no
    query class is in the gallery.
    """
    return recall_from_similarity(similarity(query, gallery), query_labels, gallery_labels, ks=ks)


def check_shared_classes(query_labels: torch.Tensor, gallery_labels: torch.Tensor, *, what: str) -> None:
    """Raise :class:`ClassMismatchError` when the two label sets are disjoint."""
    q, g = set(query_labels.tolist()), set(gallery_labels.tolist())
    if not q & g:
        raise ClassMismatchError(
            f"{what} share no class (query classes {sorted(q)[:10]}, gallery classes {sorted(g)[:10]}); "
            "were the right splits given, labelled the same way?"
        )


def _as_matrix(x: torch.Tensor, name: str) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 2:
        raise InvalidArgumentError(f"{name} must be a 2-d (N, D) tensor, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise EmptyDataError(f"{name} is empty (no videos); check the split")
    if not torch.isfinite(x).all():
        raise DataError(f"{name} holds NaN or infinite values; was the encoder trained to a finite loss?")
    return x


def _labels(labels, name: str) -> torch.Tensor:
    t = torch.as_tensor(labels)
    if t.dim() == 1 and len(t) == 0:
        raise EmptyDataError(f"{name} is empty (no videos); check the split")
    if t.dim() != 1 or t.dtype.is_floating_point:
        raise InvalidArgumentError(f"{name} must be a 1-d integer tensor, got {t.dtype} of shape {tuple(t.shape)}")
    return t.long()


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(ks)
    if not ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in ks):
        raise InvalidArgumentError(f"ks must be positive integers, got {ks!r}")
    return ks
