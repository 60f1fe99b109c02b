"""The library API in one short script: synth → shard → probe/decode → MV picture → a few MoCo steps.

    python examples/library_api.py /tmp/compvid-api-demo

Runs on CPU in well under a minute: a tiny motion-labelled set (compvid.synth), its
WebDataset shards (compvid.shards), one clip decoded with its motion vectors
(compvid.decode_clip) and drawn (compvid.visualize.save_mv_png), batches of clip
pairs decoded on the fly from the shards (compvid.datasets.pair_loader), and two
stage-1 MoCo steps of the tiny MV encoder (mvcgc.train.pretrain).
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

import compvid
from compvid.datasets import pair_loader
from compvid.request import ClipRequest
from compvid.shards import write_shards
from compvid.synth import write_synth
from compvid.visualize import save_mv_png
from mvcgc.options import PretrainOptions
from mvcgc.train import pretrain


def main(out: Path) -> None:
    # 1. A small dataset in the UCF101 layout whose classes differ only by motion.
    data = write_synth(out / "synth", classes=("MoveRight", "MoveLeft", "ZoomIn", "ZoomOut"), videos_per_class=4,
                       clips_per_group=2, test_groups=1, num_frames=24, overwrite=True)
    print(f"synth: {len(data.videos)} videos in {data.out}")

    # 2. WebDataset shards holding the original bytes (no re-encoding, no frames on disk).
    shards = write_shards(data.out, out / "shards", workers=0, overwrite=True)
    print(f"shards: {shards.written} written, {shards.skipped} skipped: {', '.join(shards.shards)}")

    # 3. Probe one video and decode a clip: RGB uint8 (T, H, W, 3), MV float32 (2, T, H, W).
    video = data.out / data.videos[0].path
    info = compvid.probe(video)
    clip = compvid.decode_clip(video, start=0, num_frames=16, info=info)
    print(f"{video.name}: {info.codec} {info.width}x{info.height}, {info.num_frames} frames, "
          f"mv_source={clip.mv_source}; rgb {clip.rgb.shape}, mv {clip.mv.shape}, "
          f"whole-frame mean motion ({clip.mv[0].mean():+.2f}, {clip.mv[1].mean():+.2f}) px/frame")
    png = save_mv_png(out / "motion.png", clip.rgb, clip.mv, clip.has_mv, frames=[1, 4, 8], step=8)
    print(f"motion picture: {png}")

    # 4. Pairs of clips (A, B) decoded on the fly from the train shards, batched for the trainer.
    urls = sorted(glob.glob(str(out / "shards" / "train-*.tar")))
    loader = pair_loader(urls, batch_size=4, request=ClipRequest(num_frames=8, crop_px=32, views={"mv"}), shuffle=8,
                         seed=0)
    batch = next(iter(loader))
    print(f"batch: mv {tuple(batch['mv'].shape)}, labels {batch['label'].tolist()}")

    # 5. Two stage-1 MoCo steps of the tiny MV encoder on those batches (checkpoint in run/).
    options = PretrainOptions(stage="init", view="mv", arch="tiny", steps=2, queue_size=16, dim=32, device="cpu",
                              seed=0)  # the fields of `mvcgc pretrain`'s flags, checked here
    result = pretrain(loader, options, out_dir=out / "run")
    print(f"pretrain: {result}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="Folder for the data, shards, picture and run.")
    main(parser.parse_args().out)
