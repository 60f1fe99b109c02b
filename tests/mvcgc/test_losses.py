"""Both losses against slow, obvious references (loops over samples and queue rows)."""

import math

import pytest
import torch
import torch.nn.functional as F

from mvcgc.losses import cross_guidance_nce, info_nce, mine_positives

T = 0.07


def unit(*shape, seed):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


def dot(a, b):
    return sum(float(x) * float(y) for x, y in zip(a, b))


def ref_info_nce(q, k, queue, temperature):
    total = 0.0
    for i in range(len(q)):
        pos = math.exp(dot(q[i], k[i]) / temperature)
        neg = sum(math.exp(dot(q[i], queue[j]) / temperature) for j in range(len(queue)))
        total += -math.log(pos / (pos + neg))
    return total / len(q)


def ref_topk(key, queue, k):
    sims = [dot(key, queue[j]) for j in range(len(queue))]
    return set(sorted(range(len(queue)), key=lambda j: -sims[j])[:k])


def ref_cross(q_rgb, q_mv, k_rgb, k_mv, Q_rgb, Q_mv, topk, temperature, mode):
    total = 0.0
    for i in range(len(q_rgb)):
        a_rgb, a_mv = ref_topk(k_rgb[i], Q_rgb, topk), ref_topk(k_mv[i], Q_mv, topk)
        s = a_rgb & a_mv if mode == "intersection" else a_rgb | a_mv
        for q, own_key, Q in ((q_rgb[i], k_mv[i], Q_mv), (q_mv[i], k_rgb[i], Q_rgb)):
            own = math.exp(dot(q, own_key) / temperature)
            cols = [math.exp(dot(q, Q[j]) / temperature) for j in range(len(Q))]
            pos = own + sum(cols[j] for j in s)
            total += -math.log(pos / (own + sum(cols)))
    return total / len(q_rgb)


def test_info_nce_matches_loop_reference():
    q, k, queue = unit(6, 16, seed=0), unit(6, 16, seed=1), unit(20, 16, seed=2)
    got = info_nce(q, k, queue, temperature=T)
    assert got.item() == pytest.approx(ref_info_nce(q, k, queue, T), rel=1e-9)


@pytest.mark.parametrize("mode", ["intersection", "union"])
@pytest.mark.parametrize("topk", [0, 1, 5, 12])
def test_cross_guidance_matches_loop_reference(mode, topk):
    # Correlated RGB/MV queues so that the intersections are not empty.
    base = unit(24, 16, seed=3)
    Q_rgb = F.normalize(base + 0.3 * unit(24, 16, seed=4), dim=1)
    Q_mv = F.normalize(base + 0.3 * unit(24, 16, seed=5), dim=1)
    q_rgb, q_mv, k_rgb, k_mv = (unit(5, 16, seed=s) for s in (6, 7, 8, 9))
    got = cross_guidance_nce(q_rgb, q_mv, k_rgb, k_mv, Q_rgb, Q_mv, topk=topk, temperature=T, mode=mode)
    want = ref_cross(q_rgb, q_mv, k_rgb, k_mv, Q_rgb, Q_mv, topk, T, mode)
    assert got.item() == pytest.approx(want, rel=1e-9)
    if topk == 12 and mode == "intersection":  # the fixture really mines something
        assert mine_positives(k_rgb, k_mv, Q_rgb, Q_mv, topk=topk, mode=mode).any()


def test_cross_with_k0_is_two_cross_view_info_nce_terms():
    q_rgb, q_mv, k_rgb, k_mv = (unit(4, 8, seed=s) for s in range(4))
    Q_rgb, Q_mv = unit(12, 8, seed=10), unit(12, 8, seed=11)
    got = cross_guidance_nce(q_rgb, q_mv, k_rgb, k_mv, Q_rgb, Q_mv, topk=0, temperature=T)
    want = info_nce(q_rgb, k_mv, Q_mv, temperature=T) + info_nce(q_mv, k_rgb, Q_rgb, temperature=T)
    torch.testing.assert_close(got, want)


def test_hand_built_intersection_and_union():
    Q = torch.eye(4, dtype=torch.float64)  # row j is the unit vector e_j
    k_rgb = F.normalize(torch.tensor([[3.0, 2.0, 1.0, 0.0]], dtype=torch.float64), dim=1)  # top-2 {0, 1}
    k_mv = F.normalize(torch.tensor([[0.0, 2.0, 3.0, 1.0]], dtype=torch.float64), dim=1)  # top-2 {2, 1}
    inter = mine_positives(k_rgb, k_mv, Q, Q, topk=2, mode="intersection")
    union = mine_positives(k_rgb, k_mv, Q, Q, topk=2, mode="union")
    assert inter.tolist() == [[False, True, False, False]]
    assert union.tolist() == [[True, True, True, False]]

    # The loss counts exactly those rows as positives: -log((e^{q.k} + Σ_{j∈S} e^{q.Q_j}) / Z).
    q = F.normalize(torch.tensor([[1.0, 1.0, 1.0, 1.0]], dtype=torch.float64), dim=1)  # q.Q_j = 0.5 for all j
    e_row = math.exp(0.5 / T)
    for mode, n_pos in (("intersection", 1), ("union", 3)):
        loss = cross_guidance_nce(q, q, k_rgb, k_mv, Q, Q, topk=2, temperature=T, mode=mode)
        # Both directions see the same numbers here (q_rgb = q_mv = q), own key differs by view.
        want = -math.log((math.exp(dot(q[0], k_mv[0]) / T) + n_pos * e_row) / (math.exp(dot(q[0], k_mv[0]) / T) + 4 * e_row))
        want += -math.log((math.exp(dot(q[0], k_rgb[0]) / T) + n_pos * e_row) / (math.exp(dot(q[0], k_rgb[0]) / T) + 4 * e_row))
        assert loss.item() == pytest.approx(want, rel=1e-9)


def test_gradients_reach_queries_only():
    q = unit(3, 8, seed=0).requires_grad_()
    k = unit(3, 8, seed=1).requires_grad_()
    queue = unit(6, 8, seed=2)
    cross_guidance_nce(q, q, k, k, queue, queue, topk=2).backward()
    assert q.grad is not None and q.grad.abs().sum() > 0


def test_bad_options_are_clear():
    q = unit(2, 4, seed=0)
    Q = unit(4, 4, seed=1)
    with pytest.raises(ValueError, match="intersection, union"):
        cross_guidance_nce(q, q, q, q, Q, Q, mode="both")
    with pytest.raises(ValueError, match="topk"):
        cross_guidance_nce(q, q, q, q, Q, Q, topk=5)


def ref_mining_statistics(k_rgb, k_mv, Q_rgb, Q_mv, topk, mode, labels, queue_labels):
    mined, rgb_same, rgb_n, mv_same, mv_n, mined_same, mined_n, with_any = 0, 0, 0, 0, 0, 0, 0, 0
    for i in range(len(k_rgb)):
        a_rgb, a_mv = ref_topk(k_rgb[i], Q_rgb, topk), ref_topk(k_mv[i], Q_mv, topk)
        s = a_rgb & a_mv if mode == "intersection" else a_rgb | a_mv
        mined += len(s)
        with_any += bool(s)
        for rows, counts in ((s, "mined"), (a_rgb, "rgb"), (a_mv, "mv")):
            known = [j for j in rows if labels[i] >= 0 and queue_labels[j] >= 0]
            same = sum(labels[i] == queue_labels[j] for j in known)
            if counts == "mined":
                mined_same, mined_n = mined_same + same, mined_n + len(known)
            elif counts == "rgb":
                rgb_same, rgb_n = rgb_same + same, rgb_n + len(known)
            else:
                mv_same, mv_n = mv_same + same, mv_n + len(known)
    n = len(k_rgb)
    return {"mined_per_query": mined / n, "queries_with_mined": with_any / n,
            "mined_same_class": mined_same / mined_n if mined_n else None,
            "rgb_topk_same_class": rgb_same / rgb_n, "mv_topk_same_class": mv_same / mv_n}


@pytest.mark.parametrize("mode,topk", [("intersection", 3), ("union", 2), ("intersection", 10)])
def test_mining_statistics_match_loop_reference(mode, topk):
    from mvcgc.losses import mining_statistics

    # Queues that half-agree: MV keys are RGB keys plus noise, so the top-k sets overlap partly.
    k_rgb, Q_rgb = unit(6, 8, seed=1), unit(20, 8, seed=2)
    k_mv = F.normalize(k_rgb + 0.7 * unit(6, 8, seed=3), dim=-1)
    Q_mv = F.normalize(Q_rgb + 0.7 * unit(20, 8, seed=4), dim=-1)
    labels = torch.tensor([0, 1, 2, 0, 1, -1])
    queue_labels = torch.tensor([j % 3 for j in range(20)])
    queue_labels[5] = -1  # an unlabelled row is left out of the class shares
    got = mining_statistics(k_rgb, k_mv, Q_rgb, Q_mv, topk=topk, mode=mode, labels=labels, queue_labels=queue_labels)
    want = ref_mining_statistics(k_rgb, k_mv, Q_rgb, Q_mv, topk, mode, labels.tolist(), queue_labels.tolist())
    assert got.keys() == want.keys()
    for name, value in want.items():
        assert got[name] == pytest.approx(value) if value is not None else got[name] is None, name


def test_mining_statistics_without_labels_count_only():
    from mvcgc.losses import mining_statistics

    k, Q = unit(4, 8, seed=5), unit(12, 8, seed=6)
    # Identical views: the intersection is the whole top-k of every query.
    got = mining_statistics(k, k, Q, Q, topk=3, mode="intersection")
    assert got == {"mined_per_query": 3.0, "queries_with_mined": 1.0}
