"""The engine-level metrics are fed by real requests: transcription RTF and speech time to first audio."""

from __future__ import annotations

import httpx
import pytest

from tests.support.speech import encode, speak

pytestmark = pytest.mark.models


def _count(metrics: str, name: str, label: str) -> float:
    lines = [l for l in metrics.splitlines() if l.startswith(f"{name}_count{{") and label in l]
    return sum(float(l.rsplit(" ", 1)[1]) for l in lines)


async def test_rtf_and_first_audio_are_recorded(http: httpx.AsyncClient) -> None:
    before = (await http.get("/metrics")).text
    wav = encode(speak("Metrics should see this request."))
    assert (await http.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav)},
                            data={"model": "whisper-1"})).status_code == 200
    assert (await http.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hello.", "voice": "alloy"})).status_code == 200
    after = (await http.get("/metrics")).text
    assert _count(after, "voxloop_realtime_factor", 'model="whisper-tiny.en"') == _count(
        before, "voxloop_realtime_factor", 'model="whisper-tiny.en"') + 1
    assert _count(after, "voxloop_time_to_first_audio_seconds", 'model="piper-joe"') == _count(
        before, "voxloop_time_to_first_audio_seconds", 'model="piper-joe"') + 1


def test_realtime_stage_latencies_are_recorded(app) -> None:
    from api.realtime.responder import Timings

    metrics = app.state.services.metrics
    timings = Timings(speech_end=10.0, transcript=10.3, emotion=10.35, llm_first_token=10.8, first_audio=11.0)
    for stage, ms in timings.breakdown().items():
        metrics.observe_realtime_stage(stage, ms / 1000)
    text = metrics.render().decode()
    assert 'voxloop_realtime_stage_seconds_count{stage="first_audio"}' in text
