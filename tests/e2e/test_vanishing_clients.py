"""Clients that go away at any moment (issue 17): mid-SSE (chat, speech, transcription), mid-append, mid-tool-call.
Each leaves no traceback in the log, no model lease held, and the server answers the next request."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import httpx
import pytest
import websockets

from tests.support.realtime import to_pcm16_24k
from tests.support.speech import encode, speak

pytestmark = pytest.mark.models

LONG_TEXT = "The quick brown fox jumps over the lazy dog near the quiet river bank. " * 20


async def _settled(app: Any, caplog: pytest.LogCaptureFixture) -> None:
    manager = app.state.services.manager
    deadline = time.monotonic() + 30
    while any(manager.in_flight(s.model_id) for s in app.state.services.registry.specs()):
        assert time.monotonic() < deadline, "a model lease is still held"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records if r.levelno >= 30)
    assert "Traceback" not in logged and "Exception in ASGI" not in logged, logged[-2000:]


async def _leave_mid_stream(url: str, method: str, path: str, **kwargs: Any) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        async with client.stream(method, path, **kwargs) as response:
            assert response.status_code == 200
            async for _ in response.aiter_bytes():
                break  # the first bytes, then gone


@pytest.mark.parametrize("case", ["chat", "speech", "transcription"])
async def test_leaving_mid_stream(server_url: str, app: Any, caplog: pytest.LogCaptureFixture, case: str) -> None:
    with caplog.at_level("INFO"):
        if case == "chat":
            body = {"model": "smollm2-135m-instruct", "stream": True, "max_tokens": 200,
                    "messages": [{"role": "user", "content": "Tell me a long story."}]}
            await _leave_mid_stream(server_url, "POST", "/v1/chat/completions", json=body)
        elif case == "speech":
            body = {"model": "tts-1", "voice": "alloy", "input": LONG_TEXT, "response_format": "mp3"}
            await _leave_mid_stream(server_url, "POST", "/v1/audio/speech", json=body)
        else:
            audio = encode(speak(LONG_TEXT[:400]), "wav")
            await _leave_mid_stream(server_url, "POST", "/v1/audio/transcriptions",
                                    data={"model": "whisper-1", "stream": "true"}, files={"file": ("a.wav", audio)})
        await _settled(app, caplog)
    async with httpx.AsyncClient(base_url=server_url, timeout=60) as client:
        assert (await client.get("/v1/models")).status_code == 200


def _ws(server_url: str) -> str:
    return server_url.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime"


async def test_leaving_mid_append(server_url: str, app: Any, caplog: pytest.LogCaptureFixture) -> None:
    pcm = to_pcm16_24k(speak("A question that never ends because the client leaves in the middle of it."))
    with caplog.at_level("INFO"):
        async with websockets.connect(_ws(server_url), max_size=None) as conn:
            await conn.recv()
            await conn.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {
                "input": {"transcription": {"model": "whisper-1"}, "turn_detection": {"type": "server_vad"}}}}}))
            for offset in range(0, len(pcm) // 2, 4800):
                await conn.send(json.dumps({"type": "input_audio_buffer.append",
                                            "audio": base64.b64encode(pcm[offset:offset + 4800]).decode()}))
            conn.transport.abort()
        await _settled(app, caplog)


async def test_leaving_mid_tool_call(server_url: str, app: Any, caplog: pytest.LogCaptureFixture) -> None:
    tool = {"type": "function", "name": "get_weather", "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    with caplog.at_level("INFO"):
        async with websockets.connect(_ws(server_url), max_size=None) as conn:
            await conn.recv()
            await conn.send(json.dumps({"type": "session.update", "session": {
                "type": "realtime", "tools": [tool], "tool_choice": "required", "output_modalities": ["text"]}}))
            await conn.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]}}))
            await conn.send(json.dumps({"type": "response.create"}))
            while json.loads(await asyncio.wait_for(conn.recv(), 60))["type"] != "response.output_item.added":
                pass
            conn.transport.abort()  # the call is being made; its output will never come
        await _settled(app, caplog)
