"""Speculative replies: the reply to a user turn is prepared during the first pause, before the VAD commits it.

People answer each other ~200 ms after the other stops; a VAD that waits for `silence_duration_ms` of silence and
then runs transcription → LLM → speech in sequence cannot. So at the first pause of a turn (the same pause that
starts the transcriber's speculative pass, `SPECULATE_MS`), the session tells the `Speculator`, which runs what the
committed turn's reply would run, on what has been heard:

1. the transcript of the speech up to the pause (the transcriber's own speculative pass: no second Whisper pass;
   without input transcription, one pass here, which the committed turn then reuses);
2. the turn's emotion, bounded by `emotion_wait_seconds` like a committed turn's;
3. the chat request the reply would send (a `Responder` built exactly as the voice loop builds it), the LLM
   stream recorded, and the first speakable phrase synthesised and held.

Nothing of it goes on the wire. When the turn is committed at that same speech end and the reply to it starts, the
voice loop `claim`s the speculation: if the request the reply would send equals the speculative one (the user's
transcript compared normalised), the reply's `Responder` replays the recorded LLM chunks and the held audio instead
of asking the engines again, so its events are exactly those of a non-speculative turn, only earlier. Otherwise
(speech resumed, the turn was cleared, the transcript or the conversation differ) the speculation is cancelled and
its engine work stops at its next token or audio chunk. At most one speculation runs per session.

The LLM cache stays consistent: a cancelled speculation's prompt and partial reply stay in llama.cpp's KV cache only
up to where the next prompt differs from them (llama.cpp keeps the longest common prefix and evaluates the rest),
and a hit leaves in it exactly the tokens a non-speculative reply would have left.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from api.realtime.first_sound import FirstSound
from api.realtime.input_buffer import RATE
from api.realtime.services import RealtimeServices
from api.realtime.session_config import TranscriptionConfig
from api.realtime.transcriber import resolve_transcription, transcribe_samples
from api.speech.text_hygiene import ReplyPhrases, spoken_transcript
from engines.base import AudioBuffer, EmotionScores

if TYPE_CHECKING:
    from api.realtime.voice_loop import VoiceLoop

logger = logging.getLogger(__name__)

T = TypeVar("T")
CLAIM_WAIT_SECONDS = 1.0  # beyond the emotion grace: how long a reply waits for its speculation's request
_NOT_WORDS = re.compile(r"[^\w\s']+")
HIT, MISS, NONE = "hit", "miss", "none"


def normalise(text: str) -> str:
    """What must match between the speculative and the final transcript: the words, not case or punctuation."""
    return " ".join(_NOT_WORDS.sub(" ", text.lower()).split())


def _canonical(body: dict[str, Any]) -> str:
    messages = [{**m, "content": normalise(m["content"])} if m.get("role") == "user" and isinstance(
        m.get("content"), str) else m for m in body.get("messages") or []]
    return json.dumps({**body, "messages": messages}, sort_keys=True, default=str)


class _Tape(Generic[T]):
    """Items a background task produces, replayed to any number of readers, each from the start, as they come."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self.done = False
        self.error: BaseException | None = None
        self._changed = asyncio.Event()

    def put(self, item: T) -> None:
        self.items.append(item)
        self._changed.set()

    def close(self, error: BaseException | None = None) -> None:
        if not self.done:
            self.done, self.error = True, error
            self._changed.set()

    async def replay(self) -> AsyncIterator[T]:
        index = 0
        while True:
            while index < len(self.items):
                yield self.items[index]
                index += 1
            if self.done:
                if self.error is not None:
                    raise self.error
                return
            self._changed.clear()
            await self._changed.wait()


@dataclass(eq=False)
class Speculation:
    """One speculative reply: the turn and pause it was made for, and its recorded LLM chunks and held audio.

    Handed to the reply's `Responder` on a hit (`chunks`, `audio_for`); `close` stops whatever still runs.
    """

    item_id: str
    key: int  # the speech end (timeline samples) of the pause it was made at
    transcript: asyncio.Future[str]
    ready: asyncio.Future[bool]  # the reply's request is decided (True), or it never will be (False)
    body: dict[str, Any] | None = None
    emotion: EmotionScores | None = None
    emotion_state: str = "none"
    chunks: _Tape[dict[str, Any]] = field(default_factory=_Tape)
    audio: _Tape[bytes] = field(default_factory=_Tape)
    request: Any = None  # the SpeechRequest of the held first phrase
    plan: Any = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    speech_task: asyncio.Task[Any] | None = None
    first_sound: FirstSound = field(default_factory=FirstSound)  # the LLM waits while the held phrase is synthesised
    same_audio: bool = False  # committed at its speech end: its transcript is the committed turn's
    _audio_taken: bool = False

    def stream(self) -> AsyncIterator[dict[str, Any]]:
        """The LLM's chunks: those recorded, then the rest as the still-running stream brings them."""
        return self.chunks.replay()

    def audio_for(self, request: Any) -> tuple[Any, AsyncIterator[bytes]] | None:
        """The held speech plan and audio when `request` is the phrase held (once); else None, and its TTS stops."""
        if self._audio_taken or self.request is None or request != self.request:
            self._stop_speech()
            return None
        self._audio_taken = True
        return self.plan, self.audio.replay()

    def close(self) -> None:
        """Stop the engine work still running for it (a cancelled speculation, or a released reply that ended)."""
        for task in self.tasks:
            task.cancel()
        if not self.transcript.done():
            self.transcript.cancel()
        if not self.ready.done():
            self.ready.set_result(False)

    def _stop_speech(self) -> None:
        if self.speech_task is not None:
            self.speech_task.cancel()


class Speculator:
    """A session's speculative replies: starts one at a turn's pause, drops it when speech resumes, hands it over."""

    def __init__(self, services: RealtimeServices, voice: VoiceLoop):
        self._services = services
        self._voice = voice  # the session's VoiceLoop
        self._current: Speculation | None = None
        self._tried: dict[str, None] = {}  # turns that had a speculation (a reply without a hit is a miss)

    @property
    def enabled(self) -> bool:
        return bool(getattr(self._services.settings, "speculation", False))

    # --- hooks from the session -------------------------------------------------------------------------------

    def heard(self, item_id: str | None, pause: int | None, speech_end: int, samples: Callable[[], np.ndarray],
              transcriber: Any) -> None:
        """New audio in a turn being spoken. `pause` is the speech end when the speaker has paused long enough
        (`SPECULATE_MS`), else None; `speech_end` the VAD's newest speech end: past the speculation's, speech resumed."""
        current = self._current
        if current is not None and (current.item_id != item_id or current.key != speech_end):
            self.drop("resumed" if current.item_id == item_id else "cleared")  # its reply would answer half a sentence
        if pause is None or item_id is None or self._current is not None or not self._may_start():
            return
        spec = Speculation(item_id, pause, asyncio.get_running_loop().create_future(),
                           asyncio.get_running_loop().create_future())
        self._current = spec
        self._tried[item_id] = None
        while len(self._tried) > 16:
            self._tried.pop(next(iter(self._tried)))
        spec.tasks.append(self._voice.task_group.create_task(self._prepare(spec, samples(), transcriber)))

    def drop(self, reason: str = "cleared") -> None:
        """Cancel the speculation in flight (speech resumed, the turn was cleared or committed elsewhere)."""
        spec, self._current = self._current, None
        if spec is not None:
            spec.close()
            self._services.metrics.speculation_dropped(reason)

    def committed(self, item_id: str, speech_end: int | None) -> None:
        """A turn was committed: a speculation for another turn or another pause is of no use any more."""
        spec = self._current
        if spec is not None and (spec.item_id != item_id or speech_end not in (None, spec.key)):
            self.drop("resumed" if spec.item_id == item_id else "cleared")
        elif spec is not None:
            spec.same_audio = speech_end == spec.key  # a manual commit mid-pause: its transcript is compared

    async def transcript(self, item_id: str) -> str | None:
        """The speculative transcript of this committed turn, for a turn with no transcriber (no second pass)."""
        spec = self._current
        if spec is None or spec.item_id != item_id or not spec.same_audio:
            return None
        try:
            return await asyncio.shield(spec.transcript)
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise
            return None

    # --- hook from the voice loop -----------------------------------------------------------------------------

    async def claim(self, item_id: str, transcript: str, body_for: Callable[[Speculation], dict[str, Any]]
                    ) -> tuple[Speculation | None, str]:
        """The held reply for this committed turn if its request is the one the reply would send, and the outcome
        (hit / miss / none). `body_for(spec)` builds the reply's request with the speculation's emotion."""
        spec, self._current = self._current, None
        tried = item_id in self._tried
        self._tried.pop(item_id, None)
        if spec is None or spec.item_id != item_id:
            if spec is not None:
                self._current = spec
                self.drop("cleared")
            outcome = MISS if tried else NONE
            self._services.metrics.observe_speculation(outcome)
            return None, outcome
        held: Speculation | None = None
        reason = "late"
        if spec.same_audio and not spec.transcript.done():
            # Its transcript is the committed turn's, resolved with it: let its task take it.
            await asyncio.wait([spec.transcript], timeout=CLAIM_WAIT_SECONDS)
        if spec.transcript.done() and not spec.transcript.cancelled():
            reason = "differs"
            if normalise(spec.transcript.result()) == normalise(transcript):
                grace = self._services.settings.emotion_wait_seconds + CLAIM_WAIT_SECONDS
                try:
                    ready = await asyncio.wait_for(asyncio.shield(spec.ready), grace)
                except TimeoutError:
                    ready, reason = False, "late"
                if ready and spec.body is not None and _canonical(body_for(spec)) == _canonical(spec.body):
                    held = spec
        if held is None:
            self._current = spec
            self.drop(reason)
        outcome = HIT if held is not None else MISS
        self._services.metrics.observe_speculation(outcome)
        return held, outcome

    # --- the speculative work ---------------------------------------------------------------------------------

    def _may_start(self) -> bool:
        voice = self._voice
        td = voice.config.turn_detection
        return (self.enabled and voice.config.kind == "realtime" and td is not None
                and getattr(td, "create_response", False) and not voice.responding)

    async def _prepare(self, spec: Speculation, samples: np.ndarray, transcriber: Any) -> None:
        try:
            if transcriber is not None:
                text = await asyncio.shield(transcriber.covering(spec.key))
            else:
                engine, options = resolve_transcription(self._services.transcription, TranscriptionConfig(model="whisper-1"))
                text = await transcribe_samples(self._services.transcription, engine, samples, options)
            if not spec.transcript.done():
                spec.transcript.set_result(text)
            if not text.strip():
                spec.ready.set_result(False)
                return
            spec.emotion, spec.emotion_state = await self._emotion(samples, text)
            responder = self._voice.speculative_responder(spec, text)
            spec.body = responder.chat_body()
            spec.ready.set_result(True)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("speculative reply failed; the committed turn will run its own")
            if not spec.ready.done():
                spec.ready.set_result(False)
            return
        group = self._voice.task_group
        spec.tasks.append(group.create_task(self._record_llm(spec)))
        if responder.audio:
            spec.speech_task = group.create_task(self._hold_first_phrase(spec, responder))
            spec.tasks.append(spec.speech_task)

    async def _emotion(self, samples: np.ndarray, text: str) -> tuple[EmotionScores | None, str]:
        """The turn's emotion as a committed turn's reply would use it: ready within the grace, else late."""
        if self._voice.config.kind != "realtime":
            return None, "none"
        emotion = self._services.emotion
        try:
            caps = emotion.resolve(None).capabilities
        except Exception:
            return None, "none"
        words = text if caps is None or caps.uses_transcript else None
        task = asyncio.ensure_future(emotion.recognize(AudioBuffer(samples, RATE), words))
        try:
            result = await asyncio.wait_for(task, self._services.settings.emotion_wait_seconds)
        except TimeoutError:
            return None, "late"
        except Exception:
            return None, "none"
        scores = result.emotion
        return scores, "ready" if scores is not None else "none"

    async def _record_llm(self, spec: Speculation) -> None:
        try:
            async for chunk in spec.first_sound.paced(self._services.chat.stream(spec.body)):
                spec.chunks.put(chunk)
        except asyncio.CancelledError:
            spec.chunks.close(asyncio.CancelledError())
            raise
        except Exception as exc:  # the reply that replays it fails the way a live one would
            spec.chunks.close(exc)
            return
        spec.chunks.close()

    async def _hold_first_phrase(self, spec: Speculation, responder: Any) -> None:
        """Synthesise the reply's first spoken phrase, cut from the LLM stream the way the responder cuts it."""
        try:
            chunker = ReplyPhrases()
            phrase = None
            async for chunk in spec.chunks.replay():
                for choice in chunk.get("choices") or []:
                    content = (choice.get("delta") or {}).get("content") or ""
                    phrase = next((p for p in chunker.feed(content) if spoken_transcript(p)), None)
                    if phrase is not None:
                        break
                if phrase is not None:
                    break
            else:
                phrase = next((p for p in chunker.flush() if spoken_transcript(p)), None)
            if phrase is None:
                return
            request = responder.speech_request(phrase)
            try:
                plan = self._services.speech.plan(request)
            except Exception:
                return  # not speakable: the reply skips it as well
            spec.request, spec.plan = request, plan
            async for pcm in spec.first_sound.sounding(self._services.speech.stream(plan)):
                spec.audio.put(pcm)
        except asyncio.CancelledError:
            spec.audio.close(asyncio.CancelledError())
            raise
        except Exception as exc:
            spec.audio.close(exc)
            return
        finally:
            spec.audio.close()
