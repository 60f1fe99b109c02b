"""What produced a run: package versions recorded in run directories and checkpoints."""

from __future__ import annotations

import platform
from importlib import metadata

_PACKAGES = ("compvid-mvcgc", "torch", "torchvision", "av", "webdataset", "numpy")


def package_versions() -> dict[str, str]:
    """``{"python": "3.11.9", "torch": "2.x", ...}``; a package that is not installed maps to ``"absent"``."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions
