"""mvcgc: compressed video contrastive learning (MVCGC) on top of compvid."""

__version__ = "0.1.0"

from mvcgc.checkpoint import load_encoder  # noqa: E402
from mvcgc.models import create_encoder, list_encoders  # noqa: E402

__all__ = ["__version__", "create_encoder", "list_encoders", "load_encoder"]
