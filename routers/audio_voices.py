"""GET /v1/audio/voices: every voice of every speech model, with language and capabilities."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ServicesDep
from api.errors import ModelNotFoundError
from api.paralinguistics import TAG_PROSODY
from api.schemas.common import ERROR_RESPONSES
from api.schemas.speech import CustomVoiceInfo, VoiceInfo, VoiceList
from api.services.speech import openai_aliases

router = APIRouter(tags=["audio"])


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
