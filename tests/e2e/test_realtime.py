"""The Realtime WebSocket driven by the official openai SDK (GA and beta) over a real socket, with real models.

Speech is synthesized with Piper. Only the VAD timing test streams at real-time pace (timing is what it checks);
the others send audio as fast as the socket takes it. Every server event read is validated against the SDK's
`RealtimeServerEvent` union (see `tests/support/realtime.py`).
"""

from __future__ import annotations

import asyncio
import warnings

import numpy as np
import openai
import pytest
import soxr

with warnings.catch_warnings():  # the reference G.711 codec; deprecated in 3.11, gone in 3.13
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

from tests.support.realtime import Events, b64, speech_bounds_ms, stream_audio, to_pcm16_24k
from tests.support.speech import PIPER_RATE, silence, speak
from tests.support.wer import wer

pytestmark = pytest.mark.models

SENTENCE_A = "The quick brown fox jumps over the lazy dog near the quiet river bank."
SENTENCE_B = "Please send the weekly report to the finance team before Friday."
SENTENCE_LONG = ("The quick brown fox jumps over the lazy dog near the quiet river bank, and then it runs all the way "
                 "back home across the green fields.")
TRANSCRIPTION = {"model": "whisper-1", "language": "en"}


@pytest.fixture
def client(server_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server_url}/v1", api_key="sk-local", max_retries=0)


@pytest.fixture
def beta_client(server_url: str) -> openai.AsyncOpenAI:
    """The beta realtime client always dials wss:// unless `websocket_base_url` says otherwise, as users set it."""
    ws_url = server_url.replace("http://", "ws://")
    return openai.AsyncOpenAI(base_url=f"{server_url}/v1", websocket_base_url=f"{ws_url}/v1", api_key="sk-local",
                              max_retries=0)


def _deltas(events: Events, item_id: str) -> str:
    return "".join(
        e["delta"] for e in events.of("conversation.item.input_audio_transcription.delta") if e["item_id"] == item_id
    )


async def test_ga_manual_commit_transcribes(client: openai.AsyncOpenAI) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        events = Events(conn)
        created = await events.next()
        assert created["type"] == "session.created"
        assert created["session"]["type"] == "realtime" and created["session"]["model"] == "gpt-realtime"
        await events.until("conversation.created")
        await conn.session.update(session={
            "type": "realtime",
            "audio": {"input": {"transcription": TRANSCRIPTION, "turn_detection": None}},
        })
        updated = await events.until("session.updated")
        audio_in = updated["session"]["audio"]["input"]
        assert audio_in["turn_detection"] is None and audio_in["transcription"]["model"] == "whisper-1"
        assert audio_in["format"] == {"type": "audio/pcm", "rate": 24000}  # untouched fields keep their values
        assert updated["session"]["output_modalities"] == ["audio"]

        await stream_audio(conn, to_pcm16_24k(np.concatenate([silence(0.3), speak(SENTENCE_A)])), realtime=False)
        await conn.input_audio_buffer.commit()
        committed = await events.until("input_audio_buffer.committed")
        item_id = committed["item_id"]
        assert committed["previous_item_id"] is None
        added = await events.until("conversation.item.added")
        assert added["item"]["id"] == item_id and added["item"]["role"] == "user"
        await events.until("conversation.item.done")
        completed = await events.until("conversation.item.input_audio_transcription.completed")
        assert completed["item_id"] == item_id and completed["content_index"] == 0
        assert completed["usage"]["type"] == "duration" and completed["usage"]["seconds"] > 3
        assert wer(SENTENCE_A, completed["transcript"]) < 0.2
        assert _deltas(events, item_id) == completed["transcript"]
        assert all(e["content_index"] == 0 for e in events.of("conversation.item.input_audio_transcription.delta"))

        await conn.conversation.item.retrieve(item_id=item_id)
        retrieved = await events.until("conversation.item.retrieved")
        assert retrieved["item"]["content"][0]["transcript"] == completed["transcript"]


async def test_server_vad_timing_live_deltas_and_order(client: openai.AsyncOpenAI) -> None:
    """Two turns streamed at real-time pace: VAD times within 150 ms, live deltas, items in order."""
    lead, gap, tail = silence(1.0), silence(1.2), silence(1.2)
    speech_a, speech_b = speak(SENTENCE_LONG), speak(SENTENCE_B)
    clip = np.concatenate([lead, speech_a, gap, speech_b, tail])
    a_on, a_off = speech_bounds_ms(speech_a)
    b_on, b_off = speech_bounds_ms(speech_b)
    base_b = (len(lead) + len(speech_a) + len(gap)) * 1000 // PIPER_RATE
    base_a = len(lead) * 1000 // PIPER_RATE
    truth = [(base_a + a_on, base_a + a_off), (base_b + b_on, base_b + b_off)]

    async with client.realtime.connect(model="gpt-realtime") as conn:
        events = Events(conn)
        await events.until("session.created")
        await conn.session.update(session={"type": "realtime", "audio": {"input": {
            "transcription": TRANSCRIPTION,
            "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                               "silence_duration_ms": 500},
        }}})
        await events.until("session.updated")
        sender = asyncio.create_task(stream_audio(conn, to_pcm16_24k(clip), realtime=True))
        completed = []
        while len(completed) < 2:
            event = await events.next(timeout=60)
            if event["type"] == "conversation.item.input_audio_transcription.completed":
                completed.append(event)
        await sender

    started = events.of("input_audio_buffer.speech_started")
    stopped = events.of("input_audio_buffer.speech_stopped")
    assert len(started) == 2 and len(stopped) == 2
    for (onset, offset), start, stop in zip(truth, started, stopped, strict=True):
        assert abs(start["audio_start_ms"] - (onset - 300)) <= 150, (start, onset)
        assert abs(stop["audio_end_ms"] - (offset + 500)) <= 150, (stop, offset)
        assert start["item_id"] == stop["item_id"]
    committed = events.of("input_audio_buffer.committed")
    assert [c["item_id"] for c in committed] == [s["item_id"] for s in started]
    assert committed[1]["previous_item_id"] == committed[0]["item_id"]
    by_item = {c["item_id"]: c for c in completed}
    for sentence, start in zip((SENTENCE_LONG, SENTENCE_B), started, strict=True):
        result = by_item[start["item_id"]]
        assert wer(sentence, result["transcript"]) < 0.25, result["transcript"]
        assert _deltas(events, start["item_id"]) == result["transcript"]
    # Live transcription: deltas arrived while a turn was still being spoken (the first turn is ~7 s long; the
    # pace of live passes adapts to machine load, so either turn may be the one that shows it on a busy machine).
    live = []
    for start, stop in zip(started, stopped, strict=True):
        window = events.seen[events.seen.index(start) : events.seen.index(stop)]
        live += [e for e in window if e["type"].endswith("input_audio_transcription.delta")]
    assert live, "no delta arrived while a turn was being spoken"


async def test_beta_client_names_and_flat_session(beta_client: openai.AsyncOpenAI) -> None:
    async with beta_client.beta.realtime.connect(model="gpt-4o-realtime-preview") as conn:
        events = Events(conn, beta=True)
        created = await events.next()
        assert created["type"] == "session.created" and created["session"]["input_audio_format"] == "pcm16"
        await conn.session.update(session={"input_audio_transcription": {"model": "whisper-1"},
                                           "turn_detection": None, "modalities": ["text"]})
        updated = await events.until("session.updated")
        assert updated["session"]["turn_detection"] is None and updated["session"]["modalities"] == ["text"]
        assert updated["session"]["voice"] == created["session"]["voice"]
        await stream_audio(conn, to_pcm16_24k(speak(SENTENCE_B)), realtime=False)
        await conn.input_audio_buffer.commit()
        committed = await events.until("input_audio_buffer.committed")
        item = await events.until("conversation.item.created")
        assert item["item"]["id"] == committed["item_id"]
        completed = await events.until("conversation.item.input_audio_transcription.completed")
        assert wer(SENTENCE_B, completed["transcript"]) < 0.2
    assert not events.of("conversation.item.added") and not events.of("conversation.item.done")


async def test_ga_transcription_session(client: openai.AsyncOpenAI) -> None:
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        events = Events(conn)
        created = await events.next()
        assert created["session"]["type"] == "transcription"
        await conn.session.update(session={"type": "transcription", "audio": {"input": {
            "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 400},
        }}})
        updated = await events.until("session.updated")
        assert updated["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 400
        clip = np.concatenate([silence(0.5), speak(SENTENCE_A), silence(1.0)])
        await stream_audio(conn, to_pcm16_24k(clip), realtime=False)
        completed = await events.until("conversation.item.input_audio_transcription.completed")
        assert wer(SENTENCE_A, completed["transcript"]) < 0.2
        await conn.send({"type": "response.create"})
        error = await events.until("error")
        assert error["error"]["code"] == "invalid_request_error"


async def test_beta_transcription_session(beta_client: openai.AsyncOpenAI) -> None:
    async with beta_client.beta.realtime.connect(model="", extra_query={"intent": "transcription"}) as conn:
        events = Events(conn, beta=True)
        await events.until("session.created")
        await conn.transcription_session.update(session={
            "input_audio_format": "g711_ulaw",
            "input_audio_transcription": {"model": "whisper-1", "language": "en", "prompt": ""},
            "turn_detection": None,
        })
        updated = await events.until("transcription_session.updated")
        assert updated["session"]["input_audio_format"] == "g711_ulaw"
        telephone = soxr.resample(speak(SENTENCE_B), PIPER_RATE, 8000)
        ulaw = audioop.lin2ulaw((np.clip(telephone, -1, 1) * 32767).astype("<i2").tobytes(), 2)
        for offset in range(0, len(ulaw), 1600):
            await conn.input_audio_buffer.append(audio=b64(ulaw[offset : offset + 1600]))
        await conn.input_audio_buffer.commit()
        completed = await events.until("conversation.item.input_audio_transcription.completed")
        assert wer(SENTENCE_B, completed["transcript"]) < 0.25


async def test_conversation_items(client: openai.AsyncOpenAI) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        events = Events(conn)
        await events.until("session.created")
        text = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}
        await conn.conversation.item.create(item=text)
        first = (await events.until("conversation.item.added"))
        assert first["previous_item_id"] is None
        done = await events.until("conversation.item.done")
        assert done["item"]["id"] == first["item"]["id"]
        await conn.conversation.item.create(item={"type": "function_call_output", "call_id": "call_1",
                                                  "output": "{\"ok\": true}"})
        second = await events.until("conversation.item.added")
        assert second["previous_item_id"] == first["item"]["id"]
        await conn.conversation.item.create(item=text, previous_item_id=first["item"]["id"])
        middle = await events.until("conversation.item.added")
        assert middle["previous_item_id"] == first["item"]["id"]
        await conn.conversation.item.delete(item_id=middle["item"]["id"])
        deleted = await events.until("conversation.item.deleted")
        assert deleted["item_id"] == middle["item"]["id"]
        await conn.conversation.item.retrieve(item_id=middle["item"]["id"])
        error = await events.until("error")
        assert error["error"]["code"] == "item_retrieve_invalid_item_id"

        audio = b64(to_pcm16_24k(speak("Hello there.")))
        await conn.conversation.item.create(item={
            "type": "message", "role": "assistant",
            "content": [{"type": "output_audio", "audio": audio, "transcript": "Hello there."}],
        })
        assistant = await events.until("conversation.item.added")
        await conn.conversation.item.truncate(item_id=assistant["item"]["id"], content_index=0, audio_end_ms=200)
        truncated = await events.until("conversation.item.truncated")
        assert truncated["audio_end_ms"] == 200


async def test_idle_timeout_and_semantic_vad(client: openai.AsyncOpenAI) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        events = Events(conn)
        await events.until("session.created")
        await conn.session.update(session={"type": "realtime", "audio": {"input": {
            "turn_detection": {"type": "server_vad", "idle_timeout_ms": 5000}}}})
        await events.until("session.updated")
        await stream_audio(conn, to_pcm16_24k(silence(5.5)), realtime=False)
        timeout = await events.until("input_audio_buffer.timeout_triggered")
        assert abs(timeout["audio_end_ms"] - timeout["audio_start_ms"] - 5000) <= 64
        committed = await events.until("input_audio_buffer.committed")
        assert committed["item_id"] == timeout["item_id"]

        await conn.session.update(session={"type": "realtime", "audio": {"input": {
            "transcription": TRANSCRIPTION, "turn_detection": {"type": "semantic_vad", "eagerness": "high"}}}})
        updated = await events.until("session.updated")
        assert updated["session"]["audio"]["input"]["turn_detection"]["eagerness"] == "high"
        clip = np.concatenate([silence(0.5), speak(SENTENCE_B), silence(2.5)])
        await stream_audio(conn, to_pcm16_24k(clip), realtime=False)
        stopped = await events.until("input_audio_buffer.speech_stopped")
        completed = await events.until("conversation.item.input_audio_transcription.completed")
        assert completed["item_id"] == stopped["item_id"]
        assert wer(SENTENCE_B, completed["transcript"]) < 0.25
