"""Live transcription of a user turn, in-process, through the transcription service the HTTP API uses.

While the user speaks, the growing turn is re-transcribed every `partial_interval` seconds of new audio, backing
off to twice the last pass's duration (so live passes leave the model idle at least half the time: a pass in
flight when the turn ends delays its final transcript) and skipped while the model is busy with other work. Only
words that two consecutive hypotheses agree on are sent as deltas ("local agreement"), minus the last word, which
the audio may have cut. Deltas are append-only and never retracted: when a later hypothesis disagrees with what
was sent, nothing more is sent until the end. At the end of the turn the rest is sent as a last delta, so the
deltas always concatenate exactly to `.completed`'s transcript (which starts with what was already sent).

The final text comes from one pass over all the turn's speech. When the speaker pauses, a pass starts at once
(speculatively): if the pause turns out to be the end of the turn, that pass is the final one, and `.completed`
follows `speech_stopped` without a second pass. Otherwise the committed audio is transcribed at the end.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

import numpy as np

from api.http.errors import InvalidRequestError, ModelNotFoundError
from api.realtime.events import RealtimeProtocolError
from api.realtime.input_buffer import RATE
from api.realtime.server_events import ServerEvent, TranscriptionCompleted, TranscriptionDelta, TranscriptionFailed
from api.realtime.session_config import TranscriptionConfig
from api.transcription.service import TranscriptionService
from engines.base import AudioBuffer, EngineError, TranscriptionOptions
from engines.registry import EngineSpec

logger = logging.getLogger(__name__)

MAX_PARTIAL_SECONDS = 30.0  # past this, partial passes would cost more than they are worth; the final covers it
_WORDS = re.compile(r"\s*\S+")

_PARAM = "session.audio.input.transcription"
Emit = Callable[[ServerEvent], Awaitable[None]]
Finished = Callable[[str, "str | None"], None]  # (item id, final transcript or None when the pass failed)
# The turn so far from a number of samples into it (0: all of it), and the speech end it covers when the speaker
# has paused (None while speaking).
Fetch = Callable[[int], tuple[np.ndarray, int | None]]


def resolve_transcription(
    transcription: TranscriptionService, config: TranscriptionConfig
) -> tuple[EngineSpec, TranscriptionOptions]:
    """The engine spec and options for a session's transcription settings (the transcription service's resolver and
    language check), or a protocol error naming the session field."""
    try:
        spec = transcription.resolve(config.model, "transcribe")
    except ModelNotFoundError as exc:
        raise RealtimeProtocolError(exc.message, code="model_not_found", param=f"{_PARAM}.model") from None
    language = config.language or None
    try:
        transcription.check_language(spec, language)
    except InvalidRequestError as exc:
        raise RealtimeProtocolError(exc.message, code="invalid_value", param=f"{_PARAM}.language") from None
    # The turn is already cut by our VAD; Whisper's own VAD filter still trims silence at the edges (turns end
    # with `silence_duration_ms` of silence) so the model never decodes padding.
    return spec, TranscriptionOptions(language=language, prompt=config.prompt or None, vad_min_silence_ms=300)


async def transcribe_samples(
    transcription: TranscriptionService, spec: EngineSpec, samples: np.ndarray, options: TranscriptionOptions
) -> str:
    """Transcribe 16 kHz samples in-process."""
    return await transcription.transcribe_text(spec, AudioBuffer(samples, RATE), options)


def _words(text: str) -> list[str]:
    return _WORDS.findall(text)


class TurnTranscriber:
    """One user turn's transcription: live partial passes while it is spoken, then the final pass."""

    def __init__(self, transcription: TranscriptionService, spec: EngineSpec, options: TranscriptionOptions,
                 item_id: str, emit: Emit, *, partial_interval: float, finished: Finished | None = None):
        self._transcription, self._spec, self._options = transcription, spec, options
        self.item_id = item_id
        self._emit = emit
        self._finished = finished  # told the turn's outcome before its event goes out (the session's conversation)
        self._interval = partial_interval
        self._sent = ""
        self._previous: list[str] = []
        self._fetch: Fetch | None = None
        self._covering: dict[int, str] = {}  # speech end -> text of a pass that covered all speech up to it
        self._covering_waiters: dict[int, asyncio.Future[str]] = {}  # for speculative replies
        self._final_key: int | None = None
        self._transcribed_samples = 0
        self._wake = asyncio.Event()
        self._final: np.ndarray | None = None
        self.task: asyncio.Task[None] | None = None  # set by the session, which cancels it when a turn is cleared

    def update(self, length: int, fetch: Fetch, *, speculate: bool = False, quiet: bool = False) -> None:
        """The turn has grown to `length` samples; `fetch(0)` returns them and the speech end they cover.

        `speculate` means the speaker has paused: a pass now probably covers the whole turn, and if no speech
        follows, its text becomes the final transcript without another pass (the turn's end is only confirmed
        `silence_duration_ms` later, and this saves most of that wait). `quiet` means a gap has begun that may
        become that pause: no live partial starts then, so the pause's pass does not queue behind one.
        """
        self._fetch = fetch
        due = length - self._transcribed_samples >= self._interval * RATE and length <= MAX_PARTIAL_SECONDS * RATE
        if (due and not quiet) or speculate:
            self._wake.set()

    def covering(self, key: int) -> asyncio.Future[str]:
        """The text of the speculative pass over the speech up to `key` (a pause's speech end), once it is done."""
        waiter = self._covering_waiters.get(key)
        if waiter is None:
            waiter = self._covering_waiters[key] = asyncio.get_running_loop().create_future()
            if key in self._covering:
                waiter.set_result(self._covering[key])
        return waiter

    def covered(self, key: int) -> str | None:
        """The text of a finished pass over all the speech up to `key` (a pause's speech end), None if none ran yet
        (turn detection reads it: semantic_vad and eager server_vad end a turn early when it reads as finished)."""
        return self._covering.get(key)

    def finish(self, samples: np.ndarray, speech_end: int | None = None) -> None:
        """The committed audio of the turn, and where its speech ended: the live loop ends, the final comes."""
        self._final, self._final_key = samples, speech_end
        self._wake.set()

    async def run(self) -> None:
        """Partials until `finish`, then the final pass and `.completed` (or `.failed`)."""
        while self._final is None:
            await self._wake.wait()
            self._wake.clear()
            if self._final is not None or self._fetch is None:
                continue
            samples, key = self._fetch(0)
            if key is not None and key in self._covering:
                continue  # this pause was already transcribed
            # Live passes only use an idle model (a speculative one may queue behind one other call): final
            # transcripts of other turns and HTTP requests go first. A skipped pass is retried on the next append.
            if self._transcription.in_flight(self._spec) > (0 if key is None else 1):
                continue
            started = time.perf_counter()
            try:
                options = self._options if key is not None else replace(self._options, draft=True)
                text = await transcribe_samples(self._transcription, self._spec, samples, options)
            except EngineError as exc:  # a partial that fails (e.g. the model is busy) just waits for the final
                logger.debug("partial transcription skipped: %s", exc)
                continue
            self._transcribed_samples = len(samples)
            if key is not None:
                self._resolve(key, text)
            # Back off under load: a pass that took longer than the interval sets the pace of the next one.
            self._interval = max(self._interval, 2 * (time.perf_counter() - started))
            await self._partial(text)
        await self._complete(self._final, self._covering.get(self._final_key) if self._final_key else None)

    async def _partial(self, text: str) -> None:
        words = _words(text)
        agreed: list[str] = []
        for a, b in zip(self._previous, words[:-1], strict=False):
            if a != b:
                break
            agreed.append(a)
        self._previous = words
        stable = "".join(agreed).strip()
        if stable.startswith(self._sent) and len(stable) > len(self._sent):
            await self._delta(stable[len(self._sent) :])

    async def _delta(self, text: str) -> None:
        self._sent += text
        await self._emit(TranscriptionDelta(item_id=self.item_id, delta=text))

    async def _complete(self, samples: np.ndarray, covered: str | None = None) -> None:
        try:
            text = covered if covered is not None else await transcribe_samples(
                self._transcription, self._spec, samples, self._options)
        except EngineError as exc:
            await self._failed(exc)
            return
        waiter = self._covering_waiters.pop(self._final_key, None) if self._final_key is not None else None
        if waiter is not None and not waiter.done():
            waiter.set_result(text)  # the final pass covers that speech end too
        final = self._join(text)
        if len(final) > len(self._sent):
            await self._delta(final[len(self._sent) :])
        if self._finished is not None:
            self._finished(self.item_id, final)
        await self._emit(TranscriptionCompleted(
            item_id=self.item_id, transcript=final,
            usage={"type": "duration", "seconds": round(len(samples) / RATE, 3)},
        ))

    async def _failed(self, exc: EngineError) -> None:
        self.fail()
        await self._emit(TranscriptionFailed(
            item_id=self.item_id,
            error={"type": "transcription_error", "code": "transcription_failed", "message": str(exc), "param": None},
        ))

    def _resolve(self, key: int, text: str) -> None:
        """A pass (or the stream) has covered all the speech up to `key`: its text, and whoever waits for it."""
        self._covering[key] = text
        waiter = self._covering_waiters.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(text)

    def fail(self) -> None:
        """The turn gets no transcript: whoever waits for it stops waiting."""
        if self._finished is not None:
            self._finished(self.item_id, None)

    def _join(self, text: str) -> str:
        """The final transcript, which must start with what was already sent as deltas."""
        if text.startswith(self._sent):
            return text
        # Diverged: keep what was sent and continue with the final words past the same number of words.
        rest = _words(text)[len(_words(self._sent)) :]
        return self._sent + "".join(rest)
