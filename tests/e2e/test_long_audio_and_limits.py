"""Long audio in decode windows, and the per-model admission limit (429 + Retry-After), on the real engine."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from api.settings import Settings
from tests.support.server import live_server
from tests.support.speech import PIPER_RATE, encode, silence, speak
from tests.support.wer import wer
from voxloop.app import create_app

pytestmark = pytest.mark.models

LINES = [
    "This is the first part of a long recording.",
    "Here the speaker moves on to the second topic.",
    "Now we are well into the middle of the talk.",
    "The last part wraps everything up nicely.",
]


def test_long_audio_is_transcribed_window_by_window(tmp_path) -> None:
    parts, starts = [], []
    for line in LINES * 3:
        starts.append(sum(len(p) for p in parts) / PIPER_RATE)
        parts += [speak(line), silence(1.5)]
    samples = np.concatenate(parts)
    duration = len(samples) / PIPER_RATE
    assert duration > 40  # two decode windows of 30 s
    app = create_app(Settings(cache_dir=tmp_path, decode_window_seconds=30))
    with live_server(app) as url:
        response = httpx.post(
            f"{url}/v1/audio/transcriptions",
            files={"file": ("long.mp3", encode(samples, "mp3"))},
            data={"model": "whisper-1", "response_format": "verbose_json", "timestamp_granularities[]": "word"},
            timeout=300,
        )
    body = response.json()
    assert response.status_code == 200, body
    assert abs(body["duration"] - duration) < 0.2
    assert wer(" ".join(LINES * 3), body["text"]) <= 0.15, body["text"]
    words = body["words"]
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    # The last line's first word is found near where it was spoken, i.e. offsets survive the windows.
    # (Any of its first three words: Piper's synthesis is random, and Whisper sometimes drops a leading "the".)
    opening = {"the", "last", "part"}
    near = [w for w in words if abs(w["start"] - starts[-1]) < 1.0 and w["word"].strip(" .,").lower() in opening]
    assert near, [w for w in words if w["start"] > starts[-1] - 3.0]


def test_admission_limit_answers_429_with_retry_after(tmp_path) -> None:
    app = create_app(Settings(cache_dir=tmp_path, max_concurrent_per_model=1, retry_after_seconds=2))
    wav = encode(np.concatenate([speak(line) for line in LINES]), "wav")

    async def burst(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            await client.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav)}, data={"model": "whisper-1"})
            return await asyncio.gather(
                *[client.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav)}, data={"model": "whisper-1"})
                  for _ in range(4)]
            )

    with live_server(app) as url:
        responses = asyncio.run(burst(url))
        after = httpx.post(f"{url}/v1/audio/transcriptions", files={"file": ("a.wav", wav)}, data={"model": "whisper-1"}, timeout=120)
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) >= 1 and 429 in statuses, statuses
    rejected = next(r for r in responses if r.status_code == 429)
    assert rejected.headers["retry-after"] == "2"
    assert rejected.json()["error"]["type"] == "rate_limit_error"
    assert after.status_code == 200
