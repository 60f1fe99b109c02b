"""`compvid inspect` on generated videos of each codec and on bad files."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from cli.compvid import main
from compvid.synthetic import EncoderRecipe, encode_frames, moving_frames

CODECS = {"h264": "bitstream", "mpeg4": "bitstream", "mpeg2": "bitstream", "h263p": "bitstream",
          "hevc": "estimated", "vp9": "estimated", "av1": "estimated"}


@pytest.mark.parametrize("recipe", sorted(CODECS))
def test_inspect_json_and_png(moving_video, recipe, tmp_path):
    path = moving_video(recipe, num_frames=24, width=128, height=96)
    png = tmp_path / "mv.png"
    result = CliRunner().invoke(main, ["inspect", str(path), "--json", "--png", str(png)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["video"]["num_frames"] == 24
    assert report["motion"]["mv_source"] == CODECS[recipe]
    g = report["gop"]
    assert g["I"] + g["P"] + g["B"] + g["other"] == 24
    # The content moves sqrt(3^2 + 2^2) = 3.6 px per frame.
    assert report["motion"]["frames_with_vectors"] >= 24 - g["I"] - (1 if CODECS[recipe] == "bitstream" else 0)
    assert report["motion"]["magnitude_mean_px"] > 2.0
    with Image.open(png) as im:
        assert im.width >= 3 * 96 and im.height > 96


def test_inspect_human_summary(moving_video):
    result = CliRunner().invoke(main, ["inspect", str(moving_video("h264", num_frames=24, width=128, height=96))])
    assert result.exit_code == 0, result.output
    for word in ("codec", "h264", "GOP", "MV source", "bitstream", "magnitude"):
        assert word in result.output


def test_inspect_says_when_pictures_are_unevenly_spaced(tmp_path, moving_video):
    frames, _ = moving_frames(num_frames=12, width=64, height=48, dx=2, dy=1)
    ticks = [0, 1, 3, 6, 7, 9, 12, 13, 15, 18, 19, 21]  # 1, 2, 3 ticks of 1/30 s apart
    path = encode_frames(frames, tmp_path / "vfr.mkv", recipe=EncoderRecipe("libx264", ".mkv"), fps=30,
                         timestamps=ticks)
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    # Matroska keeps milliseconds: 1/30 s is 33 ms; the last picture lasts one tick.
    assert "12 pictures over 0.73 s at a variable rate: 33.0 / 67.0 / 100.0 ms apart" in result.output
    even = CliRunner().invoke(main, ["inspect", str(moving_video("h264", num_frames=12, width=64, height=48))])
    assert "frames      12 at 25.000 fps = 0.48 s\n" in even.output


@pytest.mark.parametrize("content", [None, b"", b"not a video at all\n" * 30])
def test_inspect_bad_files_fail_with_one_line(tmp_path, content):
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]
