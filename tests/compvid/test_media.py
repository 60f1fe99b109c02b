"""Real third-party clips from ../shared/media (skipped when the folder is absent)."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from click.testing import CliRunner

from cli.compvid import main
from compvid import decode_clip, probe

pytestmark = pytest.mark.media

# name -> (frames, I, P, B) from the folder's README.
CLIPS = {
    "h264_high_bframes_bikes_640x272.mp4": (250, 6, 69, 175),
    "h264_high_bframes_carphone_pristine_176x144.mp4": (120, 1, 59, 60),
    "h264_high_realshort_320x240.mp4": (36, 2, 34, 0),
    "mpeg4asp_xvid_bframes_megamind_720x528.avi": (270, 5, 89, 176),
    "mpeg2_xine_logo_600x450.mpg": (25, 3, 22, 0),
}


def raw_rows(path, limit):
    """Rows of FFmpeg's side data per frame, straight from PyAV (None = no side data)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.codec_context.options = {"flags2": "+export_mvs"}
        out = []
        for f in c.decode(s):
            sd = f.side_data.get("MOTION_VECTORS")
            out.append(None if sd is None else len(sd.to_ndarray()))
            if len(out) == limit:
                break
    return out


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_gop_and_vectors_of_real_clips(shared_media, name):
    path = shared_media / name
    frames, i_count, p_count, b_count = CLIPS[name]
    info = probe(path)
    assert info.num_frames == frames and info.mv_source == "bitstream"
    n = min(frames, 60)
    clip = decode_clip(path, start=0, num_frames=n, size=64, info=info, with_rgb=False)
    raw = decode_clip(path, start=0, num_frames=n, size=64, info=info, with_rgb=False, mv_mode="raw")
    types = "".join(clip.frame_types)
    # Every frame but the key frames carries vectors.
    for t, kind in enumerate(types):
        assert clip.has_mv[t] == (kind != "I"), (t, kind)
    # Raw mode hands out exactly FFmpeg's rows.
    rows = raw_rows(path, n)
    np.testing.assert_array_equal(raw.vector_counts, [r or 0 for r in rows])
    assert np.isfinite(clip.mv).all()


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_inspect_counts_frame_types(shared_media, name, tmp_path):
    frames, i_count, p_count, b_count = CLIPS[name]
    png = tmp_path / "out.png"
    result = CliRunner().invoke(main, ["inspect", str(shared_media / name), "--json", "--png", str(png)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["gop"]["I"], report["gop"]["P"], report["gop"]["B"]) == (i_count, p_count, b_count)
    # Every frame with side data has a field; for these clips that is every
    # frame but the key frames, except the last frame of the Xvid clip (a P
    # frame flushed from the packed-B queue without side data).
    with_rows = sum(r is not None for r in raw_rows(shared_media / name, frames))
    assert report["motion"]["frames_with_vectors"] == with_rows
    assert with_rows >= frames - i_count - 1
    assert png.stat().st_size > 0
