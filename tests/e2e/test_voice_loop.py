"""The voice loop over a real socket with the official SDK: spoken question → spoken answer from the embedded LLM,
barge-in, response.cancel, tool calls, emotion-routed voices, beta names. Real engines throughout (Silero VAD,
Whisper tiny.en, the prosody-lexicon emotion baseline, SmolLM2 on llama.cpp, Piper and Kokoro)."""

from __future__ import annotations

import base64
import json

import numpy as np
import openai
import pytest
import soxr

from tests.support.realtime import Events, stream_audio, to_pcm16_24k
from tests.support.speech import PIPER_RATE, pcm16_wav, silence, speak
from tests.support.wer import wer

pytestmark = pytest.mark.models

QUESTION = "What color is the sky on a sunny day?"  # an answer in plain English words: tiny.en mishears names
VAD = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}
LIFECYCLE = [
    "response.created", "response.output_item.added", "response.content_part.added",
    "response.output_audio_transcript.delta", "response.output_audio.delta", "response.output_audio.done",
    "response.output_audio_transcript.done", "response.content_part.done", "response.output_item.done",
    "response.done",
]


@pytest.fixture
def client(server_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server_url}/v1", api_key="sk-local", max_retries=0)


def _audio_of(events: Events, response_id: str) -> bytes:
    return b"".join(base64.b64decode(e["delta"]) for e in events.of("response.output_audio.delta")
                    if e["response_id"] == response_id)


async def _session(conn, events: Events, **audio_input) -> None:
    await events.until("session.created")
    await conn.session.update(session={"type": "realtime", "instructions": "Answer in one short sentence.",
                                       "audio": {"input": {"transcription": {"model": "whisper-1"}, **audio_input}}})
    await events.until("session.updated")


async def test_spoken_question_gets_a_spoken_answer(client: openai.AsyncOpenAI, sdk: openai.OpenAI) -> None:
    async with client.realtime.connect(model="voxloop") as conn:
        events = Events(conn)
        await _session(conn, events, turn_detection=VAD)
        await stream_audio(conn, to_pcm16_24k(np.concatenate([silence(0.3), speak(QUESTION), silence(1.0)])),
                           realtime=False)
        done = await events.until("response.done", timeout=120)
    response = done["response"]
    assert response["status"] == "completed", response
    # Lifecycle order: each first occurrence after the previous one, every item added and done once.
    types = [e["type"] for e in events.seen]
    firsts = [types.index(t) for t in LIFECYCLE]
    assert firsts == sorted(firsts), [types[i] for i in sorted(firsts)]
    user_done = events.of("conversation.item.input_audio_transcription.completed")[0]
    # Two word errors in nine at most: Whisper base on the realtime path sometimes hears "color is" as "colors"
    # (two errors, 0.22: CI went red on it); a wrong question is three or more.
    assert wer(QUESTION, user_done["transcript"]) <= 0.25
    assert types.index("conversation.item.input_audio_transcription.completed") < types.index("response.created")
    transcript = events.of("response.output_audio_transcript.done")[0]["transcript"]
    deltas = "".join(e["delta"] for e in events.of("response.output_audio_transcript.delta"))
    assert deltas == transcript and len(transcript.split()) >= 2
    assert "[" not in transcript and "<think>" not in transcript
    assert [i["id"] for i in response["output"]] == [events.of("response.output_item.added")[0]["item"]["id"]]
    assert response["output"][0]["content"][0]["transcript"] == transcript
    # What was spoken is what the transcript says (our own Whisper listens to the reply).
    audio = _audio_of(events, response["id"])
    assert len(audio) / 2 / 24_000 > 0.5
    heard = sdk.audio.transcriptions.create(model="whisper-1", file=("reply.wav", pcm16_wav(audio))).text
    assert wer(transcript, heard) <= 0.35, (transcript, heard)
    meta = response["metadata"]
    assert meta["voxloop_engine"] in {"piper-joe", "kokoro-82m"} and meta["voxloop_route_reason"]
    assert "llm_first_token=" in meta["voxloop_timings_ms"] and "first_audio=" in meta["voxloop_timings_ms"]
    assert response["usage"]["output_token_details"]["audio_tokens"] > 0


async def test_barge_in_cancels_and_truncate_trims(client: openai.AsyncOpenAI) -> None:
    async with client.realtime.connect(model="voxloop") as conn:
        events = Events(conn)
        await _session(conn, events, turn_detection=VAD)
        await conn.conversation.item.create(item={"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Tell me a long story about a dragon who learns to bake bread."}]})
        await conn.response.create(response={"max_output_tokens": 400})
        first_audio = await events.until("response.output_audio.delta", timeout=120)
        # The user talks over the reply: server VAD hears it and the response stops.
        await stream_audio(conn, to_pcm16_24k(np.concatenate([speak("Stop, wait a moment."), silence(0.8)])),
                           realtime=False)
        done = await events.until("response.done", timeout=60)
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "turn_detected"
        assert done["response"]["output"][0]["status"] == "incomplete"
        item_id = first_audio["item_id"]
        await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=300)
        truncated = await events.until("conversation.item.truncated")
        assert truncated["audio_end_ms"] == 300
        await conn.conversation.item.retrieve(item_id=item_id)
        item = (await events.until("conversation.item.retrieved"))["item"]
        full = events.of("response.output_audio_transcript.done")[0]["transcript"]
        assert len(item["content"][0]["transcript"]) < len(full) or not full


async def test_response_cancel_and_one_response_at_a_time(client: openai.AsyncOpenAI) -> None:
    async with client.realtime.connect(model="voxloop") as conn:
        events = Events(conn)
        await _session(conn, events, turn_detection=None)
        await conn.conversation.item.create(item={"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Describe the ocean in detail."}]})
        await conn.response.create()
        await events.until("response.created", timeout=60)
        await conn.response.create()
        error = await events.until("error")
        assert error["error"]["code"] == "conversation_already_has_active_response"
        await conn.response.cancel()
        done = await events.until("response.done", timeout=60)
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "client_cancelled"
        await conn.response.cancel()
        assert (await events.until("error"))["error"]["code"] == "response_cancel_not_active"


async def test_tool_round_trip_in_text(client: openai.AsyncOpenAI) -> None:
    tool = {"type": "function", "name": "get_weather", "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    async with client.realtime.connect(model="voxloop") as conn:
        events = Events(conn)
        await events.until("session.created")
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"], "tools": [tool],
                                           "tool_choice": {"type": "function", "name": "get_weather"},
                                           "audio": {"input": {"turn_detection": None}}})
        await events.until("session.updated")
        await conn.conversation.item.create(item={"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "What is the weather in Paris?"}]})
        await conn.response.create()
        done = await events.until("response.done", timeout=120)
        call = done["response"]["output"][0]
        assert call["type"] == "function_call" and call["name"] == "get_weather"
        assert json.loads(call["arguments"])["city"] == "Paris"
        args_done = events.of("response.function_call_arguments.done")[0]
        assert args_done["arguments"] == call["arguments"] == "".join(
            e["delta"] for e in events.of("response.function_call_arguments.delta"))
        await conn.conversation.item.create(item={"type": "function_call_output", "call_id": call["call_id"],
                                                  "output": json.dumps({"temperature_c": 21, "sky": "sunny"})})
        await conn.response.create(response={"tool_choice": "none"})
        done = await events.until("response.done", timeout=120)
        message = done["response"]["output"][0]
        assert message["type"] == "message" and done["response"]["status"] == "completed"
        text = events.of("response.output_text.done")[-1]["text"]
        assert text and message["content"][0]["text"] == text


@pytest.mark.parametrize("prompt", ["Say hello.", "What is the weather in Paris?"])
async def test_an_agent_with_a_tool_is_never_silent(client: openai.AsyncOpenAI, prompt: str) -> None:
    """What an Agents SDK RealtimeAgent with one function tool sends: tool_choice auto, audio out (issue 17). The
    response is words or a call, never `completed` with nothing; after the call's output, the reply is spoken."""
    tool = {"type": "function", "name": "get_weather", "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    async with client.realtime.connect(model="voxloop") as conn:
        events = Events(conn)
        await events.until("session.created")
        await conn.session.update(session={"type": "realtime", "tools": [tool], "tool_choice": "auto",
                                           "audio": {"input": {"turn_detection": None}}})
        await events.until("session.updated")
        await conn.conversation.item.create(item={"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": prompt}]})
        await conn.response.create()
        done = (await events.until("response.done", timeout=120))["response"]
        assert done["status"] == "completed" and done["output"], done
        first = done["output"][0]
        if first["type"] == "function_call":
            assert isinstance(json.loads(first["arguments"]), dict)
            await conn.conversation.item.create(item={"type": "function_call_output", "call_id": first["call_id"],
                                                      "output": json.dumps({"sky": "sunny", "temperature_c": 21})})
            await conn.response.create()
            done = (await events.until("response.done", timeout=120))["response"]
            assert done["status"] == "completed" and done["output"][0]["type"] == "message", done
        transcript = events.of("response.output_audio_transcript.done")[-1]["transcript"]
        assert transcript.strip() and "functions." not in transcript and "&#" not in transcript
        assert _audio_of(events, done["id"])


def _angry(text: str) -> np.ndarray:
    # Loud, fast and 25 % higher: an agitated delivery of the same words.
    return np.clip(soxr.resample(speak(text, 0.8) * 2.0, PIPER_RATE, int(PIPER_RATE / 1.25)), -1, 1)


async def _turn_emotion_and_engine(client: openai.AsyncOpenAI, clip: np.ndarray) -> tuple[dict, dict]:
    async with client.realtime.connect(model="voxloop", extra_query={"voxloop_events": "true"}) as conn:
        events = Events(conn)
        await _session(conn, events, turn_detection=VAD)
        await stream_audio(conn, to_pcm16_24k(np.concatenate([silence(0.3), clip, silence(1.0)])), realtime=False)
        done = await events.until("response.done", timeout=120)
        emotion = events.of("voxloop.input_audio_emotion")
    assert emotion, "the session asked for voxloop events"
    return emotion[0], done["response"]["metadata"]


async def test_same_words_calm_and_agitated_change_emotion_and_voice(client: openai.AsyncOpenAI) -> None:
    words = "I need to talk to you about the delivery right now."
    calm_emotion, calm_meta = await _turn_emotion_and_engine(client, speak(words, 1.15) * 0.5)
    hot_emotion, hot_meta = await _turn_emotion_and_engine(client, _angry(words))
    assert calm_emotion["model"] == "voxloop-prosody-lexicon"
    assert hot_emotion["arousal"] > calm_emotion["arousal"] + 0.3
    assert calm_emotion["label"] == "neutral" and hot_emotion["label"] != "neutral"
    assert calm_meta["voxloop_route"] == "fast" and hot_meta["voxloop_route"] == "expressive"
    assert calm_meta["voxloop_engine"] != hot_meta["voxloop_engine"]
    assert hot_meta["voxloop_emotion"] == hot_emotion["label"] and hot_meta["voxloop_emotion_state"] == "ready"


async def test_beta_client_hears_beta_names(server_url: str) -> None:
    ws_url = server_url.replace("http://", "ws://")
    beta = openai.AsyncOpenAI(base_url=f"{server_url}/v1", websocket_base_url=f"{ws_url}/v1", api_key="x",
                              max_retries=0)
    async with beta.beta.realtime.connect(model="gpt-4o-realtime-preview") as conn:
        events = Events(conn, beta=True)
        await events.until("session.created")
        await conn.session.update(session={"turn_detection": None, "instructions": "Answer in one short sentence."})
        await events.until("session.updated")
        await conn.conversation.item.create(item={"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": QUESTION}]})
        await conn.response.create()
        done = await events.until("response.done", timeout=120)
    types = {e["type"] for e in events.seen}
    assert {"response.audio.delta", "response.audio_transcript.delta", "response.audio.done"} <= types
    assert not any(t.startswith("response.output_audio") for t in types)
    assert done["response"]["status"] == "completed"
    assert done["response"]["output"][0]["content"][0]["type"] == "audio"


async def test_llm_down_fails_the_response_not_the_session(tmp_path) -> None:
    from api.settings import Settings
    from tests.support.server import free_port, live_server
    from voxloop.app import create_app

    app = create_app(Settings(cache_dir=tmp_path, chat_base_url=f"http://127.0.0.1:{free_port()}/v1"))
    with live_server(app) as url:
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        async with client.realtime.connect(model="voxloop") as conn:
            events = Events(conn)
            await _session(conn, events, turn_detection=None)
            await conn.conversation.item.create(item={"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": QUESTION}]})
            await conn.response.create()
            done = await events.until("response.done", timeout=60)
            assert done["response"]["status"] == "failed"
            assert "unreachable" in done["response"]["status_details"]["error"]["message"]
            await conn.session.update(session={"type": "realtime", "instructions": "still here"})
            assert (await events.until("session.updated"))["session"]["instructions"] == "still here"


async def test_g711_ulaw_replies_decode_with_the_reference_codec(client: openai.AsyncOpenAI, sdk: openai.OpenAI) -> None:
    import warnings

    with warnings.catch_warnings():  # the reference G.711 codec; deprecated in 3.11, gone in 3.13
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

    async with client.realtime.connect(model="voxloop") as conn:
        events = Events(conn)
        await events.until("session.created")
        await conn.session.update(session={"type": "realtime", "instructions": "Answer in one short sentence.",
                                           "audio": {"input": {"turn_detection": None},
                                                     "output": {"format": {"type": "audio/pcmu"}}}})
        await events.until("session.updated")
        await conn.conversation.item.create(item={"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": QUESTION}]})
        await conn.response.create()
        done = await events.until("response.done", timeout=120)
    ulaw = _audio_of(events, done["response"]["id"])
    pcm8k = np.frombuffer(audioop.ulaw2lin(ulaw, 2), dtype="<i2").astype(np.float32) / 32768
    assert len(pcm8k) / 8000 > 0.5
    pcm24 = (np.clip(soxr.resample(pcm8k, 8000, 24_000), -1, 1) * 32767).astype("<i2").tobytes()
    transcript = events.of("response.output_audio_transcript.done")[0]["transcript"]
    heard = sdk.audio.transcriptions.create(model="whisper-1", file=("reply.wav", pcm16_wav(pcm24))).text
    assert wer(transcript, heard) <= 0.4, (transcript, heard)
