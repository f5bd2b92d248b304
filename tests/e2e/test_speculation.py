"""Speculative replies over a real socket with the official SDK (every event validated against its types), real
engines throughout (Silero VAD, Whisper tiny.en, the prosody emotion baseline, SmolLM2 on llama.cpp, Piper/Kokoro).

A hit releases the reply prepared during the pause, and the client sees exactly the events of a reply made without
speculation; a speculation dropped because the user went on speaking, or because the committed turn's transcript
differs, never reaches the client; barge-in during a released reply still cancels it, stops its engines and
truncates. Which way each turn went is in `response.done` metadata (`voxloop_speculation`) and at /metrics.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from tests.support.realtime import Events, stream_audio, to_pcm16_24k
from tests.support.speech import pcm16_wav, silence, speak
from tests.support.wer import wer

pytestmark = pytest.mark.models

QUESTION = "What color is the sky on a sunny day?"
# Paused mid-question longer than the speculation's 200 ms but shorter than the VAD's silence.
LONG_VAD = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 3000}
VAD = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}
# Events whose order and content a speculative turn must share with a plain one (live transcription deltas and
# the VAD's own events depend on timing, not on the reply).
_REPLY = re.compile(r"^(response\.|conversation\.item\.(added|done)$|input_audio_buffer\.committed$)")
_VOLATILE = {"event_id", "response_id", "item_id", "id", "previous_item_id", "delta", "transcript", "text",
             "audio", "metadata", "usage", "call_id", "conversation_id"}


@pytest.fixture
def client(server_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server_url}/v1", api_key="sk-local", max_retries=0)


@pytest.fixture
def speculation(app) -> Iterator[Any]:
    """The server's realtime settings; each test leaves `speculation` as it found it."""
    realtime = app.state.services.settings.realtime
    before = realtime.speculation
    yield realtime
    realtime.speculation = before


async def _metric(server_url: str, name: str, label: str) -> float:
    async with httpx.AsyncClient(base_url=server_url) as http:
        text = (await http.get("/metrics")).text
    match = re.search(rf'^{name}\{{{label}\}} ([0-9.e+]+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


async def _session(conn, events: Events, turn_detection: dict[str, Any] | None, instructions: str) -> None:
    await events.until("session.created")
    await conn.session.update(session={"type": "realtime", "instructions": instructions, "audio": {"input": {
        "transcription": {"model": "whisper-1"}, "turn_detection": turn_detection}}})
    await events.until("session.updated")


async def _one_turn(client: openai.AsyncOpenAI) -> list[dict[str, Any]]:
    async with client.realtime.connect(model="voxloop") as conn:
        events = Events(conn)
        await _session(conn, events, VAD, "Answer in one short sentence.")
        await stream_audio(conn, to_pcm16_24k(np.concatenate([silence(0.3), speak(QUESTION)])), realtime=False)
        await stream_audio(conn, to_pcm16_24k(silence(1.0)))  # the microphone goes on: silence at real pace
        await events.until("response.done", timeout=180)
        return events.seen


def _shape(value: Any) -> Any:
    """An event's content without what differs between two replies to the same question (ids, words, audio)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items()) if k not in _VOLATILE}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


def _reply_events(seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The turn's reply events from the commit on, each kind of delta once (how many there are is the reply's)."""
    out: list[dict[str, Any]] = []
    for event in seen:
        if not _REPLY.match(event["type"]):
            continue
        if event["type"].endswith(".delta") and any(e["type"] == event["type"] for e in out):
            continue
        out.append(event)
    return out


def _before_commit(seen: list[dict[str, Any]]) -> list[str]:
    types = [e["type"] for e in seen]
    cut = types.index("input_audio_buffer.committed")
    return [t for t in types[:cut] if t.startswith(("response.", "conversation.item.added", "conversation.item.done"))]


async def test_a_hit_releases_the_reply_with_the_events_of_a_plain_turn(
    client: openai.AsyncOpenAI, sdk: openai.OpenAI, speculation: Any, server_url: str
) -> None:
    for _ in range(3):  # replies are sampled: one that runs to the chat's token cap ends `incomplete`; ask again
        speculation.speculation = False
        plain = await _one_turn(client)
        speculation.speculation = True
        hits = await _metric(server_url, "voxloop_realtime_speculation_total", 'outcome="hit"')
        spec = await _one_turn(client)
        assert await _metric(server_url, "voxloop_realtime_speculation_total", 'outcome="hit"') == hits + 1
        plain_done, spec_done = plain[-1]["response"], spec[-1]["response"]
        if "incomplete" not in (plain_done["status"], spec_done["status"]):
            break
    assert plain_done["metadata"]["voxloop_speculation"] == "none"
    assert spec_done["metadata"]["voxloop_speculation"] == "hit"
    assert plain_done["status"] == spec_done["status"] == "completed"
    # Nothing of the reply before the turn is committed; from the commit on, the same events in the same order
    # with the same content but for ids and the reply's own words and audio.
    assert _before_commit(spec) == [] and _before_commit(plain) == []
    assert [_shape(e) for e in _reply_events(spec)] == [_shape(e) for e in _reply_events(plain)]
    # The released audio is the reply the transcript says (our own Whisper listens to it).
    transcript = next(e for e in spec if e["type"] == "response.output_audio_transcript.done")["transcript"]
    audio = b"".join(base64.b64decode(e["delta"]) for e in spec if e["type"] == "response.output_audio.delta")
    heard = sdk.audio.transcriptions.create(model="whisper-1", file=("reply.wav", pcm16_wav(audio))).text
    assert wer(transcript, heard) <= 0.35, (transcript, heard)
    user = next(e for e in spec if e["type"] == "conversation.item.input_audio_transcription.completed")
    assert wer(QUESTION, user["transcript"]) <= 0.25


async def test_speech_that_resumes_drops_the_speculation_unseen(
    client: openai.AsyncOpenAI, speculation: Any, server_url: str
) -> None:
    speculation.speculation = True
    resumed = await _metric(server_url, "voxloop_realtime_speculations_dropped_total", 'reason="resumed"')
    async with client.realtime.connect(model="voxloop") as conn:
        events = Events(conn)
        await _session(conn, events, LONG_VAD, "Answer in one short sentence.")
        await stream_audio(conn, to_pcm16_24k(np.concatenate([silence(0.3), speak("Tell me about the moon")])),
                           realtime=False)
        await stream_audio(conn, to_pcm16_24k(silence(2.5)))  # long enough for the reply to be under way
        await stream_audio(conn, to_pcm16_24k(np.concatenate([speak("and the sun, please."), silence(3.5)])))
        done = (await events.until("response.done", timeout=180))["response"]
        await asyncio.sleep(0.5)
        while True:  # nothing else is queued for the client
            try:
                await events.next(timeout=0.5)
            except TimeoutError:
                break
    assert await _metric(server_url, "voxloop_realtime_speculations_dropped_total", 'reason="resumed"') >= resumed + 1
    assert _before_commit(events.seen) == []
    assert [e["type"] for e in events.seen].count("response.created") == 1
    assert len(events.of("input_audio_buffer.committed")) == 1
    user = events.of("conversation.item.input_audio_transcription.completed")[0]["transcript"].lower()
    assert "moon" in user and "sun" in user, user
    assert done["status"] == "completed"
    assert done["metadata"]["voxloop_speculation"] in {"hit", "miss"}  # the pause at the end may have its own


async def test_a_commit_whose_transcript_differs_drops_the_speculation(
    client: openai.AsyncOpenAI, sdk: openai.OpenAI, speculation: Any, server_url: str
) -> None:
    """Audio sent before turn detection was on is in the buffer but not in the VAD's turn: the speculation heard
    only the turn, the manual commit takes the whole buffer, and its transcript has more words."""
    speculation.speculation = True
    # Whisper loaded first: its first pass (with the load) would outlast the pause and the speculation be late.
    sdk.audio.transcriptions.create(model="whisper-1", file=("hi.wav", pcm16_wav(to_pcm16_24k(speak("Hello.")))))
    differs = await _metric(server_url, "voxloop_realtime_speculations_dropped_total", 'reason="differs"')
    async with client.realtime.connect(model="voxloop") as conn:
        events = Events(conn)
        await _session(conn, events, None, "Answer in one short sentence.")
        await stream_audio(conn, to_pcm16_24k(speak("Good morning.")), realtime=False)
        vad = {**LONG_VAD, "silence_duration_ms": 10_000}
        await conn.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": vad}}})
        await events.until("session.updated")
        await stream_audio(conn, to_pcm16_24k(np.concatenate([silence(0.5), speak(QUESTION)])), realtime=False)
        # The speculation transcribes and answers the turn meanwhile (a pass takes seconds on a loaded machine).
        await stream_audio(conn, to_pcm16_24k(silence(8.0)))
        await conn.input_audio_buffer.commit()
        user = await events.until("conversation.item.input_audio_transcription.completed", timeout=60)
        await conn.response.create()
        done = (await events.until("response.done", timeout=180))["response"]
    # More words than the turn the speculation heard (the live deltas already sent keep the question's start, so
    # the greeting's words show up later in the transcript).
    assert len(user["transcript"].split()) > len(QUESTION.split()), user
    assert done["metadata"]["voxloop_speculation"] == "miss"
    reasons = {r: await _metric(server_url, "voxloop_realtime_speculations_dropped_total", f'reason="{r}"')
               for r in ("resumed", "cleared", "differs", "late")}
    assert reasons["differs"] == differs + 1, reasons
    assert _before_commit(events.seen) == []
    assert [e["type"] for e in events.seen].count("response.created") == 1
    assert done["status"] == "completed" and done["output"][0]["content"][0]["transcript"]


async def test_barge_in_during_a_released_reply_cancels_stops_and_truncates(
    client: openai.AsyncOpenAI, speculation: Any, server_url: str
) -> None:
    speculation.speculation = True
    async with client.realtime.connect(model="voxloop") as conn:
        events = Events(conn)
        await _session(conn, events, VAD, "Tell a very long story, at least ten sentences, whatever the question.")
        await stream_audio(conn, to_pcm16_24k(np.concatenate([silence(0.3), speak("Tell me about dragons.")])),
                           realtime=False)
        await stream_audio(conn, to_pcm16_24k(silence(0.8)))
        first_audio = await events.until("response.output_audio.delta", timeout=180)
        await stream_audio(conn, to_pcm16_24k(np.concatenate([speak("Stop right there now."), silence(0.1)])),
                           realtime=False)
        done = (await events.until("response.done", timeout=60))["response"]
        assert done["status"] == "cancelled", done
        assert done["status_details"]["reason"] == "turn_detected"
        assert done["metadata"]["voxloop_speculation"] == "hit"
        assert done["output"][0]["status"] == "incomplete"
        # The released reply's LLM stream stops with it (the next turn's speculation may start later: it waits
        # for a pause, and there is none yet).
        for _ in range(10):
            in_flight = await _metric(server_url, "voxloop_model_requests_in_flight", 'model="smollm2-135m-instruct"')
            if in_flight == 0:
                break
            await asyncio.sleep(0.1)
        assert in_flight == 0
        item_id = first_audio["item_id"]
        await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=300)
        assert (await events.until("conversation.item.truncated"))["audio_end_ms"] == 300
        await conn.conversation.item.retrieve(item_id=item_id)
        item = (await events.until("conversation.item.retrieved"))["item"]
        full = events.of("response.output_audio_transcript.done")[0]["transcript"]
        assert len(item["content"][0]["transcript"]) < len(full) or not full
