"""One Realtime session per WebSocket: an explicit state, a reader, a bounded writer queue, and turn tasks.

The session never touches the socket itself: it gets `receive()` (a text/bytes frame, or None once the client is
gone) and `send(text)`, so unit tests can drive it without a network. All its tasks live in one TaskGroup; when
the client goes away the group is cancelled, which releases model leases and stops engine work, and `finally`
drops the buffered audio and the conversation.

Dialects: GA event names by default; beta when the client sent `OpenAI-Beta: realtime=v1` or a beta-shaped
`session.update`. Only the session object's shape and the item lifecycle events differ on the input side
(GA `conversation.item.added` + `.done`, beta `conversation.item.created`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import numpy as np

from api.realtime import events as ev
from api.realtime import server_events as sev
from api.realtime.conversation import Conversation
from api.realtime.events import RealtimeProtocolError, new_id
from api.realtime.input_buffer import RATE, InputAudioBuffer, decode_append, ms, samples_at
from api.realtime.response_events import to_beta
from api.realtime.services import RealtimeServices
from api.realtime.session_config import (
    InvalidSessionError,
    SessionConfig,
    TranscriptionConfig,
    apply_update,
    is_beta_shaped,
    render_beta,
    render_beta_transcription,
    render_ga,
)
from api.realtime.sessions import CLOSE_MARGIN_S, GOING_AWAY, shutting_down_error
from api.realtime.state import NO_ACTIVE_RESPONSE, SessionStateMachine, State, Trigger
from api.realtime.stream_transcriber import StreamTurnTranscriber
from api.realtime.transcriber import TurnTranscriber, resolve_transcription
from api.realtime.turn_detection import TurnDetector, TurnEvent
from api.realtime.voice_loop import VoiceLoop
from engines.silero_vad import SileroVad

logger = logging.getLogger(__name__)

MIN_COMMIT_MS = 100  # OpenAI refuses to commit less than 100 ms of audio
_IDLE_KEEP_MS = 1000  # audio kept before speech, beyond prefix_padding_ms, while waiting for speech
_VAD_SLICE = 16_000 * 2  # samples run through the VAD between yields to the event loop (~7 ms of CPU)
SPECULATE_MS = 200  # a pause this long starts the pass that becomes the final transcript if the turn ends here
_QUIET_MS = 64  # two VAD windows without speech: no live partial starts (it would hold up the pause's pass)
_CLOSE: dict[str, Any] = {"type": "_close"}  # queued after the last event: the writer ends the session there


# GA events the beta protocol has no name for; beta clients get the rest of the flow without them.
_GA_ONLY = frozenset({"conversation.item.done", "input_audio_buffer.timeout_triggered"})


class _Closed(Exception):
    """The client went away: ends the TaskGroup, which cancels every task of the session."""


Receive = Callable[[], Awaitable[str | bytes | None]]
Send = Callable[[str], Awaitable[None]]


class RealtimeSession:
    def __init__(self, services: RealtimeServices, receive: Receive, send: Send, *, model: str | None = None,
                 transcription_intent: bool = False, beta: bool = False, extension_events: bool = False):
        self._services = services
        self._settings = services.settings
        self._receive, self._send = receive, send
        self.beta = beta
        self.id = new_id("sess")
        self.machine = SessionStateMachine()
        self.close_code = 1000
        default_model = self._settings.default_transcription_model
        transcription = TranscriptionConfig(model=default_model) if default_model else None
        if transcription_intent:
            transcription = TranscriptionConfig(model=default_model or "whisper-1")
        self.config = SessionConfig(kind="transcription" if transcription_intent else "realtime", model=model,
                                    transcription=transcription, temperature=self._settings.temperature)
        self.buffer = InputAudioBuffer(self.config.input_format, self._settings.max_buffer_seconds)
        self.conversation = Conversation()
        self._out: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=self._settings.outbound_queue)
        self._vad: SileroVad | None = None
        self._detector: TurnDetector | None = None
        self._turn_item: str | None = None
        self._turn_start = 0
        self._transcriber: TurnTranscriber | None = None
        self._group: asyncio.TaskGroup | None = None
        self.voice = VoiceLoop(services, self, extension_events=extension_events or self._settings.extension_events)
        self._rebuild_detector()

    @property
    def state(self) -> State:
        return self.machine.state

    @property
    def closing(self) -> bool:
        """Server shutdown (or the session's end): no new responses."""
        return self.machine.state is State.CLOSING

    @property
    def task_group(self) -> asyncio.TaskGroup:
        assert self._group is not None, "the session is not running"
        return self._group

    # --- lifecycle ---------------------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                group.create_task(self._writer())
                await self._emit_session("session.created")
                if not self.beta:
                    conversation = {"id": new_id("conv"), "object": "realtime.conversation"}
                    await self.emit(sev.ConversationCreated(conversation=conversation))
                await self._reader()
                raise _Closed
        except* _Closed:
            pass
        finally:
            self.machine.fire(Trigger.CLOSE)
            self._transcriber = None
            if self._vad is not None:
                self._services.vad_pool.release(self._vad)
                self._vad = None
            self.buffer.clear()
            self.conversation.clear()

    async def _reader(self) -> None:
        while (raw := await self._receive()) is not None:
            try:
                await self.handle(ev.parse_client_event(raw))
            except RealtimeProtocolError as exc:
                await self.emit(sev.error_event(exc))
            except Exception:  # a bug handling one event must not take the whole session down
                logger.exception("realtime event handling failed")
                await self.emit(sev.error_event(RealtimeProtocolError(
                    "The server had an error while processing the event.", code="server_error", type_="server_error",
                )))

    async def _writer(self) -> None:
        while True:
            event = await self._out.get()
            if event is _CLOSE:
                raise _Closed
            try:
                await self._send(json.dumps(event))
            except Exception as exc:  # the socket is gone; the reader will see it too
                logger.debug("realtime send failed: %s", exc)
                raise _Closed from exc

    async def emit(self, server_event: sev.ServerEvent) -> None:
        """Queue one server event: serialized here (GA shape), then renamed or dropped for beta clients."""
        event = server_event.wire()
        if self.beta:
            if event["type"] in _GA_ONLY:
                return
            if event["type"] == "conversation.item.added":
                event["type"] = "conversation.item.created"
            event = to_beta(event) if event["type"].startswith(("response.", "conversation.item.")) else event
        await self._out.put(event)

    async def shut_down(self, deadline: float) -> None:
        """Server shutdown: a response may finish by `deadline` (loop time), then an `error` event and close 1001."""
        if self.closing or self._group is None:
            return
        self.machine.fire(Trigger.CLOSE)
        margin = min(CLOSE_MARGIN_S, max(0.0, deadline - asyncio.get_running_loop().time()) / 2)
        await self.voice.finish(deadline - margin)
        await self.emit(sev.error_event(shutting_down_error()))
        self.close_code = GOING_AWAY
        await self._out.put(_CLOSE)

    async def _emit_session(self, type_: Literal["session.created", "session.updated"]) -> None:
        session = render_beta(self.config, self.id) if self.beta else render_ga(self.config, self.id)
        await self.emit(sev.SessionEvent(type=type_, session=session))

    # --- dispatch ----------------------------------------------------------------------------------------------

    async def handle(self, event: ev.ClientEvent) -> None:
        """One client event: refused with an `error` event if the state does not allow it, else dispatched."""
        refusal = self.machine.refusal(event.type)
        if refusal is not None:
            raise refusal.error(event.event_id)
        match event:
            case ev.SessionUpdate():
                await self._session_update(event)
            case ev.TranscriptionSessionUpdate():
                await self._transcription_session_update(event)
            case ev.InputAudioBufferAppend():
                await self._append(event)
            case ev.InputAudioBufferCommit():
                await self._commit(event)
            case ev.InputAudioBufferClear():
                await self._clear()
            case ev.ConversationItemCreate():
                await self._item_create(event)
            case ev.ConversationItemRetrieve():
                item = self.conversation.get_or_raise(event.item_id, "retrieve", event.event_id)
                await self.emit(sev.ConversationItemRetrieved(item=item))
            case ev.ConversationItemDelete():
                self.conversation.delete(event.item_id, event.event_id)
                await self.emit(sev.ConversationItemDeleted(item_id=event.item_id))
            case ev.ConversationItemTruncate():
                self.conversation.truncate(event.item_id, event.content_index, event.audio_end_ms, event.event_id)
                await self.emit(sev.ConversationItemTruncated(item_id=event.item_id, content_index=event.content_index,
                                                              audio_end_ms=event.audio_end_ms))
            case ev.ResponseCreate():
                self._refuse_in_transcription("response.create", event.event_id)
                await self._respond(event.response, event.event_id)
            case ev.ResponseCancel():
                if not await self.voice.cancel("client_cancelled"):
                    raise NO_ACTIVE_RESPONSE.error(event.event_id)
            case ev.OutputAudioBufferClear():
                pass  # refused in every state (REFUSALS): WebSocket sessions have no output audio buffer

    async def _respond(self, overrides: dict[str, Any] | None, event_id: str | None) -> None:
        await self.voice.create(overrides, event_id)  # the task runs from the next await on
        self.machine.fire(Trigger.RESPONSE_STARTED)

    def response_ended(self) -> None:
        """The voice loop's response task is ending (completed, failed or cancelled)."""
        self.machine.fire(Trigger.RESPONSE_ENDED)

    def _refuse_in_transcription(self, what: str, event_id: str | None) -> None:
        if self.config.kind == "transcription":
            raise RealtimeProtocolError(f"{what} is not allowed in a transcription session.",
                                        code="invalid_request_error", event_id=event_id)

    # --- session ----------------------------------------------------------------------------------------------

    async def _session_update(self, event: ev.SessionUpdate) -> None:
        if not self.beta and is_beta_shaped(event.session):
            self.beta = True  # an older client without the header: answer in the names it knows
        await self._apply(event.session, event.event_id, beta=self.beta, kind=None)
        await self._emit_session("session.updated")

    async def _transcription_session_update(self, event: ev.TranscriptionSessionUpdate) -> None:
        if self.config.kind != "transcription":
            raise RealtimeProtocolError(
                "transcription_session.update is only valid in a transcription session (connect with "
                "?intent=transcription); use session.update here.",
                code="invalid_request_error", event_id=event.event_id,
            )
        self.beta = True  # only beta clients send this event; answer in their names from now on
        await self._apply(event.session, event.event_id, beta=True, kind="transcription")
        await self.emit(sev.TranscriptionSessionUpdated(session=render_beta_transcription(self.config, self.id)))

    async def _apply(self, session: dict[str, Any], event_id: str | None, *, beta: bool, kind: Any) -> None:
        try:
            config = apply_update(self.config, session, beta=beta, kind=kind)
        except InvalidSessionError as exc:
            raise RealtimeProtocolError(exc.message, code=exc.code, param=exc.param, event_id=event_id) from None
        if config.transcription is not None:
            try:
                resolve_transcription(self._services.transcription, config.transcription)
            except RealtimeProtocolError as exc:
                exc.event_id = event_id
                if beta:
                    exc.param = (exc.param or "").replace("session.audio.input.transcription",
                                                          "session.input_audio_transcription")
                raise
        if config.voice != self.config.voice:
            self.voice.check_voice(config.voice, "session.voice" if beta else "session.audio.output.voice", event_id)
        previous, self.config = self.config, config
        if config.input_format != previous.input_format:
            self.buffer.set_format(config.input_format)
        if config.turn_detection != previous.turn_detection:
            self._end_turn()
            self._rebuild_detector()

    def _rebuild_detector(self) -> None:
        td = self.config.turn_detection
        if td is None:
            self._detector = None
            return
        self._vad = self._vad or self._services.vad_pool.acquire()
        self._vad.reset()
        self._detector = TurnDetector(td, self._vad, self.buffer.end, transcript=self._covered,
                                      eager_ms=self._settings.server_vad_eager_ms)

    def _covered(self, speech_end: int) -> str | None:
        return self._transcriber.covered(speech_end) if self._transcriber is not None else None

    # --- input audio ------------------------------------------------------------------------------------------

    async def _append(self, event: ev.InputAudioBufferAppend) -> None:
        raw = decode_append(event.audio, self.config.input_format, max_chars=self._settings.max_append_chars,
                            event_id=event.event_id)
        new = self.buffer.append(raw, event_id=event.event_id)
        if self._detector is None:
            return
        for offset in range(0, len(new), _VAD_SLICE):
            if offset:
                await asyncio.sleep(0)  # a huge append (minutes of audio) must not stall other sessions' loop
            for turn_event in self._detector.feed(new[offset : offset + _VAD_SLICE]):
                await self._on_turn_event(turn_event)
        if self._turn_item is not None:  # inside a user turn
            start, detector = self._turn_start, self._detector

            def paused() -> int | None:
                pause = self.buffer.end - detector.last_speech_end
                return detector.last_speech_end if pause >= samples_at(SPECULATE_MS) else None

            def fetch(since: int) -> tuple[np.ndarray, int | None]:
                return self.buffer.samples(start + since).copy(), paused()

            self.voice.speculation.heard(self._turn_item, paused(), detector.last_speech_end,
                                         lambda: self.buffer.samples(start).copy(), self._transcriber)
            if self._transcriber is not None:
                gap = self.buffer.end - detector.last_speech_end
                self._transcriber.update(self.buffer.end - start, fetch, speculate=paused() is not None,
                                         quiet=gap >= samples_at(_QUIET_MS))
        else:
            keep = samples_at(getattr(self._detector.config, "prefix_padding_ms", 300) + _IDLE_KEEP_MS)
            self.buffer.drop_until(self.buffer.end - keep)

    async def _on_turn_event(self, turn: TurnEvent) -> None:
        if turn.kind == "speech_started":
            self.machine.fire(Trigger.SPEECH_STARTED)
            self._turn_item, self._turn_start = new_id("item"), max(turn.start, self.buffer.start)
            # speech_started before the cancelled reply's response.done, as OpenAI orders them: clients (the Agents
            # SDK) truncate what was played when they see speech start, before the cancellation arrives.
            await self.emit(sev.SpeechStarted(audio_start_ms=ms(self._turn_start), item_id=self._turn_item))
            if getattr(self.config.turn_detection, "interrupt_response", False):
                # Barge-in: the user talks over the reply; a reply still waiting for its turn's transcript (nothing
                # of it sent yet) is dropped too, else the new turn's reply was refused as a second response.
                if not await self.voice.cancel("turn_detected"):
                    await self.voice.drop_pending()
            self._transcriber = self._start_transcriber(self._turn_item, self._turn_start)
        elif turn.kind == "speech_stopped" and self._turn_item is not None:
            item_id = self._turn_item
            await self.emit(sev.SpeechStopped(audio_end_ms=ms(turn.end), item_id=item_id))
            await self._commit_audio(item_id, self._turn_start, turn.end, speech_end=self._detector.last_speech_end)
        elif turn.kind == "timeout":
            item_id = new_id("item")
            await self.emit(sev.TimeoutTriggered(audio_start_ms=ms(turn.start), audio_end_ms=ms(turn.end),
                                                 item_id=item_id))
            await self._commit_audio(item_id, max(turn.start, self.buffer.start), turn.end)

    def _start_transcriber(self, item_id: str, start: int) -> TurnTranscriber | None:
        """The turn's transcriber (None when transcription is off); `start` is the turn's first sample."""
        if self.config.transcription is None or self._group is None:
            return None
        spec, options = resolve_transcription(self._services.transcription, self.config.transcription)
        args = (self._services.transcription, spec, options, item_id, self.emit)
        kwargs = {"partial_interval": self._settings.partial_interval_seconds, "finished": self._transcript_finished}
        if getattr(spec.capabilities, "streaming", False):  # one live stream per turn
            transcriber: TurnTranscriber = StreamTurnTranscriber(*args, start=start, **kwargs)
        else:
            transcriber = TurnTranscriber(*args, **kwargs)
        transcriber.task = self._group.create_task(self._transcribe(transcriber))
        return transcriber

    async def _transcribe(self, transcriber: TurnTranscriber) -> None:
        try:
            await transcriber.run()
        except Exception:  # never let one turn's failure end the session
            logger.exception("realtime transcription failed")
            transcriber.fail()
            await self.emit(sev.TranscriptionFailed(
                item_id=transcriber.item_id,
                error={"type": "server_error", "code": "transcription_failed",
                       "message": "The transcription failed on the server.", "param": None},
            ))

    def _transcript_finished(self, item_id: str, transcript: str | None) -> None:
        """A turn's input transcription ended: the item gets its transcript, the voice loop stops waiting for it."""
        if transcript is not None:
            self.conversation.set_transcript(item_id, transcript)
        self.voice.transcript_ready(item_id, transcript)

    async def _commit(self, event: ev.InputAudioBufferCommit) -> None:
        if ms(len(self.buffer)) < MIN_COMMIT_MS:
            raise RealtimeProtocolError(
                f"Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms of "
                f"audio, but buffer only has {ms(len(self.buffer)):.2f}ms of audio.",
                code="input_audio_buffer_commit_empty", event_id=event.event_id,
            )
        item_id = self._turn_item or new_id("item")
        await self._commit_audio(item_id, self.buffer.start, self.buffer.end)

    async def _commit_audio(self, item_id: str, start: int, end: int, speech_end: int | None = None) -> None:
        samples = self.buffer.samples(start, end).copy()
        transcriber = self._transcriber if item_id == self._turn_item else None
        self._end_turn(keep_transcriber=True, committed=True)
        self.buffer.drop_until(end)
        previous = self.conversation.last_id()
        item = self.conversation.add_user_audio(item_id, with_transcript=self.config.transcription is not None)
        await self.emit(sev.InputAudioCommitted(item_id=item_id, previous_item_id=previous))
        await self.emit(sev.ConversationItemAdded(previous_item_id=previous, item=dict(item)))
        await self.emit(sev.ConversationItemDone(previous_item_id=previous, item=dict(item)))
        if transcriber is None:
            transcriber = self._start_transcriber(item_id, start)
        if transcriber is not None:
            transcriber.finish(samples, speech_end)
        self.voice.turn_committed(item_id, samples, RATE, transcribing=transcriber is not None, speech_end=speech_end)
        td = self.config.turn_detection
        auto = speech_end is not None and td is not None and td.create_response and self.config.kind == "realtime"
        if auto and not self.voice.responding and not self.closing:
            await self._respond(None, None)

    def _end_turn(self, keep_transcriber: bool = False, committed: bool = False) -> None:
        """Leave the current turn: the VAD waits for new speech. The live transcriber is dropped unless kept."""
        if self._detector is not None:
            self._detector.reset(self.buffer.end)
        if not keep_transcriber and self._transcriber is not None and self._transcriber.task is not None:
            self._transcriber.task.cancel()  # a cleared turn gets no transcript events
        if not keep_transcriber:
            self.voice.speculation.drop()
        self._transcriber = None
        self._turn_item = None
        self.machine.fire(Trigger.TURN_COMMITTED if committed else Trigger.TURN_CLEARED)

    async def _clear(self) -> None:
        self._end_turn()
        self.buffer.clear()
        await self.emit(sev.InputAudioCleared())

    # --- conversation -----------------------------------------------------------------------------------------

    async def _item_create(self, event: ev.ConversationItemCreate) -> None:
        self._refuse_in_transcription("conversation.item.create", event.event_id)
        previous, item = self.conversation.create(event.item, event.previous_item_id, event.event_id)
        await self.emit(sev.ConversationItemAdded(previous_item_id=previous, item=dict(item)))
        await self.emit(sev.ConversationItemDone(previous_item_id=previous, item=dict(item)))
