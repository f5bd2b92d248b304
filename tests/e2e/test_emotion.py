"""POST /v1/emotion against the real server: the baseline end to end (Silero VAD, Whisper tiny.en, Praat, VADER)."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from api.emotion.service import EmotionService
from engines.base import AudioBuffer
from tests.support.speech import PIPER_RATE, encode, silence, speak

pytestmark = pytest.mark.models

LABELS = {"angry", "disgusted", "fearful", "happy", "neutral", "other", "sad", "surprised", "unknown"}
ANGRY = "I am furious! This is outrageous and I hate it!"
SAD = "I feel so sad and lonely. Everything is hopeless."
HAPPY = "What a wonderful day, I love it and I am so happy."


def angry_clip() -> np.ndarray:
    # Loud, fast, and played back 25% higher (resampled), as an angry delivery.
    return np.clip(soxr.resample(speak(ANGRY, 0.8) * 2.0, PIPER_RATE, int(PIPER_RATE / 1.25)), -1, 1)


def sad_clip() -> np.ndarray:
    return speak(SAD, 1.4) * 0.25


async def post(http, audio: bytes | None, **data: str):
    files = {"file": ("clip.wav", audio, "audio/wav")} if audio is not None else None
    return await http.post("/v1/emotion", files=files, data={"model": "voxloop-prosody-lexicon", **data})


def assert_schema(body: dict, model: str = "voxloop-prosody-lexicon") -> None:
    assert set(body["scores"]) == LABELS and body["label"] in LABELS
    assert sum(body["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    assert body["label"] == max(body["scores"], key=body["scores"].__getitem__)
    assert -1 <= body["valence"] <= 1 and -1 <= body["arousal"] <= 1
    assert body["model"] == model and body["duration"] > 0


async def test_angry_and_sad_deliveries(http) -> None:
    angry = (await post(http, encode(angry_clip()))).json()
    sad = (await post(http, encode(sad_clip(), "mp3"))).json()
    for body in (angry, sad):
        assert_schema(body)
        assert body["no_speech"] is False and "segments" not in body
    assert angry["label"] == "angry" and sad["label"] == "sad"
    assert angry["arousal"] > 0.3 > sad["arousal"] + 0.5
    assert angry["valence"] < -0.4 and sad["valence"] < -0.4


async def test_verbose_json_has_vad_segments_and_the_transcript(http) -> None:
    clip = np.concatenate([angry_clip(), silence(1.2), speak(HAPPY)])
    r = await post(http, encode(clip, "flac"), response_format="verbose_json")
    assert r.status_code == 200, r.text
    body = r.json()
    assert_schema(body)
    assert body["transcription_model"] == "whisper-tiny.en"
    assert "furious" in body["text"].lower() and "wonderful" in body["text"].lower()
    assert body["duration"] == pytest.approx(len(clip) / PIPER_RATE, abs=0.05)
    segments = body["segments"]
    assert len(segments) == 2 and [s["id"] for s in segments] == [0, 1]
    first, second = segments
    assert 0 <= first["start"] < first["end"] <= second["start"] < second["end"] <= body["duration"] + 0.01
    assert "furious" in first["text"].lower() and "wonderful" in second["text"].lower()
    assert first["valence"] < 0 < second["valence"] and second["label"] == "happy"
    assert {"loudness_db", "pitch_hz", "syllables_per_second"} <= set(body["features"])


async def test_utterance_granularity_in_verbose_json_has_no_segments(http) -> None:
    body = (await post(http, encode(speak(HAPPY)), response_format="verbose_json", granularity="utterance")).json()
    assert body["segments"] == [] and body["label"] == "happy" and "wonderful" in body["text"].lower()


@pytest.mark.parametrize("fmt", ["json", "verbose_json"])
async def test_silence_is_a_flagged_unknown_not_an_error(http, fmt: str) -> None:
    r = await post(http, encode(silence(2.0)), response_format=fmt)
    assert r.status_code == 200
    body = r.json()
    assert body["no_speech"] is True and body["label"] == "unknown" and body["scores"]["unknown"] == 1.0
    assert body["valence"] == 0 and body["arousal"] == 0 and body["duration"] == pytest.approx(2.0, abs=0.01)
    if fmt == "verbose_json":
        assert body["segments"] == [] and body["text"] is None


async def test_default_alias_and_models_listing_name_the_baseline(http) -> None:
    r = await http.post("/v1/emotion", files={"file": ("a.wav", encode(speak(HAPPY)))}, data={"model": "default"})
    assert r.json()["model"] == "voxloop-prosody-lexicon"
    cards = {c["id"]: c for c in (await http.get("/v1/models")).json()["data"]}
    baseline = cards["voxloop-prosody-lexicon"]
    assert baseline["capability"] == "emotion" and "not a trained emotion model" in baseline["description"]
    assert {"emotion2vec_plus_seed", "emotion2vec_plus_base", "emotion2vec_plus_large"} <= set(cards)


async def test_model_is_optional_and_means_the_configured_default(http, settings) -> None:
    """`curl -F file=@x.wav` alone works: this endpoint is voxloop's own, so `model` defaults to the server's choice."""
    r = await http.post("/v1/emotion", files={"file": ("a.wav", encode(speak(HAPPY)))})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == settings.emotion.default_model == "voxloop-prosody-lexicon"
    op = (await http.get("/openapi.json")).json()["paths"]["/v1/emotion"]["post"]
    form = op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and "model" in form["properties"]


BAD_AUDIO = {
    "empty": b"",
    "truncated": encode(speak(HAPPY), "mp3")[:300],
    "random": np.random.default_rng(1).bytes(20_000),
    "text": b"this is a text file, not audio\n" * 50,
}


@pytest.mark.parametrize("case", sorted(BAD_AUDIO))
async def test_bad_audio_is_a_400_with_the_openai_body(http, case: str) -> None:
    r = await post(http, BAD_AUDIO[case])
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "file" and error["message"]


async def test_other_bad_requests(http) -> None:
    too_big = await post(http, b"\0" * (6 * 1024 * 1024))
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    unknown = await http.post("/v1/emotion", files={"file": ("a.wav", encode(speak(HAPPY)))}, data={"model": "nope"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    assert "voxloop-prosody-lexicon" in unknown.json()["error"]["message"]
    missing = await http.post("/v1/emotion", data={"model": "default"}, files={"other": ("a.txt", b"x")})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "file"
    seg = await post(http, encode(speak(HAPPY)), granularity="segment")
    assert seg.status_code == 400 and seg.json()["error"]["param"] == "granularity"
    fmt = await post(http, encode(speak(HAPPY)), response_format="srt")
    assert fmt.status_code == 400 and fmt.json()["error"]["param"] == "response_format"
    as_json = await http.post("/v1/emotion", json={"model": "default"})
    assert as_json.status_code == 415


async def test_emotion2vec_without_weights_is_a_503_that_says_how_to_fix_it(http) -> None:
    r = await http.post("/v1/emotion", files={"file": ("a.wav", encode(speak(HAPPY)))},
                        data={"model": "emotion2vec_plus_large"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "engine_unavailable"
    assert "VOXLOOP_EMOTION__EMOTION2VEC" in r.json()["error"]["message"]


async def test_openapi_documents_the_endpoint(http) -> None:
    op = (await http.get("/openapi.json")).json()["paths"]["/v1/emotion"]["post"]
    form = op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"file", "model", "response_format", "granularity"} <= set(form["properties"])
    ok = op["responses"]["200"]["content"]["application/json"]
    assert ok["examples"]["json"]["value"]["label"] in LABELS and "segments" in ok["examples"]["verbose_json"]["value"]
    assert {"400", "404", "413", "503"} <= set(op["responses"])


async def test_in_process_recognize_for_the_realtime_loop(settings) -> None:
    """The realtime loop calls the service directly with the turn's audio and transcript (no HTTP, no ASR)."""
    from voxloop.app import build_services

    services = build_services(settings)
    service: EmotionService = services.emotion
    try:
        turn = AudioBuffer(angry_clip(), PIPER_RATE)  # any rate: the service resamples
        result = await service.recognize(turn, ANGRY)
        assert result.model == "voxloop-prosody-lexicon" and result.transcription_model is None
        assert result.emotion.label == "angry" and result.transcript == ANGRY
        assert services.manager.state("whisper-tiny.en") == "not_loaded"  # the given transcript was used
        quiet = await service.recognize(AudioBuffer(silence(1.0, 16_000), 16_000))
        assert quiet.emotion.speech is False and quiet.emotion.label == "unknown"
    finally:
        await services.manager.close()
