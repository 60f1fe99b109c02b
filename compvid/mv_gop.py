"""MPEG-1/2/4-style codecs (no reference B-frames): the reference of every vector follows from the
picture types (past = previous I/P/S frame, future = next one). MPEG-1/2 field predictions in
interlaced frames are read from either field; MPEG-4 Part 2 B-frames exported as zero are filled
from the next (or previous) reference frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from compvid.block_rows import centres_inside, join_rows, take_rows
from compvid.frame_store import REFERENCE_TYPES, FrameStore
from compvid.motion import BlockMotion, RawVectors, match_field_readings
from compvid.mv_strategy import (
    MAX_REFERENCE_DISTANCE,
    UNCORRECTED_FIELDS_NOTE,
    BitstreamStrategy,
    ClipMotion,
    ExportedRows,
    Needs,
)

# Codecs (by codec id name, compvid.probe.codec_id_name) without reference B-frames.
GOP_CODECS = frozenset(
    {"mpeg1video", "mpeg2video", "mpeg4", "h263", "h263p", "h263i", "flv1",
     "msmpeg4v1", "msmpeg4v2", "msmpeg4v3", "wmv1", "wmv2"}
)
# MPEG-4 Part 2 B-frames in direct mode export zero rows although the block
# moves: its motion is the co-located motion of the next reference frame.
DIRECT_MODE_CODECS = frozenset({"mpeg4"})
# GOP codecs whose field-predicted macroblocks FFmpeg exports as two 16x8 rows, one per field
# (field_readings below). MPEG-4 Part 2 interlaced vectors export otherwise: untouched.
FIELD_READING_CODECS = frozenset({"mpeg1video", "mpeg2video"})


class GopRule(BitstreamStrategy):
    """Distance of each vector: to the previous reference frame (backward vectors) or the next one."""

    def __init__(self, codec: str) -> None:
        self.field_readings = codec in FIELD_READING_CODECS
        self.needs = Needs(export_vectors=True, lookback_frames=MAX_REFERENCE_DISTANCE, wait_for_future=True,
                           vectors_of_window=True, luma_of_interlaced=self.field_readings)
        self.interlaced_note = ("interlaced frames: field-predicted macroblocks read as predicted from either field "
                                "by motion compensation" if self.field_readings else UNCORRECTED_FIELDS_NOTE)

    def from_rows(self, rows: ExportedRows, frames: Sequence[int], store: FrameStore) -> ClipMotion:
        coded = [frames[n] for n in rows.with_rows]
        past = np.array([reference_distance(store, i, -1) for i in coded], np.int32)  # (F,) display frames
        future = np.array([reference_distance(store, i, +1) for i in coded], np.int32)
        vectors = rows.vectors
        distance = np.where(vectors.direction < 0, past[rows.member], future[rows.member]).astype(np.float32)
        if store.interlaced and self.field_readings:
            vectors, distance = field_readings(vectors, np.asarray(coded)[rows.member], distance, store)
        motion = vectors.normalise(distance)
        return self.finish(ClipMotion(motion, rows.frame_of_row, rows.has_mv, np.zeros(len(frames), bool), 0,
                                      rows.moving()), vectors, rows, _Distances(past, future), frames, store)

    def finish(self, normalised: ClipMotion, vectors: RawVectors, rows: ExportedRows, distances: _Distances,
               frames: Sequence[int], store: FrameStore) -> ClipMotion:
        """Hook for codecs whose exported rows need more than the GOP rule (DirectModeFill)."""
        return normalised


@dataclass(frozen=True)
class _Distances:
    """GOP-rule reference distances (display frames) of the F frames with rows: int32 (F,) each."""

    past: np.ndarray
    future: np.ndarray


@dataclass(frozen=True)
class _FrameFill:
    """One direct-mode B-frame's motion after filling."""

    motion: BlockMotion
    has_mv: bool
    filled: bool  # rows were taken from a neighbouring reference frame
    whole_donor: int | None = None  # display index of the reference frame whose rows ``motion`` is, all of them


class DirectModeFill(GopRule):
    """MPEG-4 Part 2: FFmpeg exports zero rows for B-frame blocks (direct mode and, in FFmpeg 8,
    every B block), whatever the content does. In direct mode a B block moves as the co-located
    block of the next reference frame, so that block's motion per frame step stands in for it;
    when the next reference is intra (no vectors), the previous reference's motion does."""

    def finish(self, normalised: ClipMotion, vectors: RawVectors, rows: ExportedRows, distances: _Distances,
               frames: Sequence[int], store: FrameStore) -> ClipMotion:
        with_rows, motion = rows.with_rows, normalised.motion
        direct = [m for m, n in enumerate(with_rows) if store.types.get(frames[n]) == "B"]
        if not direct:
            return normalised
        # The other frames' rows stay as they are; these are rebuilt one by one.
        bounds = np.concatenate([[0], np.cumsum(rows.sizes)])  # rows of frame m: bounds[m]:bounds[m + 1]
        direct_rows = np.zeros(len(with_rows), bool)
        direct_rows[direct] = True
        stay = ~direct_rows[rows.member]
        parts: list[BlockMotion] = [take_rows(motion, stay)]
        owners: list[np.ndarray] = [rows.frame_of_row[stay]]
        # Served reference frames are normalised already (their rows all point to the previous
        # reference): they donate without reading their side data again. Display index -> motion,
        # and -> position among the clip's frames.
        donors: dict[int, BlockMotion] = {}
        served: dict[int, int] = {}
        for m, n in enumerate(with_rows):
            if not direct_rows[m] and store.types.get(frames[n]) in REFERENCE_TYPES:
                donors[frames[n]] = take_rows(motion, slice(bounds[m], bounds[m + 1]))
                served[frames[n]] = n
        has_mv, filled = normalised.has_mv.copy(), normalised.filled.copy()
        copy_of = np.full(len(frames), -1, np.intp)
        zero = (vectors.mx == 0) & (vectors.my == 0)  # (N,) rows exported as zero, of every frame at once
        for m in direct:
            n = with_rows[m]
            span = slice(bounds[m], bounds[m + 1])
            fill = _fill_frame(frames[n], zero[span], motion, span, store, int(distances.future[m]),
                               int(distances.past[m]), donors)
            has_mv[n], filled[n] = fill.has_mv, fill.filled
            if fill.whole_donor in served:  # the rows of a served frame: its field is copied (ClipMotion.copy_of)
                copy_of[n] = served[fill.whole_donor]
                continue
            parts.append(fill.motion)
            owners.append(np.full(len(fill.motion), n, np.intp))
        return ClipMotion(join_rows(parts), np.concatenate(owners), has_mv, filled, 0, normalised.moving, copy_of)


def _fill_frame(i: int, zero: np.ndarray, clip_motion: BlockMotion, span: slice, store: FrameStore, future: int,
                past: int, donors: dict[int, BlockMotion]) -> _FrameFill:
    """Fill the zero rows of B-frame ``i`` (``zero``: bool (n,), its rows exported as zero; its n rows
    normalised: ``clip_motion``'s rows ``span``, taken only where some stay) from the reference frame
    ``future`` frames ahead, else the one ``past`` frames back. ``donors``: display index ->
    normalised motion, shared by a clip (filled in here as donors are read)."""
    if not zero.any():
        return _FrameFill(take_rows(clip_motion, span), True, False)
    donor = None
    for offset in (future, -past):
        j = i + offset
        if j in donors:
            donor = donors[j]
            break
        rows = store.vectors(j)
        if rows is not None and len(rows) and store.types.get(j) in REFERENCE_TYPES:
            donor = donors[j] = rows.normalise(np.full(len(rows), reference_distance(store, j, -1), np.int32))
            break
    if zero.all() and donor is not None:  # FFmpeg 8 exports only zero rows for MPEG-4 B-frames: the donor whole
        return _FrameFill(donor, True, True, j)
    motion = take_rows(clip_motion, span)
    if donor is None:
        # Nothing to fill from: say so instead of passing zeros off as motion.
        return _FrameFill(take_rows(motion, ~zero), bool((~zero).any()), False)
    covered = centres_inside(donor, take_rows(motion, zero))
    return _FrameFill(join_rows([take_rows(motion, ~zero), take_rows(donor, covered)]), True, True)


def reference_distance(store: FrameStore, i: int, direction: int) -> int:
    """Display frames from ``i`` to the nearest reference frame (I/P/S) before (``direction`` -1) or
    after (+1) it; 1 when none lies within MAX_REFERENCE_DISTANCE."""
    for step in range(1, MAX_REFERENCE_DISTANCE + 1):
        if store.types.get(i + direction * step) in REFERENCE_TYPES:
            return step
    return 1


def field_readings(vectors: RawVectors, frame_of: np.ndarray, distance: np.ndarray,
                   store: FrameStore) -> tuple[RawVectors, np.ndarray]:
    """MPEG-1/2 field prediction in interlaced frames: which field of the reference?

    FFmpeg exports a field-predicted macroblock as two 16x8 rows, the upper
    one for its top field lines and the lower one for its bottom field lines,
    with the vertical motion doubled to frame rows as if each predicted from
    the same field of the reference frame. Each such row is matched (on its
    own field lines, against the GOP rule's reference) both that way and as
    predicted from the other field: one row more or less, and half a frame
    nearer or farther (the bottom field is half a frame later). The other
    reading wins where it matches clearly better (by a grey level).

    ``frame_of``: display index of each row; ``distance``: float32 (N,) GOP-rule
    distances. Returns the vectors (``my`` in frame rows) and distances.
    """
    ref_of = frame_of + np.where(vectors.direction < 0, -distance, distance).astype(np.int64)
    rows = np.flatnonzero((vectors.w == 16) & (vectors.h == 8) & np.isin(frame_of, sorted(store.interlaced))
                          & np.isin(frame_of, sorted(store.luma)) & np.isin(ref_of, sorted(store.luma)))
    if rows.size == 0:
        return vectors, distance
    frames = sorted(set(frame_of[rows].tolist()))
    stack, plane_of = store.luma_stack(frames + ref_of[rows].tolist())
    k_of = {i: k for k, i in enumerate(frames)}
    candidates: list[dict[int, int]] = [{} for _ in frames]
    for i, r in zip(frame_of[rows].tolist(), ref_of[rows].tolist()):
        candidates[k_of[i]][r - i] = plane_of[r]
    member = np.array([k_of[i] for i in frame_of[rows].tolist()], np.intp)
    current = np.array([plane_of[i] for i in frames], np.intp)
    cy = vectors.cy[rows]
    parity = (cy % 16 >= 8).astype(np.int64)  # upper row: top field lines, lower row: bottom ones
    block = RawVectors(vectors.direction[rows], vectors.mx[rows], vectors.my[rows], vectors.cx[rows],
                       (cy // 16 * 16 + 8 + parity).astype(np.int32),  # the macroblock, sampled on one parity
                       np.full(rows.size, 16, np.int32), np.full(rows.size, 16, np.int32))
    same, (o_my, o_distance, _, o_cost) = match_field_readings(block, member, stack, current, candidates, parity)
    other = o_cost < same[3] - 1.0
    fixed_my, fixed_distance = vectors.my.copy(), distance.copy()
    fixed_my[rows[other]] = o_my[other]
    fixed_distance[rows[other]] = o_distance[other]
    fixed = RawVectors(vectors.direction, vectors.mx, fixed_my, vectors.cx, vectors.cy, vectors.w, vectors.h)
    return fixed, fixed_distance
