"""POST /v1/audio/speech (parse JSON, plan, stream) and GET /v1/audio/voices (every voice of every speech model). HTTP
glue only.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from api.deps import ServicesDep
from api.http.errors import InvalidRequestError, ModelNotFoundError, UnsupportedMediaError, validation_error
from api.http.schemas import ERROR_RESPONSES
from api.metrics import timed_first
from api.speech.paralinguistics import TAG_PROSODY
from api.speech.protocol import CustomVoiceInfo, SpeechRequest, VoiceInfo, VoiceList
from api.speech.service import StreamStats, openai_aliases
from api.speech.stream import audio_response, sse_response

router = APIRouter(tags=["audio"])


_OK = {
    200: {
        "description": "Audio in the requested format, streamed as it is synthesized, or SSE events "
        "(`speech.audio.delta` ... `speech.audio.done`).",
        "content": {
            "audio/mpeg": {"schema": {"type": "string", "format": "binary"}},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    }
}


def _inlined_schema() -> dict[str, Any]:
    """The request's JSON schema with its `$defs` inlined: a `#/$defs/...` ref would point at the OpenAPI root."""
    schema = SpeechRequest.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)


async def _parse(request: Request) -> SpeechRequest:
    # Parsed by hand so that a wrong content type or broken JSON is an OpenAI 4xx, not FastAPI's 422.
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaError(
            f"Content-Type must be application/json, got '{content_type or 'none'}'.", param="content-type"
        )
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"The request body is not valid JSON: {exc}.", code="invalid_json") from exc
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.", code="invalid_json")
    try:
        return SpeechRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_error(list(exc.errors())) from exc


@router.post(
    "/v1/audio/speech",
    summary="Generate speech",
    responses={**_OK, **ERROR_RESPONSES, 415: ERROR_RESPONSES[413] | {"description": "Body is not JSON."}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inlined_schema()}},
        }
    },
)
async def create_speech(request: Request, services: ServicesDep) -> Response:
    req = await _parse(request)
    service = services.speech
    plan = service.plan(req)

    def observe(seconds: float) -> None:
        services.metrics.observe_first_audio(plan.spec.model_id, seconds)

    if req.stream_format == "sse":
        stats = StreamStats()
        return await sse_response(plan, timed_first(service.stream(plan, stats), observe), stats)
    return await audio_response(plan, timed_first(service.stream(plan), observe))


@router.get("/v1/audio/voices", response_model=VoiceList, responses=ERROR_RESPONSES)
async def list_voices(services: ServicesDep, model: str | None = None) -> VoiceList:
    """All voices, or those of one `model` (an id or alias), and the custom voices the cloning models can speak.
    Known without loading any model."""
    speech = services.speech
    await speech.refresh_remote_voices()
    model_id = speech.resolve_model(model).model_id if model else None
    data = [
        VoiceInfo(
            id=voice.id,
            name=voice.name,
            model=spec.model_id,
            language=voice.language,
            gender=voice.gender,
            description=voice.description,
            tags=sorted(voice.tags | spec.capabilities.tags),
            cloning=voice.cloning or spec.capabilities.cloning,
            openai_aliases=openai_aliases(voice, spec.capabilities),
        )
        for spec, voice in speech.voices()
        if model_id in (None, spec.model_id)
    ]
    if model_id and not data:
        raise ModelNotFoundError(f"The model '{model}' has no voices of its own (the router uses its roles').",
                                 param="model")
    cloning = services.voices.cloning_models()
    custom = [
        CustomVoiceInfo(id=r.id, name=str(r.meta.get("name", "")), created_at=r.created_at)
        for r in services.voices.list_voices()
    ] if model_id in (None, *cloning) else []
    return VoiceList(data=data, custom_voices=custom, cloning_models=cloning, tag_vocabulary=sorted(TAG_PROSODY))
