"""What one decode keeps per display frame for the clip it serves (compvid.decode fills it,
compvid.mv_strategies reads it).

Keys are display indices (the probe's index space, compvid.timeline). Only frames inside the
clip's window are kept beyond their type and damage flag.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from compvid.motion import BlockMotion, RawVectors

# Picture types other pictures predict from (I, P, and MPEG-4's sprite S): the end of a GOP rule's search.
REFERENCE_TYPES = frozenset({"I", "P", "S"})


class ReferenceOrder:
    """H.264 decode order and reference pictures, read from the packets (compvid.nal), so that
    reference matching only tries frames that can be references of a frame."""

    def __init__(self, max_refs: int | None = None) -> None:
        self.max_refs = max_refs  # SPS max_num_ref_frames (None: unknown)
        # packet pts (time-base units) -> (decode order, reference picture? None = unknown, IDR pictures so far,
        # pts of the key picture decoded last up to it, None = none yet)
        self.packets: dict[int, tuple[int, bool | None, int, int | None]] = {}
        # The same per display index, once the frame is out of the decoder.
        self.decode_order: dict[int, int] = {}
        self.reference: dict[int, bool | None] = {}
        self.idr_epoch: dict[int, int] = {}
        self.pts: dict[int, int] = {}
        self.key_pts: dict[int, int | None] = {}

    def note_frame(self, idx: int, pts: int | None) -> None:
        """Display frame ``idx`` came out with packet timestamp ``pts``: take over its packet's facts."""
        if self.packets and pts is not None:
            known = self.packets.get(int(pts))
            if known is not None:
                self.decode_order[idx], self.reference[idx], self.idr_epoch[idx], self.key_pts[idx] = known
                self.pts[idx] = int(pts)

    def may_reference(self, ref: int, i: int) -> bool:
        """Whether frame ``ref`` can be a reference of frame ``i`` (unknown: yes): a reference
        picture, decoded before ``i`` and after the last IDR before ``i``, and, where ``i`` is shown
        at or after the key picture decoded last before it, not shown before that key. A key that
        is no IDR picture (an open GOP's recovery point) keeps the older pictures, but those shown
        after it decode exactly when decoding starts there (a seek), so they cannot predict from
        pictures shown before it; only its leading pictures (shown before it) may."""
        if self.reference.get(ref) is False:
            return False
        a, b = self.decode_order.get(ref), self.decode_order.get(i)
        if a is None or b is None:
            return True
        if not (a < b and self.idr_epoch[ref] == self.idr_epoch[i]):
            return False
        key = self.key_pts.get(i)
        return key is None or self.pts[i] < key or self.pts[ref] >= key

    def last_references(self, frames: Sequence[int]) -> np.ndarray | None:
        """Per display frame of ``frames``, the reference picture decoded last before it (same
        IDR period), as int64 display indices; None when the decode order of some frame is unknown."""
        refs = [(order, j) for j, order in self.decode_order.items() if self.reference.get(j)]
        out = []
        for i in frames:
            if i not in self.decode_order:
                return None
            before = [(order, j) for order, j in refs
                      if order < self.decode_order[i] and self.idr_epoch[j] == self.idr_epoch[i]]
            if not before or max(before)[1] >= i:
                return None
            out.append(max(before)[1])
        return np.asarray(out, np.int64)


class FrameStore:
    """Per display index inside the clip's window: what the decode loop kept of each frame."""

    def __init__(self, rotation: int | None, references: ReferenceOrder | None = None) -> None:
        self.rotation = rotation  # display rotation, counter-clockwise degrees (None: read from the first frame)
        self.types: dict[int, str] = {}  # picture type letter (I, P, B ...) of every frame decoded
        self.concealed: set[int] = set()  # frames the decoder flagged as damaged (every frame decoded)
        self.interlaced: set[int] = set()  # frames coded interlaced (field macroblocks possible)
        self.pts: dict[int, float] = {}  # presentation time, seconds
        self.luma: dict[int, np.ndarray] = {}  # uint8 (H, W) luma planes (reference matching, field readings)
        self.rows: dict[int, np.ndarray | None] = {}  # FFmpeg's motion-vector side data (structured), None: none
        self.rgb: dict[int, np.ndarray] = {}  # uint8 (H', W', 3) of frames served, coded orientation
        self.estimated: dict[int, BlockMotion] = {}  # estimated block motion (codecs without vectors)
        self.references = references if references is not None else ReferenceOrder()
        self._raw: dict[int, RawVectors | None] = {}

    def vectors(self, i: int) -> RawVectors | None:
        """Exported vectors of display frame ``i`` (None: no side data or no rows)."""
        if i not in self._raw:
            rows = self.rows.get(i)
            self._raw[i] = RawVectors.from_side_data(rows) if rows is not None else None
        return self._raw[i]

    def luma_planes(self, indices: Sequence[int]) -> tuple[list[np.ndarray], dict[int, int]]:
        """Luma planes of ``indices``, uint8 (H, W) each (as kept: views into the decoded frames),
        in display order, and display index -> position in that list."""
        order = sorted(set(indices))
        return [self.luma[i] for i in order], {i: r for r, i in enumerate(order)}

    def luma_stack(self, indices: Sequence[int]) -> tuple[np.ndarray, dict[int, int]]:
        """Luma planes of ``indices`` as uint8 (F, H, W) and display index -> row."""
        planes, row_of = self.luma_planes(indices)
        return np.stack(planes), row_of
