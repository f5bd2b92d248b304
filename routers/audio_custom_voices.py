"""Custom voices: POST /v1/audio/voices (OpenAI's shape), GET and DELETE /v1/audio/voices/{voice_id}. HTTP glue only.

The list of voices is GET /v1/audio/voices (routers/audio_voices.py), which carries the custom ones beside the
engines' own.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import ServicesDep
from api.errors import InvalidRequestError
from api.multipart import multipart_openapi, parse_audio_form
from api.schemas.common import ERROR_RESPONSES
from api.schemas.voices import CreateVoiceForm, VoiceDeletedResource, VoiceResource
from api.voice_store import StoredRecord

router = APIRouter(tags=["audio"])


def voice_resource(record: StoredRecord) -> VoiceResource:
    return VoiceResource(id=record.id, name=str(record.meta.get("name", "")), created_at=record.created_at)


@router.post(
    "/v1/audio/voices",
    summary="Create a custom voice",
    response_model=VoiceResource,
    responses=ERROR_RESPONSES,
    openapi_extra=multipart_openapi(CreateVoiceForm, file_field="audio_sample"),
)
async def create_voice(request: Request, services: ServicesDep) -> VoiceResource:
    """A voice cloned from `audio_sample` (6-30 s of clear speech), made under an uploaded consent (`consent`)."""
    form, upload = await parse_audio_form(request, CreateVoiceForm, file_field="audio_sample")
    if form.type != "audio_sample":
        raise InvalidRequestError(
            "Voices from a text prompt are not supported here; send type=audio_sample with an audio_sample.",
            param="type",
            code="unsupported_value",
        )
    data = await upload.read(services.settings.voices.max_bytes + 1)
    record = await run_in_threadpool(services.voices.create_voice, form.name, form.consent, data)
    return voice_resource(record)


@router.get("/v1/audio/voices/{voice_id}", response_model=VoiceResource, responses=ERROR_RESPONSES)
async def retrieve_voice(voice_id: str, services: ServicesDep) -> VoiceResource:
    return voice_resource(services.voices.voice(voice_id))


@router.delete("/v1/audio/voices/{voice_id}", response_model=VoiceDeletedResource, responses=ERROR_RESPONSES)
async def delete_voice(voice_id: str, services: ServicesDep) -> VoiceDeletedResource:
    """Deletes the voice and its stored sample."""
    await run_in_threadpool(services.voices.delete_voice, voice_id)
    return VoiceDeletedResource(id=voice_id, deleted=True)
