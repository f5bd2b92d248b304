"""The OpenAI Agents SDK's realtime agents (`agents.realtime`) against voxloop's /v1/realtime.

`RealtimeRunner` with `model_config={"url": ..., "api_key": ...}`: the SDK's own WebSocket model, GA event names,
its default session settings unless a test says otherwise. Replies come from the embedded 135M model, so the tests
check the shape and the links between events (order, transcripts that match, tool arguments that parse, the cut of
an interrupted reply), never the words of a reply.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.clients.conftest import API_KEY, QUESTION, speech_pcm, transcribe_pcm, words, ws_url

pytest.importorskip("agents.realtime", reason="the OpenAI Agents SDK is not installed (make test-clients)")

import numpy as np
from agents import Agent, OpenAIChatCompletionsModel, function_tool
from agents.realtime import (
    RealtimeAgent,
    RealtimeModelSendRawMessage,
    RealtimePlaybackTracker,
    RealtimeRunner,
    RealtimeSession,
)
from agents.voice import (
    AudioInput,
    SingleAgentVoiceWorkflow,
    StreamedAudioInput,
    STTModelSettings,
    VoicePipeline,
    VoicePipelineConfig,
)
from agents.voice.models.openai_model_provider import OpenAIVoiceModelProvider
from openai import AsyncOpenAI

pytestmark = pytest.mark.clients

BYTES_PER_MS = 48  # pcm16 mono at 24 kHz


def _config(voxloop: str, **settings: Any) -> dict[str, Any]:
    # Replies are capped so the suite stays short on two cores; a capped reply ends `incomplete`, as at OpenAI.
    return {"url": f"{ws_url(voxloop)}/v1/realtime", "api_key": API_KEY,
            "initial_model_settings": {"model_name": "gpt-realtime", "max_output_tokens": 48, **settings}}


async def _collect(session: RealtimeSession, turns: int = 1, timeout: float = 150,
                   on_event: Callable[[Any], Awaitable[None]] | None = None) -> list[Any]:
    """The session's events until its `turns`-th `agent_end`."""
    events: list[Any] = []
    async with asyncio.timeout(timeout):
        async for event in session:
            events.append(event)
            if on_event is not None:
                await on_event(event)
            if event.type == "agent_end" and sum(e.type == "agent_end" for e in events) == turns:
                return events
    raise AssertionError(f"the session ended after {[e.type for e in events][-20:]}")


def _raw(events: list[Any]) -> list[dict[str, Any]]:
    """voxloop's server events as the SDK received them."""
    return [e.data.data for e in events if e.type == "raw_model_event" and e.data.type == "raw_server_event"]


def _index(events: list[Any], type_: str, *, raw: bool = False, last: bool = False) -> int:
    kinds = [e.get("type") for e in events] if raw else [e.type for e in events]
    assert type_ in kinds, f"no {type_} among {kinds}"
    return len(kinds) - 1 - kinds[::-1].index(type_) if last else kinds.index(type_)


def _no_errors(events: list[Any]) -> None:
    errors = [e.error for e in events if e.type == "error"] + [e for e in _raw(events) if e["type"] == "error"]
    assert not errors, errors


def _spoken(events: list[Any]) -> tuple[bytes, str]:
    """The reply's audio (the SDK's `audio` events) and its transcript (voxloop's `.done`), checked to agree with
    the transcript deltas."""
    audio = b"".join(e.audio.data for e in events if e.type == "audio")
    raw = _raw(events)
    done = [e["transcript"] for e in raw if e["type"] == "response.output_audio_transcript.done"]
    assert done, "no response.output_audio_transcript.done"
    deltas = "".join(e["delta"] for e in raw if e["type"] == "response.output_audio_transcript.delta")
    assert deltas == "".join(done)
    return audio, done[-1]


def _history(events: list[Any]) -> list[Any]:
    """The session's history as its events left it (the last `history_updated`, then items added since)."""
    items: dict[str, Any] = {}
    for event in events:
        if event.type == "history_updated":
            items = {item.item_id: item for item in event.history}
        elif event.type == "history_added":
            items[event.item.item_id] = event.item
    return list(items.values())


def _messages(events: list[Any], role: str) -> list[Any]:
    return [i for i in _history(events) if i.type == "message" and i.role == role]


async def test_text_turn_is_spoken_back(voxloop: str) -> None:
    runner = RealtimeRunner(RealtimeAgent(name="Assistant", instructions="You are a friendly assistant."))
    async with await runner.run(model_config=_config(voxloop)) as session:
        await session.send_message("Say hello.")
        events = await _collect(session)
    _no_errors(events)
    audio, transcript = _spoken(events)
    assert transcript.strip()
    assert len(audio) >= 300 * BYTES_PER_MS and len(audio) % 2 == 0  # at least 0.3 s of pcm16
    start, first_audio = _index(events, "agent_start"), _index(events, "audio")
    assert start < first_audio < _index(events, "audio_end") < _index(events, "agent_end")
    (user,), reply = _messages(events, "user"), _messages(events, "assistant")[-1]
    assert user.content[0].text == "Say hello."
    assert reply.content[0].transcript == transcript
    # The audio says the transcript: Whisper hears some of its words in it.
    assert words(transcribe_pcm(voxloop, audio)) & words(transcript), transcript


async def test_spoken_turn_with_server_vad(voxloop: str) -> None:
    settings = {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                "input_audio_transcription": {"model": "whisper-1"}}
    runner = RealtimeRunner(RealtimeAgent(name="Assistant", instructions="Answer in one short sentence."))
    async with await runner.run(model_config=_config(voxloop, **settings)) as session:
        pcm = speech_pcm(QUESTION)
        for offset in range(0, len(pcm), 100 * BYTES_PER_MS):  # 100 ms chunks, as a microphone sends them
            await session.send_audio(pcm[offset : offset + 100 * BYTES_PER_MS])
        events = await _collect(session)
    _no_errors(events)
    raw = _raw(events)
    kinds = ("input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped", "input_audio_buffer.committed",
             "response.created")
    order = [_index(raw, kind, raw=True) for kind in kinds]
    assert order == sorted(order)
    (user,) = _messages(events, "user")
    assert user.content[0].type == "input_audio"
    assert {"capital", "france"} <= words(user.content[0].transcript or ""), user.content[0].transcript
    completed = [e for e in events
                 if e.type == "raw_model_event" and e.data.type == "input_audio_transcription_completed"]
    assert completed and completed[0].data.transcript == user.content[0].transcript
    audio, transcript = _spoken(events)
    assert audio and transcript.strip()
    assert _messages(events, "assistant")[-1].content[0].transcript == transcript


async def test_function_tool_is_called_and_its_result_spoken(voxloop: str) -> None:
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        calls.append(city)
        return f"It is sunny and 21 degrees in {city}."

    agent = RealtimeAgent(name="Assistant", tools=[get_weather],
                          instructions="You are a helpful assistant. Use the get_weather tool for weather questions.")
    async with await RealtimeRunner(agent).run(model_config=_config(voxloop, tool_choice="auto")) as session:
        await session.send_message("What is the weather in Paris?")
        events = await _collect(session, turns=2)  # the call, then the spoken answer
    _no_errors(events)
    assert len(calls) == 1 and calls[0].strip(), calls
    (call,) = [i for i in _history(events) if i.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": calls[0]}
    assert call.output == f"It is sunny and 21 degrees in {calls[0]}."
    tool_end = _index(events, "tool_end")
    assert _index(events, "tool_start") < tool_end < _index(events, "agent_start", last=True)
    assert events[tool_end].output == call.output
    # The answer after the result is words, spoken: a message, not another call.
    answer = events[tool_end:]
    audio, transcript = _spoken(answer)
    assert audio and transcript.strip()
    done = [e for e in _raw(answer) if e["type"] == "response.done"]
    assert [item["type"] for item in done[-1]["response"]["output"]] == ["message"]


async def test_interrupt_cuts_the_reply_where_playback_stopped(voxloop: str) -> None:
    # The app plays the audio itself and tells the SDK what was played; interrupt() then truncates the item at that
    # point (sent while the reply is still being spoken) and, with interrupt_response off, cancels the response.
    tracker = RealtimePlaybackTracker()
    settings = {"turn_detection": {"type": "server_vad", "interrupt_response": False}, "max_output_tokens": 200}
    config = {**_config(voxloop, **settings), "playback_tracker": tracker}
    runner = RealtimeRunner(RealtimeAgent(name="Storyteller", instructions="You tell long stories."))
    async with await runner.run(model_config=config) as session:
        played: list[int] = []

        async def play_then_interrupt(event: Any) -> None:
            if event.type == "audio" and not played:  # half of the first audio played, then the user interrupts
                half = event.audio.data[: len(event.audio.data) // 4 * 2]
                tracker.on_play_bytes(event.item_id, event.content_index, half)
                played.append(len(half) // BYTES_PER_MS)
                await session.interrupt()

        await session.send_message("Tell me a long story about a dragon and a knight.")
        events = await _collect(session, on_event=play_then_interrupt)
        item_id = next(e.item_id for e in events if e.type == "audio")
        await session.model.send_event(RealtimeModelSendRawMessage(
            message={"type": "conversation.item.retrieve", "other_data": {"item_id": item_id}}))
        retrieved = await _collect_raw(session, "conversation.item.retrieved")
    _no_errors(events)
    raw = _raw(events)
    interrupted = _index(events, "audio_interrupted")
    assert _index(events, "audio") < interrupted < _index(events, "agent_end")
    truncated = raw[_index(raw, "conversation.item.truncated", raw=True)]
    assert truncated["item_id"] == item_id and truncated["audio_end_ms"] == pytest.approx(played[0], abs=1)
    done = raw[_index(raw, "response.done", raw=True)]["response"]
    assert done["status"] == "cancelled" and done["status_details"]["reason"] == "client_cancelled"
    # voxloop kept what was heard: the audio up to the cut, and the phrases heard whole.
    full = next(e["transcript"] for e in raw if e["type"] == "response.output_audio_transcript.done")
    sent = sum(len(base64.b64decode(e["delta"])) for e in raw if e["type"] == "response.output_audio.delta")
    part = retrieved["item"]["content"][0]
    cut, heard = truncated["audio_end_ms"], part["transcript"]
    assert cut < sent // BYTES_PER_MS and len(base64.b64decode(part["audio"])) == cut * BYTES_PER_MS
    assert full.startswith(heard) and heard != full, (heard, full, cut, sent)
    assert heard in ("", full) or full[len(heard)] == " ", (heard, full)  # whole phrases only


async def _collect_raw(session: RealtimeSession, type_: str, timeout: float = 30) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        async for event in session:
            raw = event.data.data if event.type == "raw_model_event" and event.data.type == "raw_server_event" else {}
            if raw.get("type") == type_:
                return raw
    raise AssertionError(f"the session ended before {type_}")


async def test_speaking_over_a_reply_interrupts_it(voxloop: str) -> None:
    # Server VAD with interrupt_response (the SDK's default): the server cancels the reply when it hears the user, the
    # SDK stops playback (`audio_interrupted`), and the user's words become a turn that gets its own reply.
    settings = {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}, "max_output_tokens": 200}
    runner = RealtimeRunner(RealtimeAgent(name="Storyteller", instructions="You tell long stories."))
    async with await runner.run(model_config=_config(voxloop, **settings)) as session:
        talked: list[bool] = []

        async def talk_over(event: Any) -> None:
            if event.type == "audio" and not talked:
                talked.append(True)
                pcm = speech_pcm("Stop, wait a moment.", lead=0.0, tail=0.8)
                for offset in range(0, len(pcm), 100 * BYTES_PER_MS):
                    await session.send_audio(pcm[offset : offset + 100 * BYTES_PER_MS])
                # The answer to the interruption need not be long.
                update = {"session": {"type": "realtime", "max_output_tokens": 32}}
                await session.model.send_event(RealtimeModelSendRawMessage(
                    message={"type": "session.update", "other_data": update}))

        await session.send_message("Tell me a long story about a dragon who learns to bake bread.")
        events = await _collect(session, turns=2, on_event=talk_over)
    _no_errors(events)
    raw = _raw(events)
    first, second = [e["response"] for e in raw if e["type"] == "response.done"]
    assert first["status"] == "cancelled" and first["status_details"]["reason"] == "turn_detected"
    assert second["status"] in ("completed", "incomplete")
    started = _index(events, "audio_interrupted")
    assert _index(events, "audio") < started < _index(events, "agent_start", last=True)
    users = _messages(events, "user")
    assert len(users) == 2 and users[1].content[0].type == "input_audio"
    assert _index(raw, "input_audio_buffer.committed", raw=True) < _index(raw, "response.created", raw=True, last=True)


async def test_handoff_to_a_second_agent(voxloop: str) -> None:
    weather = RealtimeAgent(name="Weather agent", handoff_description="Answers questions about the weather.",
                            instructions="You are a weather expert. Say the weather is sunny.")
    triage = RealtimeAgent(name="Triage agent", handoffs=[weather],
                           instructions="Transfer weather questions to the weather agent.")
    async with await RealtimeRunner(triage).run(model_config=_config(voxloop, tool_choice="auto")) as session:
        await session.send_message("What is the weather like today?")
        events = await _collect(session, turns=2)
    _no_errors(events)
    handoffs = [e for e in events if e.type == "handoff"]
    assert [(h.from_agent.name, h.to_agent.name) for h in handoffs] == [("Triage agent", "Weather agent")]
    (call,) = [i for i in _history(events) if i.type == "function_call"]
    assert call.name == "transfer_to_weather_agent" and json.loads(call.arguments or "{}") == {}
    # The session now speaks as the weather agent: its instructions, no transfer tool, then its reply.
    raw = _raw(events)
    updates = [i for i, e in enumerate(raw) if e["type"] == "session.updated"
               and e["session"]["instructions"] == weather.instructions]
    assert updates, "no session.updated with the weather agent's instructions"
    assert not raw[updates[0]]["session"]["tools"]
    assert updates[0] < _index(raw, "response.created", raw=True, last=True)
    after = events[_index(events, "handoff") :]
    audio, transcript = _spoken(after)
    assert audio and transcript.strip()


# --- the voice pipeline (agents.voice): STT → an agent on /v1/chat/completions → TTS, all on voxloop --------------


class _RecordingWorkflow(SingleAgentVoiceWorkflow):
    """The SDK's single-agent workflow, recording the transcripts the pipeline hands it."""

    def __init__(self, agent: Agent) -> None:
        super().__init__(agent)
        self.heard: list[str] = []

    async def run(self, transcription: str) -> AsyncIterator[str]:
        self.heard.append(transcription)
        async for text in super().run(transcription):
            yield text


def _pipeline(voxloop: str, stt_model: str, tts_model: str, **config: Any) -> tuple[VoicePipeline, _RecordingWorkflow]:
    client = AsyncOpenAI(base_url=f"{voxloop}/v1", api_key=API_KEY)
    agent = Agent(name="Assistant", instructions="Answer in one short sentence.",
                  model=OpenAIChatCompletionsModel(model="voxloop", openai_client=client))
    workflow = _RecordingWorkflow(agent)
    settings = VoicePipelineConfig(model_provider=OpenAIVoiceModelProvider(openai_client=client),
                                   tracing_disabled=True, **config)
    return VoicePipeline(workflow=workflow, stt_model=stt_model, tts_model=tts_model, config=settings), workflow


async def _drain(result: Any, timeout: float = 150) -> tuple[bytes, list[str]]:
    audio, lifecycle = bytearray(), []
    async with asyncio.timeout(timeout):
        async for event in result.stream():
            if event.type == "voice_stream_event_audio":
                audio.extend(np.asarray(event.data, np.int16).tobytes() if event.data is not None else b"")
            elif event.type == "voice_stream_event_lifecycle":
                lifecycle.append(event.event)
            else:
                raise AssertionError(f"voice pipeline error: {event}")
    return bytes(audio), lifecycle


async def test_voice_pipeline_with_a_recorded_question(voxloop: str) -> None:
    # AudioInput: one POST /v1/audio/transcriptions, the agent's reply from /v1/chat/completions, POST /v1/audio/speech.
    pipeline, workflow = _pipeline(voxloop, "whisper-1", "tts-1")
    pcm = speech_pcm(QUESTION)
    result = await pipeline.run(AudioInput(buffer=np.frombuffer(pcm, np.int16), frame_rate=24_000))
    audio, lifecycle = await _drain(result)
    assert lifecycle == ["turn_started", "turn_ended", "session_ended"]
    assert len(workflow.heard) == 1 and {"capital", "france"} <= words(workflow.heard[0]), workflow.heard
    assert result.total_output_text.strip() and len(audio) >= 300 * BYTES_PER_MS
    assert words(transcribe_pcm(voxloop, audio)) & words(result.total_output_text), result.total_output_text


async def test_voice_pipeline_streaming_over_realtime_transcription(voxloop: str) -> None:
    # StreamedAudioInput: the STT is a Realtime transcription session (?intent=transcription) whose server VAD ends
    # the turn; the reply is spoken by gpt-4o-mini-tts.
    stt = STTModelSettings(turn_detection={"type": "server_vad", "silence_duration_ms": 500})
    pipeline, workflow = _pipeline(voxloop, "gpt-4o-mini-transcribe", "gpt-4o-mini-tts", stt_settings=stt)
    microphone = StreamedAudioInput()
    result = await pipeline.run(microphone)
    pcm = speech_pcm(QUESTION, tail=1.5)
    for offset in range(0, len(pcm), 100 * BYTES_PER_MS):
        await microphone.add_audio(np.frombuffer(pcm[offset : offset + 100 * BYTES_PER_MS], np.int16))
    waiting = asyncio.ensure_future(_drain(result))
    while not workflow.heard and not waiting.done():  # the turn ends on the server; then the microphone closes
        await asyncio.sleep(0.1)
    await microphone.add_audio(None)
    audio, lifecycle = await waiting
    assert lifecycle[:2] == ["turn_started", "turn_ended"] and lifecycle[-1] == "session_ended"
    assert len(workflow.heard) == 1 and {"capital", "france"} <= words(workflow.heard[0]), workflow.heard
    assert result.total_output_text.strip() and audio


async def test_default_responses_api_model_is_not_served(voxloop: str) -> None:
    # An `Agent` with a model name and no model object uses the Responses API (/v1/responses), which voxloop does not
    # serve: give the agent an OpenAIChatCompletionsModel (as above) or `set_default_openai_api("chat_completions")`.
    # When this starts failing, voxloop serves /v1/responses: update README "Clients tested".
    from agents import OpenAIResponsesModel, RunConfig, Runner
    from openai import NotFoundError

    client = AsyncOpenAI(base_url=f"{voxloop}/v1", api_key=API_KEY, max_retries=0)
    agent = Agent(name="Assistant", model=OpenAIResponsesModel(model="voxloop", openai_client=client))
    with pytest.raises(NotFoundError):
        await Runner.run(agent, "Say hello.", run_config=RunConfig(tracing_disabled=True))
