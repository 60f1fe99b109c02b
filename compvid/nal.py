"""Which H.264 pictures can be references: ``nal_ref_idc`` read off the packets.

FFmpeg exports neither the reference index of a motion vector nor whether a
picture is a reference, but the bitstream says the latter in the first byte of
every slice NAL unit: ``nal_ref_idc == 0`` means no other picture may predict
from this one (H.264 §7.4.1). Candidate references for the reference-distance
matcher are thereby restricted to pictures that are references and were
decoded before the picture whose vectors are matched.
"""

from __future__ import annotations

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
