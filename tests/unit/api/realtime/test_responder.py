"""One response from LLM tokens to speech events, with the service fakes (tests/support/fakes.py): the event
lifecycle, text-only replies, tool calls, failures, truncation by max tokens and cancellation. Every event is
validated against openai-python's GA `RealtimeServerEvent`."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

from api.realtime.conversation import Conversation
from api.realtime.responder import Responder, ResponseParams, Timings
from tests.support.fakes import FakeChat, FakeSpeech, fake_realtime_services
from tests.support.realtime import GA_EVENTS

AUDIO_LIFECYCLE = [
    "response.created", "response.output_item.added", "conversation.item.added", "response.content_part.added",
    "response.output_audio_transcript.delta", "response.output_audio.delta",
    "response.output_audio_transcript.delta", "response.output_audio.delta",
    "response.output_audio.done", "response.output_audio_transcript.done", "response.content_part.done",
    "response.output_item.done", "conversation.item.done", "response.done",
]


def _params(**overrides: Any) -> ResponseParams:
    fields: dict[str, Any] = dict(instructions="Be brief.", modalities=["audio"], voice="alloy", speed=1.0, tools=[],
                                  tool_choice="auto", temperature=0.8, max_output_tokens=None)
    return ResponseParams(**{**fields, **overrides})


def _responder(chat: FakeChat, speech: FakeSpeech | None = None, events: list[dict[str, Any]] | None = None, *,
               conversation: Conversation | None = None, **params: Any) -> tuple[Responder, list[dict[str, Any]], Any]:
    services = fake_realtime_services(chat=chat, speech=speech)
    out: list[dict[str, Any]] = [] if events is None else events

    async def emit(event: Any) -> None:
        wire = event.wire()
        GA_EVENTS.validate_python(wire)  # the SDK's own model of the event
        out.append(wire)

    responder = Responder(services, emit, _params(**params), [{"role": "user", "content": "Hi."}],
                          emotion_label="happy", timings=Timings(speech_end=time.monotonic()), speech_model="tts-1",
                          llm_model="fake-llm", conversation=conversation)
    return responder, out, services


async def test_audio_reply_lifecycle_transcript_audio_and_metadata() -> None:
    speech = FakeSpeech(bytes_per_char=4)
    conversation = Conversation()
    responder, events, services = _responder(FakeChat("Hello there. How are you?"), speech,
                                             conversation=conversation)
    await responder.run()
    assert [e["type"] for e in events] == AUDIO_LIFECYCLE
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta")
    done = next(e for e in events if e["type"] == "response.output_audio_transcript.done")
    assert deltas == done["transcript"] == "Hello there. How are you?"
    assert speech.spoken == ["Hello there.", "How are you?"]
    assert all(r.emotion == "happy" and r.voice == "alloy" for r in speech.requests)
    audio = b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta")
    assert len(audio) == 4 * len("Hello there.How are you?")
    response = events[-1]["response"]
    assert response["status"] == "completed" and response["output"][0]["content"][0]["transcript"] == deltas
    assert "audio" not in response["output"][0]["content"][0]  # the audio went out as deltas only
    assert response["metadata"]["voxloop_engine"] == "fake-tts" and response["metadata"]["voxloop_emotion"] == "happy"
    assert response["usage"]["input_tokens"] == 7
    assert conversation.items()[-1]["content"][0]["transcript"] == deltas
    assert "first_audio" in services.metrics.stages and "llm_first_token" in services.metrics.stages
    body = services.chat.bodies[0]
    assert body["model"] == "fake-llm" and body["stream"] and "tools" not in body


async def test_text_reply_speaks_nothing() -> None:
    speech = FakeSpeech()
    responder, events, _ = _responder(FakeChat("Just text."), speech, modalities=["text"])
    await responder.run()
    types = [e["type"] for e in events]
    assert "response.output_text.delta" in types and not any("audio" in t for t in types)
    assert next(e for e in events if e["type"] == "response.output_text.done")["text"] == "Just text."
    assert speech.spoken == [] and events[-1]["response"]["status"] == "completed"


async def test_tool_call_arguments_stream_and_close() -> None:
    calls = [{"index": 0, "id": "call_1", "function": {"name": "get_weather", "arguments": '{"city": '}},
             {"index": 0, "function": {"arguments": '"Paris"}'}}]
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    chat = FakeChat("", tool_calls=calls, finish_reason="tool_calls")
    responder, events, _ = _responder(chat, tools=tools)
    await responder.run()
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert "".join(deltas) == done["arguments"] == '{"city": "Paris"}'
    assert (done["name"], done["call_id"]) == ("get_weather", "call_1")
    item = events[-1]["response"]["output"][0]
    assert item["type"] == "function_call" and item["status"] == "completed" and item["arguments"] == done["arguments"]
    assert chat.bodies[0]["tools"][0]["function"]["name"] == "get_weather"  # realtime tools nested for chat


async def test_empty_reply_fails_with_an_error_event_first() -> None:
    responder, events, _ = _responder(FakeChat(""))
    await responder.run()
    assert [e["type"] for e in events] == ["response.created", "error", "response.done"]
    assert events[1]["error"]["code"] == "empty_response"
    assert events[-1]["response"]["status"] == "failed"


async def test_max_tokens_is_incomplete() -> None:
    responder, events, _ = _responder(FakeChat("Cut short.", finish_reason="length"), max_output_tokens=3)
    await responder.run()
    response = events[-1]["response"]
    assert response["status"] == "incomplete"
    assert response["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}


async def test_cancel_closes_the_response_as_cancelled() -> None:
    gate = asyncio.Event()  # never set: the LLM never answers
    events: list[dict[str, Any]] = []
    responder, _, _ = _responder(FakeChat("Never said.", gate=gate), events=events)
    task = asyncio.create_task(responder.run())
    while not events:
        await asyncio.sleep(0.01)
    responder.cancel_reason = "turn_detected"
    task.cancel()
    await task  # handled inside: the response ends, the task does not raise
    response = events[-1]["response"]
    assert response["status"] == "cancelled"
    assert response["status_details"] == {"type": "cancelled", "reason": "turn_detected"}


class _CountingChat(FakeChat):
    """Counts the chunks the responder has pulled from the LLM stream, each arriving after a moment (as tokens do)."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply, chunk=5)
        self.pulled = 0

    async def stream(self, body: dict[str, Any]):  # type: ignore[override]
        async for chunk in super().stream(body):
            await asyncio.sleep(0.001)
            self.pulled += 1
            yield chunk


class _SlowSpeech(FakeSpeech):
    """Takes a while over each phrase (a CPU engine) and notes how much of the LLM stream was read before the first
    audio chunk came out."""

    def __init__(self, chat: _CountingChat) -> None:
        super().__init__()
        self.chat = chat
        self.pulled_at_first_audio: int | None = None

    async def stream(self, plan: Any):  # type: ignore[override]
        await asyncio.sleep(0.05)
        if self.pulled_at_first_audio is None:
            self.pulled_at_first_audio = self.chat.pulled
        async for pcm in super().stream(plan):
            yield pcm


async def test_the_llm_waits_while_the_first_phrase_is_synthesised() -> None:
    """On a CPU box tokens generated beside the first phrase's synthesis slow the sound heard first: the reader of
    the LLM stream stops once the first phrase goes to the speech engine and goes on at its first audio chunk."""
    chat = _CountingChat("Hello there. This is a long reply that goes on for a good many more words after it.")
    speech = _SlowSpeech(chat)
    responder, events, _ = _responder(chat, speech)
    await responder.run()
    chunks = len(chat.reply) // chat.chunk + 3  # content chunks, the finish chunk and the usage chunk
    assert chat.pulled == chunks and events[-1]["response"]["status"] == "completed"  # all of it in the end
    assert speech.spoken[0] == "Hello there."
    # "Hello there." is cut once a chunk after it arrives ("Hello", " ther", "e. Th"); one more may be read.
    assert speech.pulled_at_first_audio is not None and speech.pulled_at_first_audio <= 4, speech.pulled_at_first_audio


async def test_a_text_reply_never_waits_for_speech() -> None:
    chat = _CountingChat("Hello there. This is a reply in text only.")
    responder, events, _ = _responder(chat, FakeSpeech(), modalities=["text"])
    await asyncio.wait_for(responder.run(), 5)
    assert events[-1]["response"]["status"] == "completed"
