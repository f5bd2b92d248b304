"""An aiortc caller for voxloop's realtime calls (issue 21), as a browser makes one: an SDP offer over HTTP, the
`oai-events` data channel, a microphone track sending PCM in real time, and the reply track listened to.

Used by tests/e2e/test_realtime_webrtc.py (every server event validated against the openai SDK's types) and by
bench/webrtc.py (when the caller's speech ended and when the reply became audible, on the client's clock).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import av
import numpy as np
import pydantic
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from openai.types.realtime import RealtimeServerEvent

from api.realtime.webrtc.audio import FRAME_BYTES, FRAME_SAMPLES, RATE, pcm_frame

SERVER_EVENT = pydantic.TypeAdapter(RealtimeServerEvent)
BETA_SERVER_EVENT = pydantic.TypeAdapter(BetaServerEvent)
AUDIBLE = 0.02  # a decoded sample above this (of full scale) is sound, not the codec's rendering of silence


class SpeechTrack(MediaStreamTrack):
    """A microphone: the PCM16 24 kHz audio added to `pcm`, in real time, then silence."""

    kind = "audio"

    def __init__(self, pcm: bytes = b""):
        super().__init__()
        self.pcm = bytearray(pcm)
        self._pts = 0
        self._start: float | None = None
        self._sent = 0  # bytes sent so far, silence included
        self._marks: list[tuple[int, asyncio.Future[float]]] = []

    def say(self, pcm: bytes, mark_at: int | None = None) -> asyncio.Future[float] | None:
        """Queue `pcm`; with `mark_at` (a byte offset into it), a future of the monotonic time that byte was sent."""
        mark = None
        if mark_at is not None:
            mark = asyncio.get_running_loop().create_future()
            self._marks.append((self._sent + len(self.pcm) + mark_at, mark))
        self.pcm += pcm
        return mark

    async def recv(self) -> av.AudioFrame:
        self._start = self._start or time.monotonic()
        wait = self._start + self._pts / RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk = bytes(self.pcm[:FRAME_BYTES])
        del self.pcm[:FRAME_BYTES]
        self._sent += FRAME_BYTES
        now = time.monotonic()
        for position, mark in [m for m in self._marks if m[0] <= self._sent]:
            self._marks.remove((position, mark))
            if not mark.done():
                mark.set_result(now)
        frame = pcm_frame(chunk, self._pts)
        self._pts += FRAME_SAMPLES
        return frame


class Caller:
    """One aiortc peer: the mic track, the data channel's events (SDK-validated), and the reply audio heard."""

    def __init__(self, *, data_channel: bool = True, audio: bool = True, beta: bool = False):
        self.pc = RTCPeerConnection()
        self.types = BETA_SERVER_EVENT if beta else SERVER_EVENT
        self.mic = SpeechTrack()
        self.events: list[dict[str, Any]] = []
        self.arrivals: list[float] = []  # monotonic time each event arrived
        self.heard_at: list[int] = []  # bytes of reply audio received when each event arrived
        self.heard = bytearray()
        self.invalid: list[str] = []
        self._new = asyncio.Event()
        self._sound: list[asyncio.Future[float]] = []
        if audio:
            self.pc.addTrack(self.mic)
        self.channel = self.pc.createDataChannel("oai-events") if data_channel else None
        self.opened = asyncio.Event()
        if self.channel is not None:
            self.channel.on("open", self.opened.set)
            self.channel.on("message", self._message)
        self.pc.on("track", lambda track: asyncio.ensure_future(self._listen(track)))

    def _message(self, text: str) -> None:
        event = json.loads(text)
        try:
            self.types.validate_python(event)  # anything the SDK would not parse fails the test at the next until()
        except pydantic.ValidationError as exc:
            self.invalid.append(f"{event.get('type')}: {str(exc)[:300]}")
        self.events.append(event)
        self.arrivals.append(time.monotonic())
        self.heard_at.append(len(self.heard))
        self._new.set()

    async def _listen(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            for out in resampler.resample(frame):
                pcm = bytes(out.planes[0])[: out.samples * 2]
                self.heard += pcm
                if self._sound and np.abs(np.frombuffer(pcm, "<i2")).max(initial=0) > AUDIBLE * 32768:
                    now = time.monotonic()
                    for waiting in self._sound:
                        if not waiting.done():
                            waiting.set_result(now)
                    self._sound.clear()

    def next_sound(self) -> asyncio.Future[float]:
        """A future of the monotonic time the next audible reply frame arrives."""
        future = asyncio.get_running_loop().create_future()
        self._sound.append(future)
        return future

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    def send(self, event: dict[str, Any]) -> None:
        self.channel.send(json.dumps(event))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    async def until(self, kind: str, timeout: float = 60, after: int = 0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            assert not self.invalid, self.invalid
            found = [e for e in self.events[after:] if e["type"] == kind]
            if found:
                return found[0]
            self._new.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind} in {timeout} s; saw {[e['type'] for e in self.events]}")
            try:
                await asyncio.wait_for(self._new.wait(), left)
            except TimeoutError:
                pass
