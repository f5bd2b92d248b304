"""The one SSE writer: events framed as `data:` lines, errors before the first event raised, errors after it one
`error` event with the OpenAI error body, the same on every stream and read as an APIError by the openai SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from openai._streaming import Stream

from api.http.errors import RateLimitError
from api.http.sse import encode, sse_response, started
from api.transcription.protocol import TranscriptTextDeltaEvent
from engines.base import EngineError, EngineTimeoutError


async def source(items: list, error: Exception | None = None) -> AsyncIterator:
    for item in items:
        yield item
    if error is not None:
        raise error


async def frames(events: AsyncIterator, failure: str = "It failed.") -> list[str]:
    response = sse_response(events, failure=failure)
    return [chunk["data"] async for chunk in response.body_iterator]


def test_encoding_keeps_each_kind_as_it_was() -> None:
    assert encode(TranscriptTextDeltaEvent(delta="hi")) == '{"type":"transcript.text.delta","delta":"hi"}'
    assert encode({"id": "c", "choices": []}) == '{"id": "c", "choices": []}'  # chat chunks: json.dumps as before
    assert encode("[DONE]") == "[DONE]"


async def test_events_in_order_and_headers() -> None:
    response = sse_response(source([{"a": 1}, "[DONE]"]), failure="x", headers={"x-voxloop-engine": "e"})
    assert response.headers["cache-control"] == "no-cache" and response.headers["x-accel-buffering"] == "no"
    assert response.headers["x-voxloop-engine"] == "e" and response.media_type == "text/event-stream"
    assert [chunk["data"] async for chunk in response.body_iterator] == ['{"a": 1}', "[DONE]"]


@pytest.mark.parametrize(
    ("error", "status_type", "code", "message"),
    [
        (RateLimitError("Too busy.", retry_after=3), "rate_limit_error", "rate_limit_exceeded", "Too busy."),
        (EngineTimeoutError("slow"), "upstream_error", "upstream_timeout", "slow"),
        (EngineError("boom"), "server_error", "engine_error", "The engine failed: boom"),
        (RuntimeError("secret internals"), "server_error", "engine_error", "It failed."),
    ],
)
async def test_a_failure_after_the_start_is_one_error_event(error, status_type, code, message) -> None:
    got = await frames(source([{"a": 1}], error))
    assert got[0] == '{"a": 1}' and len(got) == 2
    event = json.loads(got[1])
    assert event == {"type": "error", "error": {"message": message, "type": status_type, "param": None, "code": code}}


async def test_failure_before_the_first_item_raises_and_closes_the_source() -> None:
    closed = []

    async def failing() -> AsyncIterator[int]:
        try:
            raise RateLimitError("busy", retry_after=1)
            yield 1
        finally:
            closed.append(True)

    with pytest.raises(RateLimitError):
        await started(failing())
    assert closed == [True]


async def test_started_replays_the_first_item_and_handles_empty_sources() -> None:
    assert [i async for i in await started(source([1, 2, 3]))] == [1, 2, 3]
    assert [i async for i in await started(source([]))] == []


async def test_closing_the_stream_closes_the_source() -> None:
    closed = []

    async def endless() -> AsyncIterator[dict]:
        try:
            while True:
                yield {"a": 1}
        finally:
            closed.append(True)

    frames_ = sse_response(await started(endless()), failure="x").body_iterator
    assert (await anext(frames_))["data"] == '{"a": 1}'
    await frames_.aclose()
    assert closed == [True]


async def test_the_openai_sdk_raises_api_error_on_the_error_event() -> None:
    response = sse_response(source([{"id": "1", "object": "chat.completion.chunk", "choices": []}],
                                   EngineError("boom")), failure="x")
    wire = await body_with_separators(response)
    http_response = httpx.Response(200, content=wire.encode(), headers={"content-type": "text/event-stream"},
                                   request=httpx.Request("POST", "http://test/v1/chat/completions"))
    client = openai.OpenAI(api_key="k", base_url="http://test/v1")
    stream = Stream(cast_to=object, response=http_response, client=client)
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 1 and "boom" in info.value.message and info.value.code == "engine_error"


async def body_with_separators(response) -> str:
    """The bytes the writer would send (sse-starlette frames each dict with its separator)."""
    from sse_starlette.event import ensure_bytes

    return b"".join([ensure_bytes(chunk, response.sep) async for chunk in response.body_iterator]).decode()
