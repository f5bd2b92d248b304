"""The one server-sent-events writer, used by the three streams: transcription, speech (`stream_format=sse`) and
chat completions.

A stream hands it wire events: pydantic models (serialized once, `exclude_none`), dicts (chat-completion chunks as
the engine or the upstream made them) or a literal string (`[DONE]`). Each becomes one `data:` event; a comment
every 15 s keeps proxies from closing a quiet stream.

Errors before the response starts keep their HTTP status: `started` awaits the first item of the source before
the caller builds the response. A failure after that cannot change the status any more, so it becomes one last
event carrying the OpenAI error body, the same on all three streams, and the stream ends (no `done` event, no
`[DONE]`):

    data: {"type": "error", "error": {"message": ..., "type": ..., "param": ..., "code": ...}}

The openai SDKs raise `APIError` for a streamed event whose data has an `error` key (openai-python
`Stream.__stream__`, openai-node `Stream.fromSSEResponse`); `type` lets clients that dispatch on it (speech and
transcription events all carry one) see it as an error too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any, TypeVar

from pydantic import BaseModel
from sse_starlette import EventSourceResponse

from api.http.errors import ApiError, EngineFailureError, api_error_from_engine
from engines.base import EngineError

logger = logging.getLogger(__name__)

SseEvent = BaseModel | Mapping[str, Any] | str
T = TypeVar("T")

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # proxies must neither cache nor buffer
PING_SECONDS = 15


async def started(source: AsyncIterator[T]) -> AsyncIterator[T]:
    """`source`, its first item already produced: a failure before it (overload, a model that cannot load, bad
    audio) raises here, before any response exists, and gets its proper status. The source is closed when the
    returned iterator is."""
    try:
        first = await anext(source)
    except StopAsyncIteration:
        return _empty()
    except BaseException:
        await source.aclose()
        raise
    return _replay(first, source)


async def _empty() -> AsyncIterator[Any]:
    for item in ():
        yield item


async def _replay(first: T, rest: AsyncIterator[T]) -> AsyncIterator[T]:
    async with aclosing(rest):  # type: ignore[type-var]
        yield first
        async for item in rest:
            yield item


def sse_response(
    events: AsyncIterator[SseEvent], *, failure: str, headers: Mapping[str, str] | None = None
) -> EventSourceResponse:
    """`events` as a `text/event-stream` response. `failure` is the message sent for an unexpected error (one that
    is neither an `ApiError` nor an `EngineError`, which carry their own)."""
    return EventSourceResponse(
        _frames(events, failure), ping=PING_SECONDS, headers={**STREAM_HEADERS, **(headers or {})}
    )


def encode(event: SseEvent) -> str:
    if isinstance(event, BaseModel):
        return event.model_dump_json(exclude_none=True)
    if isinstance(event, str):
        return event
    return json.dumps(event)


def error_event(exc: Exception, failure: str) -> dict[str, Any]:
    """The event that ends a stream that failed after it started."""
    if isinstance(exc, ApiError):
        error = exc
    elif isinstance(exc, EngineError):
        error = api_error_from_engine(exc)
    else:
        error = EngineFailureError(failure)
    return {"type": "error", **error.body()}


async def _frames(events: AsyncIterator[SseEvent], failure: str) -> AsyncIterator[dict[str, str]]:
    async with aclosing(events):  # type: ignore[type-var]
        try:
            async for event in events:
                yield {"data": encode(event)}
        except Exception as exc:
            if isinstance(exc, (ApiError, EngineError)):
                logger.warning("stream failed after it started: %s", exc)
            else:
                logger.exception("stream failed after it started")
            yield {"data": json.dumps(error_event(exc, failure))}
