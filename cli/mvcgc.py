"""``mvcgc`` command line: parse, resolve preset + flags, call one library function, report.

Presets (``mvcgc/presets/*.toml``) are read here; the library only sees plain keyword arguments.
"""

from __future__ import annotations

import logging
import sys
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import click

log = logging.getLogger("mvcgc.cli")

# Options a preset may set; flags override them. (Preset key -> click parameter name.)
_PRESET_KEYS = (
    "arch", "num_frames", "size", "batch_size", "queue_size", "dim", "momentum", "temperature", "lr",
    "weight_decay", "plateau_patience", "lr_drops", "topk", "mode", "checkpoint_every", "epochs", "steps",
    "grad_clip",
)
_LIBRARY_DEFAULTS = {"num_frames": 32, "size": 128, "batch_size": 32}


def list_presets() -> list[str]:
    return sorted(p.name[: -len(".toml")] for p in resources.files("mvcgc.presets").iterdir()
                  if p.name.endswith(".toml"))


def read_preset(name_or_path: str, *, stage: str) -> dict[str, Any]:
    """A preset's top-level keys merged with its ``[stage]`` table."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise click.BadParameter(f"preset file {path} does not exist", param_hint="--preset")
        text = path.read_text()
    elif name_or_path in list_presets():
        text = resources.files("mvcgc.presets").joinpath(f"{name_or_path}.toml").read_text()
    else:
        raise click.BadParameter(
            f"unknown preset {name_or_path!r}; allowed: {', '.join(list_presets())} or a path to a .toml file",
            param_hint="--preset",
        )
    table = tomllib.loads(text)
    resolved = {k: v for k, v in table.items() if not isinstance(v, dict)}
    resolved.update(table.get(stage, {}))
    unknown = set(resolved) - set(_PRESET_KEYS)
    if unknown:
        raise click.BadParameter(f"preset {name_or_path!r} has unknown keys {sorted(unknown)}", param_hint="--preset")
    return resolved


def _size(value: Any) -> tuple[int, int]:
    """``128`` or ``"128"`` -> (128, 128); ``[96, 128]`` or ``"96x128"`` -> (96, 128)."""
    parts = value.lower().split("x") if isinstance(value, str) else value if isinstance(value, list) else [value]
    try:
        hw = [int(p) for p in parts]
    except (TypeError, ValueError):
        hw = []
    if len(hw) not in (1, 2) or min(hw) < 1:
        raise click.BadParameter(f"size must be N or HxW with positive integers, got {value!r}", param_hint="--size")
    return (hw[0], hw[-1])


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """Compressed video contrastive learning (MVCGC): pretraining and evaluation."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--stage", type=click.Choice(["init", "cross"]), required=True,
              help="init: one view alone (InfoNCE); cross: RGB + MV with cross guidance.")
@click.option("--view", type=click.Choice(["rgb", "mv"]), default=None, help="View to train in stage init.")
@click.option("--data", "data_source", required=True,
              help="'synthetic' (random tensors, smoke runs only) or WebDataset shard URLs from compvid.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run directory (config.json, metrics.jsonl, last.pt, loss.png).")
@click.option("--preset", default=None, help="Preset name (ucf101, k400, tiny-cpu) or a .toml path; flags override it.")
@click.option("--init-rgb", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Stage-1 RGB checkpoint to start the cross stage from.")
@click.option("--init-mv", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Stage-1 MV checkpoint to start the cross stage from.")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint of this run to continue from (e.g. OUT/last.pt).")
@click.option("--arch", default=None, help="Encoder from the registry (s3d, r3d_18, r2plus1d_18, tiny).")
@click.option("--epochs", type=int, default=None)
@click.option("--steps", type=int, default=None, help="Stop after this many optimiser steps.")
@click.option("--batch-size", type=int, default=None, help="Videos per process and step.")
@click.option("--num-frames", type=int, default=None, help="Frames per clip.")
@click.option("--size", default=None, help="Clip size, e.g. 128 or 96x128.")
@click.option("--queue-size", type=int, default=None, help="K, a multiple of the global batch.")
@click.option("--dim", type=int, default=None, help="Embedding size of the projection head.")
@click.option("--momentum", type=float, default=None, help="Key-encoder momentum m.")
@click.option("--temperature", type=float, default=None)
@click.option("--lr", type=float, default=None)
@click.option("--weight-decay", type=float, default=None)
@click.option("--plateau-patience", type=int, default=None, help="Epochs without improvement before LR / 10.")
@click.option("--lr-drops", type=int, default=None, help="How many times the LR may drop.")
@click.option("--topk", type=int, default=None, help="k of the top-k mining (cross stage).")
@click.option("--mode", type=click.Choice(["intersection", "union"]), default=None, help="Mining ablation switch.")
@click.option("--grad-clip", type=float, default=None, help="Clip the gradient norm to this value.")
@click.option("--checkpoint-every", type=int, default=None, help="Also checkpoint every N steps (0: epoch ends only).")
@click.option("--synthetic-videos", type=int, default=64, show_default=True, help="Videos in --data synthetic.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--no-amp", is_flag=True, help="Disable bf16 autocast on CUDA.")
def pretrain(stage, view, data_source, out_dir, preset, init_rgb, init_mv, resume, synthetic_videos, seed, device,
             no_amp, **flags) -> None:
    """Pretrain encoders: stage 1 (--stage init --view rgb|mv) or stage 2 (--stage cross)."""
    from mvcgc import distributed
    from mvcgc.data import SyntheticClips, shard_stream
    from mvcgc.errors import MvcgcError
    from mvcgc.train import pretrain as run_pretrain

    if stage == "init" and view is None:
        raise click.UsageError("--stage init trains one view: add --view rgb or --view mv")
    opts = dict(_LIBRARY_DEFAULTS)
    if preset is not None:
        opts.update(read_preset(preset, stage=stage))
    opts.update({k: v for k, v in flags.items() if v is not None})
    num_frames, size, batch_size = opts.pop("num_frames"), _size(opts.pop("size")), opts.pop("batch_size")
    try:
        distributed.init_from_env()
        is_main = distributed.rank() == 0
        if not is_main:
            logging.getLogger().setLevel(logging.WARNING)
        views = ("rgb", "mv") if stage == "cross" else (view,)
        if data_source == "synthetic":
            log.warning("--data synthetic: training on RANDOM TENSORS (a smoke run; nothing meaningful is learnt)")
            data = SyntheticClips(num_videos=synthetic_videos, batch_size=batch_size, num_frames=num_frames,
                                  size=size, views=views, seed=seed, rank=distributed.rank(),
                                  world_size=distributed.world_size())
        else:
            data = shard_stream(data_source.split(), batch_size=batch_size, num_frames=num_frames, size=size)
        data_info = {"source": data_source, "batch_size": batch_size, "num_frames": num_frames, "size": list(size)}
        if data_source == "synthetic":
            data_info["synthetic_videos"] = synthetic_videos
        with _ProgressBar(enabled=is_main, stage=stage) as bar:
            result = run_pretrain(
                data, stage=stage, view=view, out_dir=out_dir, init_rgb=init_rgb, init_mv=init_mv, resume=resume,
                seed=seed, device=device, amp=not no_amp, preset=preset, data_info=data_info,
                on_progress=bar.update, **opts,
            )
    except (MvcgcError, ValueError, KeyError, OSError, NotImplementedError) as e:
        raise click.ClickException(str(e)) from e
    if is_main:
        click.echo(f"stage {stage}: {result.step} steps, {result.epoch} epochs; checkpoint {result.checkpoint}; "
                   f"run directory {result.run_dir}")


class _ProgressBar:
    """tqdm bar fed by the trainer's on_progress callback (rank 0 only)."""

    def __init__(self, *, enabled: bool, stage: str) -> None:
        self.enabled = enabled
        self.stage = stage
        self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False

    def update(self, p) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=p.total_steps, initial=p.step - 1, desc=f"pretrain {self.stage}", unit="step",
                            file=sys.stderr, dynamic_ncols=True)
        self.bar.update(1)
        self.bar.set_postfix(epoch=p.epoch, loss=f"{p.loss:.4f}", lr=f"{p.lr:.1e}", queue=f"{p.queue_fill:.0%}",
                             samples_s=f"{p.samples_per_s:.1f}", refresh=False)


if __name__ == "__main__":  # pragma: no cover - torchrun -m cli.mvcgc
    main()
