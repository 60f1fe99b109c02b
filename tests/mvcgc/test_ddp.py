"""Two Gloo processes on CPU: keys are gathered in rank order before enqueueing; a signal stops every rank alike."""

import socket

import pytest
import torch
import torch.multiprocessing as mp

B, K, DIM = 2, 8, 16


def _worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    from mvcgc.data import SyntheticClips
    from mvcgc.losses import info_nce
    from mvcgc.models import create_encoder
    from mvcgc.moco import MoCo
    from mvcgc.train import pretrain

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        # Part 1: one MoCo step under DDP with rank-specific inputs.
        torch.manual_seed(0)  # same initial weights on every rank
        moco = MoCo({"rgb": create_encoder("tiny", 3)}, queue_size=K, dim=DIM, m=0.99)
        model = torch.nn.parallel.DistributedDataParallel(moco)
        opt = torch.optim.Adam(moco.encoder_q.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(100 + rank)
        x = {"rgb": torch.randn(B, 3, 4, 16, 16, generator=g)}
        q, k = model(x, x)
        info_nce(q["rgb"], k["rgb"], moco.queue["rgb"]).backward()
        opt.step()
        moco.dequeue_and_enqueue(k)
        torch.save({"k": k["rgb"], "queue": moco.queue["rgb"].clone(), "ptr": int(moco.queue.ptr),
                    "w": moco.encoder_q["rgb"].encoder.backbone[0][0].weight.detach().clone()},
                   f"{out_dir}/rank{rank}.pt")
        # Part 2: the trainer itself, two steps, data split by rank; only rank 0 writes.
        data = SyntheticClips(num_videos=8, batch_size=B, num_frames=4, size=(16, 16), views=("rgb",),
                              rank=rank, world_size=world)
        result = pretrain(data, stage="init", view="rgb", arch="tiny", out_dir=f"{out_dir}/run", steps=2,
                          queue_size=K, dim=DIM, device="cpu")
        torch.save({"losses": result.losses}, f"{out_dir}/losses{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_gather_keys_in_rank_order(tmp_path, monkeypatch):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert not torch.equal(r0["k"], r1["k"])  # the ranks saw different clips
    for r in (r0, r1):
        torch.testing.assert_close(r["queue"][: 2 * B], torch.cat([r0["k"], r1["k"]]))  # rank 0 then rank 1
        assert r["ptr"] == 2 * B
    torch.testing.assert_close(r0["w"], r1["w"])  # DDP averaged the gradients
    l0, l1 = torch.load(tmp_path / "losses0.pt")["losses"], torch.load(tmp_path / "losses1.pt")["losses"]
    assert l0 == l1 and len(l0) == 2  # logged losses are averaged over ranks
    from mvcgc.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert int(ckpt["model"]["queue.num_enqueued"]) == 2 * 2 * B and ckpt["config"]["world_size"] == 2
    assert not any(p.name.startswith(".") for p in (tmp_path / "run").iterdir())


def _interrupted_worker(rank, world, init_file, out_dir):
    import datetime
    import os
    import signal

    import torch.distributed as dist

    from mvcgc.data import SyntheticClips
    from mvcgc.errors import TrainingInterrupted
    from mvcgc.train import pretrain

    def sigterm_rank1_at_step2(p):
        if rank == 1 and p.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    torch.set_num_threads(1)
    # a rank left waiting in a collective fails after the timeout instead of hanging the test
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))
    try:
        data = SyntheticClips(num_videos=16, batch_size=B, num_frames=4, size=(16, 16), views=("rgb",),
                              rank=rank, world_size=world)
        try:
            pretrain(data, stage="init", view="rgb", arch="tiny", out_dir=f"{out_dir}/run", steps=6, queue_size=K,
                     dim=DIM, device="cpu", on_progress=sigterm_rank1_at_step2)
            record = {"stopped": None}
        except TrainingInterrupted as e:
            record = {"stopped": e.signal_number, "step": e.step, "checkpoint": str(e.checkpoint)}
        torch.save(record, f"{out_dir}/stopped{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_a_signal_on_one_rank_stops_every_rank_after_the_same_step(tmp_path, monkeypatch):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    import signal

    from mvcgc.checkpoint import load_checkpoint

    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(_interrupted_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    records = [torch.load(tmp_path / f"stopped{r}.pt") for r in (0, 1)]
    assert [(r["stopped"], r["step"]) for r in records] == [(signal.SIGTERM, 2)] * 2  # rank 0 got no signal
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == 2  # written by rank 0 before either exited
