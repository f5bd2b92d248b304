"""Overload behaviour: at 4x the per-model concurrency limit, admitted requests stay fast and the rest get fast 429s.

Starts `voxloop serve` on loopback with VOXLOOP_MAX_CONCURRENT_PER_MODEL=C, measures idle latency (one request at a
time), then runs 4*C closed-loop clients against /v1/audio/transcriptions for --seconds. Prints p50/p95 of admitted
requests vs idle, how many got 429, how fast the 429s came back, and any other status.
Run: `.venv/bin/python bench/load.py [--concurrency 2] [--seconds 30]`. Loopback only; bounded by --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from bench.common import summary, voxloop_server  # noqa: E402
from tests.support.speech import PIPER_RATE, encode, silence, speak  # noqa: E402

URL = "/v1/audio/transcriptions"
TEXT = "Please send your questions to the planning channel before Friday afternoon, and thank you all."


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))] if ordered else float("nan")


async def post(client: httpx.AsyncClient, clip: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    response = await client.post(URL, files={"file": ("clip.wav", clip)}, data={"model": "whisper-1"})
    return response.status_code, time.perf_counter() - started


async def idle(url: str, clip: bytes, n: int) -> list[float]:
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        await post(client, clip)  # load and warm up
        return [(await post(client, clip))[1] for _ in range(n)]


async def overload(url: str, clip: bytes, clients: int, seconds: float, backoff: float) -> dict[int, list[float]]:
    by_status: dict[int, list[float]] = {}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                status, latency = await post(client, clip)
                by_status.setdefault(status, []).append(latency)
                if status == 429:
                    # A short pause instead of the full Retry-After keeps the offered load at 4x the limit.
                    await asyncio.sleep(backoff)

        await asyncio.gather(*[worker() for _ in range(clients)])
    return by_status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=2, help="VOXLOOP_MAX_CONCURRENT_PER_MODEL")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of the overload phase")
    parser.add_argument("--idle-requests", type=int, default=20, help="idle samples (p95 of 8 is their max)")
    parser.add_argument("--backoff", type=float, default=0.25, help="client pause after a 429, seconds")
    args = parser.parse_args()
    samples = np.concatenate([silence(0.3), speak(TEXT), silence(0.3)])
    clip = encode(samples, "wav")
    clients = 4 * args.concurrency
    env = {"VOXLOOP_MAX_CONCURRENT_PER_MODEL": str(args.concurrency), "VOXLOOP_WHISPER__BEAM_SIZE": "1"}
    print(f"clip {len(samples) / PIPER_RATE:.1f} s, Whisper tiny.en int8 beam 1, per-model limit {args.concurrency}, "
          f"{clients} clients for {args.seconds:.0f} s, loopback, shared 2-core CPU\n")
    with voxloop_server(env) as url:
        idle_lat = asyncio.run(idle(url, clip, args.idle_requests))
        by_status = asyncio.run(overload(url, clip, clients, args.seconds, args.backoff))
        metrics = httpx.get(f"{url}/metrics").text
    admitted, refused = by_status.pop(200, []), by_status.pop(429, [])
    print(f"{'idle (one at a time)':28s} {summary(idle_lat)}")
    print(f"{'admitted under 4x load':28s} {summary(admitted)}")
    print(f"{'429 answers':28s} {summary(refused)}  max {max(refused, default=float('nan')) * 1000:.1f} ms")
    print(f"other statuses: {({k: len(v) for k, v in by_status.items()}) or 'none'}")
    ratio = p95(admitted) / p95(idle_lat)
    print(f"\np95 admitted / p95 idle: {ratio:.2f}  (target <= 2.0)")
    print(f"admitted throughput: {len(admitted) / args.seconds:.2f} req/s; 429s: {len(refused)}")
    rejections = [line for line in metrics.splitlines() if line.startswith("voxloop_rejections_total")]
    print("server metrics:", "; ".join(rejections) or "no rejections recorded")


if __name__ == "__main__":
    main()
