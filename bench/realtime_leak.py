"""A small leak experiment for realtime sessions that vanish: RSS, Python heap, objects, tasks, threads, fds.

The server runs in this process (a uvicorn thread) so the Python heap can be inspected directly. Each session does
what the soak's realtime client does: connect, append a spoken sentence, commit, wait up to 2 s, then drop the TCP
connection without a close frame. After a warm-up batch and after each measured batch (clients stopped, server idle)
it prints RSS, tracemalloc's traced size, gc object counts by type (growth only), live asyncio tasks, threads and
open fds; with --trim it also prints RSS after glibc `malloc_trim(0)`, which tells memory that was freed but kept by
the allocator (fragmentation) from memory still in use (a true leak).
`--unmitigated` runs it with glibc's defaults (no arena cap, no trim after sessions), as the server was before.
Run: `.venv/bin/python bench/realtime_leak.py [--sessions 40] [--batches 3] [--trim] [--unmitigated]`. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import gc
import json
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import uvicorn  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from api.native_memory import limit_arenas  # noqa: E402
from api.settings import Settings  # noqa: E402
from tests.support.realtime import b64, to_pcm16_24k  # noqa: E402
from tests.support.server import free_port  # noqa: E402
from tests.support.speech import silence, speak  # noqa: E402
from voxloop.app import create_app  # noqa: E402


def proc_status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def rss_kb() -> int:
    return proc_status("VmRSS")


def malloc_trim() -> None:
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def type_counts() -> collections.Counter[str]:
    return collections.Counter(type(o).__name__ for o in gc.get_objects())


class ServerThread:
    """uvicorn on its own loop in a thread, so the test can count that loop's tasks."""

    def __init__(self, settings: Settings):
        self.port = free_port()
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning",
                                ws_max_size=settings.realtime.max_message_bytes)
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.server.serve(),), daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def tasks(self) -> int:
        async def count() -> int:
            return len(asyncio.all_tasks())

        return asyncio.run_coroutine_threadsafe(count(), self.loop).result()


async def vanish(url: str, pcm: bytes, commit: bool) -> None:
    ws = await connect(url, max_size=None)
    await ws.recv()
    for offset in range(0, len(pcm), 9600):
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(pcm[offset:offset + 9600])}))
    if commit:
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ws.recv(), 2)
    ws.transport.abort()  # no close frame, as in the soak


async def batch(url: str, pcm: bytes, count: int, concurrency: int, commit: bool) -> None:
    todo = iter(range(count))

    async def worker() -> None:
        for _ in todo:
            await vanish(url, pcm, commit)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def settle(server: ServerThread, quiet_seconds: float) -> int:
    """Wait until the server's task count is stable (vanished sessions cleaned up), then `quiet_seconds` more (the
    server's deferred malloc_trim runs within its interval of the last session's end)."""
    last, stable = -1, 0
    while stable < 5:
        now = server.tasks()
        stable = stable + 1 if now == last else 0
        last = now
        time.sleep(0.3)
    time.sleep(quiet_seconds)
    return server.tasks()


def measure(server: ServerThread, label: str, trim: bool, baseline: dict | None, quiet: float) -> dict:
    tasks = settle(server, quiet)
    gc.collect()
    heap = tracemalloc.get_traced_memory()[0] // 1024 if tracemalloc.is_tracing() else 0
    row = {"rss": rss_kb(), "heap": heap, "tasks": tasks,
           "threads": proc_status("Threads"), "fds": len(os.listdir("/proc/self/fd")), "types": type_counts()}
    if trim:
        malloc_trim()
        row["rss_trimmed"] = rss_kb()
    print(f"{label:10s} rss {row['rss']:>9,} kB  heap {row['heap']:>8,} kB  tasks {tasks:>3}  threads "
          f"{row['threads']:>3}  fds {row['fds']:>4}" + (f"  rss after malloc_trim {row['rss_trimmed']:>9,} kB"
                                                         if trim else ""))
    if baseline is not None:
        grown = {k: v - baseline["types"].get(k, 0) for k, v in row["types"].items()}
        top = sorted(((v, k) for k, v in grown.items() if v > 20), reverse=True)[:8]
        print("           object growth:", ", ".join(f"{k} +{v}" for v, k in top) or "none")
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=40, help="sessions per measured batch")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--no-commit", action="store_true", help="append only (no turn, no response)")
    parser.add_argument("--trim", action="store_true", help="also report RSS after malloc_trim(0)")
    parser.add_argument("--tracemalloc", action="store_true", help="trace the Python heap (costs memory itself)")
    parser.add_argument("--unmitigated", action="store_true",
                        help="glibc defaults: no arena cap, no malloc_trim after sessions (the server before the fix)")
    parser.add_argument("--quiet", type=float, default=12.0, help="idle seconds before each measurement")
    args = parser.parse_args()
    settings = Settings(cache_dir=Path(tempfile.mkdtemp()))
    if args.unmitigated:
        settings = settings.model_copy(update={"malloc_trim_interval_seconds": 0.0, "malloc_arena_max": 0})
    limit_arenas(settings.malloc_arena_max)  # as `voxloop serve` does
    if args.tracemalloc:
        tracemalloc.start(1)
    samples = np.concatenate([silence(0.2), speak("The mobile team finished the offline mode last week."), silence(0.2)])
    pcm = to_pcm16_24k(samples)
    with ServerThread(settings) as server:
        url = f"ws://127.0.0.1:{server.port}/v1/realtime?model=gpt-realtime"
        commit = not args.no_commit
        asyncio.run(batch(url, pcm, args.warmup, args.concurrency, commit))
        base = measure(server, "warm-up", args.trim, None, args.quiet)
        last = base
        for n in range(args.batches):
            started = time.monotonic()
            asyncio.run(batch(url, pcm, args.sessions, args.concurrency, commit))
            last = measure(server, f"batch {n + 1}", args.trim, base, args.quiet)
            print(f"           ({args.sessions} sessions in {time.monotonic() - started:.0f} s)")
        total = args.sessions * args.batches
        print(f"\nper session: rss {(last['rss'] - base['rss']) / total:+.1f} kB, python heap "
              f"{(last['heap'] - base['heap']) / total:+.1f} kB over {total} sessions")


if __name__ == "__main__":
    main()
