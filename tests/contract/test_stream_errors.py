"""A failure after the first byte, over a real socket: a broken transfer (speech audio), or, on each of the three
event streams (transcription, speech SSE, chat completions), the same last `error` event, which the openai SDK
raises as an APIError."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest

from api.settings import Settings
from engines.base import EngineError, Segment, TranscriptionInfo
from tests.support.server import live_server
from tests.support.speech import encode, silence
from voxloop.app import create_app

BODY = {"model": "tts-1", "input": "Hello there.", "voice": "alloy"}
ERROR_EVENT = {"type": "error", "error": {"message": "The engine failed: the engine fell over mid-sentence",
                                          "type": "server_error", "param": None, "code": "engine_error"}}


@pytest.fixture(scope="module")
def failing_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = create_app(Settings(cache_dir=tmp_path_factory.mktemp("cache")))
    services = app.state.services

    async def speech(plan, stats=None) -> AsyncIterator[bytes]:
        yield b"\x00" * 4800
        raise EngineError("the engine fell over mid-sentence")

    async def transcription(spec, options, file) -> AsyncIterator[object]:
        yield TranscriptionInfo(language="en", duration=1.0)
        yield Segment(id=0, start=0.0, end=0.5, text=" Hello there.")
        raise EngineError("the engine fell over mid-sentence")

    async def chat(body) -> AsyncIterator[dict]:
        yield {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
               "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None}]}
        raise EngineError("the engine fell over mid-sentence")

    services.speech.stream = speech
    services.transcription.transcribe = transcription
    services.chat.stream = chat
    with live_server(app) as url:
        yield url


def _events(wire: str) -> list[dict]:
    return [json.loads(line[6:]) for line in wire.splitlines() if line.startswith("data: ")]


async def test_audio_stream_is_cut_off_not_completed(failing_url: str) -> None:
    async with httpx.AsyncClient(base_url=failing_url, timeout=30) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            async with client.stream("POST", "/v1/audio/speech", json={**BODY, "response_format": "pcm"}) as r:
                assert r.status_code == 200
                async for _ in r.aiter_raw():
                    pass


async def test_the_three_event_streams_end_with_the_same_error_event(failing_url: str) -> None:
    wav = encode(silence(1.0), "wav")
    async with httpx.AsyncClient(base_url=failing_url, timeout=30) as client:
        speech = await client.post("/v1/audio/speech", json={**BODY, "stream_format": "sse"})
        transcription = await client.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav)},
                                          data={"model": "whisper-1", "stream": "true"})
        chat = await client.post("/v1/chat/completions", json={"model": "m", "stream": True,
                                                                "messages": [{"role": "user", "content": "Hi"}]})
    for response, first in ((speech, "speech.audio.delta"), (transcription, "transcript.text.delta"), (chat, None)):
        assert response.status_code == 200 and "event:" not in response.text, response.text
        events = _events(response.text)
        assert len(events) == 2 and events[0].get("type") == first, events
        assert events[-1] == ERROR_EVENT  # no done event, no [DONE]


def test_the_openai_sdk_raises_api_error_mid_stream(failing_url: str) -> None:
    sdk = openai.OpenAI(base_url=f"{failing_url}/v1", api_key="sk-local", max_retries=0, timeout=30)
    streams = {
        "chat": lambda: sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}],
                                                    stream=True),
        "transcription": lambda: sdk.audio.transcriptions.create(
            model="gpt-4o-mini-transcribe", file=("a.wav", encode(silence(1.0), "wav")), stream=True),
    }
    for name, create in streams.items():
        received = []
        with pytest.raises(openai.APIError) as info:
            for event in create():
                received.append(event)
        assert len(received) == 1, name
        assert "fell over" in info.value.message and info.value.code == "engine_error", name
