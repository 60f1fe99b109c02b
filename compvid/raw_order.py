"""Key frames of streams without timestamps, placed in presentation order.

Raw elementary streams (``.hevc``) carry no timestamps, so probe sees their
packets in decode order only. A key picture's decode position is not its display
index when pictures decoded after it are shown before it: in HEVC those are the
*leading pictures* of an IRAP (random-access) picture, RADL and RASL, which the
NAL unit type names (H.265 §7.4.2.2). The standard fixes the rest (§8.1): every
picture decoded before an IRAP picture is output before it, and every trailing
picture after it. So an IRAP picture at decode position ``d`` is display frame
``d`` plus the number of its leading pictures: no picture needs decoding.
"""

from __future__ import annotations

from typing import Sequence

# HEVC NAL unit types (H.265 Table 7-1) of leading-picture slices: RADL_N, RADL_R, RASL_N, RASL_R.
HEVC_LEADING_TYPES = frozenset({6, 7, 8, 9})


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


def _hevc_nal_types(data: bytes | memoryview):
    """``nal_unit_type`` of every NAL unit of an Annex B packet (start codes 00 00 01)."""
    raw = bytes(data)
    pos = raw.find(b"\x00\x00\x01")
    while 0 <= pos and pos + 3 < len(raw):
        yield (raw[pos + 3] >> 1) & 0x3F
        pos = raw.find(b"\x00\x00\x01", pos + 3)
