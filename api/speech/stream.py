"""Speech responses on the wire: chunked audio bytes or SSE events, with errors handled at the right moment.

The first chunk is produced before the response starts, so anything that fails early (overload, a model that
cannot load, an engine refusing an option) is still a 4xx/5xx with the OpenAI error body. After that:
- `audio`: the error aborts the connection without the final empty chunk, so the client sees a broken transfer,
  never a short file that looks complete;
- `sse`: an `error` event is sent, and there is no `speech.audio.done`.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse

from api.http.audio_encode import CONTENT_TYPES
from api.http.errors import ApiError, EngineFailureError, api_error_from_engine
from api.speech.service import SpeechPlan, StreamStats, usage
from engines.base import EngineError

logger = logging.getLogger(__name__)
_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # proxies must not buffer the stream


async def _first(chunks: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return None
    except EngineError as exc:
        await chunks.aclose()
        raise api_error_from_engine(exc) from exc


def _as_api_error(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, EngineError):
        return api_error_from_engine(exc)
    return EngineFailureError("The speech engine failed while streaming.")


async def audio_response(plan: SpeechPlan, chunks: AsyncIterator[bytes]) -> StreamingResponse:
    first = await _first(chunks)

    async def body() -> AsyncIterator[bytes]:
        try:
            if first:
                yield first
            async for data in chunks:
                yield data
        except Exception:
            logger.exception("speech stream failed after the first byte; aborting the transfer")
            raise
        finally:
            await chunks.aclose()

    return StreamingResponse(
        body(),
        media_type=CONTENT_TYPES[plan.response_format],
        headers={**_STREAM_HEADERS, **plan.headers()},
    )


def _event(payload: dict[str, object]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


async def sse_response(plan: SpeechPlan, chunks: AsyncIterator[bytes], stats: StreamStats) -> StreamingResponse:
    first = await _first(chunks)

    async def body() -> AsyncIterator[str]:
        try:
            if first:
                yield _event({"type": "speech.audio.delta", "audio": base64.b64encode(first).decode()})
            async for data in chunks:
                yield _event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})
        except Exception as exc:
            logger.exception("speech SSE stream failed")
            err = _as_api_error(exc)
            yield _event({"type": "error", "error": err.body()["error"]})
            return
        finally:
            await chunks.aclose()
        yield _event({"type": "speech.audio.done", "usage": usage(plan.input_chars, stats.audio_seconds)})

    return StreamingResponse(
        body(), media_type="text/event-stream", headers={**_STREAM_HEADERS, **plan.headers()}
    )
