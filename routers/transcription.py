"""POST /v1/audio/transcriptions and /v1/audio/translations: HTTP glue only."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import TypeAdapter

from api.deps import ServicesDep
from api.http.multipart import multipart_openapi, parse_audio_form
from api.http.schemas import ERROR_RESPONSES
from api.transcription.protocol import (
    DiarizedTranscriptionResponse,
    TranscriptionRequest,
    TranslationRequest,
    VerboseTranscriptionResponse,
)
from api.transcription.stream import collect, render, sse

router = APIRouter(tags=["audio"])

_OK = {
    200: {
        "description": "The transcript in the requested format (JSON, text, SRT, VTT) or an SSE stream.",
        "content": {
            "application/json": {
                "schema": TypeAdapter(VerboseTranscriptionResponse | DiarizedTranscriptionResponse).json_schema()
            },
            "text/plain": {"schema": {"type": "string"}},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    }
}


@router.post(
    "/v1/audio/transcriptions",
    summary="Transcribe audio",
    responses={**_OK, **ERROR_RESPONSES},
    openapi_extra=multipart_openapi(TranscriptionRequest),
)
async def create_transcription(request: Request, services: ServicesDep) -> Response:
    form, upload = await parse_audio_form(request, TranscriptionRequest)
    service = services.transcription
    spec = service.resolve(form.model, "transcribe")
    options = service.options(form, spec, "transcribe")
    events = service.transcribe(spec, options, upload.file)
    if form.stream:
        diarized = form.response_format == "diarized_json"
        return await sse(events, prompt_tokens=len((form.prompt or "").split()), diarized=diarized)
    started = time.perf_counter()
    transcript = await collect(events)
    services.metrics.observe_engine("transcriptions", spec.model_id, time.perf_counter() - started, transcript.duration)
    return render(transcript, form.response_format, "transcribe", form.timestamp_granularities)


@router.post(
    "/v1/audio/translations",
    summary="Translate audio into English",
    responses={**_OK, **ERROR_RESPONSES},
    openapi_extra=multipart_openapi(TranslationRequest),
)
async def create_translation(request: Request, services: ServicesDep) -> Response:
    form, upload = await parse_audio_form(request, TranslationRequest)
    service = services.transcription
    spec = service.resolve(form.model, "translate")
    options = service.options(form, spec, "translate")
    transcript = await collect(service.transcribe(spec, options, upload.file))
    return render(transcript, form.response_format, "translate", [])
