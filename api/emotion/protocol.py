"""Wire models of POST /v1/emotion (multipart, in the style of the OpenAI audio endpoints)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.http.schemas import OpenAIBaseModel

EmotionLabel = Literal["angry", "disgusted", "fearful", "happy", "neutral", "other", "sad", "surprised", "unknown"]

_SCORES_EXAMPLE = {
    "angry": 0.71, "disgusted": 0.12, "fearful": 0.09, "happy": 0.0, "neutral": 0.02,
    "other": 0.0, "sad": 0.01, "surprised": 0.05, "unknown": 0.0,
}


class EmotionRequest(OpenAIBaseModel):
    """The form fields of an emotion request, except `file`."""

    model: str | None = Field(
        None,
        description="`voxloop-prosody-lexicon` (embedded baseline), `emotion2vec_plus_seed|base|large` "
        "(needs the `funasr` extra and weights), or `default`. Optional (this endpoint is voxloop's own): left out, "
        "it means `default`, the server's `VOXLOOP_EMOTION__DEFAULT_MODEL`.",
    )
    response_format: Literal["json", "verbose_json"] = Field(
        "json", description="`json`: the utterance result. `verbose_json`: adds segments, transcript and features."
    )
    granularity: Literal["utterance", "segment"] | None = Field(
        None,
        description="`segment` adds one result per VAD speech segment (verbose_json only; its default). "
        "`utterance`: the whole clip only.",
    )


class EmotionResponse(BaseModel):
    """How the speaker sounds over the whole clip."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "label": "angry", "scores": _SCORES_EXAMPLE, "valence": -0.82, "arousal": 0.74,
                    "model": "voxloop-prosody-lexicon", "duration": 2.42, "no_speech": False,
                }
            ]
        }
    )

    label: EmotionLabel = Field(description="The most likely emotion (`unknown` when there is no speech).")
    scores: dict[EmotionLabel, float] = Field(description="Probability of each of the nine labels; they sum to 1.")
    valence: float = Field(ge=-1, le=1, description="Unpleasant (-1) to pleasant (+1).")
    arousal: float = Field(ge=-1, le=1, description="Calm (-1) to excited (+1).")
    model: str = Field(description="The engine that answered; the baseline always says `voxloop-prosody-lexicon`.")
    duration: float = Field(description="Length of the input audio in seconds.")
    # voxloop extension:
    no_speech: bool = Field(False, description="True when no speech was found: label `unknown`, valence/arousal 0.")


class EmotionSegmentResponse(BaseModel):
    id: int
    start: float = Field(description="Seconds from the start of the clip.")
    end: float
    label: EmotionLabel
    scores: dict[EmotionLabel, float]
    valence: float = Field(ge=-1, le=1)
    arousal: float = Field(ge=-1, le=1)
    text: str | None = Field(None, description="The words of this segment, when a transcriber was used.")


class VerboseEmotionResponse(EmotionResponse):
    """The json result plus per-segment results, the transcript and what the engine measured."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "label": "angry", "scores": _SCORES_EXAMPLE, "valence": -0.82, "arousal": 0.74,
                    "model": "voxloop-prosody-lexicon", "duration": 2.42, "no_speech": False,
                    "segments": [
                        {"id": 0, "start": 0.1, "end": 2.3, "label": "angry", "scores": _SCORES_EXAMPLE,
                         "valence": -0.82, "arousal": 0.74, "text": "I am furious!"}
                    ],
                    "text": "I am furious!", "transcription_model": "whisper-tiny.en",
                    "features": {"loudness_db": -12.5, "pitch_hz": 127.3, "syllables_per_second": 6.1},
                }
            ]
        }
    )

    segments: list[EmotionSegmentResponse] = Field(
        default_factory=list, description="One result per VAD speech segment (granularity `segment`)."
    )
    text: str | None = Field(None, description="The transcript, when a transcriber was used.")
    transcription_model: str | None = Field(None, description="The transcriber used, if any.")
    features: dict[str, float] = Field(
        default_factory=dict, description="What the engine measured (the baseline: loudness, pitch, rate)."
    )
