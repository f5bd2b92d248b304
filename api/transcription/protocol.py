"""Wire models of /v1/audio/transcriptions and /v1/audio/translations, in OpenAI field order."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from api.http.schemas import OpenAIBaseModel

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt", "diarized_json"]
Granularity = Literal["word", "segment"]


class ServerVadChunking(BaseModel):
    """`chunking_strategy` as an object: how the server's VAD cuts the audio before decoding."""

    type: Literal["server_vad"]
    prefix_padding_ms: int = Field(300, ge=0, le=5000, description="Audio kept before detected speech.")
    silence_duration_ms: int = Field(200, ge=0, le=10000, description="Silence that ends a speech chunk.")
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="VAD activation threshold.")


class TranscriptionRequest(OpenAIBaseModel):
    """The form fields of a transcription request, except `file`."""

    model: str = Field(description="`whisper-1`, `gpt-4o-transcribe`, `gpt-4o-mini-transcribe`, or an engine id.")
    chunking_strategy: Literal["auto"] | ServerVadChunking | None = Field(
        None, description='`"auto"` or a server_vad object (form: `chunking_strategy[type]=server_vad`, or JSON).'
    )
    include: list[Literal["logprobs"]] = Field(default_factory=list, description="Accepted; logprobs are not returned.")
    known_speaker_names: list[str] = Field(default_factory=list, max_length=4)
    known_speaker_references: list[str] = Field(default_factory=list, max_length=4)
    language: str | None = Field(None, description="ISO-639-1 code of the spoken language.")
    prompt: str | None = Field(None, description="Text to guide the style or continue a previous segment.")
    response_format: ResponseFormat = Field("json")
    stream: bool = Field(False, description="Stream the transcript as server-sent events.")
    temperature: float = Field(0.0, ge=0.0, le=1.0, description="0 means automatic temperature fallback.")
    timestamp_granularities: list[Granularity] = Field(
        default_factory=list, description="`word` and/or `segment` (verbose_json); form name `timestamp_granularities[]`."
    )

    @field_validator("chunking_strategy", mode="before")
    @classmethod
    def _parse_json_chunking(cls, value: Any) -> Any:
        # curl users send the object as a JSON string in one form field.
        if isinstance(value, str) and value.strip().startswith("{"):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON: {exc.msg}") from exc
            except RecursionError:
                raise ValueError("JSON nested too deeply") from None
        return value

    @field_validator("language")
    @classmethod
    def _normalise_language(cls, value: str | None) -> str | None:
        return value.strip().lower() or None if value else None


class TranslationRequest(OpenAIBaseModel):
    """The form fields of a translation request (to English), except `file`."""

    model: str = Field(description="`whisper-1` or a multilingual engine id.")
    prompt: str | None = Field(None, description="English text to guide the style.")
    response_format: Literal["json", "text", "srt", "verbose_json", "vtt"] = Field("json")
    temperature: float = Field(0.0, ge=0.0, le=1.0)


class TranscriptionWord(BaseModel):
    word: str
    start: float
    end: float


class TranscriptionSegment(BaseModel):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class DurationUsage(BaseModel):
    type: Literal["duration"] = "duration"
    seconds: float


class TokenUsageDetails(BaseModel):
    audio_tokens: int
    text_tokens: int


class TokenUsage(BaseModel):
    type: Literal["tokens"] = "tokens"
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_token_details: TokenUsageDetails


class TranscriptionResponse(BaseModel):
    """`response_format=json`."""

    text: str
    usage: DurationUsage | None = None


class VerboseTranscriptionResponse(BaseModel):
    """`response_format=verbose_json`."""

    task: Literal["transcribe", "translate"]
    language: str
    duration: float
    text: str
    words: list[TranscriptionWord] | None = None
    segments: list[TranscriptionSegment] | None = None
    usage: DurationUsage | None = None


class DiarizedSegment(BaseModel):
    """One speaker turn of `diarized_json`; the same shape is streamed as a `transcript.text.segment` event."""

    type: Literal["transcript.text.segment"] = "transcript.text.segment"
    id: str
    start: float
    end: float
    text: str
    speaker: str = Field(description="A, B, ... in order of appearance, or the matching `known_speaker_names[]`.")


class DiarizedTranscriptionResponse(BaseModel):
    """`response_format=diarized_json`."""

    task: Literal["transcribe"] = "transcribe"
    duration: float
    text: str
    segments: list[DiarizedSegment]
    usage: DurationUsage | None = None


class TranscriptTextDeltaEvent(BaseModel):
    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str
    logprobs: list[dict[str, Any]] | None = None


class TranscriptTextDoneEvent(BaseModel):
    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str
    logprobs: list[dict[str, Any]] | None = None
    usage: TokenUsage


TranscriptionStreamEvent = Annotated[
    TranscriptTextDeltaEvent | DiarizedSegment | TranscriptTextDoneEvent, Field(discriminator="type")
]
