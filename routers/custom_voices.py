"""Custom voices and the consents they are made under, as OpenAI has them: POST /v1/audio/voices, GET and DELETE
/v1/audio/voices/{voice_id}; create, list, retrieve, update (name only) and delete /v1/audio/voice_consents. HTTP glue
only. The list of voices is GET /v1/audio/voices (routers/speech.py), which carries the custom ones beside the
engines' own.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.custom_voices.protocol import (
    CreateVoiceConsentForm,
    CreateVoiceForm,
    UpdateVoiceConsentRequest,
    VoiceConsentDeletedResource,
    VoiceConsentListResource,
    VoiceConsentResource,
    VoiceDeletedResource,
    VoiceResource,
)
from api.custom_voices.store import StoredRecord
from api.deps import ServicesDep
from api.http.errors import InvalidRequestError, UnsupportedMediaError, validation_error
from api.http.multipart import multipart_openapi, parse_audio_form
from api.http.schemas import ERROR_RESPONSES

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


def consent_resource(record: StoredRecord) -> VoiceConsentResource:
    meta = record.meta
    return VoiceConsentResource(
        id=record.id, name=str(meta.get("name", "")), language=str(meta.get("language", "")),
        created_at=record.created_at,
    )


@router.post(
    "/v1/audio/voice_consents",
    summary="Upload a voice consent recording",
    response_model=VoiceConsentResource,
    responses=ERROR_RESPONSES,
    openapi_extra=multipart_openapi(CreateVoiceConsentForm, file_field="recording"),
)
async def create_voice_consent(request: Request, services: ServicesDep) -> VoiceConsentResource:
    """The speaker's recorded consent; its id is what POST /v1/audio/voices takes as `consent`."""
    form, upload = await parse_audio_form(request, CreateVoiceConsentForm, file_field="recording")
    data = await upload.read(services.settings.voices.max_bytes + 1)
    record = await run_in_threadpool(services.voices.create_consent, form.name, form.language, data)
    return consent_resource(record)


@router.get("/v1/audio/voice_consents", response_model=VoiceConsentListResource, responses=ERROR_RESPONSES)
async def list_voice_consents(
    services: ServicesDep,
    after: str | None = Query(None, description="Cursor: the id of the last consent of the previous page."),
    limit: int = Query(20, ge=1, le=100, description="Consents per page, 1 to 100."),
) -> VoiceConsentListResource:
    records, has_more = await run_in_threadpool(services.voices.list_consents, after, limit)
    data = [consent_resource(r) for r in records]
    return VoiceConsentListResource(
        data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None, has_more=has_more
    )


@router.get("/v1/audio/voice_consents/{consent_id}", response_model=VoiceConsentResource, responses=ERROR_RESPONSES)
async def retrieve_voice_consent(consent_id: str, services: ServicesDep) -> VoiceConsentResource:
    return consent_resource(services.voices.consent(consent_id))


@router.post(
    "/v1/audio/voice_consents/{consent_id}",
    summary="Update a voice consent (its name only)",
    response_model=VoiceConsentResource,
    responses=ERROR_RESPONSES,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": UpdateVoiceConsentRequest.model_json_schema()}
    }}},
)
async def update_voice_consent(consent_id: str, request: Request, services: ServicesDep) -> VoiceConsentResource:
    # Parsed by hand, as /v1/audio/speech is, so that a wrong content type or broken JSON is an OpenAI 4xx.
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaError(f"Content-Type must be application/json, got '{content_type or 'none'}'.")
    try:
        body = UpdateVoiceConsentRequest.model_validate(json.loads(await request.body()))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"The request body is not valid JSON: {exc}.", code="invalid_json") from exc
    except ValidationError as exc:
        raise validation_error(list(exc.errors())) from exc
    record = await run_in_threadpool(services.voices.rename_consent, consent_id, body.name)
    return consent_resource(record)


@router.delete(
    "/v1/audio/voice_consents/{consent_id}", response_model=VoiceConsentDeletedResource, responses=ERROR_RESPONSES
)
async def delete_voice_consent(consent_id: str, services: ServicesDep) -> VoiceConsentDeletedResource:
    """Withdraws the consent: the recording and every custom voice made under it are deleted."""
    await run_in_threadpool(services.voices.delete_consent, consent_id)
    return VoiceConsentDeletedResource(id=consent_id, deleted=True)
