"""Turn the transcription service's event stream into an HTTP answer: one body, or server-sent events."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sse_starlette import EventSourceResponse

from api.http.errors import ApiError, EngineFailureError, api_error_from_engine
from api.transcription import formats as fmt
from api.transcription.protocol import TranscriptTextDeltaEvent, TranscriptTextDoneEvent
from api.transcription.service import TranscriptEnd, TranscriptionEvent
from engines.base import EngineError, Segment, Transcript, TranscriptionInfo

logger = logging.getLogger(__name__)


async def collect(events: AsyncIterator[TranscriptionEvent]) -> Transcript:
    language, duration, segments = "en", 0.0, []
    async for event in events:
        if isinstance(event, TranscriptionInfo):
            language = event.language
        elif isinstance(event, Segment):
            segments.append(event)
        elif isinstance(event, TranscriptEnd):
            duration = event.duration
    return Transcript(text=fmt.join_text(segments), language=language, duration=duration, segments=tuple(segments))


def render(transcript: Transcript, response_format: str, task: str, granularities: list[str]) -> Response:
    if response_format == "text":
        return PlainTextResponse(transcript.text + "\n" if transcript.text else "")
    if response_format == "srt":
        return PlainTextResponse(fmt.as_srt(transcript))
    if response_format == "vtt":
        return PlainTextResponse(fmt.as_vtt(transcript), media_type="text/vtt")
    if response_format == "verbose_json":
        body = fmt.as_verbose(
            transcript,
            task=task,
            words="word" in granularities,
            segments="segment" in granularities or not granularities,
        )
        return JSONResponse(body.model_dump(exclude_none=True))
    if response_format == "diarized_json":
        return JSONResponse(fmt.as_diarized(transcript).model_dump(exclude_none=True))
    return JSONResponse(fmt.as_json(transcript).model_dump(exclude_none=True))


async def sse(events: AsyncIterator[TranscriptionEvent], prompt_tokens: int, diarized: bool = False) -> Response:
    """Stream `transcript.text.delta` per segment and a final `transcript.text.done` with usage.

    With `diarized` (response_format=diarized_json), each segment is also sent as a `transcript.text.segment`
    event carrying its speaker, right after its delta, as OpenAI's diarizing model does.

    The first event (the model is loaded and the first window decoded) is awaited before the response starts, so
    bad audio and overload still get a proper 4xx status instead of an error inside a 200 stream.
    """
    first = await anext(events)

    async def body() -> AsyncIterator[dict[str, str]]:
        segments: list[Segment] = []
        language, duration = "en", 0.0
        try:
            async for event in _prepend(first, events):
                if isinstance(event, TranscriptionInfo):
                    language = event.language
                elif isinstance(event, Segment):
                    delta = event.text if segments else event.text.lstrip()
                    segments.append(event)
                    if delta:
                        yield {"data": TranscriptTextDeltaEvent(delta=delta).model_dump_json(exclude_none=True)}
                    if diarized:
                        yield {"data": fmt.diarized_segment(event).model_dump_json(exclude_none=True)}
                elif isinstance(event, TranscriptEnd):
                    duration = event.duration
            transcript = Transcript(fmt.join_text(segments), language, duration, tuple(segments))
            done = TranscriptTextDoneEvent(text=transcript.text, usage=fmt.token_usage(transcript, prompt_tokens))
            yield {"data": done.model_dump_json(exclude_none=True)}
        except (ApiError, EngineError) as exc:
            error = exc if isinstance(exc, ApiError) else api_error_from_engine(exc)
            yield {"event": "error", "data": json.dumps(error.body())}
        except Exception:
            logger.exception("transcription stream failed")
            yield {"event": "error", "data": json.dumps(EngineFailureError("The transcription failed.").body())}
        finally:
            await events.aclose()

    return EventSourceResponse(body(), ping=15, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _prepend(first: TranscriptionEvent, rest: AsyncIterator[TranscriptionEvent]) -> AsyncIterator[TranscriptionEvent]:
    yield first
    async for event in rest:
        yield event
