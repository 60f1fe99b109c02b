"""ClipRequest: one validated record of what clip to decode; the clip builders alone turn it into
decode_clip arguments (checked against decode_clip called by hand)."""

import json

import numpy as np
import pytest
import torch

from compvid import decode_clip, probe
from compvid.errors import InvalidArgumentError
from compvid.pipeline import PairClips, WindowClips
from compvid.request import ALL_VIEWS, ClipRequest, parse_crop_px, parse_views
from compvid.sampling import two_clip_starts
from compvid.synthetic import write_moving_video
from compvid.transforms import ClipAugment


def test_views_have_one_representation():
    assert parse_views("both") == parse_views(("rgb", "mv")) == parse_views({"mv", "rgb"}) == ALL_VIEWS
    assert parse_views("rgb") == frozenset({"rgb"}) == ClipRequest(4, 8, views=["rgb"]).views
    r = ClipRequest(4, 8, views="mv")
    assert (r.with_rgb, r.with_mv, r.views_name) == (False, True, "mv")
    for bad in ("flow", [], ("rgb", "depth"), "RGB"):
        with pytest.raises(InvalidArgumentError, match="views"):
            parse_views(bad)


@pytest.mark.parametrize("field, value", [("num_frames", 0), ("num_frames", -2), ("num_frames", 2.5),
                                          ("num_frames", True), ("crop_px", 0), ("crop_px", "128"),
                                          ("frame_step", 0), ("decode_short_side_px", 0)])
def test_bad_values_are_refused_naming_the_field(field, value):
    kw = {"num_frames": 4, "crop_px": 8, field: value}
    with pytest.raises(InvalidArgumentError, match=f"{field}={value!r}: must be a positive whole number"):
        ClipRequest(**kw)


def test_to_dict_from_dict_round_trip_through_json():
    r = ClipRequest(num_frames=np.int64(8), crop_px=112, frame_step=2, decode_short_side_px=128, views="both")
    d = json.loads(json.dumps(r.to_dict()))  # numpy ints became plain ints
    assert d == {"num_frames": 8, "crop_px": 112, "frame_step": 2, "decode_short_side_px": 128, "views": ["mv", "rgb"]}
    assert ClipRequest.from_dict(d) == r and hash(ClipRequest.from_dict(d)) == hash(r)
    with pytest.raises(InvalidArgumentError, match=r"unknown keys \['size'\], missing keys \['crop_px'\]"):
        ClipRequest.from_dict({"num_frames": 8, "size": 112})
    with pytest.raises(InvalidArgumentError, match="expected a mapping"):
        ClipRequest.from_dict([8, 112])


def test_sizes_are_parsed_in_one_place_and_must_be_square():
    for value in (128, "128", "128x128", "128X128", [128, 128], (128,)):
        assert parse_crop_px(value) == 128
    with pytest.raises(InvalidArgumentError, match=r"size='96x128': clips are square \(H = W\); pass one side"):
        parse_crop_px("96x128")
    for bad in ("0", "16xA", "", -3, "12x12x12", 1.5, None):
        with pytest.raises(InvalidArgumentError, match="expected a positive number of pixels"):
            parse_crop_px(bad)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("req") / "pan.mp4"
    write_moving_video(path, recipe="h264", dx=2, dy=1, num_frames=24, width=64, height=48, motion="pan", seed=1)
    return path


def test_pair_builder_decodes_what_the_request_says(video, monkeypatch):
    import compvid.pipeline as pipeline

    calls = []
    monkeypatch.setattr(pipeline, "decode_clip", lambda *a, **kw: calls.append(kw) or decode_clip(*a, **kw))
    info = probe(video)
    request = ClipRequest(num_frames=5, crop_px=20, frame_step=2, views="mv")
    out = PairClips(request)(str(video), info, np.random.default_rng(3))
    starts = two_clip_starts(info.num_frames, num_frames=5, frame_step=2, rng=np.random.default_rng(3))
    assert [c["start"] for c in calls] == list(starts)
    for kw in calls:  # decoded at 1.15 x the side for the random crop; only the view asked for
        assert (kw["num_frames"], kw["frame_step"], kw["size"], kw["with_rgb"], kw["with_mv"]) == (5, 2, 23, False, True)
    assert set(out) == {"mv"} and out["mv"].shape == (2, 2, 5, 20, 20)


def test_one_clip_per_video_is_the_pairs_clip_a_decoded_once(video, monkeypatch):
    """What fine-tuning trains on: clip A alone, from the pair's own random draws."""
    import compvid.pipeline as pipeline

    info = probe(video)
    request = ClipRequest(num_frames=6, crop_px=24, views="both")
    augment = ClipAugment(size=24, flip_p=0.5)
    pair = PairClips(request, augment=augment)(str(video), info, np.random.default_rng(11))
    calls = []
    monkeypatch.setattr(pipeline, "decode_clip", lambda *a, **kw: calls.append(kw) or decode_clip(*a, **kw))
    one = PairClips(request, augment=augment, clips_per_video=1)(str(video), info, np.random.default_rng(11))
    assert len(calls) == 1
    for view in ("rgb", "mv"):
        assert one[view].shape[0] == 1 and torch.equal(one[view][0], pair[view][0])
    with pytest.raises(InvalidArgumentError, match="clips_per_video=3"):
        PairClips(request, clips_per_video=3)


def test_window_builder_decodes_at_the_crop_side_unless_asked(video):
    info = probe(video)
    windows = WindowClips(ClipRequest(num_frames=4, crop_px=32, views="rgb"), crops="center")
    got = windows.decode(str(video), info, 0)["rgb"]
    expected = decode_clip(str(video), start=0, num_frames=4, size=32, with_mv=False, info=info).rgb
    assert np.array_equal(got.numpy(), expected)
    wider = WindowClips(ClipRequest(num_frames=4, crop_px=32, decode_short_side_px=40, views="rgb"))
    assert wider.decode(str(video), info, 0)["rgb"].shape[1] == 40
    with pytest.raises(InvalidArgumentError, match="decode_short_side_px=24 is smaller than the crop side 32"):
        WindowClips(ClipRequest(num_frames=4, crop_px=32, decode_short_side_px=24))
    with pytest.raises(InvalidArgumentError, match="pass a compvid.request.ClipRequest"):
        WindowClips({"num_frames": 4})
