"""Pictures before a stream's first key frame: which of them the decoder puts out.

A stream cut anywhere but at a key frame (stream copy at a P-frame, a damaged or truncated head)
starts with pictures that predict from pictures it does not hold. What a decoder does with them
differs by codec and is not written in any header: FFmpeg's H.264, HEVC and MPEG-2 decoders put
out nothing before the first key frame (nor the first key's leading pictures), its MPEG-4 Part 2
decoder puts out most of them, predicted from a grey picture. So probe decodes that lead-in once
(only where the first packet is no key frame) and counts as frames only the pictures that come out.
"""

from __future__ import annotations

import av

# Packets fed past the first key frame: its leading pictures (decoded after it, shown before it)
# and the decoder's reordering delay come out within these.
AFTER_KEY = 16
# A lead-in longer than this many packets is not decoded (a warning says its frames are uncounted).
MAX_PACKETS = 1200


class LeadIn:
    """Fed the stream's packets in decode order from its first one (when that is no key frame),
    decodes them up to :data:`AFTER_KEY` packets past the first key frame, then says which of
    the fed packets' pictures never came out (:meth:`dropped`)."""

    def __init__(self, decoder: av.codec.context.CodecContext) -> None:
        self.decoder = decoder
        self.fed: list[int | None] = []  # per fed packet, in decode order: its pts (None: untimed)
        self.out: list[int | None] = []  # per picture put out: its pts
        self.first_key: int | None = None  # position in ``fed`` of the first key packet
        self.done = False
        self.first_frame: av.VideoFrame | None = None

    def feed(self, packet: av.Packet, pts: int | None) -> None:
        if self.done:
            return
        if packet.is_keyframe and self.first_key is None:
            self.first_key = len(self.fed)
        self.fed.append(pts)
        self._take(packet)
        if self.first_key is not None and len(self.fed) - self.first_key > AFTER_KEY or len(self.fed) >= MAX_PACKETS:
            self.finish()

    def finish(self) -> None:
        """Flush the decoder: every fed picture it will put out comes out now."""
        if not self.done:
            self.done = True
            self._take(None)

    def _take(self, packet: av.Packet | None) -> None:
        try:
            frames = self.decoder.decode(packet)
        except av.error.FFmpegError:  # a picture that cannot be decoded is one that does not come out
            frames = []
        for frame in frames:
            if self.first_frame is None:
                self.first_frame = frame
            self.out.append(frame.pts)

    def dropped(self, known: list[bool], leading: list[bool] | None = None) -> tuple[list[bool], str | None]:
        """Per packet in decode order: whether its picture never comes out, and a warning where the
        lead-in could not be told apart (else None). ``known``: per packet, pictures already known to
        be dropped by the stream's own rules (compvid.raw_order: the first key's RASL pictures);
        ``leading``: per packet, the first key frame's leading pictures, where the stream says (they
        predict from pictures before it, so a decoder that drops the lead-in drops them too)."""
        self.finish()
        skip = list(known)
        missing = len(self.fed) - len(self.out)
        if missing <= 0:
            return skip, None
        shown = set(self.out)
        if None not in shown and len(shown) == len(self.out) and shown <= set(self.fed) and None not in self.fed:
            for i, pts in enumerate(self.fed):  # timestamps say which pictures came out
                skip[i] = skip[i] or pts not in shown
            return skip, None
        before_key = self.first_key if self.first_key is not None else len(self.fed)
        after_key = range(before_key, len(self.fed))
        if missing == before_key + sum(known[i] for i in after_key):
            # untimed: the pictures decoded before the first key frame, and those the rules drop
            skip[:before_key] = [True] * before_key
            return skip, None
        if leading is not None and missing == before_key + sum(known[i] or leading[i] for i in after_key):
            skip[:before_key] = [True] * before_key  # ... and the first key frame's leading pictures
            for i in after_key:
                skip[i] = skip[i] or leading[i]
            return skip, None
        return skip, (f"the stream starts {before_key} pictures before its first key frame and the decoder puts "
                      f"out {missing} fewer pictures than its first {len(self.fed)} packets hold; the timestamps do "
                      "not say which, so frame indices near the start may name later pictures")

    @property
    def truncated(self) -> bool:
        """The lead-in was longer than :data:`MAX_PACKETS` and not decoded to its end."""
        return self.first_key is None and len(self.fed) >= MAX_PACKETS
