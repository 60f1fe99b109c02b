"""Which H.264 pictures can be references: ``nal_ref_idc`` read off the packets.

FFmpeg exports neither the reference index of a motion vector nor whether a
picture is a reference, but the bitstream says the latter in the first byte of
every slice NAL unit: ``nal_ref_idc == 0`` means no other picture may predict
from this one (H.264 §7.4.1). Candidate references for the reference-distance
matcher are thereby restricted to pictures that are references and were
decoded before the picture whose vectors are matched.
"""

from __future__ import annotations

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
    if not extradata:
        return None
    try:
        sps = _first_sps(bytes(extradata))
        return None if sps is None else _parse_max_num_ref_frames(sps)
    except (IndexError, ValueError):
        return None


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


class _Bits:
    """Big-endian bit reader with Exp-Golomb codes (H.264 §9.1)."""

    def __init__(self, data: bytes) -> None:
        self.value, self.left = int.from_bytes(data, "big"), 8 * len(data)

    def u(self, n: int) -> int:
        if n > self.left:
            raise CorruptVideoError("H.264 SPS ends early")
        self.left -= n
        return (self.value >> self.left) & ((1 << n) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise CorruptVideoError("H.264 SPS: bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)


def _parse_max_num_ref_frames(sps: bytes) -> int:
    bits = _Bits(sps)
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    if profile in _HIGH_PROFILES:
        chroma_format = bits.ue()
        if chroma_format == 3:
            bits.u(1)  # separate_colour_plane_flag
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
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        bits.u(1)
        bits.se(), bits.se()
        for _ in range(bits.ue()):
            bits.se()
    return bits.ue()
