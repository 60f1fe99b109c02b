"""How far can an encoder get WITH labels on a motion-labelled set? A fast study bench.

Decodes every video of a UCF101-layout folder (e.g. ``compvid synth`` output) once into memory,
then trains ``encoder -> BatchNorm -> linear`` from random weights with labels, one augmented clip
per video per step (compvid's ``ClipAugment``, the pretraining augmentation), Adam with a one-cycle
LR; tests on centre crops of sliding windows, softmax averaged per video. Many recipes can be
compared in the time ``mvcgc pretrain --stage supervised`` (which decodes on the fly, both clips of
every pair) needs for a few. Prints one JSON line: test top-1, per-class top-1, final training
accuracy (augmented clips).

    python examples/ceiling_study.py demo/data --arch motion --view rgb --epochs 30 --flip-p 0 --min-crop-area 0.6
    python examples/ceiling_study.py demo/data --arch motion_affine --head-lr 1e-2 --flip-p 0 --min-crop-area 0.6
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import compvid
from compvid.pipeline import DECODE_MARGIN, KINETICS_MEAN, KINETICS_STD
from compvid.transforms import ClipAugment
from mvcgc.models import create_encoder, list_encoders


def load_split(root: Path, list_file: str, classes: list[str], short_side: int):
    """Every video of ``list_file`` decoded whole: RGB uint8 (N, F, H, W, 3), MV float32 (N, 2, F, H, W), labels."""
    rgb, mv, labels = [], [], []
    for line in (root / list_file).read_text().splitlines():
        if not line.strip():
            continue
        rel = line.split()[0]
        info = compvid.probe(str(root / rel))
        clip = compvid.decode_clip(str(root / rel), start=0, num_frames=info.num_frames, size=short_side, info=info)
        rgb.append(torch.from_numpy(clip.rgb))
        mv.append(torch.from_numpy(clip.mv))
        labels.append(classes.index(rel.split("/")[0]))
    return torch.stack(rgb), torch.stack(mv), torch.tensor(labels)


def normalise(rgb01: torch.Tensor) -> torch.Tensor:
    """(..., 3, T, H, W) in [0, 1] -> Kinetics-normalised, as the pretraining stream delivers."""
    mean = torch.tensor(KINETICS_MEAN).view(3, 1, 1, 1)
    std = torch.tensor(KINETICS_STD).view(3, 1, 1, 1)
    return (rgb01 - mean) / std


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", type=Path, help="UCF101-layout folder (classInd.txt, trainlist01.txt, testlist01.txt)")
    p.add_argument("--arch", default="motion", choices=list_encoders())
    p.add_argument("--view", default="rgb", choices=["rgb", "mv"])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--head-lr", type=float, default=None,
                   help="learning rate of the BatchNorm + linear classifier (default: --lr); a few hundred steps "
                        "at 1e-3 leave a linear read-out far from converged")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--num-frames", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--flip-p", type=float, default=0.5)
    p.add_argument("--min-crop-area", type=float, default=0.2, help="smallest share of the frame a random crop keeps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    classes = [ln.split()[1] for ln in (a.root / "classInd.txt").read_text().splitlines() if ln.strip()]
    t0 = time.time()
    # Training clips: decoded at the pretraining stream's short side, then random resized crops.
    tr_rgb, tr_mv, y_tr = load_split(a.root, "trainlist01.txt", classes, round(DECODE_MARGIN * a.size))
    # Test windows: decoded at short side `size`, centre crop (the evaluation protocol).
    te_rgb, te_mv, y_te = load_split(a.root, "testlist01.txt", classes, a.size)
    decode_s = time.time() - t0
    aug = ClipAugment(size=a.size, scale=(a.min_crop_area, 1.0), flip_p=a.flip_p)
    encoder = create_encoder(a.arch, 3 if a.view == "rgb" else 2)
    model = nn.Sequential(encoder, nn.BatchNorm1d(encoder.feature_dim), nn.Linear(encoder.feature_dim, len(classes)))
    steps = len(y_tr) // a.batch_size
    head_lr = a.head_lr if a.head_lr is not None else a.lr
    opt = torch.optim.Adam([{"params": encoder.parameters(), "lr": a.lr},
                            {"params": [*model[1].parameters(), *model[2].parameters()], "lr": head_lr}],
                           weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[a.lr, head_lr], total_steps=a.epochs * steps,
                                                pct_start=0.15)
    rng, g = np.random.default_rng(a.seed), torch.Generator().manual_seed(a.seed)
    frames = tr_rgb.shape[1]

    def train_clip(i: int) -> torch.Tensor:
        s = int(rng.integers(0, frames - a.num_frames + 1))
        if a.view == "rgb":
            return normalise(aug(rgb=tr_rgb[i, s : s + a.num_frames], generator=g)[0])  # (3, T, S, S)
        return aug(mv=tr_mv[i, :, s : s + a.num_frames], generator=g)[1]  # (2, T, S, S)

    def test_top1() -> tuple[float, list[float]]:
        model.eval()
        starts = sorted(set(range(0, frames - a.num_frames + 1, a.num_frames // 2)) | {frames - a.num_frames})
        probs = torch.zeros(len(y_te), len(classes))
        with torch.no_grad():
            for s in starts:
                if a.view == "rgb":
                    x = te_rgb[:, s : s + a.num_frames]  # (N, T, H, W, 3)
                    h, w = x.shape[2:4]
                    top, left = (h - a.size) // 2, (w - a.size) // 2
                    x = normalise(x[:, :, top : top + a.size, left : left + a.size].permute(0, 4, 1, 2, 3) / 255)
                else:
                    x = te_mv[:, :, s : s + a.num_frames]
                    h, w = x.shape[-2:]
                    top, left = (h - a.size) // 2, (w - a.size) // 2
                    x = x[..., top : top + a.size, left : left + a.size]
                probs += torch.cat([model(x[i : i + 32].float()).softmax(1) for i in range(0, len(x), 32)])
        model.train()
        hit = probs.argmax(1) == y_te
        return hit.float().mean().item(), [hit[y_te == c].float().mean().item() for c in range(len(classes))]

    train_acc = 0.0
    for _ in range(a.epochs):
        order, correct = torch.randperm(len(y_tr), generator=g), 0
        for b in range(steps):
            idx = order[b * a.batch_size : (b + 1) * a.batch_size]
            x, y = torch.stack([train_clip(int(i)) for i in idx]), y_tr[idx]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            correct += (logits.argmax(1) == y).sum().item()
        train_acc = correct / (steps * a.batch_size)
    top1, per_class = test_top1()
    print(json.dumps({**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
                      "test_top1": round(100 * top1, 1), "train_top1_last_epoch": round(100 * train_acc, 1),
                      "per_class_top1": {c: round(100 * v) for c, v in zip(classes, per_class)},
                      "decode_s": round(decode_s, 1), "train_s": round(time.time() - t0 - decode_s, 1)}))


if __name__ == "__main__":
    main()
