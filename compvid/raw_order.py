"""Key frames of streams without timestamps, placed in presentation order.

Raw elementary streams (``.h264``, ``.hevc``) carry no timestamps, so probe sees
their packets in decode order only. A key picture's decode position is not its
display index when pictures decoded after it are shown before it (open GOPs:
B-frames that also predict from the previous GOP). A key picture at decode
position ``d`` is display frame ``d`` plus the number of such *leading* pictures;
no picture needs decoding to count them:

- HEVC: the NAL unit type names the leading pictures of an IRAP (random-access)
  picture, RADL and RASL (H.265 §7.4.2.2); every picture decoded before an IRAP
  picture is output before it, and every trailing picture after it (§8.1).
- HEVC RASL pictures of an IRAP picture that starts the stream (a stream cut at a
  CRA picture), follows an end of sequence, or is a BLA picture predict from pictures
  the stream does not hold: the decoder skips them (H.265 §8.1.3, NoRaslOutputFlag),
  so they are neither frames nor leading pictures (:meth:`RawKeyOrder.skipped`; read
  in timed containers too, where their timestamps would otherwise name frames).
- H.264: an open GOP starts at a non-IDR I-frame (a recovery point); its leading
  pictures are those decoded right after it with a smaller picture order count, read as
  ``pic_order_cnt_lsb`` off the slice headers (POC type 0, what encoders with
  B-frames write; with type 2 output order is decode order). An IDR picture has
  none: it starts the count afresh.
"""

from __future__ import annotations

from typing import Sequence

from compvid.nal import SequenceParameters, annex_b_poc_lsb, read_sps, scan_access_unit

# HEVC NAL unit types (H.265 Table 7-1) of leading-picture slices: RADL_N, RADL_R, RASL_N, RASL_R.
HEVC_LEADING_TYPES = frozenset({6, 7, 8, 9})
HEVC_RASL_TYPES = frozenset({8, 9})
HEVC_BLA_TYPES = frozenset({16, 17, 18})
HEVC_IRAP_TYPES = frozenset(range(16, 24))  # BLA, IDR, CRA, reserved IRAP
HEVC_IDR_TYPES = frozenset({19, 20})
HEVC_END_TYPES = frozenset({36, 37})  # end of sequence, end of bitstream


class RawKeyOrder:
    """Reads, packet by packet of an untimed Annex B H.264 / HEVC stream (decode order), what
    places its key pictures in presentation order (:meth:`display_keys`), and of any HEVC stream
    (Annex B or length-prefixed, as MP4/MKV hold it), the pictures the decoder skips (:meth:`skipped`)."""

    def __init__(self, codec: str, extradata: bytes | None) -> None:
        annex_b = not (extradata or b"\x00").startswith(b"\x01")  # avcC / hvcC extradata start with 1
        self.codec = codec if codec == "hevc" or annex_b and codec == "h264" else None
        # hvcC: NAL units prefixed by their length in (lengthSizeMinusOne + 1) bytes (ISO/IEC 14496-15).
        self.length_size: int | None = None
        if self.codec == "hevc" and not annex_b:
            self.length_size = (extradata[21] & 3) + 1 if extradata is not None and len(extradata) > 22 else 4
        self.sps: SequenceParameters | None = read_sps(extradata) if self.codec == "h264" else None
        self.hevc_leading: list[bool] = []
        self.hevc_skipped: list[bool] = []  # RASL pictures the decoder skips (NoRaslOutputFlag)
        self._hevc_rasl_skipped = False  # the last IRAP picture's RASL pictures are skipped
        self._hevc_after_end = True  # the next IRAP picture starts a coded video sequence afresh
        self.poc_lsbs: list[int | None] = []
        self.idr: list[bool] = []

    def add(self, data: bytes | memoryview) -> None:
        """Note one packet (an access unit), in decode order."""
        if self.codec == "hevc":
            self._add_hevc(data)
        elif self.codec == "h264":
            if self.sps is None and not self.poc_lsbs:  # no SPS in the extradata: the first access unit's
                self.sps = read_sps(data)
            self.poc_lsbs.append(annex_b_poc_lsb(data, self.sps) if self.sps is not None else None)
            self.idr.append(scan_access_unit(data, None)[1])

    def _add_hevc(self, data: bytes | memoryview) -> None:
        vcl = None  # the first slice's type says what the picture is
        for t in _hevc_nal_types(data, self.length_size):  # in stream order: an end NAL unit may come first
            if t in HEVC_END_TYPES:
                self._hevc_after_end = True
            elif t < 32 and vcl is None:
                vcl = t
                if vcl in HEVC_IRAP_TYPES:
                    # NoRaslOutputFlag (H.265 §8.1.3): IDR, BLA, the first picture, the first after an end.
                    self._hevc_rasl_skipped = vcl in HEVC_IDR_TYPES or vcl in HEVC_BLA_TYPES or self._hevc_after_end
                    self._hevc_after_end = False
        self.hevc_leading.append(vcl in HEVC_LEADING_TYPES)
        self.hevc_skipped.append(vcl in HEVC_RASL_TYPES and self._hevc_rasl_skipped)

    def skipped(self, num_packets: int) -> list[bool]:
        """Per packet in decode order: a picture the decoder skips and never puts out (HEVC RASL
        pictures whose references precede the stream); all False where the stream says nothing."""
        if self.codec == "hevc" and len(self.hevc_skipped) == num_packets:
            return list(self.hevc_skipped)
        return [False] * num_packets

    def display_keys(self, keys: tuple[int, ...], num_packets: int) -> tuple[int, ...]:
        """Display indices of the key pictures at decode positions ``keys`` (as given where
        the stream says nothing). ``keys`` and ``num_packets`` count the pictures the decoder puts
        out: those it skips (:meth:`skipped`) take no index."""
        shown = [lead for lead, skip in zip(self.hevc_leading, self.hevc_skipped) if not skip]
        if self.codec == "hevc" and len(shown) == num_packets:
            return keys_in_display_order(keys, shown)
        if (self.codec == "h264" and len(self.poc_lsbs) == num_packets and self.sps is not None
                and self.sps.log2_max_poc_lsb is not None):
            return keys_in_display_order(keys, h264_leading_pictures(keys, self.poc_lsbs, self.sps.log2_max_poc_lsb,
                                                                     self.idr))
        return keys


def is_hevc_leading_picture(data: bytes | memoryview) -> bool:
    """Whether an HEVC access unit (one Annex B packet, as raw streams hold) is a leading picture:
    its slices are RADL or RASL."""
    for nal_type in _hevc_nal_types(data):
        if nal_type < 32:  # a slice (VCL NAL unit): it says what the picture is
            return nal_type in HEVC_LEADING_TYPES
    return False


def keys_in_display_order(keys: Sequence[int], leading: Sequence[bool]) -> tuple[int, ...]:
    """Display indices of the key pictures at decode positions ``keys`` (sorted).

    ``leading``: per packet in decode order, whether it is a leading picture; those
    between a key picture and the next are its own, shown before it.
    """
    bounds = list(keys) + [len(leading)]
    return tuple(d + sum(leading[d + 1:end]) for d, end in zip(bounds, bounds[1:]))


def h264_leading_pictures(keys: Sequence[int], poc_lsbs: Sequence[int | None], log2_max_poc_lsb: int,
                          idr: Sequence[bool]) -> list[bool]:
    """Per H.264 packet in decode order: whether it is a leading picture of the key picture before it.

    ``poc_lsbs``: each packet's ``pic_order_cnt_lsb`` (None: unread); ``idr``: each packet holds
    an IDR picture. Leading pictures are those right after a non-IDR key picture in decode order
    with a smaller order count; the first later one ends them (as HEVC requires of its leading
    pictures, and as encoders write open GOPs), which also keeps the comparison near the key:
    LSBs wrap at ``2 ** log2_max_poc_lsb``, and only pictures less than half of that apart are
    ordered by their difference modulo the wrap, taken in (-half, half] (§8.2.1.1).
    """
    wrap = 1 << log2_max_poc_lsb
    leading = [False] * len(poc_lsbs)
    bounds = list(keys) + [len(poc_lsbs)]
    for d, end in zip(bounds, bounds[1:]):
        if idr[d] or poc_lsbs[d] is None:
            continue
        for j in range(d + 1, end):
            if poc_lsbs[j] is None or (poc_lsbs[j] - poc_lsbs[d]) % wrap <= wrap // 2:
                break
            leading[j] = True
    return leading


def _hevc_nal_types(data: bytes | memoryview, length_size: int | None = None):
    """``nal_unit_type`` of every NAL unit of a packet: Annex B (start codes 00 00 01), or
    NAL units prefixed by their length in ``length_size`` bytes (read without copying the packet)."""
    if length_size:
        view, pos = memoryview(data), 0
        while pos + length_size < len(view):
            size = int.from_bytes(view[pos:pos + length_size], "big")
            yield (view[pos + length_size] >> 1) & 0x3F
            pos += length_size + size
        return
    raw = bytes(data)
    pos = raw.find(b"\x00\x00\x01")
    while 0 <= pos and pos + 3 < len(raw):
        yield (raw[pos + 3] >> 1) & 0x3F
        pos = raw.find(b"\x00\x00\x01", pos + 3)
