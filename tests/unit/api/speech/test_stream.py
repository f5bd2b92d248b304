"""Errors around a speech stream: before the first byte a proper error response, after it never a clean-looking end."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from api.http.errors import RateLimitError
from api.speech.service import SpeechPlan, StreamStats
from api.speech.stream import audio_response, sse_response
from engines.base import EngineError, EngineOverloadedError
from engines.registry import EngineSpec

PLAN = SpeechPlan(
    spec=EngineSpec("fake-tts", "speech", lambda: None), voice="v", parts=("hi",), engine_speed=1.0, tempo=1.0,
    response_format="mp3", input_chars=2,
)


async def chunks(fail_after: int | None, error: Exception) -> AsyncIterator[bytes]:
    for i in range(3):
        if fail_after is not None and i == fail_after:
            raise error
        yield b"x" * 10


async def drain(response) -> list:
    return [part async for part in response.body_iterator]


async def test_failure_before_the_first_byte_is_an_http_error() -> None:
    # Raised before any response exists: the app's error handler renders it (429 with Retry-After).
    with pytest.raises(EngineOverloadedError):
        await audio_response(PLAN, chunks(0, EngineOverloadedError("busy")))
    with pytest.raises(RateLimitError):
        await sse_response(PLAN, chunks(0, RateLimitError("busy", retry_after=1)), StreamStats())


async def test_audio_failure_after_the_first_byte_breaks_the_transfer() -> None:
    response = await audio_response(PLAN, chunks(2, EngineError("boom")))
    assert response.headers["x-voxloop-engine"] == "fake-tts"
    with pytest.raises(EngineError):
        await drain(response)


async def test_sse_failure_after_the_first_byte_is_an_error_event_without_done() -> None:
    response = await sse_response(PLAN, chunks(1, EngineError("boom")), StreamStats())
    events = [json.loads(e["data"]) for e in await drain(response)]
    assert [e["type"] for e in events] == ["speech.audio.delta", "error"]
    assert events[-1]["error"]["type"] == "server_error" and events[-1]["error"]["message"]


async def test_sse_success_ends_with_usage() -> None:
    stats = StreamStats(audio_seconds=1.0)
    response = await sse_response(PLAN, chunks(None, EngineError("unused")), stats)
    events = [json.loads(e["data"]) for e in await drain(response)]
    assert [e["type"] for e in events] == ["speech.audio.delta"] * 3 + ["speech.audio.done"]
    assert events[-1]["usage"] == {"input_tokens": 1, "output_tokens": 21, "total_tokens": 22}
