"""The paper's efficiency table, measured here: on-the-fly RGB + MV decoding against the optical-flow route.

Per video:

- **ours**: preprocessing = decoding RGB and motion vectors of every sliding window × crop of the test
  protocol straight from the compressed file (compvid); inference = the RGB and MV encoders on those
  clips; storage = the original file, nothing else.
- **optical flow**: decode every frame and write it as a JPEG file, then compute optical flow between
  consecutive frames (OpenCV TV-L1 from ``opencv-contrib-python-headless`` when present, else
  Farneback -- the report says which) and store it the usual two-stream way: x and y quantised to
  uint8 over [-20, 20] px, one grayscale JPEG each. Preprocessing = all of that; storage = the frames
  + the flow files. TV-L1 takes about a second per frame pair on a CPU, so ``max_flow_frames`` limits
  the frames actually run per video and the time and bytes are scaled to the whole video (the
  report gives the frames measured).

OpenCV is optional: it is imported only here, and a clear error says how to install it.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Literal, Sequence, get_args

import numpy as np
import torch

from compvid.layouts import VIDEO_EXTENSIONS
from compvid.pipeline import WindowClips
from compvid.probe import probe
from compvid.request import ClipRequest, parse_crop_px
from mvcgc.errors import EmptyDataError, InputNotFoundError, InvalidArgumentError, MissingDependencyError
from mvcgc.models import create_encoder

log = logging.getLogger(__name__)

FlowMethod = Literal["auto", "tvl1", "farneback"]
Crops = Literal["center", "three", "ten"]
FLOW_BOUND_PX = 20.0  # the usual two-stream quantisation range of flow images


@dataclass(frozen=True)
class VideoEfficiency:
    """One video's figures; times in seconds, sizes in bytes."""

    path: str
    num_frames: int
    width: int
    height: int
    ours_preprocess_s: float
    ours_inference_s: float
    ours_bytes: int
    flow_method: str
    flow_frames_measured: int
    flow_preprocess_s: float  # scaled to every frame of the video
    flow_bytes: int  # frames + flow, scaled to every frame of the video


@dataclass(frozen=True)
class EfficiencyProgress:
    """Reported as the measurement goes: ``done`` of ``total`` videos are measured; the current one,
    ``path``, is in ``phase`` 'ours' (``phase_done`` of ``phase_total`` windows decoded and encoded)
    or 'flow' (frames through the flow route)."""

    done: int
    total: int
    path: str
    phase: str
    phase_done: int
    phase_total: int


@dataclass
class EfficiencyReport:
    videos: list[VideoEfficiency]
    failed: list[dict[str, str]]
    options: dict

    def mean(self, name: str) -> float:
        return float(np.mean([getattr(v, name) for v in self.videos]))

    def ratios(self) -> dict[str, float]:
        """Flow route / ours: preprocessing time and storage (per video, averaged)."""
        return {"preprocess": self.mean("flow_preprocess_s") / max(self.mean("ours_preprocess_s"), 1e-12),
                "storage": self.mean("flow_bytes") / max(self.mean("ours_bytes"), 1e-12)}

    def to_dict(self) -> dict:
        return {"videos": [asdict(v) for v in self.videos], "failed": self.failed, "options": self.options,
                "ratios": self.ratios() if self.videos else None}


def find_videos(data: str | os.PathLike) -> list[Path]:
    """A video file, or every video file below a folder (sorted)."""
    root = Path(data)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise InputNotFoundError(f"{root} is neither a video file nor a folder")
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower().lstrip(".") in VIDEO_EXTENSIONS)
    if not found:
        raise EmptyDataError(f"no video files below {root}")
    return found


def resolve_flow(method: FlowMethod):
    """``(name, compute(prev_gray, next_gray) -> float32 (H, W, 2))`` for the chosen OpenCV flow."""
    if method not in get_args(FlowMethod):
        raise InvalidArgumentError(f"flow={method!r}: allowed values are {', '.join(get_args(FlowMethod))}")
    try:
        import cv2
    except ImportError as e:
        raise MissingDependencyError("the optical-flow baseline needs OpenCV: "
                                     "pip install opencv-contrib-python-headless") from e
    tvl1 = getattr(getattr(cv2, "optflow", None), "DualTVL1OpticalFlow_create", None) or getattr(
        cv2, "DualTVL1OpticalFlow_create", None)
    if method == "tvl1" and tvl1 is None:
        raise MissingDependencyError("TV-L1 needs the contrib build: pip install opencv-contrib-python-headless")
    if method in ("auto", "tvl1") and tvl1 is not None:
        algo = tvl1()
        return "tvl1", lambda a, b: algo.calc(a, b, None)
    if method == "auto":
        log.warning("OpenCV has no TV-L1 (install opencv-contrib-python-headless); using Farneback")
    return "farneback", lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def measure_efficiency(
    data: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    arch: str = "s3d",
    num_frames: int = 16,
    size: int | str = 112,
    crops: Crops = "ten",
    flow: FlowMethod = "auto",
    max_flow_frames: int | None = 32,
    jpeg_quality: int = 95,
    work_dir: str | os.PathLike | None = None,
    on_video: Callable[[VideoEfficiency], None] | None = None,
    on_progress: Callable[[EfficiencyProgress], None] | None = None,
) -> EfficiencyReport:
    """Measure every video of ``data`` (a file, a folder, or a list of files) both ways, on CPU.

    ``arch``: the encoder timed for inference (random weights: time does not depend on them).
    A video that fails to decode is listed in ``failed`` and left out of every figure.
    ``on_video`` gets each measured video; ``on_progress`` every window and flow frame (the
    reporting is outside the timed spans).
    """
    if crops not in get_args(Crops):
        raise InvalidArgumentError(f"crops={crops!r}: allowed values are {', '.join(get_args(Crops))}")
    size = parse_crop_px(size, where="size")  # 112, "112" or "112x112"; the same words as every command
    if max_flow_frames is not None and max_flow_frames < 2:
        raise InvalidArgumentError(f"max_flow_frames must be >= 2 (a frame pair) or None, got {max_flow_frames}")
    paths = find_videos(data) if isinstance(data, (str, os.PathLike)) else [Path(p) for p in data]
    if not paths:
        raise EmptyDataError("no videos to measure")
    flow_name, flow_fn = resolve_flow(flow)
    windows = WindowClips(ClipRequest(num_frames=num_frames, crop_px=size, views="both"), crops=crops)
    encoders = {"rgb": create_encoder(arch, 3).eval(), "mv": create_encoder(arch, 2).eval()}
    results, failed = [], []
    for n, path in enumerate(paths):
        def report(phase: str, done: int, total: int, n: int = n, path: Path = path) -> None:
            if on_progress is not None:
                on_progress(EfficiencyProgress(n, len(paths), os.fspath(path), phase, done, total))

        try:
            report("probe", 0, 1)
            info = probe(path)
            ours_pre, ours_inf = _ours(path, info, windows, encoders, report)
            with tempfile.TemporaryDirectory(dir=work_dir, prefix="mvcgc-flow-") as tmp:
                measured, flow_s, flow_bytes = _flow_route(path, Path(tmp), flow_fn, max_flow_frames, jpeg_quality,
                                                           report, info.num_frames)
        except Exception as e:  # noqa: BLE001 - reported and excluded from every figure
            log.warning("left out %s: %s: %s", path, type(e).__name__, e)
            failed.append({"key": os.fspath(path), "reason": f"{type(e).__name__}: {e}"})
            report("failed", 1, 1)
            continue
        scale = info.num_frames / max(measured, 1)
        v = VideoEfficiency(path=os.fspath(path), num_frames=info.num_frames, width=info.width, height=info.height,
                            ours_preprocess_s=ours_pre, ours_inference_s=ours_inf, ours_bytes=path.stat().st_size,
                            flow_method=flow_name, flow_frames_measured=measured, flow_preprocess_s=flow_s * scale,
                            flow_bytes=int(round(flow_bytes * scale)))
        results.append(v)
        if on_video is not None:
            on_video(v)
    if on_progress is not None and paths:
        on_progress(EfficiencyProgress(len(paths), len(paths), os.fspath(paths[-1]), "done", 1, 1))
    if not results:
        raise EmptyDataError(f"none of the {len(paths)} videos could be measured (first: {failed[0]['reason']})")
    options = {"arch": arch, "num_frames": num_frames, "size": size, "crops": crops, "flow": flow_name,
               "max_flow_frames": max_flow_frames, "jpeg_quality": jpeg_quality, "device": "cpu",
               "torch_threads": torch.get_num_threads()}
    return EfficiencyReport(results, failed, options)


def _ours(path: Path, info, windows: WindowClips, encoders, report) -> tuple[float, float]:
    """Seconds to decode every window × crop (RGB + MV), and to run both encoders on them."""
    pre = inf = 0.0
    starts = windows.windows(info)
    with torch.no_grad():
        for i, start in enumerate(starts):
            report("ours", i, len(starts))
            t0 = time.perf_counter()
            clips = windows(path, info, start)  # rgb (N, 3, T, S, S), mv (N, 2, T, S, S)
            t1 = time.perf_counter()
            for view, enc in encoders.items():
                enc(clips[view])
            t2 = time.perf_counter()
            pre, inf = pre + t1 - t0, inf + t2 - t1
    return pre, inf


def _flow_route(path: Path, out: Path, flow_fn, max_frames: int | None, quality: int, report=None,
                num_frames: int | None = None) -> tuple[int, float, int]:
    """Decode frames to JPEG files and flow to x/y JPEG files; returns (frames, seconds, bytes).

    ``report(phase, done, total)`` after each frame (its time is not counted), ``num_frames`` the video's."""
    import av
    import cv2

    params = [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)]
    limits = [n for n in (max_frames, num_frames) if n]
    total = min(limits) if limits else 0  # frames this route will run
    elapsed = 0.0
    t0 = time.perf_counter()
    prev = None
    count = 0
    with av.open(os.fspath(path)) as container:
        for frame in container.decode(video=0):
            if max_frames is not None and count >= max_frames:
                break
            if report is not None:
                elapsed += time.perf_counter() - t0
                report("flow", count, total)
                t0 = time.perf_counter()
            bgr = frame.to_ndarray(format="bgr24", threads=1)
            cv2.imwrite(os.fspath(out / f"img_{count:05d}.jpg"), bgr, params)
            gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            if prev is not None:
                f = flow_fn(prev, gray)  # (H, W, 2) px
                q = np.clip((f + FLOW_BOUND_PX) * (255.0 / (2 * FLOW_BOUND_PX)), 0, 255).astype(np.uint8)
                cv2.imwrite(os.fspath(out / f"flow_x_{count:05d}.jpg"), q[..., 0], params)
                cv2.imwrite(os.fspath(out / f"flow_y_{count:05d}.jpg"), q[..., 1], params)
            prev = gray
            count += 1
    seconds = elapsed + time.perf_counter() - t0
    size = sum(p.stat().st_size for p in out.iterdir())
    return count, seconds, size
