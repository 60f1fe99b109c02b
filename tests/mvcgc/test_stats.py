"""Noise of figures: Wilson intervals, paired bootstrap differences and chance R@k against
answers worked out by hand and against slow, obvious references."""

import itertools
import math

import numpy as np
import pytest

from mvcgc.stats import chance_recall, paired_difference, wilson_interval


def test_wilson_interval_known_values():
    # 5 of 10: centre 0.5, half-width 1.96*sqrt(.025 + .0096)/1.384 -> (0.2366, 0.7634)
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson_interval(0, 10)  # never below 0, and not degenerate at 0 successes
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(64, 64)
    assert hi == 1.0 and lo == pytest.approx(1 - 0.0567, abs=1e-3)
    # more test videos, narrower interval
    assert np.diff(wilson_interval(60, 200)) < np.diff(wilson_interval(15, 50))
    with pytest.raises(ValueError):
        wilson_interval(3, 0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_paired_difference_matches_a_slow_bootstrap_and_the_exact_mean():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2, 60)
    b = np.where(rng.random(60) < 0.3, 1, a)  # b = a plus some extra hits
    d, lo, hi = paired_difference(a, b, resamples=2000, seed=7)
    assert d == pytest.approx((b - a).mean())
    # slow reference: resample item indices one bootstrap round at a time, same generator
    ref_rng = np.random.default_rng(7)
    idx = ref_rng.integers(0, 60, size=(2000, 60))
    means = sorted(float(np.mean([b[i] - a[i] for i in row])) for row in idx)
    assert lo == pytest.approx(np.quantile(means, 0.025)) and hi == pytest.approx(np.quantile(means, 0.975))
    assert lo <= d <= hi and lo > 0  # b only ever adds hits: the interval excludes 0


def test_paired_difference_edge_cases():
    assert paired_difference([1, 0, 1], [1, 0, 1]) == (0.0, 0.0, 0.0)
    assert paired_difference([0, 0], [1, 1]) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="equally long"):
        paired_difference([1, 0], [1])
    with pytest.raises(ValueError):
        paired_difference([], [])


@pytest.mark.parametrize("k", [1, 2, 3])
def test_chance_recall_equals_enumeration_of_all_rankings(k):
    gallery = [0, 0, 1, 2, 2, 2]
    queries = [0, 1, 2, 2]
    hits = []
    for order in itertools.permutations(range(len(gallery))):
        top = [gallery[i] for i in order[:k]]
        hits.append(np.mean([q in top for q in queries]))
    assert chance_recall(queries, gallery, k) == pytest.approx(np.mean(hits))


def test_chance_recall_balanced_classes_at_k1_is_one_over_classes():
    gallery = [c for c in range(8) for _ in range(24)]
    assert chance_recall(list(range(8)), gallery, 1) == pytest.approx(1 / 8)
    assert chance_recall([0], gallery, 10**6) == 1.0  # k beyond the gallery: the whole gallery
    assert math.isclose(chance_recall([0], gallery, 5), 1 - math.comb(168, 5) / math.comb(192, 5))
