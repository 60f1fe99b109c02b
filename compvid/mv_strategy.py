"""One interface for the ways compvid turns a decode into block motion per frame step.

A strategy is chosen once per clip (compvid.decode) from the codec, the motion-vector source and
the mode. It says what the decode loop must keep (``needs``) and, once the frames are decoded,
turns what was kept (compvid.frame_store) into the block motion of the frames the clip serves
(``motion``). The strategies:

- ExportedVectors (here): the codec's vectors as exported, per reference (``mv_mode="raw"``).
- EstimatedMotion (here): motion estimated from the decoded frames (codecs that export none).
- ReferenceMatching / OneReference (compvid.mv_matching): H.264-style vectors whose reference
  frame is not exported, told by motion compensation, or read from the decode order when the
  stream keeps one reference frame.
- GopRule / DirectModeFill (compvid.mv_gop): MPEG-1/2/4-style codecs, whose references follow
  from the picture types; MPEG-4 Part 2 B-frames exported as zero are filled from a neighbour.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from compvid.block_rows import join_rows
from compvid.frame_store import FrameStore
from compvid.motion import BlockMotion, RawVectors, rasterize_rows

# Farthest reference (display frames) considered by motion-compensated matching.
MAX_REFERENCE_DISTANCE = 16
# A vector shorter than this (pixels) does not count as moving (for ``ClipMotion.unsure``'s share).
_MOVING_PX = 0.25


@dataclass(frozen=True)
class Needs:
    """What the decode loop must keep for a strategy (all False / 0: nothing beyond the pictures)."""

    export_vectors: bool = False  # ask the decoder for its motion vectors (flags2 +export_mvs)
    lookback_frames: int = 0  # frames before the clip's first kept as possible references
    wait_for_future: bool = False  # decode past the last frame until the next reference frame
    vectors_of_window: bool = False  # keep the vectors of every frame in the window, not only of those served
    luma_of_references: bool = False  # keep luma of served frames and of every possible reference picture
    luma_of_interlaced: bool = False  # keep luma of interlaced frames (field readings)
    decode_order: bool = False  # track H.264 decode order and reference pictures (compvid.nal)
    estimates: bool = False  # run the motion estimator on the decoded frames


@dataclass(frozen=True)
class ClipMotion:
    """Block motion per frame step of the ``U`` distinct frames a clip serves, all rows together."""

    motion: BlockMotion  # (N,) rows, displacement in source pixels per frame step (or per reference: raw)
    frame_of_row: np.ndarray  # intp (N,): position of each row's frame among the U frames
    has_mv: np.ndarray  # bool (U,): the frame has vectors
    filled: np.ndarray  # bool (U,): its field was filled from a neighbouring reference frame
    unsure: int = 0  # moving vectors whose reference distance could not be told apart
    moving: int = 0  # moving vectors (at least _MOVING_PX long)
    # intp (U,) or None: -1 where a frame's field is painted from its own rows, else the position of
    # the frame whose rows it has too (not repeated in ``motion``): its field and vector count are a copy.
    copy_of: np.ndarray | None = None

    def fields_and_counts(self, frame_size: tuple[int, int],
                          out_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Dense fields float32 (2, U, H_out, W_out) (compvid.motion.rasterize_rows) and the block
        rows behind each, int32 (U,)."""
        u = len(self.has_mv)
        # Painting the same rows in the same order gives the same bytes: copied, not painted again.
        fields = rasterize_rows(self.motion, self.frame_of_row, u, frame_size=frame_size, out_size=out_size,
                                copy_of=self.copy_of)
        counts = np.bincount(self.frame_of_row, minlength=u).astype(np.int32)
        if self.copy_of is not None:
            copies = self.copy_of >= 0
            counts[copies] = counts[self.copy_of[copies]]
        return fields, counts


class MotionStrategy(Protocol):
    needs: Needs
    # Warning for clips with interlaced frames: how their field vectors are read (None: nothing to say).
    interlaced_note: str | None

    def motion(self, frames: Sequence[int], store: FrameStore) -> ClipMotion:
        """Block motion of the display frames ``frames`` (sorted, distinct) from what ``store`` kept."""
        ...


@dataclass(frozen=True)
class ExportedRows:
    """The exported vector rows of the frames that have any, joined into one table."""

    vectors: RawVectors  # (N,) rows
    with_rows: list[int]  # positions (among the U frames) of the F frames with rows
    sizes: np.ndarray  # intp (F,): rows of each of them
    member: np.ndarray  # intp (N,): position in ``with_rows`` of each row's frame
    frame_of_row: np.ndarray  # intp (N,): position among the U frames of each row's frame
    has_mv: np.ndarray  # bool (U,)

    @staticmethod
    def read(frames: Sequence[int], store: FrameStore) -> ExportedRows | None:
        """The rows ``store`` kept for ``frames``; None when no frame has any."""
        tables = [store.rows.get(i) for i in frames]
        with_rows = [n for n, tab in enumerate(tables) if tab is not None]
        if not with_rows:
            return None
        has_mv = np.zeros(len(frames), bool)
        has_mv[with_rows] = True
        sizes = np.array([len(tables[n]) for n in with_rows], np.intp)
        member = np.repeat(np.arange(len(with_rows)), sizes)
        frame_of_row = np.asarray(with_rows, np.intp)[member]
        vectors = RawVectors.from_tables([tables[n] for n in with_rows])
        return ExportedRows(vectors, with_rows, sizes, member, frame_of_row, has_mv)

    def moving(self) -> int:
        return int((np.hypot(self.vectors.mx, self.vectors.my) >= _MOVING_PX).sum())


class BitstreamStrategy(ABC):
    """Base of the strategies that read the codec's exported vectors: ``motion`` reads them,
    ``from_rows`` (each strategy's own) turns them into motion per frame step."""

    needs = Needs(export_vectors=True)
    interlaced_note: str | None = None

    def motion(self, frames: Sequence[int], store: FrameStore) -> ClipMotion:
        rows = ExportedRows.read(frames, store)
        if rows is None:
            u = len(frames)
            return ClipMotion(BlockMotion.empty(), np.zeros(0, np.intp), np.zeros(u, bool), np.zeros(u, bool))
        return self.from_rows(rows, frames, store)

    @abstractmethod
    def from_rows(self, rows: ExportedRows, frames: Sequence[int], store: FrameStore) -> ClipMotion:
        """Motion per frame step (or per reference: raw) of ``frames`` from their exported ``rows``."""


class ExportedVectors(BitstreamStrategy):
    """``mv_mode="raw"``: each vector as exported, the displacement to its own reference."""

    def __init__(self, codec: str) -> None:
        # FFmpeg's exporter doubles the vertical component of field-coded 16x8 and 8x16 partitions
        # into frame rows, not that of 16x16 and 8x8 ones (libavcodec/mpegutils.c).
        self.interlaced_note = (
            "interlaced frames: raw vectors of field-coded 16x16 and 8x8 blocks are in field lines (half their "
            "height)" if codec == "h264" else UNCORRECTED_FIELDS_NOTE)

    def from_rows(self, rows: ExportedRows, frames: Sequence[int], store: FrameStore) -> ClipMotion:
        return ClipMotion(rows.vectors.raw(), rows.frame_of_row, rows.has_mv, np.zeros(len(frames), bool))


UNCORRECTED_FIELDS_NOTE = (
    "interlaced frames: field-predicted blocks are taken as exported, in frame rows and whole-frame reference "
    "distances; predictions from the other field (half a frame away) are not corrected")


class EstimatedMotion:
    """Codecs whose decoder exports no vectors: motion the estimator (compvid.estimate) found
    between consecutive decoded frames, kept in ``store.estimated``."""

    needs = Needs(estimates=True)
    interlaced_note = None

    def motion(self, frames: Sequence[int], store: FrameStore) -> ClipMotion:
        motions = [store.estimated.get(i) for i in frames]
        has_mv = np.array([m is not None and len(m) > 0 for m in motions], bool)
        motions = [BlockMotion.empty() if m is None else m for m in motions]
        sizes = [len(m) for m in motions]
        unsure = sum(int(m.unsure.sum()) for m in motions)
        if sum(sizes) == 0:
            joined, frame_of_row = BlockMotion.empty(), np.zeros(0, np.intp)
        else:
            joined, frame_of_row = join_rows(motions), np.repeat(np.arange(len(frames)), sizes)
        return ClipMotion(joined, frame_of_row, has_mv, np.zeros(len(frames), bool), unsure, sum(sizes))
