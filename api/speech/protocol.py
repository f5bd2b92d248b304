"""Wire models of /v1/audio/speech and /v1/audio/voices, in OpenAI field order."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from api.http.schemas import OpenAIBaseModel

OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin", "cedar",
)
SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]


class CustomVoice(BaseModel):
    """A custom voice by id (`{"id": "voice_1234"}`), as created through OpenAI's voices API."""

    id: str = Field(min_length=1, max_length=200)


class SpeechRequest(OpenAIBaseModel):
    """The JSON body of `POST /v1/audio/speech`."""

    model: str = Field(
        min_length=1,
        description="`tts-1`, `tts-1-hd`, `gpt-4o-mini-tts`, an engine id (`piper-joe`, `kokoro-82m`) or the "
        "dual-TTS router `voxloop-duet`.",
    )
    input: str = Field(description="The text to speak, at most 4096 characters.")
    voice: str | CustomVoice = Field(
        description="An OpenAI voice name (alloy, ash, ... cedar), a local voice id (see GET /v1/audio/voices), a "
        "Kokoro blend like `jf_alpha:0.6+jf_nezumi:0.4`, or `{\"id\": ...}`."
    )
    instructions: str | None = Field(
        None, max_length=4096, description="How to speak (tone, emotion); the router reads it to choose a voice."
    )
    response_format: SpeechFormat = Field("mp3", description="mp3, opus (Ogg), aac (ADTS), flac, wav, or pcm.")
    speed: float = Field(1.0, ge=0.25, le=4.0, description="0.25 to 4.0.")
    stream_format: Literal["audio", "sse"] = Field(
        "audio", description="`audio`: chunked bytes; `sse`: speech.audio.delta / speech.audio.done events."
    )
    # --- voxloop extensions ---------------------------------------------------------------------------------
    emotion: str | None = Field(
        None, description="voxloop: the listener's or turn's emotion (e.g. from /v1/emotion), for the router."
    )
    exaggeration: float | None = Field(
        None, ge=0.0, le=2.0, description="voxloop: emotion intensity on models that take it (original Chatterbox); "
        "unset: derived from `emotion`/`instructions`."
    )
    cfg_weight: float | None = Field(
        None, ge=0.0, le=1.0, description="voxloop: guidance weight on models that take it (original Chatterbox); "
        "lower is slower and more deliberate."
    )

    @field_validator("voice", mode="before")
    @classmethod
    def _strip_voice(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value


class SpeechAudioDelta(BaseModel):
    type: Literal["speech.audio.delta"] = "speech.audio.delta"
    audio: str = Field(description="Base64 of the next bytes of audio in the requested format.")


class SpeechUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class SpeechAudioDone(BaseModel):
    type: Literal["speech.audio.done"] = "speech.audio.done"
    usage: SpeechUsage


class VoiceInfo(BaseModel):
    id: str
    name: str
    model: str = Field(description="The model (engine) that speaks it.")
    language: str
    gender: str | None = None
    description: str = ""
    tags: list[str] = Field(default_factory=list, description="Paralinguistic tags the voice renders as sound.")
    cloning: bool = False
    openai_aliases: list[str] = Field(default_factory=list, description="OpenAI voice names mapped onto it.")


class CustomVoiceInfo(BaseModel):
    """A custom voice (POST /v1/audio/voices), spoken by any cloning model as `voice: {"id": ...}`."""

    object: Literal["audio.voice"] = "audio.voice"
    id: str
    name: str
    created_at: int


class VoiceList(BaseModel):
    object: Literal["list"] = "list"
    data: list[VoiceInfo]
    custom_voices: list[CustomVoiceInfo] = Field(
        default_factory=list, description="Custom voices, usable as `{\"id\": ...}` on the `cloning_models`."
    )
    cloning_models: list[str] = Field(default_factory=list, description="Models that can speak custom voices.")
    tag_vocabulary: list[str] = Field(
        default_factory=list,
        description="Paralinguistic tags understood in `input` (`[laugh]`, ...). A voice renders those in its "
        "`tags`; the rest become a short pause, never words.",
    )
