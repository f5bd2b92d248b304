"""A bounded mixed soak: memory, file descriptors and asyncio tasks must not grow while traffic runs.

Starts `voxloop serve` on loopback and runs, for a --warmup (default 30) and then --seconds (default 180):
transcription clients (JSON), streaming transcriptions that vanish after the first SSE event, speech (TTS, alternately
read whole and abandoned mid-stream), realtime sessions that connect, send audio and vanish without a close frame,
short chat completions (some streamed and abandoned), and malformed uploads. After each phase the clients stop and, once the server is idle,
RSS, open fds and live asyncio tasks are read from /metrics; it prints the growth from warm-up to the end.
Run: `.venv/bin/python bench/soak.py [--seconds 180] [--warmup 30]`. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from bench.common import voxloop_server  # noqa: E402
from tests.support.realtime import b64, to_pcm16_24k  # noqa: E402
from tests.support.speech import encode, silence, speak  # noqa: E402

URL = "/v1/audio/transcriptions"
WATCHED = ("process_resident_memory_bytes", "process_open_fds", "voxloop_asyncio_tasks")


async def gauges(client: httpx.AsyncClient) -> dict[str, float]:
    text = (await client.get("/metrics")).text
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}
    return {name: values.get(name, float("nan")) for name in WATCHED}


async def quiet(client: httpx.AsyncClient, timeout: float = 60) -> None:
    """Wait until the scrape is the only request in flight and the task count has settled (vanished sessions done)."""
    deadline, last, stable = time.monotonic() + timeout, -1.0, 0
    while time.monotonic() < deadline and stable < 5:
        text = (await client.get("/metrics")).text
        values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}
        tasks = values.get("voxloop_asyncio_tasks", 0.0)
        stable = stable + 1 if values.get("voxloop_http_requests_in_flight", 0) <= 1 and tasks == last else 0
        last = tasks
        await asyncio.sleep(0.2)


async def soak(url: str, seconds: float, warmup: float, only: set[str] | None = None, settle: float = 12.0,
               checkpoints: int = 1) -> None:
    samples = np.concatenate([silence(0.2), speak("The mobile team finished the offline mode last week."), silence(0.2)])
    clip, pcm = encode(samples, "wav"), to_pcm16_24k(samples)
    ws_url = url.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime"
    statuses: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:

        async def loop(kind: str, action, stop_at: float) -> None:
            while time.monotonic() < stop_at:
                try:
                    statuses[f"{kind} {await action()}"] += 1
                except (httpx.HTTPError, OSError) as exc:
                    statuses[f"{kind} {type(exc).__name__}"] += 1
                if kind == "garbage":
                    await asyncio.sleep(0.05)  # bad uploads are cheap: pace them so they do not crowd out the rest

        async def transcribe() -> int:
            r = await client.post(URL, files={"file": ("a.wav", clip)}, data={"model": "whisper-1"})
            return r.status_code

        async def vanish() -> int:  # a streaming client that goes away after the first event
            async with client.stream("POST", URL, files={"file": ("a.wav", clip)},
                                     data={"model": "whisper-1", "stream": "true"}) as r:
                async for _ in r.aiter_lines():
                    break
                return r.status_code

        async def tts() -> int:
            body = {"model": "tts-1", "voice": "alloy", "input": "Thanks for calling. How can I help you today?"}
            if statuses["speech 200"] % 2:  # every other one is abandoned after the first bytes
                async with client.stream("POST", "/v1/audio/speech", json=body) as r:
                    async for _ in r.aiter_bytes():
                        break
                    return r.status_code
            return (await client.post("/v1/audio/speech", json=body)).status_code

        async def realtime_vanish() -> str:
            ws = await connect(ws_url, max_size=None)
            first = json.loads(await ws.recv())
            for offset in range(0, len(pcm), 9600):
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(pcm[offset:offset + 9600])}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws.recv(), 2)
            ws.transport.abort()  # vanish: no close frame, the server finds a dead socket
            return first["type"]

        async def chat() -> int:
            body = {"model": "gpt-4o-mini", "max_tokens": 16, "messages": [{"role": "user", "content": "Say hi."}]}
            if statuses["chat 200"] % 2:
                async with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
                    async for _ in r.aiter_lines():
                        break
                    return r.status_code
            return (await client.post("/v1/chat/completions", json=body)).status_code

        async def garbage() -> int:
            r = await client.post(URL, files={"file": ("a.mp3", np.random.default_rng().bytes(20_000))},
                                  data={"model": "whisper-1"})
            return r.status_code

        mix = [("transcribe", transcribe), ("vanish", vanish), ("speech", tts), ("realtime", realtime_vanish),
               ("chat", chat), ("garbage", garbage)]
        mix = [(kind, action) for kind, action in mix if only is None or kind in only]

        async def phase(duration: float) -> dict[str, float]:
            # Both samples are taken with the clients stopped and the server idle, so they compare like with like.
            stop_at = time.monotonic() + duration
            await asyncio.gather(*[loop(kind, action, stop_at) for kind, action in mix])
            await quiet(client)
            # The server gives freed native memory back a little after sessions end (malloc_trim at most every
            # VOXLOOP_MALLOC_TRIM_INTERVAL_SECONDS): read RSS once that has had its chance, at both samples alike.
            await asyncio.sleep(settle)
            return await gauges(client)

        start = await phase(warmup)
        # The measured time runs in `checkpoints` equal parts with a sample after each, so a leak (growth in every
        # part) can be told from memory that settles after a while (growth in the first parts only).
        curve = [start]
        for n in range(checkpoints):
            curve.append(await phase(seconds / checkpoints))
            if checkpoints > 1:
                rss = curve[-1][WATCHED[0]]
                print(f"checkpoint {n + 1}/{checkpoints} at {warmup + seconds * (n + 1) / checkpoints:6.0f} s: RSS "
                      f"{rss / 2**20:8.1f} MiB ({(rss - start[WATCHED[0]]) / start[WATCHED[0]] * 100:+.2f} % since warm-up, "
                      f"{(rss - curve[-2][WATCHED[0]]) / 2**20:+.1f} MiB in this part)", flush=True)
        end = curve[-1]

    print(f"warm-up {warmup:.0f} s, measured {seconds:.0f} s, loopback, shared 2-core CPU")
    print("requests:", dict(sorted(statuses.items())))
    for name in WATCHED:
        growth = (end[name] - start[name]) / start[name] * 100 if start[name] else float("nan")
        print(f"{name:32s} after warm-up {start[name]:>14,.0f}  end {end[name]:>14,.0f}  growth {growth:+.2f} %")
    rss_growth = (end[WATCHED[0]] - start[WATCHED[0]]) / start[WATCHED[0]] * 100
    print(f"\nRSS growth {rss_growth:+.2f} % (target < 5 %); fds {start[WATCHED[1]]:.0f} -> {end[WATCHED[1]]:.0f}; "
          f"asyncio tasks {start[WATCHED[2]]:.0f} -> {end[WATCHED[2]]:.0f}")
    server_errors = {k: v for k, v in statuses.items() if k.split()[-1].startswith("5")}
    print("5xx:", server_errors or "none")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=180.0, help="measured duration after warm-up")
    parser.add_argument("--warmup", type=float, default=30.0)
    parser.add_argument("--only", help="comma-separated client kinds to run (to find which one grows memory)")
    parser.add_argument("--settle", type=float, default=12.0, help="idle seconds before each RSS sample")
    parser.add_argument("--checkpoints", type=int, default=1, help="RSS samples over the measured time (the curve)")
    args = parser.parse_args()
    with voxloop_server() as url:
        only = set(args.only.split(",")) if args.only else None
        asyncio.run(soak(url, args.seconds, args.warmup, only, args.settle, args.checkpoints))


if __name__ == "__main__":
    main()
