"""Where the pictures of raw streams lie in presentation order, and which pictures a decoder
drops although their packets are there.

Raw elementary streams (``.h264``, ``.hevc``) carry no timestamps, so probe sees
their packets in decode order only. A key picture's decode position is not its
display index when pictures decoded after it are shown before it (open GOPs:
B-frames that also predict from the previous GOP). A key picture at decode
position ``d`` is display frame ``d`` plus the number of such *leading* pictures;
no picture needs decoding to count them:

- HEVC: the NAL unit type names the leading pictures of an IRAP (random-access)
  picture, RADL and RASL (H.265 §7.4.2.2); every picture decoded before an IRAP
  picture is output before it, and every trailing picture after it (§8.1).
- H.264: an open GOP starts at a non-IDR I-frame (a recovery point); its leading
  pictures are those decoded right after it with a smaller picture order count, read as
  ``pic_order_cnt_lsb`` off the slice headers (POC type 0, what encoders with
  B-frames write; with type 2 output order is decode order). An IDR picture has
  none: it starts the count afresh.

Pictures whose packets are there but which the decoder never puts out are no frames
(:meth:`RawKeyOrder.skipped`; read in timed containers too, where their timestamps would
otherwise name frames):

- HEVC RASL pictures of an IRAP picture with NoRaslOutputFlag (H.265 §8.1.3): the stream's
  first IRAP picture (a stream cut at a CRA picture), the first after an end of sequence NAL
  unit, an IDR or BLA picture. They predict from pictures the stream does not hold; the decoder skips them.
- HEVC pictures still waiting for output when a new coded video sequence starts (an IDR or
  BLA picture, or the picture after an end of sequence) whose NoOutputOfPriorPicsFlag is 1:
  always for a CRA picture after an end of sequence, else the slice header's
  ``no_output_of_prior_pics_flag`` (H.265 §C.5.2.2). The decoder discards them. FFmpeg outputs a
  picture as soon as more than ``sps_max_num_reorder_pics`` wait, so those waiting are the
  last that many pictures of the previous sequence in presentation order (a stream that keeps
  to its SPS's reorder depth; output forced by a full picture buffer is not modelled).
  An end of sequence NAL unit counts where FFmpeg sees it: at the start of the next packet or
  anywhere but the start of the one before.
- H.264 pictures shown before the first picture of a stream that starts at a non-IDR I-frame
  (cut at the recovery point of an open GOP): the leading pictures decoded after it predict
  from pictures the cut removed. FFmpeg outputs no picture shown before the first recovery
  point (the same after a seek, which restarts the decoder).
"""

from __future__ import annotations

from typing import Sequence

from compvid.hevc_nal import (HEVC_IRAP_TYPES, HEVC_SPS, extradata_nal_units, hevc_nal_units, hvcc_length_size,
                              no_output_of_prior_pics, sps_max_num_reorder_pics)
from compvid.nal import SequenceParameters, annex_b_poc_lsb, nal_length_size, read_sps, scan_access_unit

# HEVC NAL unit types (H.265 Table 7-1) of leading-picture slices: RADL_N, RADL_R, RASL_N, RASL_R.
HEVC_LEADING_TYPES = frozenset({6, 7, 8, 9})
HEVC_RASL_TYPES = frozenset({8, 9})
HEVC_BLA_TYPES = frozenset({16, 17, 18})
HEVC_IDR_TYPES = frozenset({19, 20})
HEVC_END_TYPES = frozenset({36, 37})  # end of sequence, end of bitstream
# Presentation order inside one IRAP picture's GOP: its leading pictures, itself, its trailing pictures.
_LEADING, _IRAP, _TRAILING = 0, 1, 2


class RawKeyOrder:
    """Reads packet by packet (decode order) of an H.264 or HEVC stream what places its key pictures
    in presentation order where no timestamps do (:meth:`display_keys`, untimed Annex B streams), and
    which pictures the decoder drops (:meth:`skipped`, any container: Annex B or length-prefixed)."""

    def __init__(self, codec: str, extradata: bytes | None) -> None:
        self.codec = codec if codec in ("hevc", "h264") else None
        self.annex_b = not (extradata or b"\x00").startswith(b"\x01")  # avcC / hvcC extradata start with 1
        self.warnings: list[str] = []
        # HEVC, per packet in decode order
        self.length_size: int | None = hvcc_length_size(extradata) if self.codec == "hevc" else None
        self.hevc_kind: list[int | None] = []  # _LEADING, _IRAP, _TRAILING; None: no slice in the packet
        self.hevc_leading: list[bool] = []
        self.hevc_skipped: list[bool] = []  # RASL pictures the decoder skips (NoRaslOutputFlag)
        self.hevc_gop: list[int] = []  # how many IRAP pictures were decoded up to this one
        # (first packet, end packet, reorder depth) of each coded video sequence whose waiting pictures
        # the next one discards
        self.hevc_discards: list[tuple[int, int, int | None]] = []
        self._hevc_rasl_skipped = False  # the last IRAP picture's RASL pictures are skipped
        self._hevc_eos_pending = False  # an end of sequence, not at a packet's start: for the next packet
        self._hevc_reorder = next((sps_max_num_reorder_pics(u) for t, u in extradata_nal_units(extradata)
                                   if t == HEVC_SPS), None) if self.codec == "hevc" else None
        self._hevc_sequence: tuple[int, int | None] = (0, self._hevc_reorder)  # (first packet, reorder depth)
        self._hevc_gops = 0  # IRAP pictures so far
        # H.264, per packet in decode order (timed streams: the first packet only)
        if self.codec == "h264" and not self.annex_b:
            self.length_size = nal_length_size(extradata)
        self.sps: SequenceParameters | None = read_sps(extradata) if self.codec == "h264" and self.annex_b else None
        self.poc_lsbs: list[int | None] = []
        self.idr: list[bool] = []
        self.first_key = False  # the first packet holds a key picture
        self._skip: list[bool] | None = None  # what skipped() said

    def add(self, data: bytes | memoryview, key: bool = False) -> None:
        """Note one packet (an access unit), in decode order; ``key``: the demuxer flags it a key frame."""
        if self.codec == "hevc":
            self._add_hevc(data)
        elif self.codec == "h264":
            if not self.idr:
                self.first_key = key
            if self.annex_b:
                if self.sps is None:  # no SPS in the extradata: the first access unit's that holds one
                    self.sps = read_sps(data)
                self.poc_lsbs.append(annex_b_poc_lsb(data, self.sps) if self.sps is not None else None)
            self.idr.append(scan_access_unit(data, self.length_size)[1])

    def _add_hevc(self, data: bytes | memoryview) -> None:
        units = list(hevc_nal_units(data, self.length_size))
        # FFmpeg's rule: an end NAL unit at the packet's start ends the sequence before this packet's
        # picture; one after other units ends it before the next packet's.
        after_end, self._hevc_eos_pending = self._hevc_eos_pending, False
        at_start = True
        for t, _ in units:
            if t in HEVC_END_TYPES:
                if at_start:
                    after_end = True
                else:
                    self._hevc_eos_pending = True
            else:
                at_start = False
        packet = len(self.hevc_kind)
        kind = None
        for t, unit in units:
            if t == HEVC_SPS:
                self._hevc_reorder = sps_max_num_reorder_pics(unit)
            elif t < 32:  # the first slice says what the picture is
                kind = _LEADING if t in HEVC_LEADING_TYPES else _IRAP if t in HEVC_IRAP_TYPES else _TRAILING
                if kind == _IRAP:
                    self._start_irap(packet, t, unit, after_end)
                self.hevc_skipped.append(t in HEVC_RASL_TYPES and self._hevc_rasl_skipped)
                break
        else:
            self.hevc_skipped.append(False)
        self.hevc_kind.append(kind)
        self.hevc_leading.append(kind == _LEADING)
        self.hevc_gop.append(self._hevc_gops)

    def _start_irap(self, packet: int, nal_type: int, unit: memoryview, after_end: bool) -> None:
        first = self._hevc_gops == 0  # the stream's first IRAP picture: decoding starts there
        self._hevc_gops += 1
        idr_or_bla = nal_type in HEVC_IDR_TYPES or nal_type in HEVC_BLA_TYPES
        # NoRaslOutputFlag (H.265 §8.1.3): IDR, BLA, the first IRAP picture, the first after an end.
        self._hevc_rasl_skipped = idr_or_bla or after_end or first
        if idr_or_bla or after_end or first:  # a new coded video sequence: the pictures waiting are output ...
            discard = after_end if not idr_or_bla else no_output_of_prior_pics(unit)  # ... or discarded
            start, reorder = self._hevc_sequence
            if discard and not first:
                self.hevc_discards.append((start, packet, reorder))
                if reorder is None:
                    self.warnings.append(
                        f"packet {packet} starts a coded video sequence that discards the pictures waiting for "
                        "output, and the SPS that says how many cannot be read: frames past it may be miscounted")
            self._hevc_sequence = (packet, self._hevc_reorder)

    def skipped(self, num_packets: int, pts: Sequence[int] | None = None) -> list[bool]:
        """Per packet in decode order: a picture the decoder never puts out (see the module doc); all
        False where the stream says nothing. ``pts``: the packets' presentation times (any unit) where
        the container stamps them, which say which pictures are shown last; None for raw streams."""
        skip = [False] * num_packets
        if self.codec == "hevc" and len(self.hevc_skipped) == num_packets:
            skip = self._hevc_dropped(pts)
        elif self.codec == "h264" and self.idr and (pts is not None or len(self.poc_lsbs) == num_packets):
            skip = self._h264_dropped(num_packets, pts)
        self._skip = skip
        return list(skip)

    def _hevc_dropped(self, pts: Sequence[int] | None) -> list[bool]:
        skip = list(self.hevc_skipped)
        for start, end, reorder in self.hevc_discards:
            waiting = [i for i in range(start, end) if self.hevc_kind[i] is not None and not skip[i]]
            if pts is not None:
                waiting.sort(key=lambda i: pts[i])
            else:  # presentation order up to the order inside a GOP's trailing (or leading) pictures,
                # which changes which packets are dropped but neither the count nor where keys lie
                waiting.sort(key=lambda i: (self.hevc_gop[i], self.hevc_kind[i], i))
            for i in waiting[len(waiting) - (reorder or 0):]:
                skip[i] = True
        return skip

    def _h264_dropped(self, num_packets: int, pts: Sequence[int] | None) -> list[bool]:
        skip = [False] * num_packets
        if not num_packets or not self.first_key or self.idr[0]:
            return skip
        if pts is not None:  # shown before the first picture
            return [p < pts[0] for p in pts]
        if self.sps is None or self.sps.log2_max_poc_lsb is None:
            return skip
        return h264_leading_pictures([0], self.poc_lsbs, self.sps.log2_max_poc_lsb, self.idr)

    def leading_pictures_of(self, key: int, num_packets: int) -> list[bool]:
        """Per packet (``num_packets``, decode order) of an untimed stream: whether it is a leading
        picture (decoded after, shown before) of the key picture at decode position ``key``; all
        False where the stream does not say."""
        if self.codec == "hevc" and len(self.hevc_kind) == num_packets:
            after = self.hevc_kind[key + 1:]
            run = next((n for n, kind in enumerate(after) if kind != _LEADING), len(after))
            return [key < i <= key + run for i in range(num_packets)]
        if (self.codec == "h264" and len(self.poc_lsbs) == num_packets and self.sps is not None
                and self.sps.log2_max_poc_lsb is not None):
            return h264_leading_pictures([key], self.poc_lsbs, self.sps.log2_max_poc_lsb, self.idr)
        return [False] * num_packets

    def display_keys(self, keys: tuple[int, ...], num_packets: int,
                     dropped: Sequence[bool] | None = None) -> tuple[int, ...]:
        """Display indices of the key pictures at decode positions ``keys`` (as given where
        the stream says nothing). ``keys`` and ``num_packets`` count the pictures the decoder puts
        out: those it drops (``dropped`` per packet read, else :meth:`skipped`) take no index."""
        skip = dropped if dropped is not None else self._skip
        if skip is None:
            skip = self.skipped(len(self.hevc_kind) or len(self.idr))
        if self.codec == "hevc":
            shown = [lead for lead, dropped in zip(self.hevc_leading, skip) if not dropped]
            if len(shown) == num_packets:
                return keys_in_display_order(keys, shown)
        if self.codec == "h264" and self.sps is not None and self.sps.log2_max_poc_lsb is not None:
            lsbs = [lsb for lsb, dropped in zip(self.poc_lsbs, skip) if not dropped]
            idr = [i for i, dropped in zip(self.idr, skip) if not dropped]
            if len(lsbs) == len(idr) == num_packets:
                return keys_in_display_order(keys, h264_leading_pictures(keys, lsbs, self.sps.log2_max_poc_lsb, idr))
        return keys


def is_hevc_leading_picture(data: bytes | memoryview) -> bool:
    """Whether an HEVC access unit (one Annex B packet, as raw streams hold) is a leading picture:
    its slices are RADL or RASL."""
    for nal_type, _ in hevc_nal_units(data):
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
