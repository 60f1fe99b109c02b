"""Where decoded pictures lie in the probe's display index space, and how to seek near a frame.

compvid.decode seeks to the key frame at or before a clip's first frame, then places each picture the
decoder puts out (FrameIndexer). Containers disagree on how well they seek and stamp: some land past
the target, MPEG-PS/TS hand stale timestamps to the first pictures after a seek, raw elementary
streams carry none.
"""

from __future__ import annotations

import logging
from collections import Counter

import av

from compvid.mv_strategy import MAX_REFERENCE_DISTANCE
from compvid.probe import VideoInfo
from compvid.timeline import Timeline

log = logging.getLogger(__name__)

# Containers whose demuxer, after a seek, hands stale timestamps to the first pictures
# (PES timestamps re-attached where the parser lands): MPEG-PS and MPEG-TS.
STALE_PTS_AFTER_SEEK_FORMATS = frozenset({"mpeg", "mpegts"})


class Unplaceable(Exception):
    """The frames after a seek carry no timestamps that say where they lie."""


class FrameIndexer:
    """Display indices of the frames a decoder puts out, in the probe's index space.

    Frames come out in display order: once the first is placed, the rest are
    counted, except that a timestamp naming a frame two or more ahead is
    followed (the decoder dropped frames of corrupt data; one ahead is not, as
    AVI with packed B-frames swaps neighbouring timestamps). The first frame is
    placed by looking its timestamp up in the timeline (compvid.timeline), never
    by ``t * fps``. After a seek the first timestamps can be wrong (MPEG-PS: the
    demuxer re-splits the stream where it lands and hands stale timestamps to
    the first pictures), so a seek's frames are held until two of them agree on
    where the first one lies. Decoding from the start, the first frame is placed
    at once: by its timestamp, or as frame 0 when it has none.
    """

    MAX_HELD = 2 * MAX_REFERENCE_DISTANCE  # frames to wait for agreement before giving up

    def __init__(self, timeline: Timeline, *, after_seek: bool) -> None:
        self.timeline = timeline
        self.after_seek = after_seek
        self.held: list[av.VideoFrame] = []  # frames waiting for a place
        self.votes: Counter[int] = Counter()  # index of the first held frame -> frames that say so
        self.next: int | None = None  # index of the next frame, once placed
        # MPEG-PS/TS after a seek: timestamps are not used at all; the key frame the
        # seek landed on (note_landing_key: None = not known) places the frames.
        self.stale_timestamps = False
        self.landed_key: int | None = None
        # Timestamps name each picture exactly (compvid.packet_feed): follow a jump of one frame too,
        # where the decoder skipped a picture on purpose.
        self.exact_timestamps = False

    def place(self, frame: av.VideoFrame) -> list[tuple[int, av.VideoFrame]]:
        """(display index, frame) for each frame placed by this one (none while waiting)."""
        at = None if self.stale_timestamps else self.timeline.index_at(frame.time)
        if self.next is not None:
            idx = at if at is not None and at >= self.next + (1 if self.exact_timestamps else 2) else self.next
            self.next = idx + 1
            return [(idx, frame)]
        self.held.append(frame)
        if self.stale_timestamps:
            if not frame.key_frame:
                if len(self.held) >= self.MAX_HELD:
                    raise Unplaceable
                return []
            if self.landed_key is None:
                raise Unplaceable
            return self._release(self.landed_key - (len(self.held) - 1))
        first = at - (len(self.held) - 1) if at is not None else None
        if not self.after_seek:
            return self._release(first if first is not None and first >= 0 else 0)
        if first is not None and first >= 0:
            self.votes[first] += 1
            if self.votes[first] >= 2:
                return self._release(first)
        if len(self.held) >= self.MAX_HELD:
            raise Unplaceable
        return []

    def skipped(self, count: int) -> None:
        """The decoder was told to skip ``count`` pictures shown after every picture placed so far
        and before the next (compvid.b_frame_runs): count them."""
        if self.next is None:
            raise RuntimeError("pictures skipped before the first was placed")
        self.next += count

    def finish(self) -> list[tuple[int, av.VideoFrame]]:
        """At the end of the packets: frames still held, placed by the landing key frame or the best vote."""
        if self.held and self.stale_timestamps:
            raise Unplaceable
        return self._finish_by_votes()

    def _finish_by_votes(self) -> list[tuple[int, av.VideoFrame]]:
        if not self.held:
            return []
        if not self.votes:
            raise Unplaceable
        return self._release(self.votes.most_common(1)[0][0])

    def _release(self, first: int) -> list[tuple[int, av.VideoFrame]]:
        placed = [(first + k, f) for k, f in enumerate(self.held)]
        self.held = []
        self.next = first + len(placed)
        return placed



def seek_points(first: int, info: VideoInfo, timeline: Timeline) -> list[int]:
    """Display frames to seek to, best first: the key frame at or before ``first``,
    then earlier ones (for containers whose seeking overshoots), ending at 0.
    Streams without timestamps (raw H.264 / HEVC) cannot tell where a seek
    landed: they are decoded from the start."""
    if first <= 0 or not timeline.has_timestamps:
        return [0]
    keys = [k for k in info.keyframe_indices if k <= first]
    return [p for p in dict.fromkeys(keys[::-1][:3]) if p > 0] + [0]


def note_landing_key(packets, indexer: FrameIndexer, info: VideoInfo, timeline: Timeline, tb: float):
    """Pass ``packets`` through, telling ``indexer`` which key frame an MPEG-PS/TS seek landed on.

    The first key packet's timestamp is stale there (up to a few frames off), its
    bytes are not: the key frame of the same packet size nearest that timestamp.
    """
    indexer.stale_timestamps = True
    for packet in packets:
        if packet.is_keyframe and packet.size and indexer.landed_key is None and indexer.next is None:
            near = timeline.index_near(packet.pts * tb) if packet.pts is not None else 0
            same = [k for k, n in zip(info.keyframe_indices, info.keyframe_sizes) if n == packet.size]
            indexer.landed_key = min(same, key=lambda k: abs(k - near)) if same else None
        yield packet


def seek(container, stream, seconds: float, tb: float) -> bool:
    """Seek to the key frame at or before ``seconds``; False where the container cannot seek."""
    try:
        container.seek(int(round(seconds / tb)), stream=stream, backward=True, any_frame=False)
    except (av.error.FFmpegError, OSError) as e:
        log.debug("seeking to %.3f s failed: %s", seconds, e)
        return False
    return True

