"""Realtime test helpers: speech as 24 kHz pcm16, paced streaming, and events validated against openai-python.

Every server event a test reads goes through `Events.next`, which validates it with pydantic against the SDK's
own `RealtimeServerEvent` union (GA or beta), so a field the SDK requires but we forgot fails the test.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import numpy as np
import soxr
from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from openai.types.realtime import RealtimeServerEvent as GAServerEvent
from pydantic import TypeAdapter

from tests.support.speech import PIPER_RATE

GA_EVENTS = TypeAdapter(GAServerEvent)
BETA_EVENTS = TypeAdapter(BetaServerEvent)
RATE = 24_000


def to_pcm16_24k(samples: np.ndarray, rate: int = PIPER_RATE) -> bytes:
    resampled = soxr.resample(samples.astype(np.float32), rate, RATE)
    return (np.clip(resampled, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def speech_bounds_ms(samples: np.ndarray, rate: int = PIPER_RATE, threshold: float = 0.005) -> tuple[int, int]:
    """Ground truth: first and last 10 ms frame with RMS at or above `threshold` (-46 dBFS), in ms from the start.

    Quiet consonants at the edges of words count as speech; Piper's pauses are far below this level.
    """
    frame = rate // 100
    usable = len(samples) // frame * frame
    rms = np.sqrt(np.square(samples[:usable].reshape(-1, frame)).mean(axis=1))
    loud = np.flatnonzero(rms >= threshold)
    return int(loud[0]) * 10, int(loud[-1] + 1) * 10


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def stream_audio(conn: Any, pcm: bytes, *, chunk_ms: int = 100, realtime: bool = True) -> None:
    """Append `pcm` in chunks; at real-time pace (a microphone) when asked, else as fast as the socket takes."""
    step = RATE * 2 * chunk_ms // 1000
    started = time.monotonic()
    for n, offset in enumerate(range(0, len(pcm), step)):
        if realtime:
            # Pace by deadline: a microphone produces chunk n at n * chunk_ms after the start.
            delay = started + n * chunk_ms / 1000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await conn.send({"type": "input_audio_buffer.append", "audio": b64(pcm[offset : offset + step])})


class Events:
    """Reads server events from an SDK connection, validating each against the SDK's server-event union."""

    def __init__(self, conn: Any, *, beta: bool = False):
        self.conn = conn
        self.adapter = BETA_EVENTS if beta else GA_EVENTS
        self.seen: list[dict[str, Any]] = []
        self.times: list[float] = []

    async def next(self, timeout: float = 30.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.conn.recv_bytes(), timeout)
        data = json.loads(raw)
        model = self.adapter.validate_python(data)
        assert model.type == data["type"], f"{data['type']} validated as {model.type}"
        self.seen.append(data)
        self.times.append(time.monotonic())
        return data

    async def until(self, type_: str, timeout: float = 60.0) -> dict[str, Any]:
        """Read events until one of `type_` arrives (earlier ones stay in `seen`)."""
        deadline = time.monotonic() + timeout
        while True:
            event = await self.next(max(0.1, deadline - time.monotonic()))
            if event["type"] == type_:
                return event

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.seen if e["type"] == type_]
