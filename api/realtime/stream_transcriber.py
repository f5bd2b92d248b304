"""Live transcription of a user turn through a streaming model (`capabilities.streaming`: NeMo's cache-aware
Nemotron streaming), in-process.

Where `TurnTranscriber` re-transcribes the growing turn in passes, this one opens one `stream_transcribe` per turn
and hands it the turn's audio as it arrives: each audio frame is encoded once, and concurrent sessions' encoder steps
share the model's batches (engines/nemo_streaming.py). Each update of the model is sent as a delta at once (a
transducer's hypothesis only grows: no agreement between passes to wait for). A pause (for speculative replies and
semantic_vad) is covered as soon as the stream has decoded past its speech end; `.completed` carries the stream's
last text once the committed audio is in and the input has ended, with no second pass.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator

import numpy as np

from api.realtime.input_buffer import RATE
from api.realtime.transcriber import Emit, Fetch, Finished, TurnTranscriber
from api.transcription.service import TranscriptionService
from engines.base import AudioBuffer, CancelToken, EngineError, TranscriptionOptions
from engines.registry import EngineSpec

_POLL_SECONDS = 0.1  # how often the engine's thread, waiting for audio, looks whether the turn was dropped


class LiveAudio:
    """A turn's audio on its way to the engine: pieces put here on the event loop, read on the engine's thread."""

    def __init__(self, rate: int):
        self._rate = rate
        self._queue: queue.SimpleQueue[np.ndarray | None] = queue.SimpleQueue()

    def put(self, samples: np.ndarray) -> None:
        if len(samples):
            self._queue.put(samples)

    def end(self) -> None:
        self._queue.put(None)

    def chunks(self, cancel: CancelToken) -> Iterator[AudioBuffer]:
        """The pieces as they come, until `end` (or until `cancel` is set while waiting)."""
        while True:
            try:
                samples = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if cancel.cancelled:
                    return
                continue
            if samples is None:
                return
            yield AudioBuffer(samples, self._rate)


class StreamTurnTranscriber(TurnTranscriber):
    """One user turn's transcription on a streaming model: deltas as the model decodes, then `.completed`."""

    def __init__(self, transcription: TranscriptionService, spec: EngineSpec, options: TranscriptionOptions,
                 item_id: str, emit: Emit, *, start: int, partial_interval: float, finished: Finished | None = None):
        """`start`: the timeline position of the turn's first sample (pause keys are timeline positions)."""
        super().__init__(transcription, spec, options, item_id, emit, partial_interval=partial_interval,
                         finished=finished)
        self._start = start
        self._audio = LiveAudio(RATE)
        self._fed = 0  # samples of the turn handed to the model
        self._pauses: list[int] = []  # speech ends of pauses the stream has not yet decoded past

    def update(self, length: int, fetch: Fetch, *, speculate: bool = False, quiet: bool = False) -> None:
        new, key = fetch(self._fed)  # only the audio not yet handed over
        if length > self._fed:
            self._audio.put(new[: length - self._fed])
            self._fed = length
        if key is not None and key not in self._covering and key not in self._pauses:
            self._pauses.append(key)

    def finish(self, samples: np.ndarray, speech_end: int | None = None) -> None:
        self._final, self._final_key = samples, speech_end
        if len(samples) > self._fed:
            self._audio.put(samples[self._fed :])
            self._fed = len(samples)
        self._audio.end()

    async def run(self) -> None:
        text = ""
        try:
            async for update in self._transcription.stream_text(self._spec, self._audio.chunks, self._options):
                text = update.text
                if text.startswith(self._sent) and len(text) > len(self._sent):
                    await self._delta(text[len(self._sent) :])
                if update.decoded_seconds is not None:
                    decoded = self._start + int(update.decoded_seconds * RATE)
                    for key in [k for k in self._pauses if k <= decoded]:
                        self._pauses.remove(key)
                        self._resolve(key, text)
        except EngineError as exc:
            await self._failed(exc)
            return
        for key in self._pauses:  # the input ended first: the whole stream covers them
            self._resolve(key, text)
        self._pauses.clear()
        assert self._final is not None  # the input ends only in `finish`
        await self._complete(self._final, text)
