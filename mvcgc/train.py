"""The one pretraining loop, for either stage (:mod:`mvcgc.stages`).

``pretrain(data, stage="init", view="rgb", ...)`` or ``pretrain(data, stage="cross", init_rgb=...,
init_mv=...)``. Single CPU process, one GPU, or DistributedDataParallel under ``torchrun`` (call
:func:`mvcgc.distributed.init_from_env` first); only rank 0 writes. The run directory receives
``config.json`` (resolved options + package versions), ``metrics.jsonl`` (one line per step),
``last.pt`` (atomic, every ``checkpoint_every`` steps and at each epoch end) and, when the run
ends having taken at least one step, ``loss.png``.

SIGINT or SIGTERM stops the run after the current step: it writes ``last.pt``, from which ``resume``
continues exactly as if uninterrupted, and raises :class:`~mvcgc.errors.TrainingInterrupted`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from torch.nn.parallel import DistributedDataParallel

from mvcgc import distributed as dist_utils
from mvcgc.checkpoint import FORMAT, FORMAT_VERSION, check_compatible, load_checkpoint, module_state, save_checkpoint
from mvcgc.errors import (CheckpointError, DataError, EmptyDataError, InvalidArgumentError, MissingViewError,
                          NonFiniteLossError, RunExistsError, SignalInterrupt, TrainingInterrupted)
from mvcgc.interrupt import StopRequests
from mvcgc.loop_state import LoopState
from mvcgc.models import create_encoder
from mvcgc.moco import MoCo
from mvcgc.options import PretrainOptions
from mvcgc.plots import save_loss_curve
from mvcgc.provenance import package_versions
from mvcgc.queue import check_queue_size
from mvcgc.run_files import (CHECKPOINT_NAME, CONFIG_NAME, LOSS_PLOT_NAME, METRICS_NAME, EpochEndRecord, RunConfig,
                             StepRecord)
from mvcgc.stages import IN_CHANNELS, Stage, make_stage

log = logging.getLogger(__name__)
_UNITS = {"rgb": "normalised RGB", "mv": "pixels per frame step (x right +, y down +)"}


TrainProgress = StepRecord  # what on_progress receives after every step (the CLI draws it as a bar)


@dataclass
class PretrainResult:
    run_dir: Path
    checkpoint: Path | None
    step: int
    epoch: int
    losses: list[float] = field(default_factory=list)  # this call's per-step losses


def pretrain(
    data: Iterable[Mapping[str, Any]],
    options: PretrainOptions | None = None,
    *,
    out_dir: str | os.PathLike,
    resume: str | os.PathLike | None = None,
    overwrite: bool = False,
    preset: str | None = None,
    data_info: Mapping[str, Any] | None = None,
    on_progress: Callable[[TrainProgress], None] | None = None,
    **option_fields: Any,
) -> PretrainResult:
    """Pretrain with MoCo for ``epochs`` passes over ``data`` and/or ``steps`` optimiser steps.

    ``options``: a :class:`~mvcgc.options.PretrainOptions`; its fields may also be given (or
    overridden) as keywords, e.g. ``pretrain(data, stage="init", view="rgb", steps=100, out_dir=...)``.
    ``data``: re-iterable batches (see :mod:`mvcgc.data`). Stage ``init`` trains ``view`` alone with
    InfoNCE; stage ``cross`` trains RGB and MV with the cross-guidance loss, starting from stage-1
    checkpoints ``init_rgb`` / ``init_mv`` (random weights where absent). Adam(``lr``,
    ``weight_decay``); the LR drops by 10 when the epoch-mean loss has not improved for
    ``plateau_patience`` epochs, at most ``lr_drops`` times. ``amp``: bf16 autocast, CUDA only.
    ``resume``: a checkpoint of the same stage, views, architecture and queue size; a checkpoint
    written mid-epoch (every ``checkpoint_every`` steps, 0 = epoch ends only, or on SIGINT/SIGTERM)
    resumes exactly there: the next batch is the one an uninterrupted run would train on. A source
    with ``iter_from`` (:class:`~mvcgc.data.SyntheticClips`, compvid's loaders over map-style
    datasets) starts the epoch at that batch without building the ones before it; any other
    (a shard stream, a plain DataLoader) draws the epoch's batches before it again, unused. An ``out_dir``
    that already holds a run is refused unless ``resume`` continues it or ``overwrite`` replaces
    it (nothing is truncated by accident). Stage
    ``supervised`` trains ``view`` from random weights with the data's labels (``num_classes``
    classes): the ceiling beside the self-supervised stages (:mod:`mvcgc.supervised`).
    ``preset`` and ``data_info`` (a JSON-able description of the data source) are only recorded.
    """
    opts = _options(options, option_fields)
    st = make_stage(opts)
    arch, queue_size, epochs, steps = opts.arch, opts.queue_size, opts.epochs, opts.steps
    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if opts.device == "auto" else opts.device)
    is_main = dist_utils.rank() == 0
    run_dir = Path(out_dir)
    if resume is None and not overwrite:
        _refuse_used_run_dir(run_dir)
    config = {
        **opts.to_dict(), "views": list(st.views), "resume": _str(resume), "device": str(dev), "preset": preset,
        "world_size": dist_utils.world_size(), "data": dict(data_info) if data_info is not None else None,
    }

    torch.manual_seed(opts.seed)
    # MoCo in the pretraining stages, a classifier per view in the supervised one
    moco = st.build_model({v: create_encoder(arch, IN_CHANNELS[v]) for v in st.views}, queue_size=queue_size,
                          dim=opts.dim, momentum=opts.momentum)
    if resume is None:
        _init_from_stage1(moco, {"rgb": opts.init_rgb, "mv": opts.init_mv}, arch=arch)
    moco.to(dev)
    model = moco
    if dist_utils.world_size() > 1:
        model = DistributedDataParallel(moco, device_ids=[dev.index] if dev.type == "cuda" else None)
    optimizer = torch.optim.Adam([p for p in moco.parameters() if p.requires_grad], lr=opts.lr,
                                 weight_decay=opts.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=0.1, patience=opts.plateau_patience, min_lr=opts.lr * 0.1**opts.lr_drops
    )
    t = LoopState()
    epoch_rng: torch.Tensor | None = None  # torch's CPU RNG as the current epoch's iteration began
    if resume is not None:
        t, epoch_rng = _restore(resume, moco, optimizer, scheduler, st=st, arch=arch)
    metrics_path = run_dir / METRICS_NAME
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_json(run_dir / CONFIG_NAME, RunConfig(config, package_versions()).to_dict())
        _truncate_metrics(metrics_path, after_step=t.step)

    def save() -> Path | None:
        if not is_main:
            return None
        return save_checkpoint(
            _payload(moco, optimizer, scheduler, st=st, arch=arch, config=config, preset=preset, trainer=t,
                     epoch_rng=epoch_rng),
            run_dir / CHECKPOINT_NAME,
        )

    last_ckpt: Path | None = Path(resume) if resume is not None else None
    saved_step = t.step if resume is not None else -1
    losses: list[float] = []
    autocast = torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=opts.amp and dev.type == "cuda")
    try:
        t.batches_per_epoch = len(data)  # type: ignore[arg-type]
    except TypeError:  # a stream (or a DataLoader over one) has no length: counted in the first epoch
        pass
    done = _finished(t, epochs=epochs, steps=steps)
    if steps == 0 and t.input_spec is None:  # random-init baseline: record the input it is meant for
        first = next(iter(data), None)
        if first is None:
            raise EmptyDataError("the data stream yielded no batch; check the data source")
        t.input_spec = _input_spec(_split_clips(first, st.views, torch.device("cpu"))[0])
    model.train()
    stop = StopRequests(announce=is_main, force_on_repeat=dist_utils.world_size() == 1)
    stopped_by: int | None = None
    try:
        # line-buffered: each step's line is on disk at once (a watcher sees it, a crash keeps it)
        with stop, open(metrics_path, "a", buffering=1) if is_main else _NullFile() as metrics:
            while not done:
                if hasattr(data, "set_epoch"):
                    data.set_epoch(t.epoch)
                if t.batch_in_epoch == 0:
                    epoch_rng = torch.get_rng_state()
                stream = _continue_epoch(data, t, epoch_rng)
                tick = time.perf_counter()
                for batch in stream:
                    x_q, x_k = _split_clips(batch, st.views, dev)
                    if t.input_spec is None:
                        t.input_spec = _input_spec(x_q)
                    global_batch = next(iter(x_q.values())).shape[0] * dist_utils.world_size()
                    if moco.queue is not None:
                        check_queue_size(queue_size, global_batch)
                    labels = _labels(batch, dev)
                    with autocast:
                        q, k = model(x_q, x_k)  # {v: (B, dim)} each (logits (B, classes) when supervised)
                    loss = st.loss(q, k, moco.queue, labels)
                    loss_value = dist_utils.mean_across_ranks(loss.detach()).item()
                    if not math.isfinite(loss_value):
                        raise NonFiniteLossError(
                            f"loss became {loss_value} at step {t.step + 1} (epoch {t.epoch}); training stopped. "
                            f"Last good checkpoint: {last_ckpt if last_ckpt is not None else 'none written yet'}. "
                            "Try a lower --lr or --grad-clip."
                        )
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if opts.grad_clip is not None:
                        torch.nn.utils.clip_grad_norm_(moco.encoder_q.parameters(), opts.grad_clip)
                    optimizer.step()
                    extra = st.diagnostics(k, moco.queue, labels, q)  # before the batch's keys join the queue
                    moco.dequeue_and_enqueue(k, labels)

                    t.step += 1
                    t.batch_in_epoch += 1
                    t.epoch_loss_sum += loss_value
                    if "train_accuracy" in extra:
                        t.epoch_accuracy_sum = (t.epoch_accuracy_sum or 0.0) + extra["train_accuracy"]
                    losses.append(loss_value)
                    now = time.perf_counter()
                    report = StepRecord(
                        step=t.step, total_steps=_total_steps(t, epochs=epochs, steps=steps), epoch=t.epoch,
                        loss=loss_value,
                        lr=optimizer.param_groups[0]["lr"],
                        queue_fill=moco.queue.fill if moco.queue is not None else 0.0,
                        samples_per_s=global_batch / max(now - tick, 1e-9),
                        **extra,
                    )
                    tick = now
                    metrics.write(json.dumps(report.to_dict()) + "\n")
                    if on_progress is not None:
                        on_progress(report)
                    if opts.checkpoint_every and t.step % opts.checkpoint_every == 0:
                        last_ckpt, saved_step = save(), t.step
                    if steps is not None and t.step >= steps:
                        break
                    stopped_by = stop.agreed(dev)  # every rank, every step: all stop after the same one
                    if stopped_by is not None:
                        break
                else:
                    if t.batch_in_epoch == 0:
                        raise EmptyDataError(
                            f"the data stream yielded no complete batch in epoch {t.epoch}; "
                            "check the data source (and that it holds at least one batch per process)"
                        )
                    mean_loss = t.epoch_loss_sum / t.batch_in_epoch
                    scheduler.step(mean_loss)
                    # supervised: the epoch's training accuracy (augmented clips)
                    accuracy = t.epoch_accuracy_sum / t.batch_in_epoch if t.epoch_accuracy_sum is not None else None
                    end = EpochEndRecord(epoch=t.epoch, mean_loss=mean_loss, step=t.step, train_accuracy=accuracy)
                    metrics.write(json.dumps(end.to_dict()) + "\n")
                    t.batches_per_epoch = t.batch_in_epoch  # what this process drew: a total from here on
                    t.finish_epoch()
                    last_ckpt, saved_step = save(), t.step
                done = stopped_by is not None or _finished(t, epochs=epochs, steps=steps)
            if saved_step != t.step:
                last_ckpt, saved_step = save(), t.step
            if stopped_by is not None:
                dist_utils.barrier()  # no rank exits (which makes torchrun kill the rest) before rank 0 has saved
                raise TrainingInterrupted(stopped_by, step=t.step, checkpoint=run_dir / CHECKPOINT_NAME,
                                          checkpoint_step=t.step, saved_now=True)
    except SignalInterrupt as e:  # a second signal: stop now; what the last checkpoint holds is kept
        raise TrainingInterrupted(e.signal_number, step=t.step, checkpoint=last_ckpt,
                                  checkpoint_step=saved_step if last_ckpt is not None else None,
                                  saved_now=False) from None
    if is_main:
        save_loss_curve(metrics_path, run_dir / LOSS_PLOT_NAME, title=f"mvcgc pretrain, stage {st.name}",
                        chance=_chance_loss(st, queue_size))
    return PretrainResult(run_dir=run_dir, checkpoint=last_ckpt, step=t.step, epoch=t.epoch, losses=losses)


def _refuse_used_run_dir(run_dir: Path) -> None:
    """Raise :class:`RunExistsError` when ``run_dir`` holds a run's metrics or checkpoint."""
    found = [p.name for p in (run_dir / METRICS_NAME, run_dir / CHECKPOINT_NAME)
             if p.is_file() and p.stat().st_size > 0]  # an empty log (a run that failed before its first step) holds nothing
    if not found:
        return
    ckpt = run_dir / CHECKPOINT_NAME
    how = (f"continue it with --resume {ckpt} (resume=...)" if ckpt.is_file()
           else "it has no checkpoint to resume from")
    raise RunExistsError(
        f"{run_dir} already holds a run ({', '.join(found)}); {how}, or pass --overwrite (overwrite=True) to "
        "start again and replace its metrics and checkpoint, or choose another --out"
    )


def _options(options: PretrainOptions | None, fields: Mapping[str, Any]) -> PretrainOptions:
    """``options`` with ``fields`` replaced (or the record of ``fields`` alone); unknown names refused."""
    known = {f.name for f in dataclasses.fields(PretrainOptions)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise InvalidArgumentError(f"pretrain() has no option {', '.join(unknown)}; the options are "
                                   f"{', '.join(sorted(known))}")
    return dataclasses.replace(options, **fields) if options is not None else PretrainOptions(**fields)


def _total_steps(t: LoopState, *, epochs: int | None, steps: int | None) -> int | None:
    """Steps this run takes in all: ``steps``, or fewer where ``epochs`` of known length end sooner;
    None while neither is known (a stream without a length, in its first epoch)."""
    if epochs is None or t.batches_per_epoch is None:
        return steps
    return min(steps if steps is not None else math.inf, epochs * t.batches_per_epoch)


def _finished(t: LoopState, *, epochs: int | None, steps: int | None) -> bool:
    return (epochs is not None and t.epoch >= epochs) or (steps is not None and t.step >= steps)


def _init_from_stage1(moco: MoCo, paths: Mapping[str, str | os.PathLike | None], *, arch: str) -> None:
    """Query and key encoders (backbone + head) of each view start from the stage-1 query weights."""
    for v, path in paths.items():
        if path is None:
            continue
        ckpt = load_checkpoint(path)
        check_compatible(ckpt, view=v, arch=arch, source=str(path))
        try:
            moco.encoder_q[v].load_state_dict(module_state(ckpt, f"encoder_q.{v}."))
        except RuntimeError as e:
            raise CheckpointError(f"{path}: weights do not fit this {arch!r} {v} model: {e}") from e
        moco.encoder_k[v].load_state_dict(moco.encoder_q[v].state_dict())


def _restore(path, moco: MoCo, optimizer, scheduler, *, st: Stage,
             arch: str) -> tuple[LoopState, torch.Tensor | None]:
    """Load the checkpoint at ``path`` into the model, optimiser and scheduler, set torch's RNG as it
    was; returns the loop state and the RNG state at the start of its epoch (None: an older checkpoint)."""
    ckpt = load_checkpoint(path)
    if ckpt["stage"] != st.name or tuple(ckpt["views"]) != st.views or ckpt["arch"] != arch:
        raise CheckpointError(
            f"cannot resume from {path}: it is stage {ckpt['stage']!r}, views {ckpt['views']}, arch {ckpt['arch']!r}; "
            f"this run is stage {st.name!r}, views {list(st.views)}, arch {arch!r}"
        )
    try:
        moco.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(f"cannot resume from {path} (different queue size or dim?): {e}") from e
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if torch.cuda.is_available() and ckpt["rng"]["cuda"]:
        torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
    return LoopState.from_dict(ckpt["trainer"], source=str(path)), ckpt["rng"].get("epoch_start")


def _payload(moco: MoCo, optimizer, scheduler, *, st: Stage, arch: str, config: dict, preset,
             trainer: LoopState, epoch_rng: torch.Tensor | None) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "views": list(st.views),
        "encoders": {
            v: {"in_channels": e.encoder.in_channels, "input_norm": e.encoder.input_norm,
                "feature_dim": e.encoder.feature_dim}
            for v, e in moco.encoder_q.items()
        },
        "embed_dim": moco.dim,
        **({"num_classes": moco.num_classes} if st.name == "supervised" else {}),
        "input_spec": trainer.input_spec,
        "stage": st.name,
        "preset": preset,
        "step": trainer.step,
        "epoch": trainer.epoch,
        "config": config,
        "versions": package_versions(),
        "model": moco.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "epoch_start": epoch_rng,
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        "trainer": trainer.to_dict(),
    }


def _continue_epoch(data: Iterable, t: LoopState, epoch_rng: torch.Tensor | None):
    """An iterator over this epoch's batches from batch ``t.batch_in_epoch`` on.

    A mid-epoch resume must see the epoch an uninterrupted run saw: its iteration starts again
    from torch's RNG as the epoch began (``epoch_rng``: a shuffling DataLoader draws its order and
    its workers' seeds from it); ``data.iter_from(batch)`` where the source has it starts at the
    batch without building those before it, otherwise the batches already trained on are drawn
    and dropped; the RNG is then set back to the checkpoint's, so the next batch and step are the
    uninterrupted run's.
    """
    if not t.batch_in_epoch:
        return iter(data)
    resumed_rng = torch.get_rng_state()
    if epoch_rng is not None:  # None: a checkpoint written before the epoch's RNG was kept
        torch.set_rng_state(epoch_rng)
    if hasattr(data, "iter_from"):
        log.info("resuming epoch %d at batch %d", t.epoch, t.batch_in_epoch)
        stream = data.iter_from(t.batch_in_epoch)
    else:
        log.info("resuming epoch %d at batch %d: drawing the %d batches before it again, unused",
                 t.epoch, t.batch_in_epoch, t.batch_in_epoch)
        stream = iter(data)
        for _ in range(t.batch_in_epoch):
            next(stream, None)
    torch.set_rng_state(resumed_rng)
    return stream


def _split_clips(batch: Mapping[str, Any], views: tuple[str, ...], dev: torch.device):
    """``batch[v]`` ``(B, 2, C, T, H, W)`` -> clip A ``{v: (B, C, T, H, W)}``, clip B likewise."""
    x_q, x_k = {}, {}
    for v in views:
        if v not in batch:
            raise MissingViewError(f"batch has no {v!r} clips (keys: {sorted(batch)}); stage needs {list(views)}")
        x = batch[v]
        if x.dim() != 6 or x.shape[1] != 2 or x.shape[2] != IN_CHANNELS[v]:
            raise DataError(f"batch[{v!r}] must be (B, 2, {IN_CHANNELS[v]}, T, H, W), got {tuple(x.shape)}")
        x = x.to(dev, non_blocking=True).float()
        x_q[v], x_k[v] = x[:, 0], x[:, 1]  # (B, C, T, H, W) each
    return x_q, x_k


def _chance_loss(st: Stage, queue_size: int) -> tuple[float, str]:
    """The loss of a model that has learnt nothing: uniform over the K + 1 candidates (per InfoNCE
    term; the cross stage sums two), or over the classes."""
    if st.name == "supervised":
        return math.log(st.num_classes), f"chance: ln {st.num_classes} = {math.log(st.num_classes):.2f}"
    terms = 2 if st.name == "cross" else 1
    value = terms * math.log(queue_size + 1)
    return value, f"chance: {'2 * ' if terms == 2 else ''}ln(K + 1) = {value:.2f}"


def _labels(batch: Mapping[str, Any], dev: torch.device) -> torch.Tensor | None:
    """The batch's class labels ``(B,)`` (-1 = unknown) for mining diagnostics, or None."""
    label = batch.get("label")
    return None if label is None else torch.as_tensor(label, dtype=torch.long, device=dev)


def _input_spec(x_q: Mapping[str, torch.Tensor]) -> dict:
    return {
        v: {"channels": x.shape[1], "num_frames": x.shape[2], "height": x.shape[3], "width": x.shape[4],
            "units": _UNITS[v]}
        for v, x in x_q.items()
    }


def _truncate_metrics(path: Path, *, after_step: int) -> None:
    """On resume, drop lines logged after the checkpoint (they will be logged again)."""
    if not path.exists():
        return
    lines = [ln for ln in path.read_text().splitlines() if _logged_step(ln) <= after_step]
    path.write_text("".join(ln + "\n" for ln in lines))


def _logged_step(line: str) -> float:
    """The step a metrics line was logged at; infinite (dropped on resume) for an empty or cut-off line,
    which a run killed mid-write can leave."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def _str(path) -> str | None:
    return None if path is None else str(path)


class _NullFile:
    """Stands in for the metrics file on ranks other than 0."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, _: str) -> None:
        pass
