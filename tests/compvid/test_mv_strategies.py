"""Each clip gets the one motion-vector strategy its codec and mode call for (compvid.mv_strategy)."""

from __future__ import annotations

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
