"""HEVC NAL units read off packets without decoding: their types, the reorder depth an SPS
declares, an IRAP slice's ``no_output_of_prior_pics_flag``, and whether a packet's pictures lie
in the stream's highest temporal sub-layer.

Packets hold NAL units behind Annex B start codes (raw ``.hevc``, MPEG-TS) or behind a
big-endian length of ``length_size`` bytes (MP4 / MKV, ISO/IEC 14496-15). Each NAL unit
starts with a 2-byte header whose bits 1..6 are ``nal_unit_type`` (H.265 §7.3.1.2).
"""

from __future__ import annotations

from typing import Iterator

from compvid.nal import BitReader

HEVC_SPS = 33
HEVC_IRAP_TYPES = frozenset(range(16, 24))  # BLA, IDR, CRA, reserved IRAP


def hevc_nal_units(data: bytes | memoryview, length_size: int | None = None) -> Iterator[tuple[int, memoryview]]:
    """(nal_unit_type, the NAL unit from its header on) of every NAL unit of a packet, in stream
    order: Annex B (``length_size`` None) or length-prefixed. Stops at a length running past the end."""
    view = memoryview(data)
    size = len(view)
    if length_size:
        pos = 0
        while pos + length_size < size:
            length = int.from_bytes(view[pos:pos + length_size], "big")
            start = pos + length_size
            if length <= 0 or start + length > size:
                return  # malformed: say nothing more
            yield (view[start] >> 1) & 0x3F, view[start:start + length]
            pos = start + length
        return
    raw = bytes(view)
    pos = raw.find(b"\x00\x00\x01")
    while 0 <= pos and pos + 3 < size:
        end = raw.find(b"\x00\x00\x01", pos + 3)
        yield (raw[pos + 3] >> 1) & 0x3F, view[pos + 3:end if end >= 0 else size]
        pos = end


def hvcc_length_size(extradata: bytes | None) -> int | None:
    """Length-prefix size of MP4 / MKV packets from ``hvcC`` extradata (lengthSizeMinusOne + 1, byte 21);
    None for Annex B extradata or none."""
    if not extradata or extradata[0] != 1:
        return None
    return (extradata[21] & 3) + 1 if len(extradata) > 22 else 4


def extradata_nal_units(extradata: bytes | None) -> list[tuple[int, memoryview]]:
    """(type, NAL unit) of the parameter sets in extradata: ``hvcC`` arrays or Annex B."""
    if not extradata:
        return []
    if extradata[0] != 1:
        return list(hevc_nal_units(extradata))
    # hvcC: 22 bytes of configuration, numOfArrays, then per array: type byte, u16 count,
    # and per NAL unit: u16 length, the unit.
    view, units = memoryview(extradata), []
    if len(view) < 23:
        return units
    pos = 23
    for _ in range(view[22]):
        if pos + 3 > len(view):
            break
        count = int.from_bytes(view[pos + 1:pos + 3], "big")
        pos += 3
        for _ in range(count):
            length = int.from_bytes(view[pos:pos + 2], "big")
            unit = view[pos + 2:pos + 2 + length]
            if length < 2 or len(unit) < length:
                return units
            units.append(((unit[0] >> 1) & 0x3F, unit))
            pos += 2 + length
    return units


def sps_max_num_reorder_pics(sps: bytes | memoryview) -> int | None:
    """``sps_max_num_reorder_pics`` of the highest sub-layer of an HEVC SPS NAL unit (header
    included): how many decoded pictures may wait for output (H.265 §7.4.3.2.1). None if unreadable."""
    rbsp = bytes(sps[2:200]).replace(b"\x00\x00\x03", b"\x00\x00")  # emulation prevention bytes
    try:
        bits = BitReader(rbsp)
        bits.u(4)  # sps_video_parameter_set_id
        max_sub_layers_minus1 = bits.u(3)
        bits.u(1)  # sps_temporal_id_nesting_flag
        _skip_profile_tier_level(bits, max_sub_layers_minus1)
        bits.ue()  # sps_seq_parameter_set_id
        if bits.ue() == 3:  # chroma_format_idc
            bits.u(1)  # separate_colour_plane_flag
        bits.ue(), bits.ue()  # pic_width_in_luma_samples, pic_height_in_luma_samples
        if bits.u(1):  # conformance_window_flag: four offsets
            for _ in range(4):
                bits.ue()
        bits.ue(), bits.ue(), bits.ue()  # bit depths, log2_max_pic_order_cnt_lsb_minus4
        first = 0 if bits.u(1) else max_sub_layers_minus1  # sps_sub_layer_ordering_info_present_flag
        reorder = None
        for _ in range(first, max_sub_layers_minus1 + 1):  # the last one read is the highest sub-layer's
            bits.ue()  # sps_max_dec_pic_buffering_minus1
            reorder = bits.ue()
            bits.ue()  # sps_max_latency_increase_plus1
        return reorder
    except ValueError:  # CorruptVideoError: cut short or a bad code
        return None


def _skip_profile_tier_level(bits: BitReader, max_sub_layers_minus1: int) -> None:
    """profile_tier_level(1, max_sub_layers_minus1) (H.265 §7.3.3)."""
    bits.u(88)  # general profile space, tier, profile idc, 32 compatibility flags, 48 bits of constraint flags
    bits.u(8)  # general_level_idc
    present = [(bits.u(1), bits.u(1)) for _ in range(max_sub_layers_minus1)]  # (profile, level) present
    if max_sub_layers_minus1 > 0:
        bits.u(2 * (8 - max_sub_layers_minus1))  # reserved_zero_2bits
    for profile, level in present:
        if profile:
            bits.u(88)
        if level:
            bits.u(8)


def no_output_of_prior_pics(irap_slice: bytes | memoryview) -> bool:
    """``no_output_of_prior_pics_flag`` of an IRAP slice NAL unit (header included): the bit after
    ``first_slice_segment_in_pic_flag`` (H.265 §7.3.6.1)."""
    return len(irap_slice) > 2 and bool(irap_slice[2] & 0x40)


def top_sub_layer_pictures(extradata: bytes | None):
    """A test for packets of an MP4 / MKV HEVC stream whose pictures lie in its highest temporal
    sub-layer (every VCL NAL unit's ``TemporalId`` = the SPS's ``sps_max_sub_layers_minus1``), or
    None where the extradata holds no readable SPS.

    A sub-layer non-reference picture (``TRAIL_N``, ``TSA_N`` ...) may still be a reference of
    pictures in higher sub-layers (H.265 §3.132); FFmpeg's ``skip_frame`` NONREF skips it by type
    alone. In the highest sub-layer nothing can refer to it.
    """
    sps = next((unit for kind, unit in extradata_nal_units(extradata) if kind == HEVC_SPS), None)
    length_size = hvcc_length_size(extradata)
    if sps is None or len(sps) < 3 or not length_size:
        return None
    top = (sps[2] >> 1) & 7  # after the 2-byte header: sps_video_parameter_set_id (4), sps_max_sub_layers_minus1 (3)

    def in_top_layer(data: bytes | memoryview) -> bool:
        layers = [(unit[1] & 7) - 1 for kind, unit in hevc_nal_units(data, length_size) if kind < 32 and len(unit) > 1]
        return bool(layers) and all(layer == top for layer in layers)

    return in_top_layer
