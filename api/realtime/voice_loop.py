"""The voice loop of one realtime session: committed user turn → transcript → emotion → LLM → speech.

The session tells the loop when a user turn is committed (with its audio), when its transcript is ready, and when
the user starts speaking (barge-in). The loop keeps, per turn, the transcript and the emotion; it runs at most one
response at a time (OpenAI's rule) and cancels it on barge-in or `response.cancel`.

Emotion routing: each committed turn goes through the emotion service in-process. Its label reaches the LLM as a
short system note, and the dual-TTS router (`voxloop-duet`) then speaks the reply in the fast voice or the
expressive one. With `extension_events` on, a `voxloop.input_audio_emotion` event tells the client what was heard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from api.http.errors import InvalidRequestError
from api.realtime.events import RealtimeProtocolError
from api.realtime.llm_context import build_messages, emotion_note
from api.realtime.responder import Responder, ResponseParams, Timings
from api.realtime.server_events import InputAudioEmotion
from api.realtime.services import RealtimeServices
from api.realtime.session_config import SessionConfig, TranscriptionConfig
from api.realtime.sessions import SHUTTING_DOWN_CODE
from api.realtime.speculation import Speculation, Speculator
from api.realtime.state import ALREADY_RESPONDING, NO_NEW_RESPONSES
from api.realtime.transcriber import resolve_transcription, transcribe_samples
from api.speech.protocol import CustomVoice
from engines.base import AudioBuffer, EmotionScores

if TYPE_CHECKING:
    from api.realtime.session import RealtimeSession

logger = logging.getLogger(__name__)

TRANSCRIPT_WAIT_SECONDS = 30.0


@dataclass
class _Turn:
    item_id: str
    timings: Timings
    transcript: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    emotion: asyncio.Task[EmotionScores | None] | None = None


class VoiceLoop:
    def __init__(self, services: RealtimeServices, session: RealtimeSession, *, extension_events: bool):
        self._services = services
        self._session = session
        self._settings = services.settings
        self.extension_events = extension_events
        self._turns: dict[str, _Turn] = {}
        self._last_turn: _Turn | None = None
        self.active: Responder | None = None
        self._task: asyncio.Task[None] | None = None
        self._entered: asyncio.Task[Any] | None = None  # the response task that has started running
        self.speculation = Speculator(services, self)  # replies prepared during a turn's first pause

    @property
    def config(self) -> SessionConfig:
        return self._session.config

    @property
    def task_group(self) -> asyncio.TaskGroup:
        return self._session.task_group

    @property
    def responding(self) -> bool:
        return self.active is not None or (self._task is not None and not self._task.done())

    # --- user turns -------------------------------------------------------------------------------------------

    def turn_committed(self, item_id: str, samples: np.ndarray, rate: int, *, transcribing: bool,
                       speech_end: int | None = None) -> None:
        """A user turn is in the conversation; start what the reply will need (transcript, emotion)."""
        self.speculation.committed(item_id, speech_end)
        turn = _Turn(item_id, Timings(speech_end=time.monotonic()))
        self._turns[item_id] = turn
        self._last_turn = turn
        while len(self._turns) > 8:  # only recent turns can still be waited on
            self._turns.pop(next(iter(self._turns)))
        group = self._session.task_group
        if not transcribing:
            # The client did not ask for input transcription, but the LLM still has to read the turn.
            group.create_task(self._transcribe(turn, samples))
        if self.config.kind == "realtime":
            turn.emotion = group.create_task(self._recognize(turn, AudioBuffer(samples, rate)))

    def transcript_ready(self, item_id: str, transcript: str | None) -> None:
        turn = self._turns.get(item_id)
        if turn is not None and not turn.transcript.done():
            turn.timings.transcript = time.monotonic()
            turn.transcript.set_result(transcript or "")

    async def _transcribe(self, turn: _Turn, samples: np.ndarray) -> None:
        try:
            text = await self.speculation.transcript(turn.item_id)  # the pass made at the pause, if any
            if text is None:
                transcription = self._services.transcription
                spec, options = resolve_transcription(transcription, TranscriptionConfig(model="whisper-1"))
                text = await transcribe_samples(transcription, spec, samples, options)
        except Exception:
            logger.exception("transcribing a turn for the voice loop failed")
            text = ""
        self._session.conversation.set_transcript(turn.item_id, text)
        self.transcript_ready(turn.item_id, text)

    async def _recognize(self, turn: _Turn, audio: AudioBuffer) -> EmotionScores | None:
        try:
            spec = self._services.emotion.resolve(None)
            caps = spec.capabilities
            # An engine that reads no words (emotion2vec+) starts with the audio instead of after the transcript.
            transcript = (await asyncio.wait_for(asyncio.shield(turn.transcript), TRANSCRIPT_WAIT_SECONDS)
                          if caps is None or caps.uses_transcript else None)
            result = await self._services.emotion.recognize(audio, transcript)
        except Exception:
            logger.exception("emotion recognition of a turn failed")
            return None
        turn.timings.emotion = time.monotonic()
        scores = result.emotion
        if self.extension_events:
            await self._session.emit(InputAudioEmotion(
                item_id=turn.item_id, label=scores.label, scores=scores.score_map,
                valence=scores.valence, arousal=scores.arousal, speech=scores.speech, model=result.model,
            ))
        return scores

    # --- responses --------------------------------------------------------------------------------------------

    async def create(self, overrides: dict[str, Any] | None, event_id: str | None) -> asyncio.Task[None]:
        """Start a response and return its task; the session hears `response_ended()` when it is over."""
        if self._session.closing:
            raise NO_NEW_RESPONSES.error(event_id)
        if self.active is not None or (self._task is not None and not self._task.done()):
            raise ALREADY_RESPONDING.error(event_id)
        params = self._params(overrides or {}, event_id)
        self._task = self._session.task_group.create_task(self._run_response(params))
        return self._task

    async def _run_response(self, params: ResponseParams) -> None:
        self._entered = asyncio.current_task()
        try:
            await self._respond(params)
        finally:
            self._session.response_ended()  # before the task is done: its state never lags behind the task

    async def cancel(self, reason: str) -> bool:
        """Stop the running response; its `response.done` says `cancelled` with `reason`. False if none runs."""
        task, responder = self._task, self.active
        if task is None or task.done() or responder is None:
            return False
        responder.cancel_reason = reason
        task.cancel()
        await asyncio.wait([task])
        return True

    async def drop_pending(self) -> bool:
        """Drop a reply that has not started speaking (it waits for its turn's transcript or emotion): nothing of it
        has been sent, so it ends unseen. False if there is none."""
        task = self._task
        if task is None or task.done() or self.active is not None:
            return False
        task.cancel()
        await asyncio.wait([task])
        if self._entered is not task:  # cancelled before it first ran: its `finally` never told the session
            self._session.response_ended()
        return True

    def check_voice(self, voice: Any, param: str, event_id: str | None) -> None:
        """A custom voice must exist and the reply's speech model must clone: an `error` event now, not silence later
        (phrases that fail to plan are skipped without a word)."""
        if not isinstance(voice, CustomVoice):
            return
        try:
            self._services.speech.check_custom_voice(voice, self._settings.speech_model)
        except InvalidRequestError as exc:
            raise RealtimeProtocolError(exc.message, code=exc.code or "invalid_value", param=param,
                                        event_id=event_id) from None

    async def finish(self, deadline: float) -> None:
        """Server shutdown: let the response in progress end by `deadline` (loop time), else stop it as failed."""
        task = self._task
        if task is None or task.done():
            return
        await asyncio.wait([task], timeout=max(0.0, deadline - asyncio.get_running_loop().time()))
        if not task.done():
            if self.active is not None:
                self.active.cancel_reason = SHUTTING_DOWN_CODE  # response.done says `failed`, not `cancelled`
            task.cancel()
            await asyncio.wait([task])

    def _params(self, o: dict[str, Any], event_id: str | None) -> ResponseParams:
        c = self.config
        modalities = o.get("output_modalities") or o.get("modalities") or c.output_modalities
        audio = o.get("audio") or {}
        output = audio.get("output") or {} if isinstance(audio, dict) else {}
        voice = output.get("voice") or o.get("voice") or c.voice
        if isinstance(voice, dict):
            voice = CustomVoice(id=str(voice.get("id") or "")) if voice.get("id") else c.voice
        self.check_voice(voice, "response.audio.output.voice" if "voice" in output else "response.voice", event_id)
        limit = o.get("max_output_tokens", o.get("max_response_output_tokens", c.max_output_tokens))
        conversation = o.get("conversation", "auto")
        if conversation not in ("auto", "none", None):
            raise RealtimeProtocolError("response.conversation must be 'auto' or 'none'.", code="invalid_value",
                                        param="response.conversation", event_id=event_id)
        metadata = o.get("metadata") or {}
        return ResponseParams(
            instructions=o.get("instructions") or c.instructions,
            modalities=["text"] if "audio" not in modalities else ["audio"],
            voice=voice if isinstance(voice, CustomVoice) else str(voice),
            speed=float(output.get("speed") or o.get("speed") or c.speed),
            tools=o.get("tools", c.tools) or [],
            tool_choice=o.get("tool_choice", c.tool_choice),
            temperature=float(o.get("temperature", c.temperature)),
            max_output_tokens=None if limit in (None, "inf") else int(limit),
            in_conversation=conversation != "none",
            input_items=o.get("input"),
            metadata={str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {},
            output_format=c.output_format,
        )

    async def _respond(self, params: ResponseParams) -> None:
        turn = self._last_turn
        self._last_turn = None  # a turn gets one automatic reply
        emotion: EmotionScores | None = None
        emotion_state = "none"  # what the reply was routed and prompted with: see _ready_emotion
        timings = turn.timings if turn is not None else Timings()
        held: Speculation | None = None
        if turn is not None:
            transcript = await self._wait(turn.transcript)
            held, outcome = await self.speculation.claim(
                turn.item_id, transcript or "", lambda spec: self._responder(params, spec.emotion, self._items(params)).chat_body())
            params.metadata.setdefault("voxloop_speculation", outcome)
            emotion, emotion_state = (held.emotion, held.emotion_state) if held else await self._ready_emotion(turn)
            params.metadata.setdefault("voxloop_emotion_state", emotion_state)
        responder = self._responder(params, emotion, self._items(params), timings=timings, held=held)
        self.active = responder
        try:
            await responder.run()
        finally:
            self.active = None
            if held is not None:
                held.close()  # a reply cancelled mid-way stops the speculation's LLM and speech at once

    def _items(self, params: ResponseParams) -> list[dict[str, Any]]:
        return params.input_items if params.input_items is not None else self._session.conversation.items()

    def _responder(self, params: ResponseParams, emotion: EmotionScores | None, items: list[dict[str, Any]], *,
                   timings: Timings | None = None, held: Speculation | None = None) -> Responder:
        """The reply as it will run: the bounded conversation with the emotion note, routed by the emotion."""
        note = emotion_note(emotion, self._services.speech.expressive_tags())
        messages = build_messages(items, params.instructions, note=note,
                                  max_messages=self._settings.max_history_messages,
                                  max_chars=self._settings.max_history_chars)
        label = emotion.label if emotion is not None and emotion.speech else None
        return Responder(self._services, self._session.emit, params, messages, emotion_label=label,
                         timings=timings or Timings(), speech_model=self._settings.speech_model,
                         llm_model=self._settings.llm_model or self._services.chat.default_model(),
                         conversation=self._session.conversation if params.in_conversation else None, held=held)

    def speculative_responder(self, spec: Speculation, transcript: str) -> Responder:
        """The reply a committed turn with this transcript would run now (never run itself: its request is used)."""
        turn = {"id": spec.item_id, "type": "message", "role": "user", "status": "completed",
                "content": [{"type": "input_audio", "transcript": transcript}]}
        items = [i for i in self._session.conversation.items() if i.get("id") != spec.item_id]  # committed already
        return self._responder(self._params({}, None), spec.emotion, [*items, turn])

    async def _ready_emotion(self, turn: _Turn) -> tuple[EmotionScores | None, str]:
        """The turn's emotion if it is ready within a short grace after the transcript, and whether it was.

        The reply does not wait for the emotion model: a late one ("late") is still sent as its event, but this
        reply is routed and prompted without it. "ready" when it was used, "none" when the turn has none.
        """
        if turn.emotion is None:
            return None, "none"
        grace = self._settings.emotion_wait_seconds
        try:
            scores = await asyncio.wait_for(asyncio.shield(turn.emotion), grace)
        except TimeoutError:
            return None, "late"
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise
            return None, "none"
        return scores, "ready" if scores is not None else "none"

    @staticmethod
    async def _wait(awaitable: Any) -> Any:
        try:
            return await asyncio.wait_for(asyncio.shield(awaitable), TRANSCRIPT_WAIT_SECONDS)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise
            return None
