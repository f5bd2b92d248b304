"""The transcription service: model resolution, option checks, and the event stream over decode windows (with a
scripted recogniser in place of Whisper, and the real registry, model manager and audio decoding)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

from api.http.errors import InvalidRequestError, ModelNotFoundError
from api.settings import Settings
from api.transcription.protocol import TranscriptionRequest, TranslationRequest
from api.transcription.service import OPENAI_ASR_ALIASES, TranscriptEnd, TranscriptionService
from engines.base import InvalidAudioError, Segment, TranscriberCapabilities, TranscriptionInfo
from engines.manager import ModelManager
from engines.registry import EngineRegistry, EngineSpec
from tests.support.fakes import ScriptedTranscriber
from tests.support.speech import encode, silence

ENGLISH = TranscriberCapabilities(languages=frozenset({"en"}), translate=False, word_timestamps=True)
MULTI = TranscriberCapabilities(languages=None, translate=True, word_timestamps=True)
DIARIZING = TranscriberCapabilities(languages=None, translate=False, word_timestamps=True, diarization=True)
SCRIPT = [(5.0, 6.0, " one"), (45.0, 46.0, " two"), (75.0, 76.0, " three")]


def _service(tmp_path: Path, **settings) -> tuple[TranscriptionService, dict[str, ScriptedTranscriber]]:
    engines = {"asr-en": ScriptedTranscriber(SCRIPT, ENGLISH), "asr-multi": ScriptedTranscriber(SCRIPT, MULTI, "de"),
               "asr-diarize": ScriptedTranscriber(SCRIPT, DIARIZING)}
    registry = EngineRegistry([
        EngineSpec(name, "transcription", lambda e=engine: e, capabilities=engine.capabilities)
        for name, engine in engines.items()
    ])
    config = Settings(cache_dir=tmp_path, whisper={"default_model": "asr-en", "translation_model": "asr-multi"},
                      **settings)
    return TranscriptionService(registry, ModelManager(registry), config), engines


@pytest.fixture
def service(tmp_path: Path) -> TranscriptionService:
    return _service(tmp_path)[0]


def form(**kw) -> TranscriptionRequest:
    return TranscriptionRequest.model_validate({"model": "asr-multi", **kw})


@pytest.mark.parametrize("alias", OPENAI_ASR_ALIASES)
def test_openai_names_resolve_to_the_configured_models(service: TranscriptionService, alias: str) -> None:
    assert service.resolve(alias, "transcribe").model_id == "asr-en"
    assert service.resolve(alias, "translate").model_id == "asr-multi"


def test_engine_ids_resolve_to_themselves_and_unknown_models_are_404(service: TranscriptionService) -> None:
    assert service.resolve("asr-diarize", "translate").model_id == "asr-diarize"
    with pytest.raises(ModelNotFoundError) as err:
        service.resolve("whisper-huge-v9", "transcribe")
    assert (err.value.status, err.value.param, err.value.code) == (404, "model", "model_not_found")


@pytest.mark.parametrize(
    ("model", "fields", "param", "words"),
    [
        ("asr-multi", {"language": "xx"}, "language", "ISO-639-1"),
        ("asr-en", {"language": "fr"}, "language", "only transcribes en"),
        ("asr-multi", {"response_format": "diarized_json"}, "response_format", "does not diarize"),
        ("asr-diarize", {"response_format": "diarized_json", "known_speaker_names": ["ann"]},
         "known_speaker_references", "same length"),
        ("asr-diarize", {"known_speaker_names": ["ann"], "known_speaker_references": ["data:audio/wav;base64,AA=="]},
         "response_format", "diarized_json"),
        ("asr-diarize", {"response_format": "diarized_json", "known_speaker_names": ["ann"],
                         "known_speaker_references": ["http://example.com/ann.wav"]},
         "known_speaker_references", "data URLs"),
        ("asr-diarize", {"response_format": "diarized_json", "known_speaker_names": ["ann"],
                         "known_speaker_references": ["data:audio/wav;base64," + base64.b64encode(b"junk").decode()]},
         "known_speaker_references", "not decodable"),
    ],
)
def test_requests_a_model_cannot_serve_are_a_400_naming_the_field(
    service: TranscriptionService, model: str, fields: dict, param: str, words: str
) -> None:
    spec = service.resolve(model, "transcribe")
    with pytest.raises(InvalidRequestError) as err:
        service.options(form(model=model, **fields), spec, "transcribe")
    assert err.value.status == 400 and err.value.param == param and words in err.value.message


def test_translation_needs_a_translating_model(service: TranscriptionService) -> None:
    request = TranslationRequest.model_validate({"model": "asr-en"})
    with pytest.raises(InvalidRequestError) as err:
        service.options(request, service.resolve("asr-en", "translate"), "translate")
    assert err.value.param == "model"
    assert service.options(request, service.resolve("whisper-1", "translate"), "translate").task == "translate"


def test_options_carry_the_request(service: TranscriptionService) -> None:
    spec = service.resolve("asr-multi", "transcribe")
    plain = service.options(form(language="FR ", prompt="Names: Zoë.", temperature=0.2), spec, "transcribe")
    assert (plain.language, plain.prompt, plain.temperature, plain.word_timestamps) == ("fr", "Names: Zoë.", 0.2, False)
    assert (plain.vad_min_silence_ms, plain.vad_speech_pad_ms, plain.vad_threshold) == (160, 300, 0.5)
    words = service.options(form(response_format="verbose_json", timestamp_granularities=["word"]), spec, "transcribe")
    assert words.word_timestamps
    assert not service.options(form(timestamp_granularities=["word"]), spec, "transcribe").word_timestamps
    vad = {"type": "server_vad", "silence_duration_ms": 500, "prefix_padding_ms": 100, "threshold": 0.7}
    chunked = service.options(form(chunking_strategy=vad), spec, "transcribe")
    assert (chunked.vad_min_silence_ms, chunked.vad_speech_pad_ms, chunked.vad_threshold) == (500, 100, 0.7)
    speakers = service.options(
        form(model="asr-diarize", response_format="diarized_json", known_speaker_names=["ann"],
             known_speaker_references=["data:audio/wav;base64," + base64.b64encode(encode(silence(1.0))).decode()]),
        service.resolve("asr-diarize", "transcribe"), "transcribe")
    assert speakers.diarize and [name for name, _ in speakers.known_speakers] == ["ann"]
    assert speakers.known_speakers[0][1].sample_rate == 16_000


async def test_long_audio_streams_info_then_renumbered_segments_then_the_end(tmp_path: Path) -> None:
    service, engines = _service(tmp_path, decode_window_seconds=30)
    spec = service.resolve("asr-multi", "transcribe")
    audio = io.BytesIO(encode(silence(80.0, 16_000), rate=16_000))
    events = [e async for e in service.transcribe(spec, service.options(form(), spec, "transcribe"), audio)]
    assert isinstance(events[0], TranscriptionInfo) and events[0].language == "de"
    segments = [e for e in events if isinstance(e, Segment)]
    assert [(s.id, s.start, s.text) for s in segments] == [(0, 5.0, " one"), (1, 45.0, " two"), (2, 75.0, " three")]
    assert events[-1] == TranscriptEnd(duration=80.0) and len(events) == 5
    calls = engines["asr-multi"].calls
    assert len(calls) == 3 and calls[0][1].language is None
    assert [options.language for _, options in calls[1:]] == ["de", "de"]  # one file, one language


async def test_audio_longer_than_allowed_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    service, engines = _service(tmp_path, max_audio_seconds=2)
    spec = service.resolve("asr-multi", "transcribe")
    events = service.transcribe(spec, service.options(form(), spec, "transcribe"), io.BytesIO(encode(silence(3.0))))
    with pytest.raises(InvalidAudioError):
        await anext(events)
    assert engines["asr-multi"].calls == []

