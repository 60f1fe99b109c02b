"""Motion estimated from decoded frames, for codecs whose decoder exports no vectors.

HEVC, VP9, AV1 and every other codec outside :data:`compvid.probe.BITSTREAM_MV_CODECS`
get their vectors from FFmpeg's ``mestimate`` filter (block matching on the
luma plane) run through PyAV's filter graph. The result follows compvid's
convention (README, "The motion-vector convention"): forward displacement in pixels per frame step,
``mv_source="estimated"``, whole-pixel precision.

What ``mestimate`` does, measured with FFmpeg 8 / PyAV 18 on content moving
(+3, −2) px per frame (see ``tests/compvid/test_estimate.py``):

- For each frame it emits two rows per ``block_size``-square block of a grid
  anchored at (0, 0): ``source = -1`` matched in the previous frame it was given
  and ``source = +1`` matched in the next one, both one pushed frame away.
  ``src − dst`` is (−3, +2) for the past row and (+3, −2) for the future row.
  ``motion_x/motion_y/motion_scale`` are left uninitialised, so only
  ``src − dst`` (whole pixels) is usable.
- Only whole blocks are searched: a strip of ``width % block_size`` columns at
  the right (and rows at the bottom) gets no block. compvid widens the last
  column / row of blocks to the frame edge, so the border strip carries the
  neighbouring block's vector instead of a silent zero.
- It outputs frame *k* only once frame *k+1* has arrived, and at end of stream
  it drops the last frame. ``flush`` therefore pushes a copy of the last frame
  after it: the last frame then comes out with its (valid) past vectors and a
  future match against itself, which is discarded.
- The first frame it sees is matched against itself as its "past" (all rows
  zero, meaningless). Those rows are discarded; the first frame keeps only its
  future vectors, i.e. the motion from it to the next frame, which under the
  constant-velocity reading is the best estimate of its own motion.
- mestimate only searches references inside the frame. Where content enters
  from outside, one of a block's two references lacks it and its vector is
  wrong (averaged with the right one it halves the motion). Where the past and
  future vectors of a block disagree by more than a pixel, compvid compares the
  mean absolute luma difference of the block and each match and drops the
  clearly worse row (``MotionEstimator.dropped_rows`` counts them; on a
  320×240 pan this is the border ring, ~57 of 300 blocks per frame, and lifts
  the share of pixels within 1 px from ~81 % to ~97 %). The first and last
  frame have one reference only, and a corner block whose content is missing
  in both references stays wrong.
- A segment of a single frame has neither past nor future: its result is an
  empty :class:`BlockMotion`, which callers must treat as "no motion known"
  (``has_mv = False``), exactly like an I-frame — never as zero motion.

Vectors are divided by the display-index distance between the frame and the
neighbour they were matched in, so pushing every second frame (indices 0, 2,
4, ...) still yields per-frame-step displacement (within the search range;
``search_param`` bounds the whole-pixel search radius for ``esa`` and the
step-search methods).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Literal, get_args

import av
import numpy as np
from numpy.lib.stride_tricks import as_strided

from compvid.errors import CorruptVideoError, InvalidArgumentError, UnsupportedVideoError
from compvid.motion import BlockMotion

Method = Literal["epzs", "hexbs", "esa", "tss", "tdls", "ntss", "fss", "ds", "umh"]
METHODS: tuple[str, ...] = get_args(Method)

# Pixel formats mestimate accepts as they are (it reads plane 0, the luma, only).
# Any other format is converted to gray8 before it goes in: luma only, no chroma work.
NATIVE_PIX_FMTS = frozenset(
    {
        "yuv410p",
        "yuv411p",
        "yuv420p",
        "yuv422p",
        "yuv440p",
        "yuv444p",
        "yuvj411p",
        "yuvj420p",
        "yuvj422p",
        "yuvj440p",
        "yuvj444p",
        "yuva420p",
        "yuva422p",
        "yuva444p",
        "gray",
    }
)

_MIN_BLOCK = 8  # mestimate's smallest mb_size


class MotionEstimator:
    """Block motion of consecutive decoded frames with FFmpeg's ``mestimate``.

    Push frames in display order with their display index; each call returns
    the results that became ready as ``(index, BlockMotion)`` pairs in display
    order. :meth:`flush` returns the rest; after it every pushed frame has had
    exactly one result and the estimator starts a fresh segment (the next
    pushed frame is again treated as a first frame), so one estimator can serve
    several clips, e.g. after a seek.

    ``width``/``height``/``pix_fmt`` describe the frames that will be pushed;
    a frame of another pixel format is converted, one of another size is an
    error. ``block_size`` is a power of two, at least 8; it shrinks (down to 8)
    when the frame is smaller than one block. ``unsure`` is always False: the
    reference distance of an estimated vector is known by construction.
    """

    def __init__(
        self,
        width: int,
        height: int,
        pix_fmt: str = "yuv420p",
        *,
        method: Method = "epzs",
        block_size: int = 16,
        search_param: int = 7,
        name: str = "<frames>",
    ) -> None:
        self.name = name
        if method not in METHODS:
            raise InvalidArgumentError(f"{name}: motion estimation method {method!r} is not one of {', '.join(METHODS)}")
        if not isinstance(block_size, int) or block_size < _MIN_BLOCK or block_size & (block_size - 1):
            raise InvalidArgumentError(f"{name}: block_size must be a power of two >= {_MIN_BLOCK}, got {block_size!r}")
        if not isinstance(search_param, int) or search_param < 4:
            raise InvalidArgumentError(f"{name}: search_param must be an integer >= 4, got {search_param!r}")
        if width < _MIN_BLOCK or height < _MIN_BLOCK:
            raise UnsupportedVideoError(
                f"{name}: frames of {width}x{height} are too small to estimate motion (at least {_MIN_BLOCK}x{_MIN_BLOCK})"
            )
        try:
            av.VideoFormat(pix_fmt)
        except (ValueError, av.FFmpegError) as e:
            raise UnsupportedVideoError(f"{name}: unknown pixel format {pix_fmt!r}") from e
        while block_size > min(width, height):
            block_size //= 2
        self.width = int(width)
        self.height = int(height)
        self.pix_fmt = pix_fmt
        self.method: Method = method
        self.block_size = block_size
        self.search_param = search_param
        # Where the block grid ends; the last column/row is widened to the frame edge.
        self._grid_w = width // block_size * block_size
        self._grid_h = height // block_size * block_size
        self._graph: av.filter.Graph | None = None
        self._src = None
        self._sink = None
        self._prev_of: dict[int, int | None] = {}
        self._next_of: dict[int, int | None] = {}
        self._last_index: int | None = None
        self._last_frame: av.VideoFrame | None = None
        # Frames as fed to mestimate (luma in plane 0), kept while a result still needs them.
        self._frames: dict[int, av.VideoFrame] = {}
        self._feed_fmt = pix_fmt if pix_fmt in NATIVE_PIX_FMTS else "gray"
        #: Blocks whose past and future vectors disagreed and where one reference
        #: matched clearly worse, so its row was dropped (a running count).
        self.dropped_rows = 0

    # ------------------------------------------------------------------ graph
    def _build(self) -> None:
        graph = av.filter.Graph()
        try:
            src = graph.add_buffer(
                width=self.width,
                height=self.height,
                format=av.VideoFormat(self._feed_fmt),
                time_base=Fraction(1, 1),
            )
            chain = [src]
            chain.append(
                graph.add(
                    "mestimate",
                    f"method={self.method}:mb_size={self.block_size}:search_param={self.search_param}",
                )
            )
            sink = graph.add("buffersink")
            chain.append(sink)
            for a, b in zip(chain, chain[1:]):
                a.link_to(b)
            graph.configure()
        except (av.FFmpegError, ValueError) as e:
            raise UnsupportedVideoError(
                f"{self.name}: cannot set up FFmpeg's mestimate filter for {self.width}x{self.height} {self.pix_fmt}: {e}"
            ) from e
        self._graph, self._src, self._sink = graph, src, sink

    def _push_raw(self, frame: av.VideoFrame, pts: int) -> None:
        # The buffer source takes its own reference of the frame's fields at push
        # time, so the caller's pts can be put back right after.
        saved = frame.pts
        frame.pts = pts
        try:
            self._src.push(frame)
        except av.FFmpegError as e:
            raise CorruptVideoError(f"{self.name}: motion estimation failed on frame {pts}: {e}") from e
        finally:
            frame.pts = saved

    def _drain(self) -> list[tuple[int, BlockMotion]]:
        out: list[tuple[int, BlockMotion]] = []
        while True:
            try:
                frame = self._sink.pull()
            except (av.BlockingIOError, av.EOFError):
                return out
            except av.FFmpegError as e:
                raise CorruptVideoError(f"{self.name}: motion estimation failed: {e}") from e
            index = int(frame.pts)
            sd = frame.side_data.get("MOTION_VECTORS")
            if sd is None:
                raise UnsupportedVideoError(f"{self.name}: mestimate returned frame {index} without motion vectors")
            out.append((index, self._convert(index, sd.to_ndarray())))

    # ------------------------------------------------------------- conversion
    def _convert(self, index: int, a: np.ndarray) -> BlockMotion:
        prev = self._prev_of.pop(index, None)
        nxt = self._next_of.pop(index, None)
        source = a["source"]
        past = source < 0
        keep = np.zeros(len(a), bool)
        scale = np.ones(len(a), np.float32)
        sign = np.where(past, -1.0, 1.0).astype(np.float32)  # past: d = dst − src; future: d = src − dst
        if prev is not None:
            keep |= past
            scale[past] = index - prev
        if nxt is not None:
            keep |= ~past
            scale[~past] = nxt - index
        a, scale, sign = a[keep], scale[keep], sign[keep]
        if len(a) == 0:
            return BlockMotion.empty()
        w = a["w"].astype(np.int32)
        h = a["h"].astype(np.int32)
        dst_x = a["dst_x"].astype(np.int32)
        dst_y = a["dst_y"].astype(np.int32)
        x0 = dst_x - w // 2
        y0 = dst_y - h // 2
        # Widen the last column / row of blocks over the strip mestimate leaves out.
        w = np.where(x0 + w == self._grid_w, self.width - x0, w).astype(np.int32)
        h = np.where(y0 + h == self._grid_h, self.height - y0, h).astype(np.int32)
        dx = (a["src_x"].astype(np.float32) - dst_x) * sign / scale
        dy = (a["src_y"].astype(np.float32) - dst_y) * sign / scale
        if prev is not None and nxt is not None:
            drop = self._worse_reference(index, prev, nxt, a, dx, dy)
            if drop.any():
                self.dropped_rows += int(drop.sum())
                keep = ~drop
                a, x0, y0, w, h, dx, dy = a[keep], x0[keep], y0[keep], w[keep], h[keep], dx[keep], dy[keep]
        return BlockMotion(
            x0=x0.astype(np.int32),
            y0=y0.astype(np.int32),
            w=w,
            h=h,
            dx=dx.astype(np.float32),
            dy=dy.astype(np.float32),
            unsure=np.zeros(len(a), bool),
        )

    def _blocks(self, index: int) -> np.ndarray:
        """View (H-bs+1, W-bs+1, bs, bs) of every bs×bs block of the luma of frame ``index`` (no copy)."""
        plane = self._frames[index].planes[0]
        luma = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: self.height, : self.width]
        bs = self.block_size
        s0, s1 = luma.strides
        return as_strided(
            luma,
            shape=(self.height - bs + 1, self.width - bs + 1, bs, bs),
            strides=(s0, s1, s0, s1),
            writeable=False,
        )

    def _worse_reference(
        self, index: int, prev: int, nxt: int, a: np.ndarray, dx: np.ndarray, dy: np.ndarray
    ) -> np.ndarray:
        """Rows to drop: of a block's past and future vectors, the one that matches clearly worse.

        Where the two disagree by more than a pixel, one reference usually lacks
        the content (it entered from outside the frame — mestimate only searches
        inside it — or was occluded); averaging would halve the true motion.
        Both candidates are checked by the mean absolute luma difference of the
        block and its match; the worse is dropped when it is clearly worse.
        """
        drop = np.zeros(len(a), bool)
        past_rows = np.nonzero(a["source"] < 0)[0]
        future_rows = np.nonzero(a["source"] > 0)[0]
        if len(past_rows) != len(future_rows) or len(past_rows) == 0:
            return drop
        key = a["dst_y"].astype(np.int64) * (self.width + 1024) + a["dst_x"]
        past_rows = past_rows[np.argsort(key[past_rows], kind="stable")]
        future_rows = future_rows[np.argsort(key[future_rows], kind="stable")]
        if not np.array_equal(key[past_rows], key[future_rows]):
            return drop
        apart = np.hypot(dx[past_rows] - dx[future_rows], dy[past_rows] - dy[future_rows]) > 1.0
        if not apart.any():
            return drop
        p, f = past_rows[apart], future_rows[apart]
        bs = self.block_size
        n = len(p)

        def patches(index: int, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
            ys = np.clip(cy.astype(np.intp) - bs // 2, 0, self.height - bs)
            xs = np.clip(cx.astype(np.intp) - bs // 2, 0, self.width - bs)
            return self._blocks(index)[ys, xs].reshape(n, bs * bs).astype(np.int16)

        cur = patches(index, a["dst_x"][p], a["dst_y"][p])
        sad_p = np.abs(cur - patches(prev, a["src_x"][p], a["src_y"][p])).mean(axis=1)
        sad_f = np.abs(cur - patches(nxt, a["src_x"][f], a["src_y"][f])).mean(axis=1)
        drop[p[sad_p > 1.25 * sad_f + 1.0]] = True
        drop[f[sad_f > 1.25 * sad_p + 1.0]] = True
        return drop

    # -------------------------------------------------------------------- API
    def push(self, frame: av.VideoFrame, index: int) -> list[tuple[int, BlockMotion]]:
        """Add the frame with display index ``index``; return the results now ready.

        Indices must increase strictly within a segment. Results lag by one
        frame: the result for a frame comes with the push of the next one (or
        from :meth:`flush`).
        """
        if not isinstance(frame, av.VideoFrame):
            raise InvalidArgumentError(f"{self.name}: expected an av.VideoFrame, got {type(frame).__name__}")
        index = int(index)
        if self._last_index is not None and index <= self._last_index:
            raise InvalidArgumentError(
                f"{self.name}: frames must be pushed in display order; got index {index} after {self._last_index}"
            )
        if frame.width != self.width or frame.height != self.height:
            raise InvalidArgumentError(
                f"{self.name}: frame {index} is {frame.width}x{frame.height}, the estimator was set up for "
                f"{self.width}x{self.height}"
            )
        if frame.format.name != self._feed_fmt:
            # Formats mestimate cannot take go in as gray8: luma only, no chroma work.
            frame = frame.reformat(format=self._feed_fmt, threads=1)  # no swscale threads (fork safety)
        if self._graph is None:
            self._build()
        self._prev_of[index] = self._last_index
        self._next_of[index] = None
        if self._last_index is not None:
            self._next_of[self._last_index] = index
        self._frames[index] = frame
        self._push_raw(frame, index)
        self._last_index = index
        self._last_frame = frame
        out = self._drain()
        # The next result (for the previous frame) needs it and the frame before it.
        for i in sorted(self._frames)[:-2]:
            del self._frames[i]
        return out

    def flush(self) -> list[tuple[int, BlockMotion]]:
        """Return the results still held back (the last frame's), and end the segment."""
        if self._graph is None or self._last_frame is None:
            self._reset()
            return []
        last = self._last_index
        # mestimate emits frame k once k+1 is in; a copy of the last frame plays k+1.
        # Its future vectors (matched against itself) are dropped: _next_of[last] is None.
        self._push_raw(self._last_frame, last + 1)
        out = self._drain()
        try:
            self._src.push(None)
        except av.FFmpegError:
            pass
        out += [r for r in self._drain() if r[0] <= last]
        self._reset()
        return [r for r in out if r[0] <= last]

    def _reset(self) -> None:
        self._graph = self._src = self._sink = None
        self._prev_of.clear()
        self._next_of.clear()
        self._last_index = None
        self._last_frame = None
        self._frames.clear()

    def estimate(
        self, frames: Iterable[av.VideoFrame], indices: Sequence[int] | None = None
    ) -> list[tuple[int, BlockMotion]]:
        """Push every frame of ``frames`` (display order), flush, and return all results."""
        out: list[tuple[int, BlockMotion]] = []
        for i, frame in enumerate(frames):
            out += self.push(frame, i if indices is None else indices[i])
        out += self.flush()
        return out
