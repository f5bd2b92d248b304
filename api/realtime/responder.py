"""One realtime response: LLM tokens → phrases → speech, streamed as response events as soon as each is ready.

Two tasks per response: the LLM reader turns the token stream into phrases (and function calls), the speaker
synthesises phrase after phrase with the dual-TTS router and streams pcm16. The LLM keeps generating while the
first phrase is spoken, so the first audio leaves after the first phrase, not after the whole answer.
Cancellation (barge-in, `response.cancel`) stops both and closes every open item with the right `.done` events.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from api.realtime import response_events as rev
from api.realtime import server_events as sev
from api.realtime.conversation import Conversation
from api.realtime.events import RealtimeProtocolError, new_id
from api.realtime.first_sound import FirstSound
from api.realtime.input_buffer import G711_RATE, encode_g711
from api.realtime.services import RealtimeServices
from api.realtime.session_config import wire_voice
from api.realtime.sessions import SHUTTING_DOWN_CODE
from api.speech.protocol import CustomVoice
from api.speech.text_hygiene import ReplyPhrases, spoken_transcript
from engines.audio import resample

if TYPE_CHECKING:
    from api.realtime.speculation import Speculation

logger = logging.getLogger(__name__)

Emit = Callable[[sev.ServerEvent], Awaitable[None]]
AUDIO_TOKENS_PER_SECOND = 10
_PCM_RATE = 24_000


@dataclass
class ResponseParams:
    """A response's settings: the session's, overridden by `response.create`'s `response` object."""

    instructions: str
    modalities: list[str]
    voice: str | CustomVoice
    speed: float
    tools: list[dict[str, Any]]
    tool_choice: Any
    temperature: float
    max_output_tokens: int | None
    in_conversation: bool = True
    input_items: list[dict[str, Any]] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    output_format: str = "pcm16"  # pcm16 (24 kHz) or g711_ulaw / g711_alaw (8 kHz) on the wire


@dataclass
class Timings:
    """Monotonic stamps of one turn, for the per-stage breakdown (seconds relative to the end of speech)."""

    speech_end: float | None = None
    transcript: float | None = None
    emotion: float | None = None
    llm_first_token: float | None = None
    first_audio: float | None = None

    def breakdown(self) -> dict[str, float]:
        base = self.speech_end
        if base is None:
            return {}
        stamps = {"transcript": self.transcript, "emotion": self.emotion, "llm_first_token": self.llm_first_token,
                  "first_audio": self.first_audio}
        return {k: round((v - base) * 1000) for k, v in stamps.items() if v is not None}


@dataclass
class _Call:
    item_id: str
    call_id: str
    name: str = ""
    arguments: str = ""
    output_index: int = 0


class Responder:
    def __init__(self, services: RealtimeServices, emit: Emit, params: ResponseParams, messages: list[dict[str, Any]], *,
                 emotion_label: str | None, timings: Timings, speech_model: str, llm_model: str,
                 conversation: Conversation | None = None, held: Speculation | None = None):
        self._speech = services.speech
        self._chat = services.chat
        self._metrics = services.metrics
        self._emit = emit
        self.params = params
        self._messages = messages
        self._emotion = emotion_label
        self.timings = timings
        self._speech_model = speech_model
        self._llm_model = llm_model
        self._conversation = conversation  # None for out-of-band responses (`conversation: "none"`)
        self._held = held  # a speculation's recorded LLM stream and held first phrase (api/realtime/speculation.py)
        self.id = new_id("resp")
        self.output: list[dict[str, Any]] = []  # items announced, in output_index order
        self._message: dict[str, Any] | None = None
        self._transcript = ""
        self._audio = bytearray()
        self._calls: dict[int, _Call] = {}
        self._marks: list[tuple[int, str]] = []  # (audio bytes so far, transcript so far) after each phrase
        self._route: Any = None
        self._first_sound = FirstSound()  # the LLM waits while the first phrase is synthesised (a held one is)
        self._usage = {"prompt": 0, "completion": 0}
        self.finish_reason: str | None = None
        self.cancel_reason: str | None = None

    @property
    def audio(self) -> bool:
        return "audio" in self.params.modalities

    # --- lifecycle --------------------------------------------------------------------------------------------

    async def run(self) -> None:
        await self._emit(sev.ResponseCreated(response=self._object("in_progress")))
        phrases: asyncio.Queue[str | None] = asyncio.Queue()
        outcome: tuple[str, dict[str, Any] | None] = ("completed", None)
        # Cancellation is caught outside the TaskGroup's `except*`: a bare `raise` there would re-raise it wrapped in
        # a BaseExceptionGroup, which the session's own TaskGroup reports as a crash instead of a cancellation.
        try:
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._read_llm(phrases))
                    group.create_task(self._speak(phrases))
                if self.finish_reason == "length":
                    outcome = ("incomplete", {"type": "incomplete", "reason": "max_output_tokens"})
                elif not self.output:  # no words and no call: a failure, never a `completed` with nothing in it
                    outcome = _failed("empty_response", "The model produced no output for this response.")
            except* Exception as group_error:
                error = group_error.exceptions[0]
                logger.warning("realtime response failed: %s", error)
                outcome = _failed(getattr(error, "code", None) or "response_failed", _message(error))
        except asyncio.CancelledError:
            if self.cancel_reason is None:
                raise  # the session is closing, not a barge-in: nobody is listening any more
            asyncio.current_task().uncancel()  # type: ignore[union-attr]  # handled: the response ends here
            outcome = _stopped(self.cancel_reason)
        if outcome[0] == "failed" and outcome[1] is not None:
            failure = outcome[1]["error"]
            await self._emit(sev.error_event(RealtimeProtocolError(failure["message"], code=failure["code"],
                                                               type_=failure["type"])))
        await self._finish(*outcome)

    # --- the LLM side -----------------------------------------------------------------------------------------

    def chat_body(self) -> dict[str, Any]:
        p = self.params
        body: dict[str, Any] = {"model": self._llm_model, "messages": self._messages, "stream": True,
                                "temperature": p.temperature, "stream_options": {"include_usage": True}}
        if p.max_output_tokens is not None:
            body["max_tokens"] = p.max_output_tokens
        if p.tools:
            body["tools"] = [_chat_tool(t) for t in p.tools]
            body["tool_choice"] = _chat_tool_choice(p.tool_choice)
        return body

    async def _read_llm(self, phrases: asyncio.Queue[str | None]) -> None:
        chunker = ReplyPhrases()
        try:
            stream = (self._held.stream() if self._held is not None
                      else self._first_sound.paced(self._chat.stream(self.chat_body())))
            async for chunk in stream:
                if chunk.get("usage"):
                    self._usage = {"prompt": chunk["usage"].get("prompt_tokens", 0),
                                   "completion": chunk["usage"].get("completion_tokens", 0)}
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    if self.timings.llm_first_token is None and (delta.get("content") or delta.get("tool_calls")):
                        self.timings.llm_first_token = time.monotonic()
                    for call in delta.get("tool_calls") or []:
                        await self._tool_delta(call)
                    for phrase in chunker.feed(delta.get("content") or ""):
                        await phrases.put(phrase)
                    if choice.get("finish_reason"):
                        self.finish_reason = choice["finish_reason"]
            for phrase in chunker.flush():
                await phrases.put(phrase)
        finally:
            await phrases.put(None)

    async def _tool_delta(self, call: dict[str, Any]) -> None:
        index = call.get("index", 0)
        state = self._calls.get(index)
        function = call.get("function") or {}
        if state is None:
            state = self._calls[index] = _Call(new_id("item"), call.get("id") or new_id("call"),
                                               output_index=len(self.output))
            item = rev.function_call_item(state.item_id, state.call_id, function.get("name") or "", "", "in_progress")
            await self._announce(item)
        if function.get("name") and not state.name:
            state.name = function["name"]
            self.output[state.output_index]["name"] = state.name
        if function.get("arguments"):
            state.arguments += function["arguments"]
            await self._emit(sev.FunctionCallArgumentsDelta(response_id=self.id, item_id=state.item_id,
                                                            output_index=state.output_index, call_id=state.call_id,
                                                            delta=function["arguments"]))

    # --- the speech side --------------------------------------------------------------------------------------

    async def _speak(self, phrases: asyncio.Queue[str | None]) -> None:
        while (phrase := await phrases.get()) is not None:
            text = spoken_transcript(phrase)
            if not text:
                continue
            await self._open_message()
            delta = text if not self._transcript else " " + text
            self._transcript += delta
            kind = sev.OutputAudioTranscriptDelta if self.audio else sev.OutputTextDelta
            await self._emit(kind(response_id=self.id, item_id=self._message_id, output_index=self._message_index,
                                  delta=delta))
            if self.audio:
                await self._synthesize(phrase)
                self._marks.append((len(self._audio), self._transcript))

    def speech_request(self, phrase: str) -> Any:
        from api.speech.protocol import SpeechRequest  # the speech capability's wire model

        return SpeechRequest(model=self._speech_model, input=phrase, voice=self.params.voice,
                             response_format="pcm", speed=self.params.speed, emotion=self._emotion)

    async def _synthesize(self, phrase: str) -> None:
        request = self.speech_request(phrase)
        held = self._held.audio_for(request) if self._held is not None else None
        if held is not None:
            plan, audio = held
        else:
            try:
                plan = self._speech.plan(request)
            except Exception as exc:  # nothing speakable in this phrase (e.g. only a tag): skip it, keep talking
                logger.debug("phrase not spoken: %s", exc)
                return
            audio = self._speech.stream(plan)
        self._route = self._route or plan
        async for pcm in self._first_sound.sounding(audio):
            if not pcm:
                continue
            if self.timings.first_audio is None:
                self.timings.first_audio = time.monotonic()
            self._audio += pcm  # kept as pcm16 24 kHz whatever the wire format, for truncation
            wire = pcm if self.params.output_format == "pcm16" else _to_g711(pcm, self.params.output_format)
            await self._emit(sev.OutputAudioDelta(response_id=self.id, item_id=self._message_id,
                                                  output_index=self._message_index,
                                                  delta=base64.b64encode(wire).decode()))

    # --- items ------------------------------------------------------------------------------------------------

    @property
    def _message_id(self) -> str:
        assert self._message is not None
        return self._message["id"]

    @property
    def _message_index(self) -> int:
        return self.output.index(self._message)

    async def _open_message(self) -> None:
        if self._message is not None:
            return
        self._message = rev.message_item(new_id("item"), "in_progress", [])
        await self._announce(self._message)
        if self._conversation is not None and self.audio:
            self._conversation.open_audio(self._message_id)
        part = {"type": "audio", "transcript": ""} if self.audio else {"type": "text", "text": ""}
        await self._emit(sev.ContentPartAdded(response_id=self.id, item_id=self._message_id,
                                              output_index=self._message_index, part=part))

    async def _announce(self, item: dict[str, Any]) -> None:
        self.output.append(item)
        await self._emit(sev.OutputItemAdded(response_id=self.id, output_index=len(self.output) - 1, item=dict(item)))
        if self._conversation is not None:
            previous = self._conversation.add_output(item)
            await self._emit(sev.ConversationItemAdded(previous_item_id=previous, item=_without_audio(item)))

    async def _close_items(self, status: str) -> None:
        item_status = "completed" if status == "completed" else "incomplete"
        for index, item in enumerate(self.output):
            if item is self._message:
                await self._close_message(index, item_status)
            else:
                call = next(c for c in self._calls.values() if c.item_id == item["id"])
                item.update(arguments=call.arguments, name=call.name, status=item_status)
                await self._emit(sev.FunctionCallArgumentsDone(response_id=self.id, item_id=call.item_id,
                                                               output_index=index, call_id=call.call_id,
                                                               name=call.name, arguments=call.arguments))
                await self._item_done(index, item)

    async def _close_message(self, index: int, status: str) -> None:
        item_id, transcript = self._message_id, self._transcript
        if self.audio:
            await self._emit(sev.OutputAudioDone(response_id=self.id, item_id=item_id, output_index=index))
            await self._emit(sev.OutputAudioTranscriptDone(response_id=self.id, item_id=item_id, output_index=index,
                                                           transcript=transcript))
            part = {"type": "audio", "transcript": transcript}
            content = {"type": "output_audio", "transcript": transcript,
                       "audio": base64.b64encode(bytes(self._audio)).decode()}
        else:
            await self._emit(sev.OutputTextDone(response_id=self.id, item_id=item_id, output_index=index,
                                                text=transcript))
            part = {"type": "text", "text": transcript}
            content = {"type": "output_text", "text": transcript}
        await self._emit(sev.ContentPartDone(response_id=self.id, item_id=item_id, output_index=index, part=part))
        self._message.update(status=status, content=[content])  # type: ignore[union-attr]
        if self._conversation is not None and self.audio:
            self._conversation.set_phrase_marks(item_id, self._marks)
        await self._item_done(index, self._message)  # type: ignore[arg-type]

    async def _item_done(self, index: int, item: dict[str, Any]) -> None:
        await self._emit(sev.OutputItemDone(response_id=self.id, output_index=index, item=_without_audio(item)))
        if self._conversation is not None:
            await self._emit(sev.ConversationItemDone(previous_item_id=self._conversation.before(item["id"]),
                                                      item=_without_audio(item)))

    async def _finish(self, status: str, details: dict[str, Any] | None) -> None:
        await self._close_items(status)
        for stage, ms in self.timings.breakdown().items():  # per-stage latency histograms at /metrics
            self._metrics.observe_realtime_stage(stage, ms / 1000)
        audio_seconds = len(self._audio) / 2 / _PCM_RATE
        usage = rev.usage_object(self._usage["prompt"], self._usage["completion"],
                                 round(audio_seconds * AUDIO_TOKENS_PER_SECOND))
        response = self._object(status, details, usage)
        response["output"] = [_without_audio(i) for i in self.output]
        await self._emit(sev.ResponseDone(response=response))

    def _object(self, status: str, details: dict[str, Any] | None = None, usage: dict[str, Any] | None = None):
        return rev.response_object(self.id, status, [], modalities=self.params.modalities,
                                   voice=wire_voice(self.params.voice),
                                   status_details=details, usage=usage, metadata=self.metadata() or None,
                                   conversation=self.params.in_conversation)

    def metadata(self) -> dict[str, str]:
        """Which engine spoke and why, and the stage timings: strings, as OpenAI's metadata must be."""
        meta = dict(self.params.metadata)
        plan = self._route
        if plan is not None:
            meta["voxloop_engine"] = plan.spec.model_id
            meta["voxloop_voice"] = plan.voice
            if plan.route is not None:
                meta["voxloop_route"] = plan.route.role
                meta["voxloop_route_reason"] = plan.route.reason[:500]
        if self._emotion:
            meta["voxloop_emotion"] = self._emotion
        stages = self.timings.breakdown()
        if stages:
            meta["voxloop_timings_ms"] = " ".join(f"{k}={v}" for k, v in stages.items())
        return meta


def _to_g711(pcm: bytes, fmt: str) -> bytes:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    return encode_g711(resample(samples, _PCM_RATE, G711_RATE), fmt)  # type: ignore[arg-type]


def _without_audio(item: dict[str, Any]) -> dict[str, Any]:
    """Items on the wire carry transcripts, not the audio (which already went out as deltas)."""
    out = dict(item)
    if out.get("content"):
        out["content"] = [{k: v for k, v in part.items() if k != "audio"} for part in out["content"]]
    return out


def _chat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """Realtime tools are flat (`{type, name, description, parameters}`); chat tools nest them under `function`."""
    if "function" in tool:
        return tool
    fields = {k: tool[k] for k in ("name", "description", "parameters") if k in tool}
    return {"type": "function", "function": fields}


def _chat_tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function" and "name" in choice:
        return {"type": "function", "function": {"name": choice["name"]}}
    return choice


def _message(error: BaseException) -> str:
    return getattr(error, "message", None) or str(error) or type(error).__name__


def _stopped(reason: str) -> tuple[str, dict[str, Any]]:
    """How a response stopped from outside ends: `cancelled` for barge-in or the client, `failed` on shutdown."""
    if reason == SHUTTING_DOWN_CODE:
        return "failed", {"type": "failed", "error": {"type": "server_error", "code": SHUTTING_DOWN_CODE,
                                                      "message": "The server shut down before the response ended."}}
    return "cancelled", {"type": "cancelled", "reason": reason}


def _failed(code: str, message: str) -> tuple[str, dict[str, Any]]:
    """A `failed` outcome, with the reason in `status_details` (and in the `error` event sent before it)."""
    return "failed", {"type": "failed", "error": {"type": "server_error", "code": code, "message": message}}
