"""RemoteTranscriber without a network: what it sends, how it maps answers, and which failures it retries."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from engines.base import AudioBuffer, CancelToken, EngineUnavailableError, TranscriptionOptions
from engines.remote.transcription import RemoteTranscriber
from engines.settings import RemoteTranscriptionEndpoint

AUDIO = AudioBuffer(np.zeros(16000, np.float32), 16000, offset=10.0)
VERBOSE = {
    "task": "transcribe",
    "language": "english",
    "duration": 1.0,
    "text": "Hello there. Bye.",
    "segments": [
        {"id": 0, "seek": 0, "start": 0.0, "end": 0.5, "text": " Hello there.", "tokens": [1, 2]},
        {"id": 1, "seek": 0, "start": 0.5, "end": 1.0, "text": " Bye.", "tokens": [3]},
    ],
    "words": [
        {"word": "Hello", "start": 0.0, "end": 0.2},
        {"word": "there.", "start": 0.2, "end": 0.45},
        {"word": "Bye.", "start": 0.6, "end": 0.9},
    ],
}


def make(handler, **endpoint) -> tuple[RemoteTranscriber, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request, len(seen))

    endpoint = RemoteTranscriptionEndpoint(base_url="http://up/v1", model="m", **endpoint)
    return RemoteTranscriber(endpoint, transport=httpx.MockTransport(record)), seen


def run(engine: RemoteTranscriber, **options):
    info, segments = engine.transcribe(AUDIO, TranscriptionOptions(**options), CancelToken())
    return info, list(segments)


def test_maps_verbose_json_to_segments_with_offset_and_words() -> None:
    engine, seen = make(lambda r, n: httpx.Response(200, json=VERBOSE))
    info, segments = run(engine, word_timestamps=True)
    assert info.language == "en" and info.duration == 1.0
    assert [s.text for s in segments] == [" Hello there.", " Bye."]
    assert segments[0].start == 10.0 and segments[1].end == 11.0
    assert [w.word for w in segments[0].words] == ["Hello", "there."]
    assert [w.word for w in segments[1].words] == ["Bye."]
    body = seen[0].content
    assert seen[0].url.path == "/v1/audio/transcriptions"
    assert b'name="response_format"\r\n\r\nverbose_json' in body
    assert b'name="timestamp_granularities[]"\r\n\r\nword' in body
    assert b"RIFF" in body  # the audio goes up as WAV


def test_diarized_request_sends_known_speakers_and_keeps_speakers() -> None:
    diarized = {
        "task": "transcribe",
        "duration": 1.0,
        "text": "Hi. Yo.",
        "segments": [
            {"type": "transcript.text.segment", "id": "seg_0", "start": 0.0, "end": 0.4, "text": "Hi.", "speaker": "ann"},
            {"type": "transcript.text.segment", "id": "seg_1", "start": 0.5, "end": 0.9, "text": "Yo.", "speaker": "B"},
        ],
    }
    engine, seen = make(lambda r, n: httpx.Response(200, json=diarized), diarization=True)
    ref = AudioBuffer(np.zeros(8000, np.float32), 16000)
    _, segments = run(engine, diarize=True, known_speakers=(("ann", ref),))
    assert [s.speaker for s in segments] == ["ann", "B"]
    assert [s.id for s in segments] == [0, 1]
    body = seen[0].content
    assert b"diarized_json" in body and b"data:audio/wav;base64," in body and b'known_speaker_names[]"\r\n\r\nann' in body


def test_connect_errors_are_retried_then_succeed() -> None:
    def handler(request: httpx.Request, n: int) -> httpx.Response:
        if n < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=VERBOSE)

    engine, seen = make(handler, retries=2)
    _, segments = run(engine)
    assert len(seen) == 3 and len(segments) == 2


def test_connect_errors_give_up_as_unavailable() -> None:
    def handler(request: httpx.Request, n: int) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    engine, seen = make(handler, retries=1)
    with pytest.raises(EngineUnavailableError):
        run(engine)
    assert len(seen) == 2


def test_translate_posts_to_translations() -> None:
    engine, seen = make(lambda r, n: httpx.Response(200, json=VERBOSE), translate=True)
    run(engine, task="translate", language="fr")
    assert seen[0].url.path == "/v1/audio/translations"
    assert b'name="language"' not in seen[0].content
