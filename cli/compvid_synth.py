"""``compvid synth``: arguments → compvid.synth.write_synth → printed summary.

A plain click command; ``cli/compvid.py`` adds it to the ``compvid`` group. tqdm is imported
when the bar is first drawn: ``compvid --help`` stays fast.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from cli.progress import Bar
from compvid.errors import CompvidError
from compvid.synth import DEFAULT_CLASSES, DEFAULT_CODECS, MOTION_CLASSES, SYNTH_CODECS, write_synth


def _names(ctx, param, value: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in value.split(",") if n.strip())


def _frame_size(ctx, param, value: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
    if not m:
        raise click.BadParameter(f"{value!r}: expected WIDTHxHEIGHT, e.g. 96x72")
    return int(m.group(1)), int(m.group(2))


@click.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--classes", default=",".join(DEFAULT_CLASSES), show_default=True, callback=_names,
              help=f"Comma-separated motion classes, from: {', '.join(MOTION_CLASSES)}.")
@click.option("--videos-per-class", type=int, default=24, show_default=True, help="Videos in each class.")
@click.option("--clips-per-group", type=int, default=4, show_default=True,
              help="Clips per group gXX (a group goes wholly into train or test).")
@click.option("--test-groups", type=int, default=2, show_default=True,
              help="Groups per class in testlist01.txt (the first ones, as in UCF101).")
@click.option("--frames", "num_frames", type=int, default=32, show_default=True, help="Frames per video.")
@click.option("--size", default="96x72", show_default=True, callback=_frame_size, help="Frame size WIDTHxHEIGHT.")
@click.option("--fps", type=int, default=25, show_default=True, help="Frame rate.")
@click.option("--codecs", default=",".join(DEFAULT_CODECS), show_default=True, callback=_names,
              help=f"Comma-separated codecs, assigned round-robin, from: {', '.join(SYNTH_CODECS)}.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed: same seed, same videos.")
@click.option("--scene-bias", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Probability that a video's background has its class's colour (appearance correlated with the "
                   "class, as scenes are in real data); 0: motion-only.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Processes rendering and encoding (default: CPU count, max 8; 0 or 1 = this process).")
@click.option("--overwrite", is_flag=True, help="Replace an earlier synthetic set in OUT.")
def synth(out, classes, videos_per_class, clips_per_group, test_groups, num_frames, size, fps, codecs, seed,
          scene_bias, workers, overwrite):
    """Write a small action dataset whose classes differ only by motion, in the UCF101 layout, to OUT.

    Shard it next as the demo does: compvid shard OUT --out <folder of OUT>/shards
    (demo/data -> demo/shards)."""
    width, height = size
    if workers is None:
        workers = min(8, os.cpu_count() or 1)

    try:
        with Bar(unit="video") as bar:  # drawn on the first progress call: a bad option prints no empty bar
            def progress(stage: str, done: int, total: int) -> None:
                if bar.bar is None:
                    bar.start("synth", total)
                bar.update(done)

            result = write_synth(
                out, classes=classes, videos_per_class=videos_per_class, clips_per_group=clips_per_group,
                test_groups=test_groups, num_frames=num_frames, width=width, height=height, fps=fps,
                codecs=codecs, seed=seed, scene_bias=scene_bias, workers=workers, overwrite=overwrite,
                on_progress=progress,
            )  # fmt: skip
    except CompvidError as e:
        click.echo(f"error: {e}", err=True)
        raise SystemExit(1)
    click.echo(
        f"{len(result.videos)} videos ({result.num_train} train, {result.num_test} test) of "
        f"{len(result.classes)} classes, {width}x{height}, {num_frames} frames, codecs {', '.join(codecs)}; "
        f"{result.bytes / 1e6:.2f} MB in {result.seconds:.1f} s"
    )
    click.echo(f"UCF101 layout: {result.out} (classInd.txt, trainlist01.txt, testlist01.txt)")
    click.echo(f"next: compvid shard {result.out} --out {shards_beside(result.out)}")


def shards_beside(out: Path) -> Path:
    """Where to shard a synthetic set: ``shards`` beside it, as examples/demo.sh does (demo/data -> demo/shards)."""
    return out.parent / "shards"
