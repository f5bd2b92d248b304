"""Wire models of custom voices (`/v1/audio/voices`) and voice consents (`/v1/audio/voice_consents`).

Shapes follow OpenAI's `CreateVoiceRequest`, `VoiceResource`, `CreateVoiceConsentRequest`, `VoiceConsentResource`,
`VoiceConsentListResource` and `VoiceConsentDeletedResource`. OpenAI defines no read or delete of a voice; ours
mirror the consent ones (`GET`/`DELETE /v1/audio/voices/{voice_id}`, `{"object": "audio.voice", "deleted": true}`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.http.schemas import OpenAIBaseModel

# BCP 47, loosely: a 2-3 letter language, then subtags (en, en-US, zh-Hant-TW).
LANGUAGE_TAG = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$"


class CreateVoiceForm(OpenAIBaseModel):
    """The multipart fields of `POST /v1/audio/voices` besides the `audio_sample` file."""

    name: str = Field(min_length=1, max_length=256, description="The name of the new voice.")
    consent: str = Field(
        min_length=1, max_length=200, description="The consent recording ID (from POST /v1/audio/voice_consents)."
    )
    type: Literal["audio_sample", "prompt"] = Field(
        "audio_sample", description="`audio_sample` (the default). Voices from a text `prompt` are not supported here."
    )


class VoiceResource(BaseModel):
    """A custom voice that can be used for audio output (`voice: {"id": ...}`)."""

    object: Literal["audio.voice"] = "audio.voice"
    id: str = Field(description="The voice identifier, which can be referenced in API endpoints.")
    name: str = Field(description="The name of the voice.")
    created_at: int = Field(description="The Unix timestamp (in seconds) for when the voice was created.")


class VoiceDeletedResource(BaseModel):
    id: str
    object: Literal["audio.voice"] = "audio.voice"
    deleted: bool


class CreateVoiceConsentForm(OpenAIBaseModel):
    """The multipart fields of `POST /v1/audio/voice_consents` besides the `recording` file."""

    name: str = Field(min_length=1, max_length=256, description="The label to use for this consent recording.")
    language: str = Field(
        pattern=LANGUAGE_TAG, max_length=35, description="The BCP 47 language tag of the consent phrase (`en-US`)."
    )


class UpdateVoiceConsentRequest(OpenAIBaseModel):
    name: str = Field(min_length=1, max_length=256, description="The updated label for this consent recording.")


class VoiceConsentResource(BaseModel):
    """A consent recording used to authorize creation of a custom voice."""

    object: Literal["audio.voice_consent"] = "audio.voice_consent"
    id: str = Field(description="The consent recording identifier.")
    name: str = Field(description="The label provided when the consent recording was uploaded.")
    language: str = Field(description="The BCP 47 language tag for the consent phrase.")
    created_at: int = Field(description="The Unix timestamp (in seconds) for when the consent was created.")


class VoiceConsentListResource(BaseModel):
    object: Literal["list"] = "list"
    data: list[VoiceConsentResource]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool


class VoiceConsentDeletedResource(BaseModel):
    id: str
    object: Literal["audio.voice_consent"] = "audio.voice_consent"
    deleted: bool
