"""Chat completions on the wire with `stream=true`: the chunks as server-sent events, ended by `data: [DONE]`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from sse_starlette import EventSourceResponse

from api.http.sse import SseEvent, sse_response, started


async def sse(chunks: AsyncIterator[dict[str, Any]]) -> EventSourceResponse:
    """Errors before the first chunk keep their HTTP status; later ones end the stream with an `error` event."""
    return sse_response(_wire_events(await started(chunks)), failure="The chat completion failed.")


async def _wire_events(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[SseEvent]:
    async with aclosing(chunks):  # type: ignore[type-var]
        async for chunk in chunks:
            yield chunk
    yield "[DONE]"
