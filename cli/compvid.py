"""``compvid``: inspect videos, write and verify WebDataset shards.

Heavy modules (torch through webdataset, the decoder's helpers, tqdm) are imported inside the
commands that use them, so ``compvid --help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import json
import logging
import sys

import click

from cli.compvid_shard import shard, verify
from cli.compvid_synth import synth
from cli.progress import Bar
from compvid.errors import CompvidError


@click.group()
@click.version_option(package_name="compvid-mvcgc", prog_name="compvid")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """RGB frames and motion vectors decoded on the fly from compressed video."""
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )


def _fail(error: Exception) -> None:
    click.echo(f"error: {error}", err=True)
    sys.exit(1)


@main.command()
@click.argument("video", type=click.Path(dir_okay=True, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the summary.")
@click.option("--png", "png", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write a picture of a few frames: RGB, MV colour map with its key, arrows.")
@click.option("--max-frames", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Decode at most this many frames for the statistics.")
def inspect(video: str, as_json: bool, png: str | None, max_frames: int) -> None:
    """Summarise VIDEO: container, codec, GOP structure and motion-vector statistics."""
    from compvid.summary import summarize, write_inspection_png

    try:
        with Bar(unit="frame", enabled=not as_json) as bar:
            def progress(done: int, total: int) -> None:
                if bar.bar is None:
                    bar.start("decoding", total)
                bar.update(done)

            report = summarize(video, max_frames=max_frames, on_progress=progress)
        if png:
            report["png"] = {"path": png, "frames": write_inspection_png(video, png)}
    except CompvidError as e:
        _fail(e)
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(format_report(report))


def _frames_line(v: dict) -> str:
    """Frame count and timing; unevenly spaced pictures say so, with their intervals."""
    if not v.get("variable_frame_rate"):
        return f"frames      {v['num_frames']} at {v['fps']:.3f} fps = {v['duration_seconds']:.2f} s"
    lo, median, hi = (1000 * t for t in v["frame_interval_seconds"])
    return (f"frames      {v['num_frames']} pictures over {v['duration_seconds']:.2f} s at a variable rate: "
            f"{lo:.1f} / {median:.1f} / {hi:.1f} ms apart (min / median / max; stream rate {v['fps']:.3f} fps); "
            "frame i is the i-th picture")


def format_report(report: dict) -> str:
    """The human summary of :func:`compvid.summary.summarize`."""
    v, g, m = report["video"], report["gop"], report["motion"]
    lines = [
        f"file        {v['source']}",
        f"container   {v['container']}",
        f"codec       {v['codec']} ({v['profile'] or 'no profile'}), {v['pix_fmt']}",
        f"size        {v['width']}x{v['height']}"
        + (f", displayed rotated {v['rotation_degrees']} deg" if v["rotation_degrees"] else ""),
        _frames_line(v),
        f"GOP         I {g['I']}  P {g['P']}  B {g['B']}"
        + (f"  other {g['other']}" if g["other"] else "")
        + f"  (first {report['frames_inspected']} frames); key frames {g['keyframes']},"
        f" interval mean {g['keyframe_interval_mean']:.1f} max {g['keyframe_interval_max']}",
        f"pattern     {g['pattern']}",
        f"MV source   {m['mv_source']}"
        + (" (decoder exports vectors)" if m["mv_source"] == "bitstream"
           else " (estimated from decoded frames; the decoder exports none)"),
        f"MV frames   {m['frames_with_vectors']} with vectors"
        + (f", {m['frames_filled_from_neighbours']} filled from the next reference (MPEG-4 B)"
           if m["frames_filled_from_neighbours"] else ""),
        f"vectors     {m['vectors_per_frame_mean']:.0f} per frame on average (max {m['vectors_per_frame_max']})",
        f"magnitude   mean {m['magnitude_mean_px']:.2f} px, max {m['magnitude_max_px']:.2f} px per frame step;"
        f" {100 * m['zero_share']:.1f}% of the field is still",
        f"references  {100 * m['reference_unsure_share']:.2f}% of moving vectors had an ambiguous reference distance",
    ]
    if "png" in report:
        lines.append(f"picture     {report['png']['path']} (frames {report['png']['frames']})")
    lines += [f"warning     {w}" for w in report["warnings"]]
    return "\n".join(lines)


main.add_command(shard)
main.add_command(verify)
main.add_command(synth)

if __name__ == "__main__":  # pragma: no cover
    main()
