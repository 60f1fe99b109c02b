"""R@k against answers worked out by hand, ties, centring, fusion, bad input."""

import pytest
import torch

from mvcgc.errors import EmptyDataError
from mvcgc.retrieval import (
    ClassMismatchError,
    centre_normalise,
    fuse_similarities,
    recall_at_k,
    recall_from_similarity,
    similarity,
)


def t(rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_hand_worked_ranking_with_a_tie_and_k_beyond_the_gallery():
    # Both sets already have mean 0, so centring changes nothing; cosines are read off directly.
    gallery = t([[1, 0], [-1, 0], [0, 1], [0, -1]])
    gallery_labels = [0, 1, 1, 2]
    query = t([[1, 0], [-1, 0]])
    query_labels = [1, 0]
    # q0 . g = [1, -1, 0, 0] -> ranking g0, g2, g3, g1 (g2/g3 tie: gallery order) -> labels 0, 1, 2, 1:
    #   first class-1 hit at rank 2.
    # q1 . g = [-1, 1, 0, 0] -> ranking g1, g2, g3, g0 -> labels 1, 1, 2, 0: first class-0 hit at rank 4.
    r = recall_at_k(query, query_labels, gallery, gallery_labels, ks=(1, 2, 3, 4, 10))
    assert r == {1: 0.0, 2: 0.5, 3: 0.5, 4: 1.0, 10: 1.0}  # k = 10 > 4 gallery videos: the whole gallery


def test_ties_are_broken_by_gallery_order():
    gallery = t([[1, 0], [1, 0], [-1, 0], [-1, 0]])  # g0 and g1 identical, g2 and g3 identical
    query = t([[1, 0], [-1, 0]])
    # q0 (class 1) ties g0 (class 0) and g1 (class 1): g0 ranks first -> miss at k=1, hit at k=2.
    # q1 (class 2) ties g2 (class 2) and g3 (class 3): g2 first -> hit at k=1.
    assert recall_at_k(query, [1, 2], gallery, [0, 1, 2, 3], ks=(1, 2)) == {1: 0.5, 2: 1.0}
    # Swap g0 and g1: now q0's tie resolves to its own class first.
    assert recall_at_k(query, [1, 2], gallery, [1, 0, 2, 3], ks=(1, 2)) == {1: 1.0, 2: 1.0}


def test_query_class_missing_from_gallery_never_hits():
    gallery = t([[1, 0], [-1, 0]])
    query = t([[1, 0], [-1, 0]])
    # q1's class 7 is not in the gallery: a miss at every k, even k larger than the gallery.
    assert recall_at_k(query, [0, 7], gallery, [0, 1], ks=(1, 50)) == {1: 0.5, 50: 0.5}


def test_each_set_is_centred_on_its_own_mean():
    g = torch.randn(12, 6, generator=torch.Generator().manual_seed(0))
    q = torch.randn(7, 6, generator=torch.Generator().manual_seed(1))
    gl, ql = torch.arange(12) % 3, torch.arange(7) % 3
    plain = recall_at_k(q, ql, g, gl)
    # A large offset, different per set, would make every raw cosine ~1; centring removes it.
    shifted = recall_at_k(q + 50.0, ql, g - 30.0 * torch.ones(6), gl)
    assert plain == shifted
    c = centre_normalise(g + 5)
    assert torch.allclose(c.norm(dim=1), torch.ones(12, dtype=c.dtype))


def test_identical_query_and_gallery_give_r1_of_one():
    x = torch.randn(30, 16, generator=torch.Generator().manual_seed(2))
    labels = torch.randint(0, 5, (30,), generator=torch.Generator().manual_seed(3))
    r = recall_at_k(x, labels, x.clone(), labels.clone())
    assert r[1] == 1.0 and set(r) == {1, 5, 10, 20, 50}


def test_fused_similarity_is_the_sum_and_can_win_where_each_view_misses():
    a = torch.randn(4, 5, dtype=torch.float64)
    b = torch.randn(4, 5, dtype=torch.float64)
    assert torch.equal(fuse_similarities(a, b), a + b)
    rgb = t([[0.9, 0.8, 0.0]])
    mv = t([[0.0, 0.5, 0.6]])
    gallery_labels, query_labels = [0, 1, 2], [1]
    assert recall_from_similarity(rgb, query_labels, gallery_labels, ks=(1,)) == {1: 0.0}  # g0 wins
    assert recall_from_similarity(mv, query_labels, gallery_labels, ks=(1,)) == {1: 0.0}  # g2 wins
    fused = fuse_similarities(rgb, mv)  # [0.9, 1.3, 0.6] -> g1 wins
    assert recall_from_similarity(fused, query_labels, gallery_labels, ks=(1,)) == {1: 1.0}
    with pytest.raises(ValueError, match="one shape"):
        fuse_similarities(a, b[:, :3])


def test_similarity_is_cosine_of_centred_features():
    q, g = t([[3, 0], [1, 0]]), t([[0, 2], [0, 4], [1, 1]])
    qc, gc = q - q.mean(0), g - g.mean(0)
    expected = torch.nn.functional.cosine_similarity(qc[:, None], gc[None], dim=2)
    assert torch.allclose(similarity(q, g).float(), expected, atol=1e-6)


def test_bad_input():
    x = torch.randn(3, 4)
    with pytest.raises(EmptyDataError, match="empty"):
        recall_at_k(torch.zeros(0, 4), [], x, [0, 1, 2])
    with pytest.raises(EmptyDataError, match="gallery_labels is empty"):
        recall_from_similarity(torch.zeros(3, 0), [0, 1, 2], [])
    with pytest.raises(ClassMismatchError, match="share no class"):
        recall_at_k(x, [0, 1, 2], x, [3, 4, 5])
    with pytest.raises(ValueError, match="2-d"):
        recall_at_k(torch.randn(3), [0, 1, 2], x, [0, 1, 2])
    with pytest.raises(ValueError, match="positive integers"):
        recall_at_k(x, [0, 1, 2], x, [0, 1, 2], ks=(0, 5))
    with pytest.raises(ValueError, match="3 queries"):
        recall_from_similarity(torch.zeros(2, 3), [0, 1, 2], [0, 1, 2])


def test_first_hit_ranks_match_a_slow_reference():
    from mvcgc.retrieval import first_hit_ranks

    g = torch.Generator().manual_seed(0)
    sim = torch.randn(12, 20, generator=g)
    ql = torch.randint(0, 5, (12,), generator=g)
    gl = torch.randint(0, 4, (20,), generator=g)  # class 4 queries have no gallery video
    got = first_hit_ranks(sim, ql, gl)
    for i in range(12):
        ranked = sorted(range(20), key=lambda j: -float(sim[i, j]))  # no ties in random floats
        expected = next((r for r, j in enumerate(ranked) if gl[j] == ql[i]), float("inf"))
        assert got[i].item() == expected
    assert recall_from_similarity(sim, ql, gl, ks=(3,))[3] == pytest.approx((got < 3).double().mean().item())
