"""MoCo: momentum update, normalised keys, gather-then-enqueue in a single process."""

import pytest
import torch

from mvcgc.models import create_encoder
from mvcgc.moco import MoCo


def make(m=0.9, views=("rgb",)):
    torch.manual_seed(0)
    return MoCo({v: create_encoder("tiny", {"rgb": 3, "mv": 2}[v]) for v in views}, queue_size=8, dim=16, m=m)


def test_key_encoder_is_a_momentum_average_and_keys_are_unit():
    moco = make(m=0.9)
    with torch.no_grad():
        for p in moco.encoder_q.parameters():
            p.add_(1.0)  # make f_q and f_k differ
    before_k = [p.clone() for p in moco.encoder_k.parameters()]
    q_params = [p.clone() for p in moco.encoder_q.parameters()]
    x = {"rgb": torch.randn(2, 3, 4, 16, 16)}
    q, k = moco(x, x)
    for p_k, old, p_q in zip(moco.encoder_k.parameters(), before_k, q_params):
        torch.testing.assert_close(p_k, 0.9 * old + 0.1 * p_q)
        assert not p_k.requires_grad
    assert q["rgb"].shape == k["rgb"].shape == (2, 16)
    torch.testing.assert_close(k["rgb"].norm(dim=1), torch.ones(2))
    assert q["rgb"].requires_grad and not k["rgb"].requires_grad


def test_enqueue_single_process_and_divisibility():
    moco = make(views=("rgb", "mv"))
    k = {"rgb": torch.ones(4, 16), "mv": torch.zeros(4, 16)}
    moco.dequeue_and_enqueue(k)
    assert torch.equal(moco.queue["rgb"][:4], k["rgb"]) and int(moco.queue.ptr) == 4
    with pytest.raises(ValueError, match="multiple"):
        moco.dequeue_and_enqueue({"rgb": torch.ones(3, 16), "mv": torch.ones(3, 16)})


def test_bad_momentum():
    with pytest.raises(ValueError, match="momentum"):
        make(m=1.0)
