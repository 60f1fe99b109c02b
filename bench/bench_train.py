"""Training-step cost of the cross stage against a plain MoCo step with the same encoders.

Both steps run the same RGB + MV query/key encoders on the same batch, the same backward,
optimiser step and enqueue; they differ only in the loss: the cross stage mines top-k positives in
the two (full) queues and applies the cross-guidance loss, the baseline applies plain per-view
InfoNCE (MoCo). Steps alternate (plain, cross, plain, ...) in one process so that drift in machine
load hits both equally; the figure is the ratio of medians. Also: videos per second of each stage
(stage 1 = one view; stage 2 = both views; a video is two clips per view).

    python bench/bench_train.py --arch tiny --arch s3d            # CPU
    python bench/bench_train.py --arch s3d --device cuda --frames 32 --size 128 --batch 32
    python bench/bench_train.py --arch tiny --json train.json     # also write the figures as JSON
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from mvcgc.losses import cross_guidance_nce, info_nce, mining_statistics
from mvcgc.models import create_encoder
from mvcgc.moco import MoCo
from mvcgc.stages import IN_CHANNELS


def plain_moco_loss(q, k, queue):
    return sum(info_nce(q[v], k[v], queue[v]) for v in q)


def cross_loss(q, k, queue):
    return cross_guidance_nce(q["rgb"], q["mv"], k["rgb"], k["mv"], queue["rgb"], queue["mv"], topk=5)


def cross_diagnostics(k, queue):
    """What the trainer logs after every cross-stage step (mining statistics with labels)."""
    labels = torch.arange(k["rgb"].shape[0], device=k["rgb"].device) % 8
    mining_statistics(k["rgb"], k["mv"], queue["rgb"], queue["mv"], topk=5, labels=labels,
                      queue_labels=torch.arange(queue.size, device=k["rgb"].device) % 8)


def make_step(moco, optimizer, loss_fn, device, amp, diagnostics=None):
    def step(x_q, x_k):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            q, k = moco(x_q, x_k)
        loss = loss_fn(q, k, moco.queue)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if diagnostics is not None:
            diagnostics(k, moco.queue)
        moco.dequeue_and_enqueue(k)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def timed(step, x_q, x_k) -> float:
    t0 = time.perf_counter()
    step(x_q, x_k)
    return time.perf_counter() - t0


def bench_arch(arch, *, frames, size, batch, queue_size, steps, device, amp):
    torch.manual_seed(0)
    views = ("rgb", "mv")
    x = {v: torch.randn(batch, 2, IN_CHANNELS[v], frames, size, size, device=device) for v in views}
    x_q, x_k = {v: x[v][:, 0] for v in views}, {v: x[v][:, 1] for v in views}
    runs = {}
    for name, vs, loss_fn in (("plain", views, plain_moco_loss), ("cross", views, cross_loss),
                              ("init_rgb", ("rgb",), plain_moco_loss)):
        moco = MoCo({v: create_encoder(arch, IN_CHANNELS[v]) for v in vs}, queue_size=queue_size).to(device)
        moco.queue.num_enqueued.fill_(queue_size)  # full queue: the cross stage mines on every step
        opt = torch.optim.Adam([p for p in moco.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-5)
        diagnostics = cross_diagnostics if name == "cross" else None  # the trainer logs mining every cross step
        runs[name] = (make_step(moco, opt, loss_fn, device, amp, diagnostics), {v: x_q[v] for v in vs},
                      {v: x_k[v] for v in vs})
    times = {name: [] for name in runs}
    for name, (step, a, b) in runs.items():  # warm-up
        step(a, b)
    for _ in range(steps):
        for name, (step, a, b) in runs.items():
            times[name].append(timed(step, a, b))
    med = {name: statistics.median(ts) for name, ts in times.items()}
    return med


def bench_loss_only(*, batch, queue_size, repeats=200):
    """Mining + cross loss vs two InfoNCE terms on random unit features (no encoders)."""
    g = torch.Generator().manual_seed(0)
    f = lambda n: torch.nn.functional.normalize(torch.randn(n, 128, generator=g), dim=1)  # noqa: E731
    q_rgb, q_mv, k_rgb, k_mv = (f(batch).requires_grad_() for _ in range(4))
    Q_rgb, Q_mv = f(queue_size), f(queue_size)
    res = {}
    for name, fn in (("plain", lambda: info_nce(q_rgb, k_rgb, Q_rgb) + info_nce(q_mv, k_mv, Q_mv)),
                     ("cross", lambda: cross_guidance_nce(q_rgb, q_mv, k_rgb, k_mv, Q_rgb, Q_mv, topk=5))):
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn().backward()
            ts.append(time.perf_counter() - t0)
        res[name] = statistics.median(ts)
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arch", action="append", default=None)
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--queue-size", type=int, default=2048)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", metavar="PATH", help="also write the printed figures (and raw medians) here")
    p.add_argument("--no-amp", action="store_true", help="fp32 on CUDA (default there: bf16 autocast)")
    args = p.parse_args()
    device = torch.device(args.device)
    amp = device.type == "cuda" and not args.no_amp
    # CPU defaults: tiny at the tiny-cpu preset's clip size; s3d at 16x112 (32x128 is the paper's).
    defaults = {"tiny": (16, 64, 16), "motion": (16, 64, 16), "s3d": (16, 112, 4)}
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} K={args.queue_size} "
          f"amp_bf16={amp}")
    lo = bench_loss_only(batch=16, queue_size=args.queue_size)
    figures = [dict(id="train.loss_only.cross_vs_plain", measured="cross mining + loss, B=16", value=lo["cross"] * 1e3,
                    unit="ms", baseline="2x InfoNCE (plain MoCo loss)", baseline_value=lo["plain"] * 1e3,
                    ratio=lo["cross"] / lo["plain"], higher_is_better=False)]
    archs = {}
    print(f"loss only (B=16): cross (mining+loss) {lo['cross'] * 1e3:.3f} ms vs 2x InfoNCE {lo['plain'] * 1e3:.3f} ms "
          f"-> ratio {lo['cross'] / lo['plain']:.2f}")
    for arch in args.arch or ["tiny", "s3d"]:
        frames, size, batch = defaults.get(arch, (16, 112, 4))
        frames, size, batch = args.frames or frames, args.size or size, args.batch or batch
        med = bench_arch(arch, frames=frames, size=size, batch=batch, queue_size=args.queue_size,
                         steps=args.steps, device=device, amp=amp)
        print(f"{arch} {frames}x{size}x{size} batch {batch}: step plain MoCo {med['plain']:.3f} s, "
              f"cross {med['cross']:.3f} s -> cross/plain {med['cross'] / med['plain']:.3f} "
              f"(overhead {100 * (med['cross'] / med['plain'] - 1):+.1f} %)")
        print(f"  videos/s: stage 1 (rgb) {batch / med['init_rgb']:.1f}, stage 2 (cross) {batch / med['cross']:.1f}; "
              f"clips/s (2 clips per view per video): stage 1 {2 * batch / med['init_rgb']:.1f}, "
              f"stage 2 {4 * batch / med['cross']:.1f}")
        setting = f"{arch} {frames}x{size}x{size} batch {batch}"
        archs[arch] = dict(frames=frames, size=size, batch=batch, median_step_s=med,
                           clips_per_s={"stage1": 2 * batch / med["init_rgb"], "stage2": 4 * batch / med["cross"]})
        figures.append(dict(id=f"train.{arch}.cross_step", measured=f"cross-stage step, {setting}", value=med["cross"],
                            unit="s/step", baseline="plain MoCo step (same encoders)", baseline_value=med["plain"],
                            ratio=med["cross"] / med["plain"], higher_is_better=False))
        figures.append(dict(id=f"train.{arch}.stage2_clips", measured=f"stage 2 (cross) clips/s, {setting}",
                            value=4 * batch / med["cross"], unit="clips/s", baseline="stage 1 (rgb) clips/s",
                            baseline_value=2 * batch / med["init_rgb"],
                            ratio=(4 * batch / med["cross"]) / (2 * batch / med["init_rgb"]), higher_is_better=True))
    if args.json:
        out = dict(benchmark="train", config=vars(args), device=str(device), torch=torch.__version__,
                   threads=torch.get_num_threads(), loss_only_median_s=lo, archs=archs, figures=figures)
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
