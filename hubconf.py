"""torch.hub entry points: the registered mvcgc encoders, optionally with weights from a file.

    enc = torch.hub.load("path/to/repo", "s3d", source="local", in_channels=2)
    enc = torch.hub.load("path/to/repo", "s3d", source="local", checkpoint="runs/mv/last.pt", view="mv")

``checkpoint`` may be an mvcgc checkpoint (rebuilt from its own description; ``in_channels``
and ``view`` must agree with it) or a bare ``state_dict`` of the encoder trained elsewhere.
Nothing is downloaded.
"""

dependencies = ["torch", "torchvision"]

import torch as _torch  # noqa: E402

from mvcgc.checkpoint import FORMAT as _FORMAT  # noqa: E402
from mvcgc.checkpoint import load_encoder as _load_encoder  # noqa: E402
from mvcgc.errors import CheckpointError as _CheckpointError  # noqa: E402
from mvcgc.models import create_encoder as _create_encoder  # noqa: E402


def _entry(arch: str, *, in_channels: int = 3, checkpoint: str | None = None, view: str | None = None):
    if checkpoint is None:
        return _create_encoder(arch, in_channels)
    try:
        raw = _torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as e:  # not ours to classify: any unreadable file is the user's bad input
        raise _CheckpointError(f"{checkpoint} cannot be read safely as weights: {e}") from e
    if isinstance(raw, dict) and raw.get("format") == _FORMAT:
        view = view or ("rgb" if in_channels == 3 else "mv")
        return _load_encoder(checkpoint, view, arch=arch)
    encoder = _create_encoder(arch, in_channels)
    try:
        encoder.load_state_dict(raw)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise _CheckpointError(f"{checkpoint} is neither an mvcgc checkpoint nor a {arch} state_dict: {e}") from e
    return encoder.eval()


def s3d(**kwargs):
    """S3D encoder (1024-d features); kwargs: in_channels, checkpoint, view."""
    return _entry("s3d", **kwargs)


def r3d_18(**kwargs):
    """R3D-18 encoder (512-d features); kwargs: in_channels, checkpoint, view."""
    return _entry("r3d_18", **kwargs)


def r2plus1d_18(**kwargs):
    """R(2+1)D-18 encoder (512-d features); kwargs: in_channels, checkpoint, view."""
    return _entry("r2plus1d_18", **kwargs)


def tiny(**kwargs):
    """Tiny 3-D CNN (128-d features) for CPU demos; kwargs: in_channels, checkpoint, view."""
    return _entry("tiny", **kwargs)
