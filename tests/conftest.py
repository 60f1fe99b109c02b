"""Shared fixtures: generated videos with known motion, and the optional real clips."""

from __future__ import annotations

from pathlib import Path

import pytest

from compvid.synthetic import RECIPES, write_moving_video

# ../shared/media beside the repository: real third-party clips (never committed).
SHARED_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
# ../shared/cases: small files that once made compvid serve wrong data (never committed).
SHARED_CASES = Path(__file__).resolve().parents[2] / "shared" / "cases"


@pytest.fixture(scope="session")
def shared_media() -> Path:
    if not SHARED_MEDIA.is_dir():
        pytest.skip(f"real clips not present at {SHARED_MEDIA}")
    return SHARED_MEDIA


@pytest.fixture(scope="session")
def shared_cases() -> Path:
    if not SHARED_CASES.is_dir():
        pytest.skip(f"bug cases not present at {SHARED_CASES}")
    return SHARED_CASES


@pytest.fixture(scope="session")
def moving_video(tmp_path_factory):
    """Factory: ``moving_video(recipe, **kw)`` -> path of a clip moving (dx, dy) px/frame.

    Cached per argument set for the whole session, so every test module can ask
    for the same clip without encoding it twice.
    """
    root = tmp_path_factory.mktemp("moving")
    cache: dict[tuple, Path] = {}

    def make(recipe: str = "h264", **kw) -> Path:
        key = (recipe, tuple(sorted(kw.items())))
        if key not in cache:
            name = f"{recipe}-{len(cache)}{RECIPES[recipe].suffix}"
            cache[key] = write_moving_video(root / name, recipe=recipe, **kw)
        return cache[key]

    return make
