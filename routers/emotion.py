"""POST /v1/emotion: HTTP glue only (form parsing, the service call, the wire shape)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.emotion.protocol import EmotionRequest, EmotionResponse, EmotionSegmentResponse, VerboseEmotionResponse
from api.emotion.service import EmotionResult
from api.http.multipart import multipart_openapi, parse_audio_form
from api.http.schemas import ERROR_RESPONSES

router = APIRouter(tags=["audio"])

_OK = {
    200: {
        "description": "How the speaker sounds: `json` (EmotionResponse) or `verbose_json` (VerboseEmotionResponse).",
        "content": {
            "application/json": {
                # verbose_json's schema; json is the same object without its trailing optional fields.
                "schema": VerboseEmotionResponse.model_json_schema(),
                "examples": {
                    "json": {"value": EmotionResponse.model_json_schema()["examples"][0]},
                    "verbose_json": {"value": VerboseEmotionResponse.model_json_schema()["examples"][0]},
                },
            }
        },
    }
}


def _response(result: EmotionResult, verbose: bool) -> EmotionResponse:
    e = result.emotion
    base = dict(
        label=e.label,
        scores=e.score_map,
        valence=e.valence,
        arousal=e.arousal,
        model=result.model,
        duration=result.duration,
        no_speech=not e.speech,
    )
    if not verbose:
        return EmotionResponse(**base)
    segments = [
        EmotionSegmentResponse(
            id=i,
            start=s.start,
            end=s.end,
            label=s.emotion.label,
            scores=s.emotion.score_map,
            valence=s.emotion.valence,
            arousal=s.emotion.arousal,
            text=s.text,
        )
        for i, s in enumerate(result.segments)
    ]
    return VerboseEmotionResponse(
        **base,
        segments=segments,
        text=result.transcript,
        transcription_model=result.transcription_model,
        features=dict(e.features),
    )


@router.post(
    "/v1/emotion",
    summary="Recognize the speaker's emotion",
    description="Upload a clip; get the emotion2vec+ label set with scores, valence and arousal. The embedded "
    "default `voxloop-prosody-lexicon` is a named baseline (prosody + sentiment lexicon), not a trained model.",
    responses={**_OK, **ERROR_RESPONSES},
    openapi_extra=multipart_openapi(EmotionRequest),
)
async def create_emotion(request: Request, services: ServicesDep) -> JSONResponse:
    form, upload = await parse_audio_form(request, EmotionRequest)
    service = services.emotion
    segments = service.validate_granularity(form.response_format, form.granularity)
    spec = service.resolve(form.model)
    result = await service.recognize_file(spec, upload.file, segments=segments)
    body = _response(result, form.response_format == "verbose_json")
    return JSONResponse(body.model_dump(mode="json"))
