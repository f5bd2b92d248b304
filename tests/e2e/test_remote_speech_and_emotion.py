"""Remote speech and emotion end to end: a front voxloop whose speech and emotion models are a second voxloop.

The upstream is `voxloop serve` in a subprocess (tests/e2e/conftest.py) with the embedded Piper voice and the
prosody + lexicon baseline; the front maps `piper-remote` and `prosody-remote` to them through settings, as a user
points a front at a Chatterbox-only voxloop. What the front speaks is heard by the front's own local Whisper.
"""

from __future__ import annotations

import base64
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
LONGER = "The weather was calm this morning. We walked to the harbour, and the boats were already out at sea."
ANGRY = "I am furious! This is outrageous and I hate it!"


@pytest.fixture(scope="module")
def front(voxloop_upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    up = f"{voxloop_upstream}/v1"
    dead = {"base_url": f"http://127.0.0.1:{free_port()}/v1", "retries": 1, "connect_timeout_seconds": 0.5}
    settings = Settings(
        cache_dir=tmp_path_factory.mktemp("front-cache"),
        remote={
            "speech": {"piper-remote": {"base_url": up, "model": "piper-joe"}, "dead-speech": dead | {"model": "x"}},
            "emotion": {"prosody-remote": {"base_url": up, "model": "voxloop-prosody-lexicon"},
                        "dead-emotion": dead | {"model": "x"}},
        },
    )
    with live_server(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def sdk(front: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{front}/v1", api_key="x", max_retries=0, timeout=120)


def heard(sdk: openai.OpenAI, wav: bytes) -> str:
    """What the front's local Whisper hears in the audio."""
    return sdk.audio.transcriptions.create(model="whisper-1", file=("speech.wav", wav)).text


def test_speech_through_the_remote_is_intelligible(sdk: openai.OpenAI) -> None:
    response = sdk.audio.speech.with_raw_response.create(
        model="piper-remote", voice="alloy", input=SENTENCE, response_format="wav"
    )
    assert response.headers["x-voxloop-engine"] == "piper-remote"
    wav = response.content
    assert wer(SENTENCE, heard(sdk, wav)) <= 0.2


def test_speech_streams_in_more_than_one_chunk(front: str) -> None:
    body = {"model": "piper-remote", "voice": "alloy", "input": LONGER, "response_format": "pcm",
            "stream_format": "sse"}
    with httpx.stream("POST", f"{front}/v1/audio/speech", json=body, timeout=120) as response:
        assert response.status_code == 200
        events = [json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")]
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert len(deltas) > 1 and events[-1]["type"] == "speech.audio.done"
    pcm = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert len(pcm) / 2 / 24_000 > 3.0  # two sentences of speech, all of it (24 kHz s16le)


def test_remote_voices_are_listed_as_the_remote_declares_them(front: str) -> None:
    voices = httpx.get(f"{front}/v1/audio/voices", params={"model": "piper-remote"}, timeout=30).json()["data"]
    upstream_voices = {v["id"] for v in voices}
    assert upstream_voices and all(v["model"] == "piper-remote" for v in voices)
    assert any("alloy" in v["openai_aliases"] for v in voices)  # the remote's own mapping, passed on


def test_unknown_voice_is_the_remotes_400(front: str) -> None:
    body = {"model": "piper-remote", "voice": "no-such-voice", "input": SENTENCE}
    response = httpx.post(f"{front}/v1/audio/speech", json=body, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "voice" and "no-such-voice" in error["message"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_voice"


def test_speech_remote_down_is_503_with_an_openai_body(front: str) -> None:
    response = httpx.post(f"{front}/v1/audio/speech", json={"model": "dead-speech", "voice": "alloy", "input": "Hi."},
                          timeout=60)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert "unreachable" in error["message"] and error["type"] == "server_error"


def test_ready_reports_the_remote_speech_and_emotion_health(front: str) -> None:
    response = httpx.get(f"{front}/ready", timeout=30)
    problems = response.json()["problems"]
    assert response.status_code == 503
    assert "unreachable" in problems["dead-speech"] and "unreachable" in problems["dead-emotion"]
    assert "piper-remote" not in problems and "prosody-remote" not in problems


@pytest.fixture(scope="module")
def angry_wav() -> bytes:
    return encode(np.concatenate([silence(0.3), np.clip(speak(ANGRY, 0.8) * 2.0, -1, 1), silence(0.3)]))


def emotion(front: str, wav: bytes, model: str, **form: str) -> httpx.Response:
    return httpx.post(f"{front}/v1/emotion", files={"file": ("clip.wav", wav)}, data={"model": model, **form},
                      timeout=120)


def test_emotion_through_the_remote_matches_local(front: str, angry_wav: bytes) -> None:
    remote = emotion(front, angry_wav, "prosody-remote").json()
    local = emotion(front, angry_wav, "voxloop-prosody-lexicon").json()
    assert set(remote) == set(local) and set(remote["scores"]) == set(local["scores"])
    assert remote["model"] == "prosody-remote" and remote["no_speech"] is False
    assert remote["label"] == local["label"]
    assert sum(remote["scores"].values()) == pytest.approx(1.0, abs=1e-3)
    for label, score in local["scores"].items():
        assert remote["scores"][label] == pytest.approx(score, abs=0.05)


def test_emotion_segments_through_the_remote(front: str, angry_wav: bytes) -> None:
    body = emotion(front, angry_wav, "prosody-remote", response_format="verbose_json").json()
    assert body["segments"] and all(s["label"] in body["scores"] for s in body["segments"])
    assert body["features"]  # what the remote measured comes along


def test_emotion_remote_down_is_503(front: str, angry_wav: bytes) -> None:
    response = emotion(front, angry_wav, "dead-emotion")
    assert response.status_code == 503, response.text
    assert "unreachable" in response.json()["error"]["message"]
