"""Row selection and joining of block motion (compvid.motion.BlockMotion) and of FFmpeg's vector tables."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from compvid.motion import BlockMotion, rasterize

_FIELDS = ("x0", "y0", "w", "h", "dx", "dy", "unsure")


def take_rows(m: BlockMotion, rows: slice | np.ndarray) -> BlockMotion:
    """Rows ``rows`` of ``m``: a slice (views) or a bool mask / index array (copies)."""
    return BlockMotion(*(getattr(m, f)[rows] for f in _FIELDS))


def join_rows(parts: Sequence[BlockMotion]) -> BlockMotion:
    """The rows of ``parts``, one after another."""
    if not parts:
        return BlockMotion.empty()
    return BlockMotion(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))


def join_tables(tables: list[np.ndarray]) -> np.ndarray:
    """Concatenate FFmpeg side-data tables (structured arrays) without numpy's
    per-field promotion: as bytes, when they share one dtype."""
    dtype = tables[0].dtype
    if len(tables) == 1:
        return tables[0]
    if all(t.dtype == dtype and t.flags.c_contiguous for t in tables):
        return np.concatenate([t.view(np.uint8).reshape(-1) for t in tables]).view(dtype)
    return np.concatenate(tables)


def centres_inside(candidates: BlockMotion, blocks: BlockMotion) -> np.ndarray:
    """Rows of ``candidates`` whose centre lies inside one of ``blocks``; bool (N_candidates,)."""
    if len(blocks) == 0 or len(candidates) == 0:
        return np.zeros(len(candidates), bool)
    cx = candidates.x0 + candidates.w // 2
    cy = candidates.y0 + candidates.h // 2
    # Round up to the macroblock grid so rasterize paints 8-16 px cells, not pixels.
    height = -(-int(max(cy.max() + 1, (blocks.y0 + blocks.h).max())) // 16) * 16
    width = -(-int(max(cx.max() + 1, (blocks.x0 + blocks.w).max())) // 16) * 16
    ones = BlockMotion(blocks.x0, blocks.y0, blocks.w, blocks.h, np.ones(len(blocks), np.float32),
                       np.zeros(len(blocks), np.float32), blocks.unsure)
    mask = rasterize(ones, frame_size=(height, width))[0] > 0.5  # (H, W) covered by one of ``blocks``
    inside = (cx >= 0) & (cy >= 0)
    out = np.zeros(len(candidates), bool)
    out[inside] = mask[cy[inside], cx[inside]]
    return out
