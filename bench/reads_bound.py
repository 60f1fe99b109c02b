"""How much of "MV only <= 1.25x the floor" is left once a loader reads what compvid's indexing needs.

    python bench/reads_bound.py [VIDEO ...] [--repeat 5]

The floor (bench/bench_decode.py) seeks, decodes with vector export and looks at each frame's
side data; its bound adds the least output work (vector tables to numpy, the float32 field
written once). To serve the picture asked for (not a neighbour) and to flag damage, compvid must
also read, in Python over PyAV, per picture its coding type, damage flag and timestamp, and per
packet what the container's timestamps do not say: MPEG-1/2/4 Part 2 in AVI or MPEG-PS/TS, the
coding type of every picture in the packet (compvid.b_frame_runs counts pictures by them); H.264
near the clip, its NAL reference flags (compvid.nal: reference matching's decode order).
"reads bound" is the bound plus exactly these reads, done with compvid's own readers, and
nothing else: no reference distances, no B-frame fill, no painting, no bookkeeping. Printed per
video: CPU ms per clip (median of interleaved rounds, as bench_decode), the ratio to the floor,
and what 1.25x the floor leaves beyond the reads bound, per clip and per decoded frame, for all
the rest compvid does. Default videos: a generated 320x240 MPEG-4 Part 2 AVI with B-frames (the
size and codec of UCF-101 and HMDB-51) and the real clips of ../shared/media, when present.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import av
import numpy as np

from bench_decode import DEFAULT_MEDIA, NUM_FRAMES, REAL, compvid_windows, pyav_windows, timed_rounds
from compvid import probe
from compvid.b_frame_runs import RUN_CODECS, picture_types, vop_types
from compvid.decode import output_size
from compvid.nal import nal_length_size, scan_access_unit
from compvid.packet_feed import EXACT_PTS_FORMATS
from compvid.probe import stream_codec_id_name
from compvid.sampling import sliding_window_starts
from compvid.synthetic import write_moving_video

GOAL = 1.25  # issue 12: compvid MV only <= 1.25x the floor


def packet_reader(container, stream):
    """The per-packet read compvid makes for this stream (a function of the packet's bytes), or None."""
    codec = stream_codec_id_name(stream)
    if codec in RUN_CODECS and container.format.name not in EXACT_PTS_FORMATS:
        return vop_types if codec == "mpeg4" else picture_types
    if codec == "h264":
        length_size = nal_length_size(stream.codec_context.extradata)
        return lambda data: scan_access_unit(data, length_size)
    return None


def reads_windows(path, info, starts) -> int:
    """The bound plus compvid's per-packet and per-picture reads, for each window; returns frames decoded."""
    out_h, out_w = output_size(info.width, info.height, 128)
    decoded = 0
    for start in starts:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            s.thread_type = "SLICE"
            s.codec_context.thread_count = 1
            s.codec_context.options = {"flags2": "+export_mvs"}
            read = packet_reader(c, s)
            if start:
                c.seek(int((info.start_seconds + start / info.fps) / s.time_base), stream=s, backward=True)
            got = 0
            for packet in c.demux(s):
                if read is not None and packet.size:
                    read(bytes(packet))
                for f in packet.decode():
                    decoded += 1
                    int(f.pict_type), f.is_corrupt, f.pts  # type, damage flag, timestamp of every picture
                    if round((f.time - info.start_seconds) * info.fps) < start:
                        continue
                    side = f.side_data.get("MOTION_VECTORS")
                    if side is not None:
                        side.to_ndarray()
                    got += 1
                    if got == NUM_FRAMES:
                        break
                if got == NUM_FRAMES:
                    break
            np.full((2, NUM_FRAMES, out_h, out_w), 0.5, np.float32)  # the field, written once
    return decoded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="*")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        videos = [Path(v) for v in args.videos]
        if not videos:
            videos = [write_moving_video(Path(tmp) / "mpeg4-320x240.avi", recipe="mpeg4", num_frames=128,
                                         width=320, height=240, motion="pan")]
            videos += [DEFAULT_MEDIA / name for name in REAL.values() if (DEFAULT_MEDIA / name).is_file()]
        for path in videos:
            info = probe(path)
            starts = sliding_window_starts(info.num_frames, num_frames=NUM_FRAMES)
            frames = reads_windows(path, info, starts) / len(starts)  # decoded frames a clip

            def one(k):
                return starts[k:k + 1]

            cases = {
                "floor": lambda k: pyav_windows(path, info, one(k), rgb=False, export_mvs=True),
                "bound: floor + MV outputs": lambda k: pyav_windows(path, info, one(k), rgb=False, export_mvs=True,
                                                                    bound="mv"),
                "reads bound: bound + compvid's reads": lambda k: reads_windows(path, info, one(k)),
                "compvid MV only, 128 px": lambda k: compvid_windows(path, info, one(k), size=128, with_rgb=False),
            }
            ms = {name: t / len(starts) * 1e3 for name, t in timed_rounds(cases, len(starts), args.repeat).items()}
            floor, reads = ms["floor"], ms["reads bound: bound + compvid's reads"]
            print(f"{path.name}: {len(starts)} clips, {frames:.1f} frames decoded a clip")
            for name, t in ms.items():
                print(f"  {name:40s} {t:8.2f} ms/clip {t / floor:6.2f}x floor")
            left = GOAL * floor - reads
            print(f"  {GOAL}x the floor leaves beyond the reads bound: {left:.2f} ms a clip, "
                  f"{left / frames * 1e3:.1f} us a decoded frame; compvid spends "
                  f"{ms['compvid MV only, 128 px'] - reads:.2f} ms a clip there")


if __name__ == "__main__":
    main()
