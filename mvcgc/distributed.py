"""The few torch.distributed helpers the trainer needs; each works in a single process too."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from mvcgc.errors import DistributedSetupError


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


@torch.no_grad()
def concat_all_gather(t: torch.Tensor) -> torch.Tensor:
    """Concatenate ``t`` ``(N, ...)`` from every rank in rank order -> ``(world * N, ...)``.

    No gradient flows through (keys only). In a single process this returns ``t``.
    """
    if not is_distributed() or world_size() == 1:
        return t
    gathered = [torch.empty_like(t) for _ in range(world_size())]  # world x (N, ...)
    dist.all_gather(gathered, t.contiguous())
    return torch.cat(gathered, dim=0)  # (world * N, ...)


def mean_across_ranks(value: torch.Tensor) -> torch.Tensor:
    """Average a scalar tensor over ranks (so a NaN on any rank stops every rank)."""
    if not is_distributed() or world_size() == 1:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / world_size()


def init_from_env(*, backend: str | None = None) -> bool:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Returns True when running distributed. Backend: NCCL with CUDA, Gloo otherwise. An environment
    that describes no usable group raises :class:`~mvcgc.errors.DistributedSetupError`.
    """
    if _env_int("WORLD_SIZE", 1) <= 1 or is_distributed():
        return is_distributed()
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    try:
        if backend == "nccl":
            torch.cuda.set_device(_env_int("LOCAL_RANK", 0))
        dist.init_process_group(backend=backend)
    except (RuntimeError, ValueError) as e:  # torch's: a missing RANK, an unreachable MASTER_ADDR, no such GPU ...
        described = ", ".join(f"{k}={os.environ.get(k)}" for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR",
                                                                    "MASTER_PORT"))
        raise DistributedSetupError(
            f"cannot join the {backend} process group that the environment describes ({described}): "
            f"{' '.join(str(e).split())}; launch with `torchrun --nproc_per_node N -m cli.mvcgc ...`, "
            "or unset WORLD_SIZE for one process") from e
    return True


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return default if value is None else int(value)
    except ValueError:
        raise DistributedSetupError(f"{name}={value!r} is not an integer; torchrun sets it, or unset it "
                                    "for one process") from None


def max_across_ranks(value: int, *, device: torch.device) -> int:
    """The largest ``value`` over ranks (a collective: every rank must call it); ``value`` alone otherwise."""
    if not is_distributed() or world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)  # on the device: NCCL reduces CUDA tensors only
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def barrier() -> None:
    """Wait for every rank (nothing in a single process)."""
    if is_distributed() and world_size() > 1:
        dist.barrier()
