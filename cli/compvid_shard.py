"""``compvid shard`` and ``compvid verify``: arguments → compvid.shards → printed summary.

Both are plain click commands; ``cli/compvid.py`` adds them to the ``compvid`` group.
compvid.shards and tqdm (through cli.progress) are imported inside the commands: ``compvid --help`` stays fast.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from cli.progress import Bar
from compvid.errors import CompvidError
from compvid.layouts import LAYOUTS

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "kib": 2**10, "mib": 2**20, "gib": 2**30}  # fmt: skip


def parse_size(text: str) -> int:
    """'512MB', '1.5G', '300MiB', '1000000' → bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise click.BadParameter(f"{text!r}: expected a size such as 512MB, 1GB, 300MiB or a byte count")
    value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value < 1:
        raise click.BadParameter(f"{text!r}: must be at least 1 byte")
    return value


def _size_option(ctx, param, value):
    return parse_size(value) if isinstance(value, str) else value


def _fail(error: CompvidError) -> None:
    click.echo(f"error: {error}", err=True)
    raise SystemExit(1)


class _ShardBar(Bar):
    """The library's ``on_progress(stage, done, total)`` on one bar: probing then writing files (shard),
    or checking shards then source files (verify)."""

    _STAGES = {"probe": ("shard 1/2: probe", "file"), "write": ("shard 2/2: write", "file"),
               "verify": ("verify shards", "shard"), "source": ("verify sources", "file")}

    def __init__(self) -> None:
        super().__init__(unit="file")
        self.stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.stage = stage
            desc, unit = self._STAGES.get(stage, (stage, "file"))
            self.start(desc, total, unit=unit)
        self.update(done)


@click.command()
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: SRC-shards beside SRC).")
@click.option("--layout", type=click.Choice(LAYOUTS), default="auto", show_default=True,
              help="Dataset layout (what each needs: see above); auto detects it where unambiguous.")
@click.option("--split", type=click.IntRange(min=1), default=None,
              help="Fold of UCF101/HMDB51 (default 1).")
@click.option("--list", "list_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV 'path,label[,split]' naming the videos (generic layout).")
@click.option("--test-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Split a plain SRC/<class>/<video> tree into train and test shards, this share in test: "
                   "whole groups where names carry one (v_X_g08_c01.avi: group g08; the first groups), "
                   "else by a stable hash of each path.")
@click.option("--max-size", default="512MiB", show_default=True, callback=_size_option,
              help="Largest shard size (a single larger video gets its own shard).")
@click.option("--max-count", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Most videos per shard.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the shuffle that mixes classes.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Parallel probes (default: CPU count, max 8).")
@click.option("--overwrite", is_flag=True, help="Replace shards of a different earlier run in OUT.")
def shard(src, out, layout, split, list_file, test_fraction, max_size, max_count, seed, workers, overwrite):
    """Write the videos of SRC as WebDataset shards of their original bytes.

    What each layout needs (annotation files in SRC or one folder below it):

    \b
    ucf101    class folders and classInd.txt ('1 ApplyEyeMakeup': index from 1,
              class), trainlist01.txt ('ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1')
              and testlist01.txt ('ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi');
              --split N reads trainlist0N.txt / testlist0N.txt
    hmdb51    class folders and one <class>_test_splitN.txt per class and fold
              ('<video> 1|2|0': 1 train, 2 test, 0 unused)
    kinetics  CSVs with a header naming youtube_id,time_start,time_end (usually
              label,youtube_id,time_start,time_end,split) and videos named
              <youtube_id>_<start:06d>_<end:06d>.<ext> anywhere below SRC
    generic   SRC/<class>/<video>: one split 'all', or train/test with
              --test-fraction; SRC/<split>/<class>/<video> (split folders such as
              train, val, test); or a CSV 'path,label[,split]' (--list, or the one
              such CSV in SRC). Labels: the sorted class names.
    """
    from compvid.shards import default_output_dir, write_shards

    out = out if out is not None else default_output_dir(src)
    click.echo(f"shards: {out}")
    try:
        with _ShardBar() as bar:
            result = write_shards(
                src, out, layout=layout, split=split, list_file=list_file, test_fraction=test_fraction,
                max_size=max_size, max_count=max_count, seed=seed, workers=workers, overwrite=overwrite,
                on_progress=bar,
            )  # fmt: skip
    except CompvidError as e:
        _fail(e)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"{result.layout} layout: {result.inputs} inputs = {result.written} written + {result.skipped} skipped; "
        f"{len(result.shards)} shards ({result.reused_shards} kept from an earlier run)"
    )
    if result.split_rule:
        click.echo(f"split: {result.split_rule}")
    for reason, count in result.skipped_reasons.items():
        click.echo(f"  skipped {count:>6} {reason}")
    click.echo(
        f"storage ratio {result.storage_ratio:.4f} (shard bytes {result.shard_bytes} / "
        f"source bytes {result.input_bytes})"
    )
    click.echo(f"shards: {result.out}  (skipped inputs listed in {result.out / 'skipped.jsonl'})")


@click.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--source", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="The source folder: also check every member against its source file.")
def verify(out, source):
    """Check the shards in OUT: checksums, counts, and inputs = written + skipped."""
    from compvid.shards import verify_shards

    try:
        with _ShardBar() as bar:
            report = verify_shards(out, source=source, on_progress=bar)
    except CompvidError as e:
        _fail(e)
    for problem in report.problems:
        click.echo(f"problem: {problem}")
    click.echo(
        f"checked {report.shards_checked} shards, {report.samples_checked} samples, "
        f"{report.skipped} skipped inputs of {report.inputs}: "
        + ("OK" if report.ok else f"{len(report.problems)} problems")
    )
    if not report.ok:
        raise SystemExit(1)
