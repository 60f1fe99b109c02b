"""Which H.264 pictures can be references: ``nal_ref_idc`` read off the packets.

FFmpeg exports neither the reference index of a motion vector nor whether a
picture is a reference, but the bitstream says the latter in the first byte of
every slice NAL unit: ``nal_ref_idc == 0`` means no other picture may predict
from this one (H.264 §7.4.1). Candidate references for the reference-distance
matcher are thereby restricted to pictures that are references and were
decoded before the picture whose vectors are matched.

The sequence parameter set (SPS) gives the size of the decoded picture buffer
and the widths of the slice-header fields up to ``pic_order_cnt_lsb``, the
picture's place in presentation order, which places the key frames of raw
streams (compvid.raw_order).
"""

from __future__ import annotations

from dataclasses import dataclass

from compvid.errors import CorruptVideoError

# NAL unit types of coded slices (non-IDR, partition A, IDR).
_SLICE_TYPES = frozenset({1, 2, 5})


def nal_length_size(extradata: bytes | None) -> int | None:
    """Length-prefix size of AVCC packets (MP4, MKV) from ``avcC`` extradata; None for Annex B."""
    if extradata and len(extradata) >= 7 and extradata[0] == 1:
        return (extradata[4] & 3) + 1
    return None


def is_reference(data: bytes | memoryview, length_size: int | None) -> bool | None:
    """Whether an H.264 access unit (one packet) holds a reference picture.

    True if a coded slice NAL has ``nal_ref_idc != 0``, False if it has slices
    and all are 0, None if no slice was found (unknown: treat as a reference).
    ``length_size``: AVCC length-prefix size (:func:`nal_length_size`) or None
    for Annex B start codes.
    """
    return scan_access_unit(data, length_size)[0]


def scan_access_unit(data: bytes | memoryview, length_size: int | None) -> tuple[bool | None, bool]:
    """(reference picture as :func:`is_reference`, holds an IDR slice) of one packet.

    An IDR picture empties the list of reference pictures: nothing decoded
    after it refers to anything decoded before it.
    """
    ref: bool | None = None
    idr = False
    for header in _nal_headers(data, length_size):
        kind = header & 0x1F
        if kind in _SLICE_TYPES:
            ref = bool(ref) or bool(header & 0x60)
            idr = idr or kind == 5
    return ref, idr


def _nal_headers(data: bytes | memoryview, length_size: int | None):
    """First byte of every NAL unit of a packet (AVCC or Annex B)."""
    size = len(data)
    if length_size is not None:
        pos = 0
        while pos + length_size < size:
            length = int.from_bytes(data[pos : pos + length_size], "big")
            if length <= 0:
                return  # malformed: say nothing more
            yield data[pos + length_size]
            pos += length_size + length
        return
    raw = bytes(data)
    pos = raw.find(b"\x00\x00\x01")
    while 0 <= pos and pos + 3 < size:
        yield raw[pos + 3]
        pos = raw.find(b"\x00\x00\x01", pos + 3)


# Profiles whose SPS carries chroma format, bit depths and scaling matrices (H.264 §7.3.2.1.1).
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


def max_num_ref_frames(extradata: bytes | None) -> int | None:
    """``max_num_ref_frames`` of the first SPS in H.264 extradata (``avcC`` or Annex B); None if unreadable.

    The size of the decoded picture buffer: with 1, every inter picture
    predicts from the one reference picture decoded before it.
    """
    sps = read_sps(extradata)
    return None if sps is None else sps.max_num_ref_frames


@dataclass(frozen=True)
class SequenceParameters:
    """The H.264 SPS fields compvid reads (§7.4.2.1.1): bit widths of slice-header fields and the DPB size."""

    max_num_ref_frames: int
    log2_max_frame_num: int  # bits of frame_num
    poc_type: int  # pic_order_cnt_type: 0 = POC LSBs in every slice header, 2 = output order is decode order
    log2_max_poc_lsb: int | None  # bits of pic_order_cnt_lsb (poc_type 0 only)
    frame_mbs_only: bool | None  # no field pictures: no field_pic_flag in slice headers (None: unread)
    separate_colour_plane: bool  # 4:4:4 coded as three planes: colour_plane_id in slice headers


def read_sps(data: bytes | None) -> SequenceParameters | None:
    """The first SPS of H.264 extradata (``avcC``) or of Annex B data (extradata or a packet); None if unreadable."""
    if not data:
        return None
    try:
        sps = _first_sps(bytes(data))
        return None if sps is None else _parse_sps(sps)
    except (IndexError, ValueError):
        return None


def annex_b_poc_lsb(data: bytes | memoryview, sps: SequenceParameters) -> int | None:
    """``pic_order_cnt_lsb`` of the first slice of an Annex B access unit (POC type 0); None without one."""
    if sps.poc_type != 0 or sps.log2_max_poc_lsb is None or sps.frame_mbs_only is None:
        return None
    raw = bytes(data)
    pos = raw.find(b"\x00\x00\x01")
    while 0 <= pos and pos + 3 < len(raw):
        end = raw.find(b"\x00\x00\x01", pos + 3)
        kind = raw[pos + 3] & 0x1F
        if kind in _SLICE_TYPES:
            # The slice header's first fields fit in 32 bytes; remove emulation prevention there.
            header = raw[pos + 4:pos + 36].replace(b"\x00\x00\x03", b"\x00\x00")
            try:
                return _slice_poc_lsb(BitReader(header), sps, idr=kind == 5)
            except ValueError:  # CorruptVideoError: the header is cut short
                return None
        pos = end
    return None


def _slice_poc_lsb(bits: BitReader, sps: SequenceParameters, *, idr: bool) -> int:
    """Read a slice header (§7.3.3) up to ``pic_order_cnt_lsb``."""
    bits.ue(), bits.ue(), bits.ue()  # first_mb_in_slice, slice_type, pic_parameter_set_id
    if sps.separate_colour_plane:
        bits.u(2)  # colour_plane_id
    bits.u(sps.log2_max_frame_num)  # frame_num
    if not sps.frame_mbs_only and bits.u(1):  # field_pic_flag
        bits.u(1)  # bottom_field_flag
    if idr:
        bits.ue()  # idr_pic_id
    return bits.u(sps.log2_max_poc_lsb)


def _first_sps(extradata: bytes) -> bytes | None:
    """The first SPS NAL unit's payload (after its header byte), emulation prevention removed."""
    nal = None
    if extradata[0] == 1 and len(extradata) > 8:  # avcC: ... numOfSequenceParameterSets, then (u16 size, NAL)
        if extradata[5] & 0x1F:
            size = int.from_bytes(extradata[6:8], "big")
            nal = extradata[8 : 8 + size]
    else:  # Annex B start codes
        pos = extradata.find(b"\x00\x00\x01")
        while 0 <= pos < len(extradata) - 3:
            end = extradata.find(b"\x00\x00\x01", pos + 3)
            unit = extradata[pos + 3 : end if end >= 0 else len(extradata)]
            if unit and unit[0] & 0x1F == 7:
                nal = unit.rstrip(b"\x00")
                break
            pos = end
    if not nal or nal[0] & 0x1F != 7:
        return None
    return nal[1:].replace(b"\x00\x00\x03", b"\x00\x00")  # emulation prevention bytes


class BitReader:
    """Big-endian bit reader with Exp-Golomb codes (H.264 §9.1, H.265 §9.2)."""

    def __init__(self, data: bytes) -> None:
        self.value, self.left = int.from_bytes(data, "big"), 8 * len(data)

    def u(self, n: int) -> int:
        if n > self.left:
            raise CorruptVideoError("SPS or slice header ends early")
        self.left -= n
        return (self.value >> self.left) & ((1 << n) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise CorruptVideoError("SPS or slice header: bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)


def _parse_sps(sps: bytes) -> SequenceParameters:
    bits = BitReader(sps)
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    separate_colour_plane = False
    if profile in _HIGH_PROFILES:
        chroma_format = bits.ue()
        if chroma_format == 3:
            separate_colour_plane = bool(bits.u(1))
        bits.ue(), bits.ue()  # bit depths
        bits.u(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format != 3 else 12):
                if bits.u(1):  # this scaling list is present: skip it (§7.3.2.1.1.1)
                    last = following = 8
                    for _ in range(16 if i < 6 else 64):
                        if following:
                            following = (last + bits.se() + 256) % 256
                        last = following or last
    log2_max_frame_num = bits.ue() + 4
    poc_type = bits.ue()
    log2_max_poc_lsb = None
    if poc_type == 0:
        log2_max_poc_lsb = bits.ue() + 4
    elif poc_type == 1:
        bits.u(1)
        bits.se(), bits.se()
        for _ in range(bits.ue()):
            bits.se()
    max_refs = bits.ue()
    try:  # the rest matters to slice headers only: an SPS cut short here still gives max_num_ref_frames
        bits.u(1)  # gaps_in_frame_num_value_allowed_flag
        bits.ue(), bits.ue()  # picture width and height in macroblocks
        frame_mbs_only: bool | None = bool(bits.u(1))
    except ValueError:
        frame_mbs_only = None
    return SequenceParameters(max_refs, log2_max_frame_num, poc_type, log2_max_poc_lsb, frame_mbs_only,
                              separate_colour_plane)
