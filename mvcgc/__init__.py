"""mvcgc: compressed video contrastive learning (MVCGC) on top of compvid."""

__version__ = "0.1.0"

__all__ = ["__version__", "create_encoder", "list_encoders", "load_encoder"]


def __getattr__(name: str):
    """The encoder helpers, imported on first use: ``import mvcgc.options`` (the CLI's --help) stays free
    of torch."""
    if name == "load_encoder":
        from mvcgc.checkpoint import load_encoder

        return load_encoder
    if name in ("create_encoder", "list_encoders"):
        from mvcgc import models

        return getattr(models, name)
    raise AttributeError(f"module 'mvcgc' has no attribute {name!r}")
