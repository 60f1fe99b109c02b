"""H.264-style vectors (reference B-frames, several reference pictures): FFmpeg exports each
vector's direction but not its reference frame, so its distance is told by motion compensation
(compvid.motion), or read from the decode order when the stream keeps a single reference picture."""

from __future__ import annotations

import bisect
from typing import Sequence

import numpy as np

from compvid.block_rows import take_rows
from compvid.frame_store import FrameStore
from compvid.motion import match_reference_distances_frames, match_with_field_hypothesis, unused_list_rows
from compvid.mv_strategy import MAX_REFERENCE_DISTANCE, BitstreamStrategy, ClipMotion, ExportedRows, Needs


class ReferenceMatching(BitstreamStrategy):
    """Each block's reference: the kept frame within MAX_REFERENCE_DISTANCE that its vector
    predicts best (compvid.motion.match_reference_distances_frames); rows of an unused
    prediction list are dropped (compvid.motion.unused_list_rows)."""

    interlaced_note = "interlaced frames: field and frame macroblocks told apart by motion compensation"

    def __init__(self, *, decode_order: bool) -> None:
        # ``decode_order``: the packets tell which pictures are references (H.264, compvid.nal).
        self.needs = Needs(export_vectors=True, lookback_frames=MAX_REFERENCE_DISTANCE, wait_for_future=True,
                           luma_of_references=True, decode_order=decode_order)

    def from_rows(self, rows: ExportedRows, frames: Sequence[int], store: FrameStore) -> ClipMotion:
        vectors, member = rows.vectors, rows.member
        coded = [frames[n] for n in rows.with_rows]
        kept = sorted(store.luma)
        candidates: list[dict[int, int]] = []  # per coded frame: reference offset -> display index
        for i in coded:
            lo = bisect.bisect_left(kept, i - MAX_REFERENCE_DISTANCE)
            hi = bisect.bisect_right(kept, i + MAX_REFERENCE_DISTANCE)
            candidates.append({j - i: j for j in kept[lo:hi] if j != i and store.references.may_reference(j, i)})
        # Not stacked: the compiled matcher reads the planes where they lie (numpy stacks them itself).
        planes, plane_of = store.luma_planes(coded + [j for c in candidates for j in c.values()])
        candidates = [{o: plane_of[j] for o, j in c.items()} for c in candidates]  # offset -> index into ``planes``
        current = np.array([plane_of[i] for i in coded], np.intp)
        interlaced = np.array([i in store.interlaced for i in coded], bool)
        if interlaced.any():  # 16x16 and 8x8 rows of interlaced frames: field or frame macroblock?
            square = ((vectors.w == 16) & (vectors.h == 16)) | ((vectors.w == 8) & (vectors.h == 8))
            vectors, distance, unsure, cost = match_with_field_hypothesis(
                vectors, member, planes, current, candidates, interlaced[member] & square)
        else:
            distance, unsure, cost = match_reference_distances_frames(vectors, member, planes, current, candidates)
        motion = vectors.normalise(distance, unsure)
        frame_of_row = rows.frame_of_row
        keep = ~unused_list_rows(vectors, cost, frame_of_row=member)
        if not keep.all():
            motion, frame_of_row = take_rows(motion, keep), frame_of_row[keep]
        return ClipMotion(motion, frame_of_row, rows.has_mv, np.zeros(len(frames), bool), int(unsure.sum()),
                          rows.moving())


class OneReference(ReferenceMatching):
    """One reference frame in the decoded picture buffer (SPS max_num_ref_frames = 1): every
    vector of a progressive frame predicts from the reference picture decoded last, so its
    distance is read from the decode order, without matching. Falls back to matching where
    that order is unknown, a frame is interlaced or a vector points forward."""

    def __init__(self) -> None:
        super().__init__(decode_order=True)

    def from_rows(self, rows: ExportedRows, frames: Sequence[int], store: FrameStore) -> ClipMotion:
        if not store.interlaced and (rows.vectors.direction < 0).all():
            coded = [frames[n] for n in rows.with_rows]
            last = store.references.last_references(coded)
            if last is not None:
                distance = (np.asarray(coded) - last)[rows.member].astype(np.int32)  # (N,) display frames
                return ClipMotion(rows.vectors.normalise(distance), rows.frame_of_row, rows.has_mv,
                                  np.zeros(len(frames), bool), 0, rows.moving())
        return super().from_rows(rows, frames, store)
