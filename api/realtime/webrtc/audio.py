"""Audio between WebRTC tracks and the realtime session's PCM16 at 24 kHz.

In: the caller's Opus track, decoded by aiortc into 48 kHz frames, is resampled to mono s16 at 24 kHz and handed on
in ~100 ms chunks. Out: the session's reply PCM is queued on `PcmOutTrack`, which aiortc pulls every 20 ms and
encodes to Opus; when nothing is queued it sends silence, so the RTP clock never stalls. The track counts what it has
sent of each response, which is what the caller has heard (give or take its jitter buffer): barge-in truncates there.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

RATE = 24_000
FRAME_SAMPLES = RATE // 50  # 20 ms, Opus's usual frame
FRAME_BYTES = FRAME_SAMPLES * 2
CHUNK_BYTES = RATE // 10 * 2  # 100 ms of input per append


async def pcm_chunks(track: MediaStreamTrack) -> AsyncIterator[bytes]:
    """The caller's audio as mono PCM16 at 24 kHz, in ~100 ms chunks, until the track ends."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    pending = bytearray()
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            break
        for out in resampler.resample(frame):
            pending += bytes(out.planes[0])[: out.samples * 2]
        if len(pending) >= CHUNK_BYTES:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


def pcm_frame(chunk: bytes, pts: int) -> av.AudioFrame:
    """One 20 ms frame for aiortc's Opus encoder: mono PCM16 at 24 kHz, padded with silence, stamped at `pts`."""
    frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
    frame.planes[0].update(chunk[:FRAME_BYTES].ljust(FRAME_BYTES, b"\0"))
    frame.sample_rate = RATE
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, RATE)
    return frame


@dataclass
class Playout:
    """What the out track is playing: the response and item, and the milliseconds of it sent so far."""

    response_id: str
    item_id: str
    sent_samples: int = 0

    @property
    def played_ms(self) -> int:
        return self.sent_samples * 1000 // RATE


class PcmOutTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, on_started: Callable[[str], None], on_stopped: Callable[[str], None]):
        super().__init__()
        self._buffer = bytearray()
        self._queue: list[tuple[str, str, int]] = []  # (response_id, item_id, bytes) in buffer order
        self._on_started, self._on_stopped = on_started, on_stopped
        self.playout: Playout | None = None
        self._done: set[str] = set()  # responses whose audio is all queued: stopped once it has all been sent
        self._start: float | None = None
        self._pts = 0

    def push(self, pcm: bytes, response_id: str, item_id: str) -> None:
        if self._queue and self._queue[-1][:2] == (response_id, item_id):
            self._queue[-1] = (response_id, item_id, self._queue[-1][2] + len(pcm))
        else:
            self._queue.append((response_id, item_id, len(pcm)))
        self._buffer += pcm

    def finish(self, response_id: str) -> None:
        self._done.add(response_id)

    @property
    def pending(self) -> bool:
        return bool(self._buffer)

    def clear(self) -> Playout | None:
        """Drop what is not yet sent; returns what was playing (for the truncate) or None."""
        playing = self.playout
        self._buffer.clear()
        self._queue.clear()
        self.playout = None
        return playing

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._pts / RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk = bytes(self._buffer[:FRAME_BYTES])
        del self._buffer[:FRAME_BYTES]
        self._account(len(chunk))
        frame = pcm_frame(chunk, self._pts)
        self._pts += FRAME_SAMPLES
        return frame

    def _account(self, sent: int) -> None:
        while sent and self._queue:
            response_id, item_id, size = self._queue[0]
            if self.playout is None or (self.playout.response_id, self.playout.item_id) != (response_id, item_id):
                previous = self.playout
                self.playout = Playout(response_id, item_id)
                if previous is None or previous.response_id != response_id:
                    self._on_started(response_id)
            take = min(sent, size)
            self.playout.sent_samples += take // 2
            sent -= take
            if take == size:
                self._queue.pop(0)
            else:
                self._queue[0] = (response_id, item_id, size - take)
        if not self._buffer and self.playout is not None and self.playout.response_id in self._done:
            finished, self.playout = self.playout, None
            self._done.discard(finished.response_id)
            self._on_stopped(finished.response_id)
