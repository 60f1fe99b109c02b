"""Self-describing checkpoints: atomic writes, safe loads, and encoders rebuilt from the file alone.

A checkpoint is a dict of plain types and tensors (loadable with ``weights_only=True``):

- ``format`` / ``format_version``: ``"mvcgc.checkpoint"`` / 1
- ``arch``, ``views``, ``encoders`` (per view: ``in_channels``, ``input_norm``, ``feature_dim``),
  ``embed_dim``, ``input_spec`` (per view: channels, num_frames, height, width, units)
- ``stage``, ``preset``, ``step``, ``epoch``, ``config`` (resolved run options; ``config["data"]["clip_request"]``
  is the :class:`compvid.request.ClipRequest` the clips were decoded with, see :func:`clip_request`), ``versions``
- ``model`` (MoCo state: query/key encoders, heads, queues, pointer), and for resuming
  ``optimizer``, ``scheduler``, ``rng``, ``trainer``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from mvcgc.errors import CheckpointError, CheckpointNotFoundError
from mvcgc.models import VideoEncoder, create_encoder

FORMAT = "mvcgc.checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``payload`` to ``path`` atomically: a temporary file in the same folder, then a rename.

    A crash mid-write leaves the previous checkpoint untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate an mvcgc checkpoint with ``torch.load(weights_only=True)``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint {path} does not exist (or is not a file)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # garbage makes the unpickler raise almost anything (IndexError, KeyError, ...)
        # One line, and never PyTorch's advice to load unsafely (weights_only=False runs the file's code).
        raise CheckpointError(
            f"{path} is not a readable mvcgc checkpoint ({load_failure_reason(e)}); an mvcgc checkpoint is the last.pt "
            "that `mvcgc pretrain` writes (files with pickled code are refused, never executed)"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not an mvcgc checkpoint (no format={FORMAT!r} field); "
            "for a bare state_dict, create the encoder with mvcgc.models.create_encoder and call load_state_dict"
        )
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {ckpt.get('format_version')!r}; this mvcgc reads {FORMAT_VERSION}"
        )
    return ckpt


def load_failure_reason(e: Exception) -> str:
    """The gist of a load failure: its first line, without PyTorch's unsafe-loading advice."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "weights_only" in text or "Weights only load failed" in text or "WeightsUnpickler" in str(e):
        return "it is damaged, or holds pickled objects other than tensors and plain data"
    return text.split(". ")[0].rstrip(".")[:160]  # the first sentence: torch appends advice after it


def module_state(ckpt: dict[str, Any], prefix: str) -> dict[str, torch.Tensor]:
    """The part of ``ckpt["model"]`` under ``prefix`` (e.g. ``"encoder_q.rgb.encoder."``), prefix removed."""
    return {name[len(prefix) :]: t for name, t in ckpt["model"].items() if name.startswith(prefix)}


def check_compatible(ckpt: dict[str, Any], *, view: str, arch: str | None, source: str) -> None:
    """Raise :class:`CheckpointError` unless ``ckpt`` holds ``view`` built with ``arch``."""
    if view not in ckpt["views"]:
        raise CheckpointError(f"{source} holds view(s) {ckpt['views']}, not {view!r}")
    if arch is not None and ckpt["arch"] != arch:
        raise CheckpointError(f"{source} holds a {ckpt['arch']!r} encoder, but {arch!r} was asked for")


# What a checkpoint that records neither a clip request nor its input implies (older defaults).
_FALLBACK_NUM_FRAMES, _FALLBACK_CROP_PX = 16, 128


def clip_request(ckpt: dict[str, Any], view: str):
    """The :class:`compvid.request.ClipRequest` of ``view`` that ``ckpt`` was trained on.

    Read from ``config["data"]["clip_request"]``; checkpoints written before it was recorded give
    it from ``input_spec`` (frames, height), else 16 frames of 128 px. Only ``view`` is requested."""
    from compvid.errors import InvalidArgumentError
    from compvid.request import ClipRequest

    stored = ((ckpt.get("config") or {}).get("data") or {}).get("clip_request")
    try:
        if stored is not None:
            return ClipRequest.from_dict(stored, where="the checkpoint's clip request").replace(views={view})
        spec = (ckpt.get("input_spec") or {}).get(view) or {}
        return ClipRequest(num_frames=int(spec.get("num_frames") or _FALLBACK_NUM_FRAMES),
                           crop_px=int(spec.get("height") or _FALLBACK_CROP_PX), views={view})
    except InvalidArgumentError as e:
        raise CheckpointError(f"the checkpoint records clip settings that cannot be read: {e}") from e


def evaluation_request(
    path: str | os.PathLike,
    view: str,
    *,
    num_frames: int | None = None,
    crop_px: int | None = None,
    frame_step: int | None = None,
):
    """The clip request to evaluate ``view`` of the checkpoint at ``path`` with: what it was trained
    on (:func:`clip_request`), with each option that is not None in its place, decoded at the crop
    side (evaluation crops deterministically, it needs no margin for random crops)."""
    trained = clip_request(load_checkpoint(path), view)
    return trained.replace(
        num_frames=trained.num_frames if num_frames is None else num_frames,
        crop_px=trained.crop_px if crop_px is None else crop_px,
        frame_step=trained.frame_step if frame_step is None else frame_step,
        decode_short_side_px=None,
    )


def load_encoder(
    path: str | os.PathLike, view: str = "rgb", *, arch: str | None = None, map_location: str | torch.device = "cpu"
) -> VideoEncoder:
    """Rebuild the pretrained ``view`` encoder (``"rgb"`` or ``"mv"``) from a checkpoint file alone.

    Returns the query encoder in eval mode; its ``forward_features`` gives the pooled features
    used for evaluation. ``arch``, when given, must match the checkpoint's architecture.
    """
    ckpt = load_checkpoint(path, map_location=map_location)
    check_compatible(ckpt, view=view, arch=arch, source=str(path))
    spec = ckpt["encoders"][view]
    encoder = create_encoder(ckpt["arch"], spec["in_channels"], input_norm=spec["input_norm"])
    try:
        encoder.load_state_dict(module_state(ckpt, f"encoder_q.{view}.encoder."))
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit a {ckpt['arch']!r} {view} encoder: {e}") from e
    return encoder.eval()
