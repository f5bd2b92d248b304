"""LiveKit Agents' OpenAI plugin (`livekit-plugins-openai`) with `base_url` pointed at voxloop, without a LiveKit
server: the plugin's classes are driven directly (and through `AgentSession`, which runs without a room: no audio
I/O, text in and out), as LiveKit's own tests drive them.

- `realtime.RealtimeModel`: a text turn spoken back, a spoken turn under the plugin's default turn detection
  (semantic VAD) with its input transcription, and a function tool executed by `AgentSession`.
- `STT`: one-shot `recognize` (POST /v1/audio/transcriptions) and `use_realtime=True` streaming (the Realtime
  transcription session, `?intent=transcription`).
- `TTS`: `tts-1` (chunked audio body) and `gpt-4o-mini-tts` (SSE `speech.audio.delta` events).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.clients.conftest import API_KEY, QUESTION, speech_pcm, transcribe_pcm, words

pytest.importorskip("livekit.plugins.openai", reason="livekit-plugins-openai is not installed (make test-clients)")

import aiohttp
from livekit import rtc
from livekit.agents import Agent, AgentSession, RunContext, function_tool, llm
from livekit.agents import stt as lk_stt
from livekit.agents.utils import http_context
from livekit.plugins import openai as lk_openai

pytestmark = pytest.mark.clients

RATE = 24_000
SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """The plugins' HTTP/WebSocket session: outside a LiveKit job, the caller provides it (LiveKit's own advice)."""
    async with http_context.open():
        yield http_context.http_session()


def _frames(pcm: bytes, ms: int = 100) -> list[rtc.AudioFrame]:
    step = RATE * 2 * ms // 1000
    return [rtc.AudioFrame(data=pcm[i : i + step], sample_rate=RATE, num_channels=1,
                           samples_per_channel=len(pcm[i : i + step]) // 2) for i in range(0, len(pcm), step)]


async def _read(generation: llm.GenerationCreatedEvent) -> tuple[str, bytes, list[Any], list[llm.FunctionCall]]:
    """A generation's text, its audio (pcm16), the audio frames, and its function calls."""
    text, audio, frames = "", bytearray(), []
    async for message in generation.message_stream:

        async def read_text(message: Any = message) -> str:
            return "".join([chunk async for chunk in message.text_stream])

        async def read_audio(message: Any = message) -> None:
            async for frame in message.audio_stream:
                frames.append(frame)
                audio.extend(bytes(frame.data))

        text_part, _ = await asyncio.gather(read_text(), read_audio())
        text += text_part
    calls = [call async for call in generation.function_stream]
    return text, bytes(audio), frames, calls


async def test_realtime_text_turn_is_spoken_back(voxloop: str, http: aiohttp.ClientSession) -> None:
    model = lk_openai.realtime.RealtimeModel(base_url=f"{voxloop}/v1", api_key=API_KEY, http_session=http,
                                             input_audio_transcription=None, turn_detection=None)
    session = model.session()
    errors: list[Any] = []
    session.on("error", errors.append)
    try:
        context = llm.ChatContext()
        context.add_message(role="user", content="Say hello.")
        await session.update_chat_ctx(context)
        # generate_reply() matches voxloop's response.created to its request by the metadata it sent.
        generation = await asyncio.wait_for(session.generate_reply(), 30)
        text, audio, frames, calls = await asyncio.wait_for(_read(generation), 120)
    finally:
        await session.aclose()
        await model.aclose()
    assert not errors and not calls
    assert text.strip() and generation.user_initiated
    assert {(f.sample_rate, f.num_channels) for f in frames} == {(RATE, 1)}
    assert len(audio) >= RATE * 2 * 3 // 10  # at least 0.3 s
    messages = [(item.role, item.text_content) for item in session.chat_ctx.items if item.type == "message"]
    assert messages == [("user", "Say hello."), ("assistant", text)]
    assert words(transcribe_pcm(voxloop, audio)) & words(text), text


async def test_realtime_spoken_turn_with_default_turn_detection(voxloop: str, http: aiohttp.ClientSession) -> None:
    # The plugin's defaults: semantic VAD (eagerness medium, creates the response) and gpt-4o-mini-transcribe.
    model = lk_openai.realtime.RealtimeModel(base_url=f"{voxloop}/v1", api_key=API_KEY, http_session=http)
    session = model.session()
    seen: list[str] = []
    transcripts: list[llm.InputTranscriptionCompleted] = []
    generations: asyncio.Queue[llm.GenerationCreatedEvent] = asyncio.Queue()
    session.on("input_speech_started", lambda _: seen.append("speech_started"))
    session.on("input_speech_stopped", lambda _: seen.append("speech_stopped"))
    session.on("input_audio_transcription_completed", transcripts.append)
    session.on("generation_created", generations.put_nowait)
    errors: list[Any] = []
    session.on("error", errors.append)
    try:
        # A microphone keeps sending after the question: semantic VAD (medium) waits up to 4 s of silence for a turn
        # whose live transcript does not yet read as finished.
        for frame in _frames(speech_pcm(QUESTION, tail=5.0)):
            session.push_audio(frame)
            await asyncio.sleep(0.01)
        generation = await asyncio.wait_for(generations.get(), 60)
        text, audio, _, _ = await asyncio.wait_for(_read(generation), 120)
        await asyncio.sleep(0.5)  # a final transcript may trail the response's start
    finally:
        await session.aclose()
        await model.aclose()
    assert not errors
    assert seen[:2] == ["speech_started", "speech_stopped"]
    finals = [t for t in transcripts if t.is_final]
    assert finals and {"capital", "france"} <= words(finals[0].transcript), finals
    assert not generation.user_initiated  # the server's reply to the turn, not one the client asked for
    assert text.strip() and audio


class _WeatherAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a helpful assistant. Use the get_weather tool for weather questions.")
        self.calls: list[str] = []

    @function_tool
    async def get_weather(self, context: RunContext, city: str) -> str:
        """Get the current weather in a city."""
        self.calls.append(city)
        return f"It is sunny and 21 degrees in {city}."


async def test_agent_session_runs_a_function_tool(voxloop: str, http: aiohttp.ClientSession) -> None:
    # AgentSession without a room (no audio I/O): text in, the realtime model in text mode, the tool run by LiveKit.
    model = lk_openai.realtime.RealtimeModel(base_url=f"{voxloop}/v1", api_key=API_KEY, http_session=http,
                                             modalities=["text"])
    agent = _WeatherAgent()
    async with AgentSession(llm=model) as session:
        await session.start(agent)
        result = await asyncio.wait_for(session.run(user_input="What is the weather in Paris?"), 180)
    await model.aclose()
    kinds = [event.type for event in result.events]
    assert kinds == ["function_call", "function_call_output", "message"], kinds
    call, output, message = (event.item for event in result.events)
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": agent.calls[0]}
    assert agent.calls and agent.calls[0].strip()
    assert output.call_id == call.call_id and output.output == f"It is sunny and 21 degrees in {agent.calls[0]}."
    assert not output.is_error
    assert message.role == "assistant" and message.text_content.strip()


async def test_stt_recognize(voxloop: str, http: aiohttp.ClientSession) -> None:
    stt = lk_openai.STT(base_url=f"{voxloop}/v1", api_key=API_KEY, model="whisper-1")
    try:
        event = await stt.recognize(_frames(speech_pcm(SENTENCE)))
    finally:
        await stt.aclose()
    assert event.type == lk_stt.SpeechEventType.FINAL_TRANSCRIPT
    assert words(event.alternatives[0].text) >= {"quick", "brown", "fox", "jumps", "lazy", "dog"}, event


async def test_stt_streams_over_realtime_transcription(voxloop: str, http: aiohttp.ClientSession) -> None:
    stt = lk_openai.STT(base_url=f"{voxloop}/v1", api_key=API_KEY, model="gpt-4o-mini-transcribe", use_realtime=True)
    stream = stt.stream()
    events: list[lk_stt.SpeechEvent] = []
    try:
        for frame in _frames(speech_pcm(SENTENCE)):
            stream.push_frame(frame)
        stream.end_input()
        async with asyncio.timeout(60):
            async for event in stream:  # the plugin keeps the socket open after end_input: stop at the final
                events.append(event)
                if event.type == lk_stt.SpeechEventType.FINAL_TRANSCRIPT:
                    break
    finally:
        await stream.aclose()
        await stt.aclose()
    kinds = [e.type for e in events]
    assert kinds[0] == lk_stt.SpeechEventType.START_OF_SPEECH
    assert lk_stt.SpeechEventType.END_OF_SPEECH in kinds
    final = events[-1].alternatives[0].text
    assert words(final) >= {"quick", "brown", "fox", "jumps", "lazy", "dog"}, final
    interims = [e.alternatives[0].text for e in events if e.type == lk_stt.SpeechEventType.INTERIM_TRANSCRIPT]
    assert all(final.startswith(text) for text in interims), (interims, final)  # append-only deltas


@pytest.mark.parametrize("model", ["tts-1", "gpt-4o-mini-tts"])
async def test_tts_synthesize(voxloop: str, http: aiohttp.ClientSession, model: str) -> None:
    # The plugin asks tts-1 for a chunked mp3 body and gpt-4o-mini-tts for SSE events (`stream_format: sse`).
    tts = lk_openai.TTS(base_url=f"{voxloop}/v1", api_key=API_KEY, model=model, voice="alloy")
    audio, rates = bytearray(), set()
    try:
        async with tts.synthesize("The weather is sunny and warm today.") as stream:
            async for chunk in stream:
                audio.extend(bytes(chunk.frame.data))
                rates.add((chunk.frame.sample_rate, chunk.frame.num_channels))
    finally:
        await tts.aclose()
    assert rates == {(RATE, 1)}
    assert 1.0 < len(audio) / 2 / RATE < 10
    assert words(transcribe_pcm(voxloop, bytes(audio))) >= {"weather", "sunny", "warm", "today"}


@function_tool
async def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny in {city}."


async def test_llm_chat_streams_words_and_tool_calls(voxloop: str, http: aiohttp.ClientSession) -> None:
    # The cascaded pipeline's LLM: `openai.LLM(base_url=...)` on /v1/chat/completions, streamed.
    model = lk_openai.LLM(base_url=f"{voxloop}/v1", api_key=API_KEY, model="voxloop", max_completion_tokens=32)
    context = llm.ChatContext()
    context.add_message(role="user", content="Say hello.")
    text = ""
    async with model.chat(chat_ctx=context) as stream:
        async for chunk in stream:
            text += (chunk.delta.content or "") if chunk.delta else ""
    assert text.strip()
    context = llm.ChatContext()
    context.add_message(role="user", content="What is the weather in Paris?")
    calls = []
    async with model.chat(chat_ctx=context, tools=[get_weather], tool_choice="required") as stream:
        async for chunk in stream:
            calls += chunk.delta.tool_calls if chunk.delta else []
    await model.aclose()
    (call,) = calls
    assert call.name == "get_weather" and set(json.loads(call.arguments)) == {"city"} and call.call_id
