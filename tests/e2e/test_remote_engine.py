"""Remote engines end to end: a front voxloop whose transcription model is a second, real voxloop process.

The upstream is `voxloop serve` in a subprocess (tests/e2e/conftest.py), serving the embedded Whisper tiny.en; the front
app maps `tiny-remote` to it through settings, exactly as a user points at a GPU box.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest

from api.settings import Settings
from tests.support.server import free_port, live_server
from tests.support.speech import encode, silence, speak
from tests.support.wer import wer
from voxloop.app import create_app

pytestmark = pytest.mark.models

SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def front(voxloop_upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    settings = Settings(
        cache_dir=tmp_path_factory.mktemp("front-cache"),
        remote={
            "transcription": {
                "tiny-remote": {"base_url": f"{voxloop_upstream}/v1", "model": "whisper-tiny.en", "retries": 1},
                "dead-remote": {"base_url": dead, "model": "x", "retries": 2, "connect_timeout_seconds": 0.5},
            }
        },
    )
    with live_server(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def clip() -> bytes:
    return encode(np.concatenate([silence(0.3), speak(SENTENCE), silence(0.3)]), "wav")


def test_verbose_json_with_words_through_remote(front: str, clip: bytes) -> None:
    sdk = openai.OpenAI(base_url=f"{front}/v1", api_key="x", max_retries=0, timeout=120)
    result = sdk.audio.transcriptions.create(
        model="tiny-remote",
        file=("clip.wav", clip),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert wer(SENTENCE, result.text) <= 0.2, result.text
    assert result.language == "english"
    assert result.segments and result.segments[0].start >= 0
    assert result.words and all(w.end >= w.start for w in result.words)
    assert len(result.words) >= 7


def test_streaming_through_remote(front: str, clip: bytes) -> None:
    with httpx.stream(
        "POST",
        f"{front}/v1/audio/transcriptions",
        files={"file": ("clip.wav", clip)},
        data={"model": "tiny-remote", "stream": "true"},
        timeout=120,
    ) as response:
        assert response.status_code == 200
        events = [json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")]
    assert [e["type"] for e in events][-1] == "transcript.text.done"
    assert any(e["type"] == "transcript.text.delta" for e in events)
    assert wer(SENTENCE, events[-1]["text"]) <= 0.2


def test_upstream_400_is_a_400(front: str, clip: bytes) -> None:
    """The upstream (tiny.en) refuses French; the front passes the refusal on as the client's error."""
    response = httpx.post(
        f"{front}/v1/audio/transcriptions",
        files={"file": ("clip.wav", clip)},
        data={"model": "tiny-remote", "language": "fr"},
        timeout=120,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "language"


def test_diarized_json_needs_a_diarizing_remote(front: str, clip: bytes) -> None:
    response = httpx.post(
        f"{front}/v1/audio/transcriptions",
        files={"file": ("clip.wav", clip)},
        data={"model": "tiny-remote", "response_format": "diarized_json"},
        timeout=60,
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "response_format"


def test_unreachable_remote_is_503_after_retries(front: str, clip: bytes) -> None:
    response = httpx.post(
        f"{front}/v1/audio/transcriptions",
        files={"file": ("clip.wav", clip)},
        data={"model": "dead-remote"},
        timeout=60,
    )
    assert response.status_code == 503, response.text
    assert "unreachable" in response.json()["error"]["message"]


def test_ready_reports_remote_health(front: str) -> None:
    response = httpx.get(f"{front}/ready", timeout=30)
    body = response.json()
    assert response.status_code == 503
    assert "dead-remote" in body["problems"] and "unreachable" in body["problems"]["dead-remote"]
    assert "tiny-remote" not in body["problems"]
    assert "tiny-remote" in body["models"]


def test_models_lists_remote(front: str) -> None:
    ids = {m["id"] for m in httpx.get(f"{front}/v1/models", timeout=30).json()["data"]}
    assert {"tiny-remote", "dead-remote"} <= ids
