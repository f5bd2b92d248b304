"""glibc allocator settings for a long-running server: fewer malloc arenas, and freed memory given back.

Realtime sessions free megabytes of native memory when they end (onnxruntime, soxr, numpy buffers). Nothing stays
alive (Python heap, objects, tasks, threads and fds are flat per session in bench/realtime_leak.py), but glibc keeps
the freed pages in its per-thread arenas, so RSS climbed ~3 MB per vanished session and `malloc_trim(0)` brought it
straight back to the warm-up level: allocator retention, not a leak. The field's standard answer is applied here:
cap the arenas (as `MALLOC_ARENA_MAX=2` would) and trim after sessions end, and whenever the last HTTP request in
flight ends (requests free decoder and engine buffers the same way). Elsewhere than glibc both are no-ops.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import time

logger = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def limit_arenas(max_arenas: int) -> bool:
    """Cap glibc's malloc arenas; call before the server starts its threads. 0 keeps glibc's default (8 per core)."""
    libc = _libc()
    if max_arenas <= 0 or libc is None:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, max_arenas))


class MallocTrimmer:
    """Runs `malloc_trim(0)` in a thread, at most once per `min_interval` seconds (0: never), when asked.

    A burst of session closes costs one trim, and the last close in the burst is still followed by one (the request
    is deferred, not dropped). The trim runs off the event loop: it walks every arena and can take milliseconds.
    """

    def __init__(self, min_interval: float = 10.0):
        self.min_interval = min_interval
        # `min_interval` 0 turns trimming off (VOXLOOP_MALLOC_TRIM_INTERVAL_SECONDS=0), as does a libc without it.
        self._libc = _libc() if min_interval > 0 else None
        self._last = float("-inf")
        self._pending: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self.trims = 0

    def request(self) -> None:
        if self._libc is None or self._pending is not None or (self._task is not None and not self._task.done()):
            return
        delay = max(0.0, self._last + self.min_interval - time.monotonic())
        self._pending = asyncio.get_running_loop().call_later(delay, self._start)

    def _start(self) -> None:
        self._pending = None
        self._task = asyncio.ensure_future(asyncio.to_thread(self._trim))

    def _trim(self) -> None:
        assert self._libc is not None
        self._libc.malloc_trim(0)
        self._last = time.monotonic()
        self.trims += 1

    async def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._task is not None:
            await self._task
