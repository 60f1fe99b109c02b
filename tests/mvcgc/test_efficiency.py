"""``measure_efficiency`` on one tiny generated video: both routes run, figures are consistent."""

import pytest

from compvid.synthetic import write_moving_video
from mvcgc.efficiency import measure_efficiency

pytest.importorskip("cv2")


def test_both_routes_on_a_tiny_video(tmp_path):
    # Recipe: libx264 defaults, 16 frames of 48×64 panning (2, 0) px/frame.
    (tmp_path / "v").mkdir()
    video = write_moving_video(tmp_path / "v" / "a.mp4", dx=2, dy=0, num_frames=16, width=64, height=48)
    (tmp_path / "v" / "bad.mp4").write_bytes(b"junk" * 20)
    rep = measure_efficiency(tmp_path / "v", arch="tiny", num_frames=8, size=32, crops="center", flow="farneback",
                             max_flow_frames=4, work_dir=tmp_path)
    assert len(rep.videos) == 1 and len(rep.failed) == 1 and rep.failed[0]["key"].endswith("bad.mp4")
    v = rep.videos[0]
    assert v.num_frames == 16 and v.ours_bytes == video.stat().st_size and v.flow_method == "farneback"
    assert v.flow_frames_measured == 4 and v.flow_bytes > 0 and v.ours_preprocess_s > 0
    assert set(rep.ratios()) == {"preprocess", "storage"} and rep.to_dict()["options"]["flow"] == "farneback"
    with pytest.raises(ValueError, match="allowed values are auto, tvl1, farneback"):
        measure_efficiency(video, flow="lk")


@pytest.mark.parametrize("size,words", [("96x128", "size='96x128': clips are square (H = W); pass one side, e.g. 128"),
                                        ("16xA", "size='16xA': expected a positive number of pixels")])
def test_a_bad_size_is_refused_by_compvids_parser_before_any_work(tmp_path, size, words):
    with pytest.raises(ValueError) as caught:  # compvid's InvalidArgumentError, before the (missing) data is read
        measure_efficiency(tmp_path / "missing", size=size)
    assert words in str(caught.value)
