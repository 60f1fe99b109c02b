"""MPEG-1/2 and MPEG-4 Part 2 where timestamps do not name pictures (AVI, MPEG-PS/TS): the B-frames
before a clip are skipped, run by run, and counted where they lie.

AVI's timestamps are slots, not display times (with B-frames, Xvid's packed ones above all: one
packet holds a P-VOP and the B-VOP shown before it, an empty not-coded VOP fills the slot after),
and MPEG-PS/TS hand stale timestamps to the first pictures after a seek, so compvid.frame_index
places these pictures by counting them. A skipped picture must then still be counted, at the right
place. These codecs make that exact: their B-frames are never references, and in decode order each
reference (I/P, MPEG-4's S) is followed by the run of B-frames shown just before it.
:class:`BFrameRunFeed` decides at each reference packet whether the run after it is skipped
(FFmpeg's ``skip_frame`` NONREF for every packet up to the next reference; FFmpeg's MPEG decoders
then put out nothing for them) and counts each skipped B-frame (read off the packet: the coding
type after each picture start code) once the decoder has put out the pictures of its packet; the
reference shown before the run comes out while the run's first packet is decoded, the one after it
only with the next reference. Deciding per run, not per packet, also keeps FFmpeg's handling of
packed B-frames whole: it decodes a packed B-VOP with the next packet, and drops the following one
when it skips that B-VOP. A run is skipped only where its reference lies well before the clip
(``SAFETY_FRAMES``), so slot times and stale timestamps, a few frames off display times, cannot put
a needed picture in a skipped run. Megamind (Xvid, packed B-frames, GOPs of 50-100 frames): about
16 of 52 pictures a 16-frame clip left undecoded.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import av

from compvid.frame_index import FrameIndexer
from compvid.packet_feed import SkipsNonReference
from compvid.timeline import Timeline

VOP_START = b"\x00\x00\x01\xb6"  # MPEG-4 Part 2: vop_coding_type, the 2 bits after it (I P B S)
PICTURE_START = b"\x00\x00\x01\x00"  # MPEG-1/2: picture_coding_type, 3 bits after 10 of temporal_reference
RUN_CODECS = frozenset({"mpeg4", "mpeg1video", "mpeg2video"})  # B-frames never references
# FFmpeg's bound for a not-coded placeholder VOP (MAX_NVOP_SIZE): a packet this small never starts a run.
MAX_NVOP_SIZE = 19
# A run is skipped only where its reference packet's slot lies this many frames before the clip's
# first frame minus one: slots and display indices differ by a run of B-frames and placeholders.
SAFETY_FRAMES = 8


def vop_types(data: bytes) -> str:
    """The coding type ('I', 'P', 'B', 'S') of each VOP in an MPEG-4 Part 2 packet, in order."""
    types = []
    at = data.find(VOP_START)
    while 0 <= at < len(data) - 4:
        types.append("IPBS"[data[at + 4] >> 6])
        at = data.find(VOP_START, at + 4)
    return "".join(types)


def picture_types(data: bytes) -> str:
    """The coding type ('I', 'P', 'B', 'D'; '?' for a reserved value) of each picture header in an
    MPEG-1/2 packet, in order (two for a frame coded as two field pictures)."""
    types = []
    at = data.find(PICTURE_START)
    while 0 <= at < len(data) - 5:
        types.append("?IPBD???"[(data[at + 5] >> 3) & 7])
        at = data.find(PICTURE_START, at + 4)
    return "".join(types)


def _b_frames(types: str, codec: str) -> int:
    """B-frames of a packet whose picture types are ``types``: each B-VOP (MPEG-4: a packed packet
    holds one besides its P-VOP), or the packet's frame when it is a B-frame (MPEG-1/2: its two
    field pictures are one frame)."""
    return types.count("B") if codec == "mpeg4" else int(types[:1] == "B")


class BFrameRunFeed(SkipsNonReference):
    """``packets`` of ``codec`` (one of RUN_CODECS) passed on with the decoder's ``skip_frame`` set
    run by run (module doc).

    Runs whose reference packet's slot (its dts, else pts, looked up in ``timeline``) lies before
    ``skip_before - SAFETY_FRAMES`` are skipped once ``indexer`` has placed a picture; each skipped
    B-frame is added to the indexer's count (``FrameIndexer.skipped``) before the next packet is sent.
    ``tb``: seconds per timestamp tick. ``skipped`` counts the B-frames skipped.
    """

    def __init__(self, packets: Iterable[av.Packet], timeline: Timeline, tb: float, codec_context,
                 indexer: FrameIndexer, *, codec: str, skip_before: int) -> None:
        if codec not in RUN_CODECS:
            raise ValueError(f"B-frame runs are read for {sorted(RUN_CODECS)}, not {codec!r}")
        super().__init__(codec_context)
        self.packets = packets
        self.codec = codec
        self.read_types = vop_types if codec == "mpeg4" else picture_types
        self.timeline = timeline
        self.tb = tb
        self.indexer = indexer
        self.skip_before = skip_before - SAFETY_FRAMES
        self.skipped = 0

    def __iter__(self) -> Iterator[av.Packet]:
        pending = 0  # B-frames of the packet just sent, skipped: counted once its pictures are out
        try:
            for packet in self.packets:
                if pending:
                    self.indexer.skipped(pending)
                    pending = 0
                if packet.size:
                    types = self.read_types(bytes(packet))
                    if types[:1] in ("I", "P", "S") and packet.size > MAX_NVOP_SIZE:  # a run starts
                        self._set_skipping(self._before_clip(packet) and self.indexer.next is not None)
                    if self._skipping:
                        pending = _b_frames(types, self.codec)
                        self.skipped += pending
                yield packet
            if pending:
                self.indexer.skipped(pending)
        finally:
            self.decode_every_picture()

    def _before_clip(self, packet: av.Packet) -> bool:
        stamp = packet.dts if packet.dts is not None else packet.pts
        if stamp is None or not self.timeline.has_timestamps:
            return False
        return self.timeline.index_near(stamp * self.tb) < self.skip_before
