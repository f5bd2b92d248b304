"""Speech responses on the wire: chunked audio bytes or SSE events, with errors handled at the right moment.

The first chunk is produced before the response starts, so anything that fails early (overload, a model that
cannot load, an engine refusing an option) is still a 4xx/5xx with the OpenAI error body. After that:
- `audio`: the error aborts the connection without the final empty chunk, so the client sees a broken transfer,
  never a short file that looks complete;
- `sse`: an `error` event is sent (`api.http.sse`, as on every stream), and there is no `speech.audio.done`.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing

from fastapi.responses import StreamingResponse
from sse_starlette import EventSourceResponse

from api.http import sse as http_sse
from api.http.audio_encode import CONTENT_TYPES
from api.http.sse import STREAM_HEADERS, started
from api.speech.protocol import SpeechAudioDelta, SpeechAudioDone
from api.speech.service import SpeechPlan, StreamStats, usage

logger = logging.getLogger(__name__)


async def audio_response(plan: SpeechPlan, chunks: AsyncIterator[bytes]) -> StreamingResponse:
    audio = await started(chunks)

    async def body() -> AsyncIterator[bytes]:
        async with aclosing(audio):  # type: ignore[type-var]
            try:
                async for data in audio:
                    yield data
            except Exception:
                logger.exception("speech stream failed after the first byte; aborting the transfer")
                raise

    return StreamingResponse(
        body(),
        media_type=CONTENT_TYPES[plan.response_format],
        headers={**STREAM_HEADERS, **plan.headers()},
    )


async def sse_response(plan: SpeechPlan, chunks: AsyncIterator[bytes], stats: StreamStats) -> EventSourceResponse:
    audio = await started(chunks)
    return http_sse.sse_response(
        _wire_events(plan, audio, stats), failure="The speech engine failed while streaming.", headers=plan.headers()
    )


async def _wire_events(
    plan: SpeechPlan, audio: AsyncIterator[bytes], stats: StreamStats
) -> AsyncIterator[SpeechAudioDelta | SpeechAudioDone]:
    async with aclosing(audio):  # type: ignore[type-var]
        async for data in audio:
            yield SpeechAudioDelta(audio=base64.b64encode(data).decode())
    yield SpeechAudioDone(usage=usage(plan.input_chars, stats.audio_seconds))
