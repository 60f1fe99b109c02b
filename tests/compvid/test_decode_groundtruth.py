"""Motion vectors against ground truth: content moved by a known (dx, dy) per frame.

Each clip is a detailed texture panned by exactly (+3, -2) px per frame (or a
square moving over a static background), encoded by a real codec
(compvid.synthetic.RECIPES records each encoder and its options). The median of
the dense field over the moving region must recover (dx, dy) per frame step on
P-frames and on B-frames separately: this catches sign errors, past/future
mix-ups and wrong reference distances (x264 P-frames span 2-4 frames).
"""

from __future__ import annotations

import numpy as np
import pytest

from compvid import decode_clip, probe

DX, DY = 3, -2
BITSTREAM = ["h264", "h264-nopyramid", "h264-ref1", "h264-slices", "h264-mbaff", "h264-high10", "h264-444",
             "mpeg4", "mpeg4-qpel", "mpeg2", "mpeg1", "h263p"]
ESTIMATED = ["hevc", "vp9", "av1"]


def per_frame_median(mv: np.ndarray, border: int = 16) -> np.ndarray:
    """(2, T) median over the interior (content entering at the border is new)."""
    inner = mv[:, :, border:-border, border:-border]
    return np.median(inner.reshape(2, mv.shape[1], -1), axis=2)


def check_recovers(clip, tolerance: float, types: str) -> None:
    med = per_frame_median(clip.mv)
    frames = [i for i, t in enumerate(clip.frame_types) if t in types and clip.has_mv[i]]
    assert frames, f"no {types} frames with vectors in {clip.frame_types}"
    for i in frames:
        got = med[:, i]
        assert abs(got[0] - DX) <= tolerance and abs(got[1] - DY) <= tolerance, (
            f"frame {i} ({clip.frame_types[i]}): median field {got}, expected ({DX}, {DY})"
        )


@pytest.mark.parametrize("recipe", BITSTREAM)
def test_bitstream_vectors_recover_motion_per_frame_step(moving_video, recipe):
    path = moving_video(recipe, dx=DX, dy=DY, num_frames=32, width=256, height=192)
    clip = decode_clip(path, start=0, num_frames=32)
    assert clip.mv_source == "bitstream"
    assert clip.mv.dtype == np.float32 and clip.mv.shape == (2, 32, 192, 256)
    check_recovers(clip, 0.5, "P")
    if "B" in clip.frame_types:
        check_recovers(clip, 0.5, "B")
    # Key frames carry no vectors: zero field, flagged.
    for i, t in enumerate(clip.frame_types):
        if t == "I":
            assert not clip.has_mv[i] and not clip.mv[:, i].any()
    assert clip.unsure_fraction < 0.05


@pytest.mark.parametrize("recipe", ESTIMATED)
def test_estimated_vectors_recover_motion(moving_video, recipe):
    path = moving_video(recipe, dx=DX, dy=DY, num_frames=24, width=256, height=192)
    assert probe(path).mv_source == "estimated"
    clip = decode_clip(path, start=0, num_frames=24)
    assert clip.mv_source == "estimated"
    assert clip.has_mv.all(), "every frame of an estimated clip gets a field"
    med = per_frame_median(clip.mv)
    assert np.all(np.abs(med[0] - DX) <= 1.0) and np.all(np.abs(med[1] - DY) <= 1.0), med


# FFmpeg's whole mpegvideo family (every such encoder PyAV has), each in a container it is found in,
# with the codec id name probe reports: decoders named otherwise ("msmpeg4", "flv") must not make
# compvid estimate fields for codecs whose vectors are in the bitstream.
MPEGVIDEO_FAMILY = {"msmpeg4v3": "msmpeg4v3", "msmpeg4v2": "msmpeg4v2", "wmv1": "wmv1", "wmv2": "wmv2",
                    "flv1": "flv1", "h263": "h263", "h263p": "h263", "mpeg1": "mpeg1video",
                    "mpeg2": "mpeg2video", "mpeg4-mp4": "mpeg4"}  # recipe -> codec id (AVI stores h263p as h263)


@pytest.mark.parametrize("recipe", sorted(MPEGVIDEO_FAMILY))
def test_every_mpegvideo_codec_serves_its_bitstream_vectors(moving_video, recipe):
    # 176x144: baseline H.263 codes only standard sizes.
    path = moving_video(recipe, dx=DX, dy=DY, num_frames=12, width=176, height=144)
    info = probe(path)
    assert info.codec == MPEGVIDEO_FAMILY[recipe] and info.mv_source == "bitstream"
    clip = decode_clip(path, start=0, num_frames=12)
    assert clip.mv_source == "bitstream"
    check_recovers(clip, 0.5, "P")
    if "B" in clip.frame_types:
        check_recovers(clip, 0.5, "B")
    # Bitstream vectors are sub-pixel block vectors, not the estimator's whole-pixel 8-px blocks:
    # the P-frames of a pan carry their exact motion on most blocks (encoders miss some).
    p = [i for i, t in enumerate(clip.frame_types) if t == "P" and clip.has_mv[i]]
    inner = clip.mv[:, p, 16:-16, 16:-16]
    assert ((inner[0] == DX) & (inner[1] == DY)).mean() > 0.75


def test_codec_names_and_decoder_names_classify_alike():
    from compvid.probe import codec_id_name, mv_source_for_codec

    for decoder, codec_id in [("msmpeg4", "msmpeg4v3"), ("flv", "flv1"), ("mpeg4", "mpeg4"), ("hevc", "hevc")]:
        assert codec_id_name(decoder) == codec_id_name(codec_id) == codec_id
        assert mv_source_for_codec(decoder) == mv_source_for_codec(codec_id)
    assert mv_source_for_codec("msmpeg4") == mv_source_for_codec("flv") == "bitstream"
    assert mv_source_for_codec("hevc") == "estimated"
    assert codec_id_name("not-a-codec") == "not-a-codec"


def test_baseline_h263_at_qcif(moving_video):
    clip = decode_clip(moving_video("h263", dx=DX, dy=DY, num_frames=16, width=176, height=144),
                       start=0, num_frames=16)
    check_recovers(clip, 0.5, "P")


def test_mpeg4_b_frames_are_filled_not_zero(moving_video):
    # FFmpeg exports zero rows for MPEG-4 Part 2 B-frames whatever moves.
    clip = decode_clip(moving_video("mpeg4", dx=DX, dy=DY), start=0, num_frames=32)
    b = [i for i, t in enumerate(clip.frame_types) if t == "B"]
    assert b and clip.mv_filled[b].all() and not clip.mv_filled[[i for i in range(32) if i not in b]].any()


def test_raw_mode_keeps_reference_spans(moving_video):
    # Raw vectors are sign-corrected but not divided by the reference distance:
    # mpeg2 P-frames reference 3 frames back (2 B-frames between).
    path = moving_video("mpeg2", dx=DX, dy=DY)
    raw = decode_clip(path, start=0, num_frames=12, mv_mode="raw")
    med = per_frame_median(raw.mv)
    p_frames = [i for i, t in enumerate(raw.frame_types) if t == "P"]
    for i in p_frames:
        np.testing.assert_allclose(med[:, i], [3 * DX, 3 * DY], atol=0.5)


@pytest.mark.parametrize("recipe, width, height", [("h264", 256, 192), ("h264", 128, 96), ("mpeg2", 256, 192)])
def test_moving_object_field_lies_on_the_object(moving_video, recipe, width, height):
    # A square moving over a static background. In H.264 B-frames FFmpeg also
    # exports a zero row for the list a partition does not use; averaged in,
    # it would halve the object's motion (caught here at 128x96).
    from compvid.synthetic import moving_frames

    path = moving_video(recipe, dx=DX, dy=DY, motion="object", num_frames=16, width=width, height=height)
    _, mask = moving_frames(num_frames=16, width=width, height=height, dx=DX, dy=DY, motion="object")
    clip = decode_clip(path, start=0, num_frames=16)
    for t in range(1, 16):
        if not clip.has_mv[t]:
            continue
        inside = clip.mv[:, t][:, mask[t]]
        # Background: farther than a macroblock from the object.
        ys, xs = np.nonzero(mask[t])
        near = np.zeros_like(mask[t])
        near[max(ys.min() - 16, 0): ys.max() + 17, max(xs.min() - 16, 0): xs.max() + 17] = True
        outside = clip.mv[:, t][:, ~near]
        np.testing.assert_allclose(np.median(inside, axis=1), [DX, DY], atol=0.5)
        assert np.median(np.abs(outside)) < 0.25, "static background must not move"


@pytest.mark.parametrize("recipe,interlaced", [("h264-mbaff", True), ("h264", False)])
def test_interlaced_clips_say_field_vectors_may_be_halved(moving_video, recipe, interlaced):
    """FFmpeg does not mark field-coded blocks: clips of interlaced frames carry the warning, others do not."""
    path = moving_video(recipe, dx=DX, dy=DY, num_frames=16, width=128, height=96)
    warned = any("interlaced" in w for w in decode_clip(path, start=0, num_frames=8).warnings)
    assert warned == interlaced
    # An RGB-only clip has no vectors to doubt.
    assert not any("interlaced" in w for w in decode_clip(path, start=0, num_frames=8, with_mv=False).warnings)


@pytest.mark.parametrize("dx,dy", [(4, -4), (-2, 6)])
def test_field_macroblocks_of_true_interlaced_content_recover_motion(moving_video, dx, dy):
    """Fields sampled half a frame apart make x264 (MBAFF) code field macroblocks, whose 16x16 and
    8x8 vectors FFmpeg exports in field lines: taken as they are, dy comes out halved."""
    path = moving_video("h264-mbaff", dx=dx, dy=dy, num_frames=24, width=256, height=192, interlaced=True)
    clip = decode_clip(path, start=0, num_frames=24)
    med = per_frame_median(clip.mv)
    for types in ("P", "B"):
        frames = [i for i, t in enumerate(clip.frame_types) if t == types and clip.has_mv[i]]
        assert frames, clip.frame_types
        for i in frames:
            assert abs(med[0, i] - dx) <= 0.5 and abs(med[1, i] - dy) <= 0.5, (i, clip.frame_types[i], med[:, i])
    # Not only the median: blocks predicted from the other field (half a frame away) are right too.
    inner = clip.mv[:, [i for i, t in enumerate(clip.frame_types) if t != "I"], 16:-16, 16:-16]
    right = (np.abs(inner[0] - dx) <= 0.5) & (np.abs(inner[1] - dy) <= 0.5)
    assert right.mean() >= 0.97, right.mean()
    raw = decode_clip(path, start=0, num_frames=24, mv_mode="raw")
    assert any("field lines" in w for w in raw.warnings)


def test_interlaced_frames_sample_each_field_half_a_frame_apart():
    from compvid.errors import InvalidArgumentError
    from compvid.synthetic import interlaced_frames, moving_frames

    frames = interlaced_frames(num_frames=4, width=64, height=48, dx=4, dy=-2, seed=3)
    fields, _ = moving_frames(num_frames=8, width=64, height=48, dx=2, dy=-1, seed=3)  # one picture per field time
    for t in range(4):
        np.testing.assert_array_equal(frames[t, 0::2], fields[2 * t, 0::2])  # top field at t
        np.testing.assert_array_equal(frames[t, 1::2], fields[2 * t + 1, 1::2])  # bottom field at t + 1/2
    with pytest.raises(InvalidArgumentError, match="even"):
        interlaced_frames(num_frames=4, width=64, height=48, dx=3, dy=-2)


def _interlaced_mpeg2(tmp_path, dx, dy, num_frames=24):
    from compvid.synthetic import EncoderRecipe, encode_frames, interlaced_frames

    frames = interlaced_frames(num_frames=num_frames, width=256, height=192, dx=dx, dy=dy, seed=1)
    recipe = EncoderRecipe("mpeg2video", ".mpg", {"bf": "2", "g": "12", "flags": "+ilme+ildct", "top": "1",
                                                  "sc_threshold": "1000000000"}, container_format="mpeg")
    return encode_frames(frames, tmp_path / f"interlaced_{dx}_{dy}.mpg", recipe=recipe)


def test_interlaced_mpeg2_field_vectors_are_read_from_either_field(tmp_path):
    """MPEG-2 field prediction (exported as 16x8 rows, doubled as if from the same field): content
    moving 3 rows per field is mostly predicted from the other field, half a frame away. Read as
    exported, 31 % (P) and 45 % (B) of the moving pixels are right; read from either field, 70 %+
    (the rest: blocks the encoder's search missed)."""
    dx, dy = -2, 6
    clip = decode_clip(_interlaced_mpeg2(tmp_path, dx, dy), start=0, num_frames=24)
    inner = clip.mv[:, :, 16:-16, 16:-16]
    right = (np.abs(inner[0] - dx) <= 0.5) & (np.abs(inner[1] - dy) <= 0.5)
    moving = np.hypot(inner[0], inner[1]) > 0
    for kind in "PB":
        frames = [i for i, t in enumerate(clip.frame_types) if t == kind and clip.has_mv[i]]
        share = right[frames][moving[frames]].mean()
        assert share >= 0.65, (kind, share)
    assert any("either field" in w for w in clip.warnings), clip.warnings


def test_interlaced_mpeg4_says_its_field_vectors_are_uncorrected(tmp_path):
    from compvid.synthetic import EncoderRecipe, encode_frames, interlaced_frames

    frames = interlaced_frames(num_frames=8, width=128, height=96, dx=4, dy=-4)
    recipe = EncoderRecipe("mpeg4", ".avi", {"bf": "2", "g": "12", "flags": "+ilme+ildct"})
    clip = decode_clip(encode_frames(frames, tmp_path / "interlaced.avi", recipe=recipe), start=0, num_frames=8)
    assert any("not corrected" in w for w in clip.warnings), clip.warnings
