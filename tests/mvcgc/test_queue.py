"""KeyQueue: FIFO order, pointer wrap, one pointer shared by the views."""

import pytest
import torch
import torch.nn.functional as F

from mvcgc.queue import KeyQueue, check_queue_size


def ids(batch_index, n=2, dim=3):
    """Keys whose every entry is the sample id (batch_index * n + row)."""
    return torch.arange(batch_index * n, (batch_index + 1) * n, dtype=torch.float32)[:, None].expand(n, dim).clone()


def test_fifo_order_and_pointer_wrap():
    queue = KeyQueue(views=["rgb"], size=6, dim=3)
    assert not queue.is_full and queue.fill == 0.0
    for b in range(3):
        queue.enqueue({"rgb": ids(b)})
    assert queue["rgb"][:, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert int(queue.ptr) == 0 and queue.is_full  # wrapped
    queue.enqueue({"rgb": ids(3)})  # replaces the oldest two (0, 1)
    assert queue["rgb"][:, 0].tolist() == [6, 7, 2, 3, 4, 5]
    assert int(queue.ptr) == 2 and queue.fill == 1.0


def test_views_share_one_pointer_and_stay_aligned():
    queue = KeyQueue(views=["rgb", "mv"], size=4, dim=3)
    for b in range(3):  # wraps once
        queue.enqueue({"rgb": ids(b), "mv": -ids(b)})
    assert torch.equal(queue["rgb"], -queue["mv"])  # row j holds the same sample in both views
    assert queue["rgb"][:, 0].tolist() == [4, 5, 2, 3]
    assert int(queue.ptr) == 2


def test_state_survives_state_dict_roundtrip():
    queue = KeyQueue(views=["rgb", "mv"], size=4, dim=3)
    queue.enqueue({"rgb": ids(0), "mv": ids(1)})
    other = KeyQueue(views=["rgb", "mv"], size=4, dim=3)
    other.load_state_dict(queue.state_dict())
    assert int(other.ptr) == 2 and int(other.num_enqueued) == 2
    assert torch.equal(other["mv"], queue["mv"])


def test_bad_sizes_and_views():
    queue = KeyQueue(views=["rgb", "mv"], size=6, dim=3)
    with pytest.raises(ValueError, match="multiple of the global batch 4"):
        queue.enqueue({"rgb": ids(0, n=4), "mv": ids(0, n=4)})
    with pytest.raises(ValueError, match="same number"):
        queue.enqueue({"rgb": ids(0, n=2), "mv": ids(0, n=3)})
    with pytest.raises(ValueError, match="exactly"):
        queue.enqueue({"rgb": ids(0)})
    with pytest.raises(KeyError, match="holds"):
        queue["flow"]
    check_queue_size(2048, 32)
    with pytest.raises(ValueError, match="2048"):
        check_queue_size(2048, 48)


def test_labels_travel_with_the_rows_and_old_states_load():
    q = KeyQueue(views=("rgb", "mv"), size=6, dim=4)
    keys = {v: F.normalize(torch.randn(3, 4), dim=1) for v in ("rgb", "mv")}
    q.enqueue(keys, torch.tensor([2, 0, 1]))
    q.enqueue(keys)  # unlabelled data: rows of unknown class
    assert q.labels.tolist() == [2, 0, 1, -1, -1, -1]
    q.enqueue(keys, torch.tensor([5, 5, 5]))  # wraps: replaces the oldest rows
    assert q.labels.tolist() == [5, 5, 5, -1, -1, -1]
    old = {k: v for k, v in q.state_dict().items() if k != "labels"}  # a checkpoint from before labels
    fresh = KeyQueue(views=("rgb", "mv"), size=6, dim=4)
    fresh.load_state_dict(old)
    assert fresh.labels.tolist() == [-1] * 6 and torch.equal(fresh["rgb"], q["rgb"])
