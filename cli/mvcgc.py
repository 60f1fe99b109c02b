"""``mvcgc`` command line: parse, resolve preset + flags, call one library function, report.

``pretrain``'s flags are the fields of :mod:`mvcgc.options`' records (presets set the same keys).
The library (torch) is imported inside the commands, so ``mvcgc --help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shlex
import sys
import typing
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import click

from cli.progress import Bar

log = logging.getLogger("mvcgc.cli")

def _crop_px(value: Any, param_hint: str = "--size") -> int:
    """A clip side in pixels (``128``, ``"128"``, ``"128x128"``) through compvid's one parser; a
    non-square or non-positive size is a usage error."""
    from compvid.errors import InvalidArgumentError
    from compvid.request import parse_crop_px

    try:
        return parse_crop_px(value, where=param_hint)
    except InvalidArgumentError as e:
        raise click.BadParameter(str(e), param_hint=param_hint) from e


def _crop_px_option(ctx, param, value: Any) -> int | None:
    return None if value is None else _crop_px(value)


class _MvcgcGroup(click.Group):
    """The one place where a command's failure becomes the program's exit.

    - an expected error (:class:`mvcgc.errors.MvcgcError`, :class:`compvid.errors.CompvidError`, or
      an ``OSError`` such as a missing or unwritable file): one line ``mvcgc CMD: error: MESSAGE`` on
      stderr, exit status 1;
    - a run stopped by Ctrl-C or SIGTERM between steps (:class:`mvcgc.errors.TrainingInterrupted`):
      what was saved and the command that resumes it, exit status 130 or 143;
    - a bad flag (click's usage errors, before any work): click's usage message, exit status 2;
    - anything else is a bug and keeps its traceback.

    It also keeps the raw arguments in ``ctx.meta`` (``ARGV_KEY``): an interrupted run prints them
    back, with ``--resume``, as the command that continues it.
    """

    def make_context(self, info_name, args, parent=None, **extra):
        raw = list(args)  # parsing consumes the list
        ctx = super().make_context(info_name, args, parent=parent, **extra)
        ctx.meta[ARGV_KEY] = raw
        return ctx

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as e:
            if not _is_training_interrupted(e):
                raise  # a Ctrl-C that no command handled: click's "Aborted!"
            _exit_training_interrupted(ctx.invoked_subcommand, e)
        except Exception as e:  # noqa: BLE001 - only the expected kinds are turned into one line
            if isinstance(e, click.ClickException) or not _is_expected_error(e):
                raise
            raise CommandError(ctx.invoked_subcommand, e) from e


ARGV_KEY = "mvcgc.argv"


def _pretrain_records() -> tuple[type, ...]:
    from mvcgc.options import ClipSettings, PretrainOptions

    return (PretrainOptions, ClipSettings)


_PRETRAIN_RECORDS = _pretrain_records()


class CommandError(click.ClickException):
    """An expected error of ``mvcgc CMD``, shown as one line ``mvcgc CMD: error: MESSAGE`` (exit status 1)."""

    exit_code = 1

    def __init__(self, command: str | None, error: BaseException) -> None:
        super().__init__(one_line(error))
        self.command = command or "?"

    def show(self, file=None) -> None:
        click.echo(f"mvcgc {self.command}: error: {self.format_message()}", file=file, err=True)


def one_line(error: BaseException) -> str:
    """``error``'s message and notes (e.g. compvid's "video PATH") on one line, whitespace runs collapsed."""
    parts = [str(error) or type(error).__name__, *getattr(error, "__notes__", ())]
    return "; ".join(" ".join(part.split()) for part in parts)


def _is_expected_error(e: BaseException) -> bool:
    """mvcgc's and compvid's typed errors, and the OS's (a missing or unwritable file).

    The typed errors are looked up where already imported: an error of a module not yet
    imported cannot have been raised, and importing it here would import torch."""
    expected: list[type] = [OSError]
    for module, name in (("mvcgc.errors", "MvcgcError"), ("compvid.errors", "CompvidError")):
        if module in sys.modules:
            expected.append(getattr(sys.modules[module], name))
    return isinstance(e, tuple(expected))


def _is_training_interrupted(e: BaseException) -> bool:
    errors = sys.modules.get("mvcgc.errors")
    return errors is not None and isinstance(e, errors.TrainingInterrupted)


def _exit_training_interrupted(command: str | None, e) -> None:
    """Report a run that stopped between steps (on rank 0 only under torchrun) and exit 130 or 143."""
    from mvcgc import distributed

    if distributed.rank() == 0:
        _report_training_interrupted(command or "?", e)
    sys.exit(e.exit_code)


@click.group(cls=_MvcgcGroup)
@click.version_option(package_name="compvid-mvcgc", prog_name="mvcgc")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """Compressed video contrastive learning (MVCGC): pretraining and evaluation."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")


class _SizeType(click.ParamType):
    """``--size 128`` (or ``128x128``): the side of the square clips, parsed by compvid's one parser."""

    name = "N"

    def convert(self, value, param, ctx):
        from compvid.errors import InvalidArgumentError
        from compvid.request import parse_crop_px

        try:
            return parse_crop_px(value, where="--size")
        except InvalidArgumentError as e:
            self.fail(str(e), param, ctx)


def _record_flags(*records: type):
    """One click option per field of the options ``records`` (``--field-name``, the field's help),
    each defaulting to None: unset, so the preset's value or the record's default applies."""
    from mvcgc.options import field_types, flag_of, literal_choices

    def decorate(f):
        for record in reversed(records):
            types = field_types(record)
            for fld in reversed(dataclasses.fields(record)):
                tp = types[fld.name]
                choices = literal_choices(tp)
                kind = (click.Choice(choices) if choices else _SizeType() if fld.name == "size"
                        else next((t for t in (bool, int, float) if t is tp or t in typing.get_args(tp)), str))
                meta = fld.metadata
                if kind in (int, float) and (meta.get("low") is not None or meta.get("high") is not None):
                    kind = (click.IntRange if kind is int else click.FloatRange)(meta.get("low"), meta.get("high"))
                default = None if fld.default is dataclasses.MISSING else fld.default
                help_text = meta["help"] + (f"  [default: {default}]" if meta.get("show_default") else "")
                if kind is bool:  # a switch that turns the default off, e.g. --no-amp
                    f = click.option(flag_of(fld), fld.name, flag_value=not fld.default, default=None,
                                     help=help_text)(f)
                else:
                    f = click.option(flag_of(fld), fld.name, type=kind, default=None, help=help_text,
                                     required=fld.default is dataclasses.MISSING)(f)
        return f

    return decorate


@main.command()
@click.option("--data", "data_source", required=True,
              help="'synthetic' (random tensors, smoke runs only) or WebDataset shard URLs from compvid.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run directory (config.json, metrics.jsonl, last.pt; loss.png at the end of a run that "
                   "took a step).")
@click.option("--preset", default=None, help="Preset name (ucf101, k400, tiny-cpu) or a .toml path; flags override it.")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint of this run to continue from (e.g. OUT/last.pt).")
@click.option("--overwrite", is_flag=True,
              help="Start again in an --out folder that already holds a run (its metrics and checkpoint are replaced).")
@click.option("--synthetic-videos", type=int, default=64, show_default=True, help="Videos in --data synthetic.")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="DataLoader worker processes decoding shards (each its own decoders).")
@_record_flags(*_PRETRAIN_RECORDS)
def pretrain(data_source, out_dir, preset, resume, overwrite, synthetic_videos, workers, **flags) -> None:
    """Pretrain encoders: stage 1 (--stage init --view rgb|mv) or stage 2 (--stage cross).

    --stage supervised --view rgb|mv trains the same encoder with labels on the same clips: the
    supervised ceiling to report beside the self-supervised results.

    Ctrl-C (SIGINT) or SIGTERM stops after the current step, writes OUT/last.pt and prints the
    command that resumes exactly there (exit status 130 or 143); a second Ctrl-C stops at once."""
    from mvcgc import distributed
    from mvcgc.data import SyntheticClips, shard_stream
    from mvcgc.errors import InvalidArgumentError, TrainingInterrupted
    from mvcgc.options import PresetError, resolve
    from mvcgc.stages import make_stage
    from mvcgc.run_files import CHECKPOINT_NAME
    from mvcgc.train import pretrain as run_pretrain

    stage = flags["stage"]
    if stage == "supervised" and flags["num_classes"] is None:
        flags["num_classes"] = _classes_from_index(data_source)
    try:
        options, clip = resolve(stage, preset, flags)
    except PresetError as e:
        raise click.BadParameter(str(e), param_hint="--preset") from e
    except InvalidArgumentError as e:  # a flag or preset value out of range or not fitting the others
        raise click.UsageError(str(e)) from e
    views = make_stage(options).views
    from compvid.errors import InvalidArgumentError as ClipError
    from compvid.request import ClipRequest

    try:
        request = ClipRequest(num_frames=clip.num_frames, crop_px=clip.size, views=views)
    except ClipError as e:
        raise click.UsageError(str(e)) from e
    try:
        distributed.init_from_env()
        is_main = distributed.rank() == 0
        if not is_main:
            logging.getLogger().setLevel(logging.WARNING)
        if data_source == "synthetic":
            log.warning("--data synthetic: training on RANDOM TENSORS (a smoke run; nothing meaningful is learnt)")
            data = SyntheticClips(num_videos=synthetic_videos, batch_size=clip.batch_size, num_frames=request.num_frames,
                                  size=(request.crop_px, request.crop_px), views=views, seed=options.seed,
                                  rank=distributed.rank(), world_size=distributed.world_size())
        else:
            data = shard_stream(data_source.split(), batch_size=clip.batch_size, request=request, num_workers=workers,
                                seed=options.seed, flip_p=clip.flip_p, min_crop_area=clip.min_crop_area)
        data_info = {"source": data_source, "batch_size": clip.batch_size, "clip_request": request.to_dict(),
                     "workers": workers, "flip_p": clip.flip_p, "min_crop_area": clip.min_crop_area}
        if data_source == "synthetic":
            data_info["synthetic_videos"] = synthetic_videos
        with _ProgressBar(enabled=is_main, stage=stage) as bar:
            result = run_pretrain(data, options, out_dir=out_dir, resume=resume, overwrite=overwrite, preset=preset,
                                  data_info=data_info, on_progress=bar.step)
    except TrainingInterrupted:
        raise  # the group says what was saved and how to resume
    except KeyboardInterrupt:  # before or after the training loop: nothing of this call's steps to lose
        ckpt = out_dir / CHECKPOINT_NAME
        if distributed.rank() == 0:
            click.echo("mvcgc pretrain: interrupted outside the training steps; "
                       + (f"resume from {ckpt} with: {_resume_command(ckpt)}" if ckpt.is_file()
                          else "no checkpoint was written"), err=True)
        sys.exit(130)
    if is_main:
        click.echo(f"stage {stage}: {result.step} steps, {result.epoch} epochs; checkpoint {result.checkpoint}; "
                   f"run directory {result.run_dir}")


def _report_training_interrupted(command: str, e) -> None:
    """Two lines on stderr: what the signal did, then the command that continues the run."""
    from mvcgc.errors import signal_name

    name = signal_name(e.signal_number)
    if e.saved_now:
        click.echo(f"mvcgc {command}: stopped by {name} after step {e.step}; saved {e.checkpoint}", err=True)
    elif e.checkpoint is not None:
        click.echo(f"mvcgc {command}: stopped at once by a second {name} after step {e.step}; the steps after "
                   f"{e.checkpoint_step} are lost, {e.checkpoint} holds step {e.checkpoint_step}", err=True)
    else:
        click.echo(f"mvcgc {command}: stopped at once by a second {name}; no checkpoint was written, "
                   "start the run again", err=True)
        return
    from mvcgc import distributed

    launcher = " (under torchrun with the same options)" if distributed.world_size() > 1 else ""
    click.echo(f"resume with{launcher}: {_resume_command(e.checkpoint)}", err=True)


def _resume_command(checkpoint: Path) -> str:
    """This invocation's command line with ``--resume CHECKPOINT`` (and without --overwrite), shell-quoted."""
    root = click.get_current_context().find_root()
    prog = root.info_name or "mvcgc"  # click's name for the program: "mvcgc" or "python -m cli.mvcgc"
    if prog.startswith("python -m "):  # the interpreter that ran this one, not whichever python is on PATH
        prog = f"{shlex.quote(sys.executable)} {prog[len('python '):]}"
    return f"{prog} {shlex.join(with_resume(root.meta.get(ARGV_KEY, sys.argv[1:]), checkpoint))}"


def with_resume(args: Sequence[str], checkpoint: str | os.PathLike) -> list[str]:
    """``args`` with any ``--resume X`` and ``--overwrite`` dropped and ``--resume checkpoint`` appended."""
    out: list[str] = []
    skip_value = False
    for arg in args:
        if skip_value:
            skip_value = False
        elif arg == "--resume":
            skip_value = True
        elif not (arg.startswith("--resume=") or arg == "--overwrite"):
            out.append(arg)
    return [*out, "--resume", os.fspath(checkpoint)]


def _classes_from_index(data_source: str) -> int:
    """The number of classes in the ``index.json`` that ``compvid shard`` wrote beside the shards."""
    if data_source == "synthetic":
        return 10  # SyntheticClips draws labels 0..9
    from compvid.errors import CompvidError
    from compvid.shards import read_index

    folder = Path(data_source.split()[0]).parent
    try:
        classes = read_index(folder).get("classes") or []
    except CompvidError:
        classes = []
    if len(classes) < 2:
        raise click.UsageError(f"--stage supervised: no class list in {folder}/index.json; pass --num-classes N")
    return len(classes)


class _ProgressBar(Bar):
    """The trainer's on_progress callback on one bar of steps (rank 0 only), kept when the run ends."""

    def __init__(self, *, enabled: bool, stage: str) -> None:
        super().__init__(unit="step", leave=True, enabled=enabled)
        self.stage = stage

    def step(self, p) -> None:
        if self.bar is None:
            self.start(f"pretrain {self.stage}", p.total_steps, initial=p.step - 1)
        self.set_total(p.total_steps)  # a stream without a length: known once its first epoch ends
        queue = "" if self.stage == "supervised" else f", queue={p.queue_fill:.0%}"  # no queue with labels
        self.update(p.step, postfix=f"epoch={p.epoch}, loss={p.loss:.4f}, lr={p.lr:.1e}{queue}, "
                                    f"samples_s={p.samples_per_s:.1f}")


# --------------------------------------------------------------------------- evaluation

_CACHE_HOME = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mvcgc"
_DEFAULT_CACHE = _CACHE_HOME / "features"
_FINETUNE_STATES = _CACHE_HOME / "finetune"


# Evaluation's clip settings; omitted, each is the checkpoint's (0 is refused, never "from the checkpoint").
_EVAL_NUM_FRAMES = click.option("--num-frames", type=click.IntRange(min=1), default=None,
                                help="Frames per clip or window [default: the checkpoint's].")
_EVAL_CROP_PX = click.option("--size", "crop_px", default=None, callback=_crop_px_option,
                             help="Crop side in pixels, e.g. 112 [default: the checkpoint's clip side].")


def _eval_options(f):
    """Options shared by retrieve and linear: checkpoints, view, data, protocol, cache."""
    options = [
        click.option("--ckpt", "checkpoints", multiple=True, required=True,
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="mvcgc checkpoint; repeat to take RGB and MV from two files (--view both)."),
        click.option("--view", type=click.Choice(["rgb", "mv", "both"]), default="rgb", show_default=True),
        click.option("--train", "train", required=True,
                     help="Train videos: a folder of <class>/<video> files, or WebDataset shard URLs."),
        click.option("--test", "test", required=True, help="Test videos, as --train."),
        _EVAL_NUM_FRAMES,
        _EVAL_CROP_PX,
        click.option("--stride", type=int, default=None, help="Frames between window starts [default: half a clip]."),
        click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=_DEFAULT_CACHE,
                     show_default=True, help="Feature cache (keyed by checkpoint sha256, data files and options)."),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the feature cache."),
        click.option("--workers", "num_workers", type=click.IntRange(min=0), default=0, show_default=True,
                     help="DataLoader workers."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
        click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Also write the numbers, with the checkpoint, data and choices behind them."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _report_failed(failed: list[dict], split: str) -> None:
    if failed:
        click.echo(f"left out {len(failed)} {split} video(s) that failed to decode (excluded from every figure):")
        for f in failed:
            click.echo(f"  {f['key']}: {f['reason']}")


def _write_json(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    click.echo(f"wrote {path}")


class _FeatureBar(Bar):
    """One bar for the whole feature extraction of a command: every video of every decoding pass of
    both splits (``eval_features``'s on_progress), then the linear probe's epochs of every view."""

    def __init__(self) -> None:
        super().__init__(unit="video")

    def features(self, split: str, p) -> None:
        desc = f"features {split} {'+'.join(p.views)}"
        if self.bar is None:
            self.start(desc, p.total)
        self.update(p.done, desc=desc, postfix=f"{p.windows} windows")

    def probe_epochs(self, epochs: int, views: int):
        """on_epoch(view, EpochReport) of ``run_linear``: ``views`` probes of ``epochs`` epochs each."""
        probes: list[str] = []

        def on_epoch(view: str, r) -> None:
            if view not in probes:
                probes.append(view)
                if len(probes) == 1:
                    self.start(f"linear probe {view}", epochs * views, unit="epoch")
            self.update((len(probes) - 1) * epochs + r.epoch, desc=f"linear probe {view}",
                        postfix=f"loss={r.loss:.4f}, train_acc={r.train_accuracy:.3f}")

        return on_epoch


@contextmanager
def _stops_cleanly(command: str, *, kept: str) -> Iterator[None]:
    """Ctrl-C or SIGTERM: one line on stderr saying what ``kept`` survives, exit status 130 or 143."""
    from mvcgc.errors import SignalInterrupt, TrainingInterrupted, signal_name
    from mvcgc.interrupt import raising_on_stop_signals

    try:
        with raising_on_stop_signals():
            yield
    except TrainingInterrupted:  # a run that saved itself says so (and how to resume) on its own
        raise
    except KeyboardInterrupt as e:  # SignalInterrupt, or a Ctrl-C outside the main thread's handlers
        number = e.signal_number if isinstance(e, SignalInterrupt) else 2
        click.echo(f"\nmvcgc {command}: stopped by {signal_name(number)}; {kept}", err=True)
        sys.exit(128 + number)


def _features_kept(cache_dir: Path, no_cache: bool) -> str:
    if no_cache:
        return "nothing was kept (--no-cache): the same command starts again from the videos"
    return (f"the features finished so far (each split and view once complete) are kept in {cache_dir}, "
            "so the same command starts from them")


@main.command()
@_eval_options
@click.option("--crops", type=click.Choice(["center", "three", "ten"]), default="center", show_default=True,
              help="Crops per window averaged into the video feature.")
@click.option("--ks", default="1,5,10,20,50", show_default=True, help="Comma-separated k of R@k.")
def retrieve(checkpoints, view, train, test, num_frames, crop_px, stride, cache_dir, no_cache, num_workers, device,
             json_out, crops, ks) -> None:
    """Nearest-neighbour retrieval: test videos query train videos; prints R@k."""
    from mvcgc.evaluate import run_retrieval

    try:
        k_list = tuple(int(k) for k in ks.split(","))
    except ValueError:
        raise click.BadParameter(f"--ks must be comma-separated integers, got {ks!r}", param_hint="--ks")
    with _stops_cleanly("retrieve", kept=_features_kept(cache_dir, no_cache)), _FeatureBar() as bar:
        r = run_retrieval(train, test, checkpoints=checkpoints, view=view, ks=k_list, crops=crops,
                          num_frames=num_frames, crop_px=crop_px, stride=stride, device=device,
                          num_workers=num_workers, cache_dir=None if no_cache else cache_dir,
                          on_progress=bar.features)
    _report_failed(r.failed_train, "train")
    _report_failed(r.failed_test, "test")
    rows = dict(r.per_view)
    if view == "both":
        rows["both (sum)"] = r.recall
    click.echo(f"retrieval: {r.num_queries} test queries, {r.num_gallery} train videos; "
               f"checkpoint(s) {', '.join(sorted(set(map(str, r.meta['checkpoints'].values()))))}")
    click.echo("view        " + "".join(f"{'R@' + str(k):>8}" for k in k_list))
    for name, rec in rows.items():
        click.echo(f"{name:<12}" + "".join(f"{100 * rec[k]:8.1f}" for k in k_list))
    if json_out is not None:
        from mvcgc.results import RetrievalFile

        _write_json(json_out, RetrievalFile.from_result(r, train=train, test=test).to_dict())


def _print_accuracy(results: dict) -> None:
    click.echo("view        top-1   top-5  videos")
    for name, res in results.items():
        acc = res.accuracy
        click.echo(f"{name:<12}{100 * acc[1]:6.1f}  {100 * acc[5]:6.1f}  {len(res.predictions.keys):6d}")


@main.command()
@_eval_options
@click.option("--epochs", type=int, default=100, show_default=True)
@click.option("--lr", type=float, default=0.1, show_default=True)
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--no-bn", is_flag=True, help="No BatchNorm before the linear layer.")
@click.option("--train-crops", type=click.Choice(["center", "three", "ten"]), default="center", show_default=True,
              help="Crops per train window (each one a training sample).")
@click.option("--test-crops", type=click.Choice(["center", "three", "ten"]), default="ten", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--predictions", "pred_prefix", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save per-video probabilities to PREFIX.<view>.json (fuse them with `mvcgc fuse`).")
def linear(checkpoints, view, train, test, num_frames, crop_px, stride, cache_dir, no_cache, num_workers, device,
           json_out, epochs, lr, weight_decay, batch_size, no_bn, train_crops, test_crops, seed, pred_prefix) -> None:
    """Linear probe on the frozen encoder; tested with crops x sliding windows; prints top-1/top-5."""
    from mvcgc.evaluate import run_linear

    with _stops_cleanly("linear", kept=_features_kept(cache_dir, no_cache) + " (the probe trains "
                        "from scratch in each run)"), _FeatureBar() as bar:
        results = run_linear(train, test, checkpoints=checkpoints, view=view, epochs=epochs, lr=lr,
                             weight_decay=weight_decay, batchnorm=not no_bn, batch_size=batch_size,
                             train_crops=train_crops, test_crops=test_crops, num_frames=num_frames, crop_px=crop_px,
                             stride=stride, device=device, num_workers=num_workers,
                             cache_dir=None if no_cache else cache_dir, seed=seed, on_progress=bar.features,
                             on_epoch=bar.probe_epochs(epochs, 2 if view == "both" else 1))
    first = next(iter(results.values()))
    _report_failed(first.failed, "test")
    click.echo(f"linear probe, {epochs} epochs (final epoch), test: {test_crops} crops x sliding windows")
    _print_accuracy(results)
    if pred_prefix is not None:
        for name, res in results.items():
            click.echo(f"wrote {res.predictions.save(f'{pred_prefix}.{name}.json')}")
    if json_out is not None:
        from mvcgc.results import LinearFile, LinearView

        _write_json(json_out, LinearFile({name: LinearView.from_result(res, train=train, test=test)
                                          for name, res in results.items()}).to_dict())


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Report folder [default: RUN_DIR/report].")
@click.option("--title", default="mvcgc results", show_default=True)
def report(run_dir, out_dir, title) -> None:
    """Results table (every row with its 95 % interval), paired stage-to-stage changes, loss curves and
    a motion-vector picture from RUN_DIR/results and RUN_DIR/runs, as markdown + PNGs."""
    from mvcgc.report import lift_table, lifts, load_results, results_table, write_report

    table, chance = load_results(run_dir / "results")
    md = write_report(run_dir, out_dir=out_dir, title=title)
    click.echo(results_table(table, chance))
    click.echo("")
    click.echo(lift_table(lifts(table)))
    click.echo(f"wrote {md}")


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the table to this markdown file.")
@click.option("--recipe", default=None,
              help="Compare the lift study's recipe RUN/study/RECIPE (examples/lift_study.sh RUN) with each "
                   "run's own cross stage instead, e.g. --recipe union.")
def seeds(run_dirs, out_file, recipe) -> None:
    """Across training seeds: one demo run folder per seed (e.g. examples/seeds.sh) -> per seed the
    paired changes of RGB and MV from stage 1 and from random init to stage 2, with 95 % intervals,
    and their mean. With --recipe: per seed, that lift-study recipe's cross stage minus the run's."""
    from mvcgc.report import recipe_table, seeds_table

    md = recipe_table(list(run_dirs), recipe) if recipe else seeds_table(list(run_dirs))
    click.echo(md)
    if out_file is not None:
        out_file.write_text(md + "\n")
        click.echo(f"wrote {out_file}")


@main.command()
@click.option("--ckpt", "checkpoint", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--view", type=click.Choice(["rgb", "mv"]), required=True)
@click.option("--train", required=True, help="Folder of <class>/<video> train files.")
@click.option("--test", required=True, help="Folder of <class>/<video> test files.")
@click.option("--epochs", type=int, default=100, show_default=True)
@click.option("--lr", type=float, default=0.1, show_default=True)
@click.option("--weight-decay", type=float, default=1e-3, show_default=True)
@click.option("--dropout", type=float, default=0.5, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@_EVAL_NUM_FRAMES
@_EVAL_CROP_PX
@click.option("--test-crops", type=click.Choice(["center", "three", "ten"]), default="ten", show_default=True)
@click.option("--workers", "num_workers", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--predictions", "pred_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save per-video probabilities (JSON) for `mvcgc fuse`.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=_FINETUNE_STATES,
              show_default=True, help="Where Ctrl-C or SIGTERM saves the run (one file per run) to resume from.")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Saved state of this run to continue from (an interrupted run prints the command).")
def finetune(checkpoint, view, train, test, epochs, lr, weight_decay, dropout, batch_size, num_frames, crop_px,
             test_crops, num_workers, device, seed, pred_out, state_dir, resume) -> None:
    """Fine-tune the whole encoder with a classifier; tested with crops x sliding windows.

    Ctrl-C (SIGINT) or SIGTERM stops after the current step (or during the test pass), saves the run
    in --state-dir and prints the command that resumes exactly there (exit status 130 or 143); a
    second Ctrl-C stops at once."""
    from mvcgc.classify import finetune as run_finetune

    bar = _FinetuneBar(view)
    with _stops_cleanly("finetune", kept="no state was saved: run the same command again"), bar:
        res = run_finetune(train, test, checkpoint=checkpoint, view=view, epochs=epochs, lr=lr,
                           weight_decay=weight_decay, dropout=dropout, batch_size=batch_size,
                           num_frames=num_frames, crop_px=crop_px, crops=test_crops, device=device,
                           num_workers=num_workers, seed=seed, state_dir=state_dir, resume=resume,
                           on_step=bar.step, on_progress=bar.test_videos,
                           on_epoch=lambda r: log.info("epoch %d/%d loss %.4f lr %.1e train acc %.3f", r.epoch,
                                                       r.epochs, r.loss, r.lr, r.train_accuracy))
    _report_failed(res.failed, "test")
    click.echo(f"fine-tune, {epochs} epochs (final epoch), test: {test_crops} crops x sliding windows")
    _print_accuracy({view: res})
    if pred_out is not None:
        click.echo(f"wrote {res.predictions.save(pred_out)}")


class _FinetuneBar(Bar):
    """Fine-tuning on one bar: the training steps of all epochs, then the test videos."""

    def __init__(self, view: str) -> None:
        super().__init__(unit="step")
        self.view = view
        self.phase = ""

    def step(self, r) -> None:
        if self.phase != "train":
            self.phase = "train"
            self.start(f"finetune {self.view}", r.total_steps, initial=r.step - 1, unit="step")
        self.update(r.step, postfix=f"epoch={r.epoch}, loss={r.loss:.4f}")

    def test_videos(self, p) -> None:
        if self.phase != "test":
            self.phase = "test"
            self.start(f"test {self.view}", p.total, unit="video")
        self.update(p.done, postfix=f"{p.windows} windows")


@main.command()
@click.argument("prediction_files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save the fused probabilities here.")
def fuse(prediction_files, out) -> None:
    """Two-view classification: average the per-video probabilities of saved prediction files."""
    from mvcgc.testing_protocol import Predictions, fuse_predictions

    if len(prediction_files) < 2:
        raise click.UsageError("give at least two prediction files (e.g. the RGB and the MV run)")
    fused = fuse_predictions(*(Predictions.load(p) for p in prediction_files))
    acc = fused.accuracy()
    left_out = fused.meta.get("left_out", 0)
    click.echo(f"fused {len(prediction_files)} prediction files over {len(fused.keys)} videos"
               + (f" ({left_out} left out: not scored in every file)" if left_out else ""))
    click.echo(f"top-1 {100 * acc[1]:.1f}  top-5 {100 * acc[5]:.1f}")
    if out is not None:
        click.echo(f"wrote {fused.save(out)}")


@main.command()
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--arch", default="s3d", show_default=True, help="Encoder timed for inference (random weights).")
@click.option("--num-frames", type=int, default=16, show_default=True)
@click.option("--size", type=_SizeType(), default=112, show_default=True,
              help="Side of the square crops in pixels, e.g. 112 (or 112x112).")
@click.option("--crops", type=click.Choice(["center", "three", "ten"]), default="ten", show_default=True)
@click.option("--flow", type=click.Choice(["auto", "tvl1", "farneback"]), default="auto", show_default=True,
              help="Optical flow of the baseline (auto: TV-L1 if OpenCV contrib has it, else Farneback).")
@click.option("--max-flow-frames", type=int, default=32, show_default=True,
              help="Frames per video actually run through the flow route; time and bytes are scaled to the video.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def efficiency(data, arch, num_frames, size, crops, flow, max_flow_frames, json_out) -> None:
    """Per-video preprocessing time, inference time and storage: ours against the optical-flow route."""
    from mvcgc.efficiency import measure_efficiency

    with _stops_cleanly("efficiency", kept="nothing is kept: the same command measures again"), \
            _EfficiencyBar() as bar:
        rep = measure_efficiency(data, arch=arch, num_frames=num_frames, size=size, crops=crops, flow=flow,
                                 max_flow_frames=max_flow_frames, on_progress=bar.progress)
    _report_failed(rep.failed, "")
    method = rep.options["flow"]
    click.echo(f"{len(rep.videos)} videos; ours: RGB+MV decoded on the fly, {crops} crops x windows of {num_frames} "
               f"frames at {size}px, {arch} on CPU; flow route: frames -> JPEG + {method} optical flow "
               f"(first {max_flow_frames} frames of each video, scaled to the whole video)")
    click.echo(f"{'video':<44}{'frames':>7}{'ours pre s':>11}{'ours inf s':>11}{'ours MB':>9}"
               f"{'flow pre s':>11}{'flow MB':>9}")
    for v in rep.videos:
        click.echo(f"{Path(v.path).name[:43]:<44}{v.num_frames:7d}{v.ours_preprocess_s:11.2f}{v.ours_inference_s:11.2f}"
                   f"{v.ours_bytes / 1e6:9.2f}{v.flow_preprocess_s:11.2f}{v.flow_bytes / 1e6:9.2f}")
    click.echo(f"{'mean per video':<44}{'':7}{rep.mean('ours_preprocess_s'):11.2f}{rep.mean('ours_inference_s'):11.2f}"
               f"{rep.mean('ours_bytes') / 1e6:9.2f}{rep.mean('flow_preprocess_s'):11.2f}"
               f"{rep.mean('flow_bytes') / 1e6:9.2f}")
    r = rep.ratios()
    click.echo(f"flow route / ours: preprocessing x{r['preprocess']:.1f}, storage x{r['storage']:.1f}")
    if json_out is not None:
        _write_json(json_out, rep.to_dict())


class _EfficiencyBar(Bar):
    """``measure_efficiency``'s progress on one bar of videos; the postfix follows the current one."""

    _UNITS = {"ours": "windows", "flow": "flow frames"}

    def __init__(self) -> None:
        super().__init__(unit="video")

    def progress(self, p) -> None:
        if self.bar is None:
            self.start("efficiency", p.total)
        postfix = "" if p.phase in ("done", "failed") else (
            f"{Path(p.path).name[:40]}: {p.phase}" + (f" {p.phase_done}/{p.phase_total} {self._UNITS[p.phase]}"
                                                      if p.phase in self._UNITS else ""))
        self.update(p.done, postfix=postfix)


if __name__ == "__main__":  # pragma: no cover - torchrun -m cli.mvcgc
    main()
