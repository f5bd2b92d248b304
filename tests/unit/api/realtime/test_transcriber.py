"""Append-only live deltas: local agreement while speaking, the remainder at the end, never a retraction."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from api.realtime.transcriber import TurnTranscriber
from engines.base import TranscriptionOptions
from tests.support.fakes import FakeTranscription


async def _run(partials: list[str], final: str) -> list[dict[str, Any]]:
    fake = FakeTranscription([final])  # partials are fed below; only the final pass calls the engine
    emitted: list[dict[str, Any]] = []

    async def emit(event: Any) -> None:
        emitted.append(event.wire())

    turn = TurnTranscriber(fake, None, TranscriptionOptions(), "item_1", emit, partial_interval=0.0)
    for text in partials:  # drive the partial logic directly, as the live loop would
        await turn._partial(text)
    await turn._complete(np.zeros(16000, np.float32))
    return emitted


def _deltas(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] for e in events if e["type"].endswith(".delta"))


async def test_agreed_words_stream_and_concatenate_to_the_final() -> None:
    events = await _run(["The quick", "The quick brown fo", "The quick brown fox jumps"],
                        "The quick brown fox jumps over the dog.")
    deltas = [e["delta"] for e in events if e["type"].endswith(".delta")]
    assert deltas[:2] == ["The quick", " brown"] and len(deltas) == 3
    completed = events[-1]
    assert completed["type"].endswith(".completed") and completed["transcript"] == _deltas(events)
    assert completed["transcript"] == "The quick brown fox jumps over the dog."
    assert all(e["content_index"] == 0 for e in events)


async def test_divergence_is_never_retracted() -> None:
    events = await _run(["Hello word again", "Hello word again and"], "Hello world again and more.")
    completed = events[-1]
    assert completed["transcript"] == _deltas(events)
    assert completed["transcript"].startswith("Hello word again")  # what was sent stays sent


async def test_engine_failure_is_a_failed_event() -> None:
    from engines.base import EngineOverloadedError

    failing = FakeTranscription(error=EngineOverloadedError("busy"))
    emitted: list[dict[str, Any]] = []

    async def emit(event: Any) -> None:
        emitted.append(event.wire())

    await TurnTranscriber(failing, None, TranscriptionOptions(), "item_2", emit, partial_interval=0.5)._complete(
        np.zeros(100, np.float32))
    assert emitted[0]["type"] == "conversation.item.input_audio_transcription.failed"
    assert emitted[0]["error"]["message"] == "busy"


@pytest.fixture(scope="module")
def transcription(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from api.settings import Settings
    from voxloop.app import build_services

    return build_services(Settings(cache_dir=tmp_path_factory.mktemp("cache"))).transcription


def test_one_resolver_for_http_and_realtime(transcription: Any) -> None:
    """Every OpenAI transcription name means the default Whisper, the same through HTTP's resolve and realtime."""
    from api.realtime.session_config import TranscriptionConfig
    from api.realtime.transcriber import resolve_transcription
    from api.transcription.service import OPENAI_ASR_ALIASES

    default = transcription.resolve("whisper-1", "transcribe").model_id
    for name in OPENAI_ASR_ALIASES:
        spec, options = resolve_transcription(transcription, TranscriptionConfig(model=name, language="en"))
        assert spec.model_id == default == transcription.resolve(name, "transcribe").model_id
        assert options.language == "en"


@pytest.mark.parametrize(("config", "code", "param"), [
    ({"model": "no-such-model"}, "model_not_found", "session.audio.input.transcription.model"),
    ({"model": "whisper-1", "language": "xx"}, "invalid_value", "session.audio.input.transcription.language"),
])
def test_resolver_errors_name_the_session_field(transcription: Any, config: dict[str, Any], code: str,
                                                param: str) -> None:
    from api.realtime.events import RealtimeProtocolError
    from api.realtime.session_config import TranscriptionConfig
    from api.realtime.transcriber import resolve_transcription

    with pytest.raises(RealtimeProtocolError) as info:
        resolve_transcription(transcription, TranscriptionConfig(**config))
    assert (info.value.code, info.value.param) == (code, param) and info.value.message
