"""Realtime ASR latency: end of speech -> `.completed`, how early the first delta comes, and the concurrency knee.

Starts `voxloop serve` in a subprocess (so the clients here do not share its GIL), then runs rounds of N
concurrent sessions with the official openai SDK. Each session streams Piper speech at real-time pace with
server_vad and transcription on, and records:
- latency: wall time from the end of speech (truth from the audio) to
  `conversation.item.input_audio_transcription.completed`
- first delta: wall time from speech onset to the first transcription delta, and how long before the end of
  speech it arrived (positive = while the user was still speaking)
N grows until the median latency is at least twice the single-session median; the last N below that is the knee.

    .venv/bin/python bench/realtime_asr.py [--max-sessions 24] [--model whisper-tiny.en]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.realtime import b64, speech_bounds_ms, to_pcm16_24k  # noqa: E402
from tests.support.speech import silence, speak  # noqa: E402

SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the quiet river bank.",
    "Please send the weekly report to the finance team before Friday afternoon.",
    "We should meet again next week to talk about the new project plan.",
]
CHUNK_MS = 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def one_session(client: openai.AsyncOpenAI, clip: np.ndarray, onset_ms: int, offset_ms: int,
                      delay: float) -> dict[str, float] | None:
    await asyncio.sleep(delay)  # stagger session starts like real users, not in lockstep
    pcm = to_pcm16_24k(clip)
    step = 24_000 * 2 * CHUNK_MS // 1000
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "audio": {"input": {
            "transcription": {"model": "whisper-1", "language": "en"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}}})
        result: dict[str, float] = {}
        started = time.monotonic()

        async def send() -> None:
            for n, offset in enumerate(range(0, len(pcm), step)):
                wait = started + n * CHUNK_MS / 1000 - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)  # microphone pacing
                await conn.input_audio_buffer.append(audio=b64(pcm[offset : offset + step]))

        sender = asyncio.create_task(send())
        speech_on, speech_off = started + onset_ms / 1000, started + offset_ms / 1000
        try:
            async for event in conn:
                now = time.monotonic()
                if event.type == "conversation.item.input_audio_transcription.delta" and "first_delta" not in result:
                    result["first_delta"] = now - speech_on
                    result["delta_before_end"] = speech_off - now
                elif event.type == "conversation.item.input_audio_transcription.completed":
                    result["latency"] = now - speech_off
                    break
                elif event.type in ("error", "conversation.item.input_audio_transcription.failed"):
                    return None
        finally:
            sender.cancel()
        return result


async def round_of(url: str, n: int) -> list[dict[str, float]]:
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-bench", max_retries=0)
    jobs = []
    for i in range(n):
        sentence = SENTENCES[i % len(SENTENCES)]
        speech = speak(sentence)
        onset, offset = speech_bounds_ms(speech)
        lead = 0.5
        clip = np.concatenate([silence(lead), speech, silence(1.5)])
        jobs.append(one_session(client, clip, int(lead * 1000) + onset, int(lead * 1000) + offset,
                                random.uniform(0, 0.5)))
    results = await asyncio.gather(*jobs)
    return [r for r in results if r]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-sessions", type=int, default=24)
    parser.add_argument("--model", default="whisper-tiny.en")
    args = parser.parse_args()
    port = _free_port()
    env = {**os.environ, "VOXLOOP_PORT": str(port), "VOXLOOP_LOG_LEVEL": "warning",
           "VOXLOOP_WHISPER__DEFAULT_MODEL": args.model, "VOXLOOP_MAX_CONCURRENT_PER_MODEL": "256"}
    server = subprocess.Popen([sys.executable, "-m", "voxloop.cli", "serve"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                try:
                    if (await http.get(f"{url}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        await round_of(url, 1)  # warm-up: loads the model
        print(f"cores: {os.cpu_count()}  model: {args.model}  (shared machine: numbers are indicative)")
        print(f"{'sessions':>8} {'ok':>4} {'latency p50':>12} {'p90':>7} {'1st delta p50':>14} {'before end p50':>15}")
        baseline, knee, n = None, 1, 1
        while n <= args.max_sessions:
            results = []
            for _ in range(math.ceil(3 / n)):  # at least 3 samples per row, so one slow turn is not the baseline
                results += await round_of(url, n)
            lat = sorted(r["latency"] for r in results)
            p50 = _median(lat)
            p90 = lat[max(0, math.ceil(0.9 * len(lat)) - 1)] if lat else float("nan")
            first = _median([r["first_delta"] for r in results if "first_delta" in r])
            before = _median([r["delta_before_end"] for r in results if "delta_before_end" in r])
            print(f"{n:>8} {len(results):>4} {p50:>11.2f}s {p90:>6.2f}s {first:>13.2f}s {before:>14.2f}s", flush=True)
            baseline = baseline or p50
            if len(results) < n * math.ceil(3 / n) or p50 >= 2 * baseline:
                break
            knee = n
            n = n + 1 if n < 4 else n + 2 if n < 8 else n + 4
        print(f"knee: {knee} concurrent sessions before end-of-speech -> completed latency doubles "
              f"(baseline {baseline:.2f}s)")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    asyncio.run(main())
