"""Noise of evaluation figures: intervals for a share, paired differences, chance levels.

A figure like R@1 or top-1 accuracy is a share of ``n`` test videos; with few test videos its
sampling noise is large, and the difference between two models scored on the same videos is best
judged per video (paired), which removes the noise the two share.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from mvcgc.errors import EmptyDataError, InvalidArgumentError


def wilson_interval(successes: int, n: int, *, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial share (95 % for z=1.96), as (low, high) in [0, 1]."""
    if n <= 0:
        raise InvalidArgumentError(f"n must be > 0, got {n}")
    if not 0 <= successes <= n:
        raise InvalidArgumentError(f"successes must be in [0, n={n}], got {successes}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference(
    a: Sequence[float], b: Sequence[float], *, resamples: int = 10000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``b - a`` over paired items and its percentile-bootstrap interval: (diff, low, high).

    ``a`` and ``b`` are per-item outcomes (e.g. 0/1 hits) of two models on the same items, in the
    same order. The bootstrap resamples items, keeping each pair together.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise InvalidArgumentError(f"need two equally long, non-empty 1-D outcome lists, got shapes {a.shape} "
                                   f"and {b.shape}")
    d = b - a  # (n,)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(resamples, len(d)))  # (R, n)
    means = d[idx].mean(axis=1)  # (R,)
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return float(d.mean()), float(lo), float(hi)


def chance_recall(query_labels: Sequence[int], gallery_labels: Sequence[int], k: int) -> float:
    """Expected R@k of a uniformly random ranking: mean over queries of
    ``1 - C(G - n_c, k) / C(G, k)``, with ``n_c`` the gallery videos of the query's class."""
    gallery = np.asarray(gallery_labels)
    G = len(gallery)
    if G == 0 or len(query_labels) == 0:
        raise EmptyDataError(f"need queries and a non-empty gallery, got {len(query_labels)} queries and {G} "
                             "gallery videos")
    k = min(k, G)
    counts = {c: int((gallery == c).sum()) for c in set(np.asarray(query_labels).tolist())}
    miss = {c: math.comb(G - n, k) / math.comb(G, k) for c, n in counts.items()}
    return float(np.mean([1 - miss[c] for c in np.asarray(query_labels).tolist()]))
