"""Output arrays whose memory is used again once nothing refers to them.

A clip's motion field is 10 MB (float32 (2, 32, 128, 301)), written once and handed to the user,
who drops it a clip later. Allocated afresh each time, its pages come from the operating system
again and again (glibc returns large freed blocks), and every first touch of a page is a fault:
on bare metal ~1 ms a field, on virtual machines that give freed memory back to their host many
times that (up to 20-30 ms a field measured on this project's 2-core VM, when the host has to
supply the pages anew). :func:`reusable_empty` instead takes the memory of an earlier array of
the same size once no array, view or tensor refers to it any more (a ``weakref.finalize`` on the
array hands its buffer back), so its pages are already mapped. Nothing a caller can still see is
ever reused: a view or a ``torch.from_numpy`` tensor keeps the array, and so its buffer, alive.
"""

from __future__ import annotations

import os
import threading
import weakref

import numpy as np

# Buffers kept: per size, a clip's field and one in flight (a DataLoader worker hands a clip on
# while decoding the next); in all at most MAX_KEPT_BYTES, the least recently given back dropped
# first (clips of many frame sizes must not pile up buffers). Others are freed as usual.
KEEP_PER_SIZE = 2
MAX_KEPT_BYTES = 64 << 20
# Smaller arrays come from glibc's heap, already mapped: nothing to gain.
MIN_BYTES = 1 << 20

_free: list[np.ndarray] = []  # uint8 buffers nothing refers to, least recently given back first
_lock = threading.Lock()


def _forget_in_child() -> None:
    """A forked process (a DataLoader worker) starts with no buffers and a lock no thread holds."""
    global _free, _lock
    _free, _lock = [], threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def _give_back(buffer: np.ndarray) -> None:
    with _lock:
        if sum(1 for kept in _free if kept.nbytes == buffer.nbytes) < KEEP_PER_SIZE:
            _free.append(buffer)
        while sum(kept.nbytes for kept in _free) > MAX_KEPT_BYTES:
            _free.pop(0)


def _take(size: int) -> np.ndarray | None:
    """A kept buffer of ``size`` bytes (the one given back last), or None."""
    with _lock:
        for n in range(len(_free) - 1, -1, -1):
            if _free[n].nbytes == size:
                return _free.pop(n)
    return None


def reusable_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """``np.empty(shape, dtype)``, C-contiguous, on memory an earlier array of the same byte size
    no longer needs where there is one. Uninitialised, as ``np.empty``: write every element."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < MIN_BYTES:
        return np.empty(shape, dtype)
    buffer = _take(size)
    if buffer is None:
        buffer = np.empty(size, np.uint8)
    # Every view of an array names as its base the first array up the chain that owns its memory
    # or whose base is no array: so ``owner`` (base: a memoryview), not ``buffer``. The returned
    # array and all views of it keep ``owner`` alive; once it is gone, nothing refers to ``buffer``
    # but the finaliser.
    owner = np.frombuffer(memoryview(buffer), np.uint8)
    weakref.finalize(owner, _give_back, buffer).atexit = False
    return owner.view(dtype).reshape(shape)
