"""Turn the transcription service's event stream into an HTTP answer: one body, or server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from fastapi.responses import JSONResponse, PlainTextResponse, Response

from api.http.sse import sse_response, started
from api.transcription import formats as fmt
from api.transcription.protocol import TranscriptionStreamEvent, TranscriptTextDeltaEvent, TranscriptTextDoneEvent
from api.transcription.service import TranscriptEnd, TranscriptionEvent
from engines.base import Segment, Transcript, TranscriptionInfo


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
    first_decoded = await started(events)
    return sse_response(_wire_events(first_decoded, prompt_tokens, diarized), failure="The transcription failed.")


async def _wire_events(
    events: AsyncIterator[TranscriptionEvent], prompt_tokens: int, diarized: bool
) -> AsyncIterator[TranscriptionStreamEvent]:
    segments: list[Segment] = []
    language, duration = "en", 0.0
    async with aclosing(events):  # type: ignore[type-var]
        async for event in events:
            if isinstance(event, TranscriptionInfo):
                language = event.language
            elif isinstance(event, Segment):
                delta = event.text if segments else event.text.lstrip()
                segments.append(event)
                if delta:
                    yield TranscriptTextDeltaEvent(delta=delta)
                if diarized:
                    yield fmt.diarized_segment(event)
            elif isinstance(event, TranscriptEnd):
                duration = event.duration
    transcript = Transcript(fmt.join_text(segments), language, duration, tuple(segments))
    yield TranscriptTextDoneEvent(text=transcript.text, usage=fmt.token_usage(transcript, prompt_tokens))
