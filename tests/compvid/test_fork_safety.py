"""Forked workers must not hang on PyAV garbage inherited from the parent.

A VideoFrame converted with a multi-threaded swscale context keeps that context
(and its slice threads). If such a frame sits in a reference cycle when the
process forks, the child's garbage collector frees the context and waits
forever on threads that do not exist in the child. compvid collects garbage
before every fork (``os.register_at_fork`` in compvid.decode).
"""

from __future__ import annotations

import gc
import multiprocessing as mp

import av
import numpy as np

import compvid  # noqa: F401  (installs the fork hook)


def _collect_and_exit() -> None:
    gc.collect()


def test_forked_child_does_not_hang_on_inherited_frames():
    gc.disable()  # keep the cycle uncollected until the fork, as a busy parent would
    try:
        for _ in range(4):
            frame = av.VideoFrame.from_ndarray(np.zeros((240, 320, 3), np.uint8), format="rgb24")
            frame.reformat(format="yuv420p", width=160, height=120, threads=2)
            cycle: dict = {"frame": frame}
            cycle["self"] = cycle
        del frame, cycle
        child = mp.get_context("fork").Process(target=_collect_and_exit)
        child.start()
        child.join(timeout=30)  # a deadlock guard, not a speed limit
        hung = child.is_alive()
        if hung:
            child.kill()
        assert not hung, "the forked child hung freeing an inherited swscale context"
        assert child.exitcode == 0
    finally:
        gc.enable()
