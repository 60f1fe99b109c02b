"""Which packets a clip's decoder gets: none of the pictures nothing needs, none past what the clip needs.

A clip starts decoding at the key frame before it; its frames and their references come out of the
decoder in display order, each once enough later packets have arrived to be sure nothing shown
before it is still to come (the reordering delay). Two kinds of decoding are wasted, and
:class:`PacketFeed` saves both where the container's timestamps name each packet's picture exactly
(MP4/MOV, Matroska/WebM; the display index of a packet: its time looked up in the probe's timeline):

- **Pictures before the clip that nothing refers to.** Between the key frame and the clip, the
  non-reference pictures (x264's B-frames outside the pyramid, every MPEG-4 Part 2 B-frame) are
  shown and forgotten. The feed sets the decoder's ``skip_frame`` to NONREF for packets shown before
  ``skip_before`` (FFmpeg then parses them and decodes nothing), once the first picture is placed;
  compvid.frame_index places the pictures after it by their timestamps, holes and all. On
  H.264 with B-frames about half the pictures before a clip (bikes: 9 of 21 a clip). Only for
  codecs whose non-reference pictures nothing refers to (compvid.decode picks them: MPEG-1/2/4
  Part 2; H.264 coded as frames only, since a frame may pair a reference field with a
  non-reference one; HEVC only in its highest temporal sub-layer, since a lower sub-layer's
  ``_N`` picture may be a reference of higher ones and FFmpeg skips by NAL type alone).
- **Packets after the clip.** Once the packets sent name every display index from the first (a key
  frame) up to the largest sent, at or past the clip's ``last`` frame, no packet still to come can
  be shown at or before it (each index is one picture); the rest would only push out pictures
  already decoded. The feed ends and compvid.decode drains the decoder. (Requiring no hole below
  the largest index sent also keeps every picture placed where counting would place it.) On a
  bikes clip (H.264, B-pyramid) one or two pictures fewer.

Where timestamps cannot say this for sure (no timeline, stale timestamps after a seek in MPEG-PS/TS,
AVI, a packet whose time names no frame, two packets naming one, a first packet that is no key
frame), the feed passes every packet on and decodes every picture, as before. (MPEG-4 Part 2 in
AVI skips its B-frames before a clip by another rule: compvid.b_frame_runs.)
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import av

from compvid.frame_index import FrameIndexer
from compvid.timeline import Timeline

# Containers whose packet timestamps are presentation times of one picture each (MP4/MOV,
# Matroska/WebM). Not AVI (packed B-frames: one packet, two pictures, times of slots) nor
# MPEG-PS/TS (stale timestamps after a seek, compvid.frame_index).
EXACT_PTS_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})


class SkipsNonReference:
    """A feed that switches its decoder's ``skip_frame`` between NONREF (decode only reference
    pictures of the packets sent next) and DEFAULT, setting it only when it changes."""

    def __init__(self, codec_context) -> None:
        self.codec_context = codec_context
        self._skipping = False

    def decode_every_picture(self) -> None:
        """Leave the decoder decoding every picture again (``skip_frame`` DEFAULT)."""
        self._set_skipping(False)

    def _set_skipping(self, on: bool) -> None:
        if on != self._skipping:
            self.codec_context.skip_frame = "NONREF" if on else "DEFAULT"
            self._skipping = on


class PacketFeed(SkipsNonReference):
    """``packets`` as the decoder should get them (see the module doc).

    ``codec_context``: the decoder, whose ``skip_frame`` is set per packet (DEFAULT again when the
    feed ends, or by :meth:`decode_every_picture`). ``indexer``: places the pictures; skipping starts
    once it has placed one.
    ``skip_before``: display index from which every picture is decoded (None: skip nothing).
    ``last``: the clip's last display frame; ``drain_early`` False: send every packet.
    ``skippable``: which packets' non-reference pictures nothing else can refer to (None: every
    packet's, as for progressive H.264 and MPEG-1/2/4 Part 2; HEVC: compvid.hevc_nal.top_sub_layer_pictures).
    ``tb``: seconds per timestamp tick. ``ended_early`` / ``skipped`` say afterwards what was saved.
    """

    def __init__(self, packets: Iterable[av.Packet], timeline: Timeline, tb: float, codec_context,
                 indexer: FrameIndexer, *, skip_before: int | None, last: int, drain_early: bool,
                 skippable: Callable[[memoryview], bool] | None = None) -> None:
        super().__init__(codec_context)
        self.packets = packets
        self.timeline = timeline
        self.tb = tb
        self.indexer = indexer
        self.timed = timeline.has_timestamps
        self.skip_before = skip_before if self.timed else None
        self.skippable = skippable
        self.last = last
        self.drain_early = drain_early and self.timed
        self.ended_early = False
        self.skipped = 0  # packets sent while non-reference pictures were skipped
        self._sent: set[int] = set()
        self._low: int | None = None  # index of the first packet (the key frame decoding starts at)
        self._top = -1  # every index in [_low, _top] was sent
        self._high = -1  # the largest index sent

    def __iter__(self) -> Iterator[av.Packet]:
        try:
            for packet in self.packets:
                if not packet.size:  # PyAV's empty end-of-stream packet names nothing
                    yield packet
                    continue
                idx = self._index(packet)
                self._skip(idx is not None and self.skip_before is not None and idx < self.skip_before
                           and self.indexer.next is not None
                           and (self.skippable is None or self.skippable(memoryview(packet))))
                yield packet
                if self.drain_early and self._note(packet, idx) and self._top >= self.last and self._top == self._high:
                    self.ended_early = True
                    return
        finally:
            self.decode_every_picture()

    def _index(self, packet: av.Packet) -> int | None:
        if not self.timed or packet.pts is None:
            return None
        return self.timeline.index_at(packet.pts * self.tb)

    def _skip(self, on: bool) -> None:
        """Decode only reference pictures of the packet sent next (``on``), or every picture."""
        self._set_skipping(on)
        self.skipped += on

    def _note(self, packet: av.Packet, idx: int | None) -> bool:
        """Add the display index ``packet`` names; False (and no early end) where it is unsure."""
        if idx is None or idx in self._sent or (self._low is None and not packet.is_keyframe):
            self.drain_early = False  # no time, a time of no frame, two packets for one frame, a lead-in
            return False
        self._sent.add(idx)
        self._high = max(self._high, idx)
        if self._low is None:
            self._low = self._top = idx
        while self._top + 1 in self._sent:
            self._top += 1
        return True
