"""Each clip gets the one motion-vector strategy its codec and mode call for (compvid.mv_strategy)."""

from __future__ import annotations

import numpy as np
import pytest

from compvid import probe
from compvid.decode import _strategy_for
from compvid.mv_gop import DirectModeFill, GopRule
from compvid.mv_matching import OneReference, ReferenceMatching
from compvid.mv_strategy import EstimatedMotion, ExportedVectors
from compvid.probe import stream_codec_id_name
from compvid.source import open_video

CASES = [
    ("h264", "normalized", ReferenceMatching),  # B-pyramid, several references: matched
    ("h264-ref1", "normalized", OneReference),  # SPS max_num_ref_frames = 1: read from the decode order
    ("h264", "raw", ExportedVectors),
    ("mpeg4", "normalized", DirectModeFill),  # MPEG-4 Part 2 B-frames exported as zero
    ("mpeg4", "raw", ExportedVectors),
    ("mpeg2", "normalized", GopRule),
    ("hevc", "normalized", EstimatedMotion),  # FFmpeg's HEVC decoder exports no vectors, in either mode
    ("hevc", "raw", EstimatedMotion),
]


@pytest.mark.parametrize("recipe, mv_mode, expected", CASES, ids=[f"{r}-{m}" for r, m, _ in CASES])
def test_strategy_of_each_codec_and_mode(moving_video, recipe, mv_mode, expected):
    path = moving_video(recipe, num_frames=8, width=128, height=96)
    info = probe(path)
    container, stream = open_video(path)
    try:
        strategy = _strategy_for(stream_codec_id_name(stream), info.mv_source, mv_mode,
                                 stream.codec_context.extradata)
    finally:
        container.close()
    assert type(strategy) is expected
    # What the decode loop keeps follows from the strategy alone.
    needs = strategy.needs
    assert needs.export_vectors == (expected is not EstimatedMotion)
    assert needs.estimates == (expected is EstimatedMotion)
    assert needs.decode_order == (expected in (ReferenceMatching, OneReference))
    assert needs.vectors_of_window == (expected in (GopRule, DirectModeFill))  # B-frames borrow from neighbours
    assert needs.luma_of_interlaced == (recipe == "mpeg2" and mv_mode == "normalized")  # field readings


def test_direct_mode_fill_of_one_b_frame():
    """mv_gop._fill_frame: a B-frame's rows exported as zero are replaced by the donor's (the next
    reference's) rows whose centre lies in them; all zero: the donor whole (and named, so a served
    donor's field is copied); no zero rows: its own rows; no donor: only its moving rows, has_mv
    saying whether any are left, never zeros passed off as motion."""
    from compvid.frame_store import FrameStore
    from compvid.motion import BlockMotion
    from compvid.mv_gop import _fill_frame

    def blocks(x0, dx):  # 16x16 blocks on one row, left corners x0, horizontal motion dx
        n = len(x0)
        return BlockMotion(np.asarray(x0, np.int32), np.zeros(n, np.int32), np.full(n, 16, np.int32),
                           np.full(n, 16, np.int32), np.asarray(dx, np.float32), np.zeros(n, np.float32),
                           np.zeros(n, bool))

    store = FrameStore(0)
    store.types.update({0: "I", 1: "B", 2: "P"})
    own = blocks([0, 16, 32, 48], [0.0, 2.5, 0.0, -1.0])  # the clip's normalised rows of frame 1
    donor = blocks([0, 16, 32, 48, 64], [3.0, 3.0, 4.0, 4.0, 5.0])
    span = slice(0, 4)

    some = np.array([True, False, True, False])  # rows 0 and 2 exported as zero
    fill = _fill_frame(1, some, own, span, store, 1, 1, {2: donor})
    assert (fill.has_mv, fill.filled, fill.whole_donor) == (True, True, None)
    assert fill.motion.x0.tolist() == [16, 48, 0, 32] and fill.motion.dx.tolist() == [2.5, -1.0, 3.0, 4.0]

    fill = _fill_frame(1, np.ones(4, bool), own, span, store, 1, 1, {2: donor})
    assert (fill.motion is donor, fill.has_mv, fill.filled, fill.whole_donor) == (True, True, True, 2)

    fill = _fill_frame(1, np.zeros(4, bool), own, span, store, 1, 1, {2: donor})
    assert (fill.has_mv, fill.filled) == (True, False) and fill.motion.dx.tolist() == own.dx.tolist()

    store.rows.update({0: None, 2: None})  # neither neighbour has vectors to give
    fill = _fill_frame(1, some, own, span, store, 1, 1, {})
    assert (fill.has_mv, fill.filled) == (True, False) and fill.motion.x0.tolist() == [16, 48]
    fill = _fill_frame(1, np.ones(4, bool), own, span, store, 1, 1, {})
    assert (fill.has_mv, fill.filled, len(fill.motion)) == (False, False, 0)
