"""Custom voices and voice consents through the official OpenAI SDK against a real server, with real speech.

The samples are real neural speech (the embedded Piper voice), encoded with FFmpeg and decoded by the server's own
PyAV path. No embedded engine clones, so speaking a custom voice here must be a clear 400 naming what can.
"""

from __future__ import annotations

import asyncio
import json
import wave
from typing import Any

import httpx
import numpy as np
import openai
import pytest
import websockets

from tests.support.speech import encode, silence, speak
from voxloop.app import create_app

pytestmark = pytest.mark.models

CONSENT_TEXT = "I am the owner of this voice and I consent to it being used to create a synthetic voice."
SAMPLE_TEXT = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Once upon a time a small boat sailed across the quiet lake at dawn.",
]


def sample_speech() -> np.ndarray:
    """About eight seconds of real speech with a short pause in the middle."""
    return np.concatenate([speak(SAMPLE_TEXT[0]), silence(0.4), speak(SAMPLE_TEXT[1])])


def error_of(exc: openai.APIStatusError) -> dict[str, Any]:
    return exc.response.json()["error"]


@pytest.fixture(scope="module")
def http_sync(server_url: str) -> Any:
    with httpx.Client(base_url=server_url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def consent(sdk: openai.OpenAI) -> Any:
    return sdk.audio.voice_consents.create(
        name="Joe", language="en-US", recording=("consent.wav", encode(speak(CONSENT_TEXT), "wav"), "audio/wav")
    )


@pytest.fixture(scope="module")
def voice(sdk: openai.OpenAI, consent: Any) -> Any:
    sample = encode(sample_speech(), "mp3")
    return sdk.audio.voices.create(name="Joe's clone", consent=consent.id, audio_sample=("s.mp3", sample, "audio/mpeg"))


def test_create_and_read_back(sdk: openai.OpenAI, consent: Any, voice: Any, http_sync: httpx.Client) -> None:
    assert consent.object == "audio.voice_consent" and consent.id.startswith("cons_")
    assert (consent.name, consent.language) == ("Joe", "en-US")
    assert voice.object == "audio.voice" and voice.id.startswith("voice_") and voice.name == "Joe's clone"
    assert voice.created_at >= consent.created_at > 1_700_000_000
    got = http_sync.get(f"/v1/audio/voices/{voice.id}").json()
    assert got == {"object": "audio.voice", "id": voice.id, "name": "Joe's clone", "created_at": voice.created_at}
    listing = http_sync.get("/v1/audio/voices").json()
    assert voice.id in [v["id"] for v in listing["custom_voices"]]
    assert listing["cloning_models"] == []  # nothing embedded clones
    assert sdk.audio.voice_consents.retrieve(consent.id).name == "Joe"


def test_stored_sample_is_the_speech_sent(settings: Any, voice: Any) -> None:
    """The stored wav is the uploaded speech (decoded from mp3, 24 kHz), not a stub: same length and loudness."""
    path = settings.voices_dir() / "voices" / voice.id / "audio.wav"
    with wave.open(str(path), "rb") as w:
        rate, samples = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768.0
    original = sample_speech()
    assert rate == 24_000
    assert abs(len(samples) / rate - len(original) / 22_050) < 0.1
    rms = lambda x: float(np.sqrt(np.mean(np.square(x))))  # noqa: E731
    assert rms(samples) == pytest.approx(rms(original), rel=0.1)


@pytest.mark.parametrize("model", ["tts-1", "tts-1-hd", "gpt-4o-mini-tts"])
def test_speaking_a_custom_voice_on_a_model_that_cannot_clone(sdk: openai.OpenAI, voice: Any, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.audio.speech.create(model=model, input="Hello there.", voice={"id": voice.id})
    error = error_of(exc.value)
    assert (error["param"], error["code"]) == ("voice", "voice_cloning_unsupported")
    assert voice.id in error["message"] and "cannot clone" in error["message"]
    assert "VOXLOOP_CHATTERBOX__MODELS" in error["message"] and "voxloop[chatterbox]" in error["message"]


def test_speaking_an_unknown_custom_voice(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.audio.speech.create(model="tts-1", input="Hello there.", voice={"id": "voice_doesnotexist"})
    error = error_of(exc.value)
    assert (error["param"], error["code"], error["type"]) == ("voice", "voice_not_found", "invalid_request_error")
    assert "voice_doesnotexist" in error["message"]


def bad_voice(http_sync: httpx.Client, consent_id: str | None, audio: bytes, name: str = "s.wav", **extra: str) -> dict:
    data = {"name": "bad", **({"consent": consent_id} if consent_id else {}), **extra}
    response = http_sync.post("/v1/audio/voices", data=data, files={"audio_sample": (name, audio, "audio/wav")})
    assert response.status_code == 400, response.text
    return response.json()["error"]


def test_bad_samples_are_refused(http_sync: httpx.Client, consent: Any) -> None:
    speech = encode(sample_speech(), "wav")
    cases = [
        (None, speech, {}, "consent", None),  # missing consent
        ("cons_0123456789abcdef01234567", speech, {}, "consent", "consent_not_found"),
        (consent.id, encode(silence(8.0)), {}, "audio_sample", "audio_silent"),
        (consent.id, encode(np.concatenate([silence(7.0), speak("Hi.")])), {}, "audio_sample", "audio_silent"),
        (consent.id, encode(speak("Too short.")), {}, "audio_sample", "audio_too_short"),
        (consent.id, b"this is a text file, not audio\n" * 64, {}, "audio_sample", "invalid_audio"),
        (consent.id, encode(np.concatenate([sample_speech()] * 5)), {}, "audio_sample", "invalid_audio"),  # > 30 s
        (consent.id, speech, {"type": "prompt"}, "type", "unsupported_value"),
    ]
    for consent_id, audio, extra, param, code in cases:
        error = bad_voice(http_sync, consent_id, audio, **extra)
        assert error["param"] == param and error["type"] == "invalid_request_error", error
        if code is not None:
            assert error["code"] == code, error


def test_wrong_content_type_and_unknown_ids(http_sync: httpx.Client, consent: Any) -> None:
    response = http_sync.post("/v1/audio/voices", json={"name": "x", "consent": consent.id})
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"
    for path in ("/v1/audio/voices/voice_0123456789abcdef01234567", "/v1/audio/voices/nonsense",
                 "/v1/audio/voice_consents/cons_0123456789abcdef01234567"):
        for method in ("GET", "DELETE"):
            response = http_sync.request(method, path)
            assert response.status_code == 404, (method, path)
            assert response.json()["error"]["code"] in ("voice_not_found", "consent_not_found")
    response = http_sync.post("/v1/audio/voice_consents", data={"name": "x", "language": "not a tag!"},
                              files={"recording": ("c.wav", encode(speak(CONSENT_TEXT)), "audio/wav")})
    assert response.status_code == 400 and response.json()["error"]["param"] == "language"
    response = http_sync.post(f"/v1/audio/voice_consents/{consent.id}", content=b"{", headers={
        "content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


def test_consent_list_pages_and_rename(sdk: openai.OpenAI, consent: Any) -> None:
    recording = ("c.flac", encode(speak(CONSENT_TEXT), "flac"), "audio/flac")
    made = [sdk.audio.voice_consents.create(name=f"Speaker {i}", language="en", recording=recording) for i in range(3)]
    first = sdk.audio.voice_consents.list(limit=2)
    assert len(first.data) == 2 and first.has_more
    seen = [c.id for c in sdk.audio.voice_consents.list(limit=2)]  # the SDK follows `after` page by page
    assert {c.id for c in made} | {consent.id} <= set(seen) and len(seen) == len(set(seen))
    renamed = sdk.audio.voice_consents.update(made[0].id, name="Speaker zero")
    assert renamed.name == "Speaker zero" and renamed.language == "en"
    assert sdk.audio.voice_consents.retrieve(made[0].id).name == "Speaker zero"
    for c in made:
        assert sdk.audio.voice_consents.delete(c.id).deleted


def test_delete_voice_and_withdraw_consent(sdk: openai.OpenAI, http_sync: httpx.Client) -> None:
    recording = ("c.wav", encode(speak(CONSENT_TEXT)), "audio/wav")
    consent = sdk.audio.voice_consents.create(name="Temp", language="en-GB", recording=recording)
    sample = ("s.ogg", encode(sample_speech(), "ogg"), "audio/ogg")
    kept, other = (sdk.audio.voices.create(name=n, consent=consent.id, audio_sample=sample) for n in ("a", "b"))
    deleted = http_sync.delete(f"/v1/audio/voices/{kept.id}").json()
    assert deleted == {"id": kept.id, "object": "audio.voice", "deleted": True}
    assert http_sync.get(f"/v1/audio/voices/{kept.id}").status_code == 404
    # Withdrawing the consent takes the voices made under it with it.
    assert sdk.audio.voice_consents.delete(consent.id).deleted
    assert http_sync.get(f"/v1/audio/voices/{other.id}").status_code == 404
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.audio.speech.create(model="tts-1", input="Hi.", voice={"id": other.id})
    assert error_of(exc.value)["code"] == "voice_not_found"


async def test_voices_survive_a_restart(settings: Any, voice: Any, consent: Any) -> None:
    """A second app over the same settings (a restarted server) serves the same voices and consents."""
    restarted = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=restarted), base_url="http://voxloop") as client:
        got = (await client.get(f"/v1/audio/voices/{voice.id}")).json()
        assert got["name"] == "Joe's clone" and got["created_at"] == voice.created_at
        assert (await client.get(f"/v1/audio/voice_consents/{consent.id}")).json()["name"] == "Joe"
        listing = (await client.get("/v1/audio/voices")).json()
        assert voice.id in [v["id"] for v in listing["custom_voices"]]


async def test_realtime_refuses_a_custom_voice_it_cannot_speak(server_url: str, voice: Any) -> None:
    url = server_url.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime"
    async with websockets.connect(url, max_size=None) as ws:

        async def until(type_: str) -> dict[str, Any]:
            while (event := json.loads(await asyncio.wait_for(ws.recv(), 30)))["type"] != type_:
                pass
            return event

        for voice_id, code in (("voice_nope", "voice_not_found"), (voice.id, "voice_cloning_unsupported")):
            await ws.send(json.dumps({"type": "session.update", "event_id": "e1", "session": {
                "type": "realtime", "audio": {"output": {"voice": {"id": voice_id}}}}}))
            error = (await until("error"))["error"]
            assert (error["code"], error["param"], error["event_id"]) == (code, "session.audio.output.voice", "e1")
            assert voice_id in error["message"]
        await ws.send(json.dumps({"type": "response.create", "event_id": "e2", "response": {
            "audio": {"output": {"voice": {"id": voice.id}}}}}))
        error = (await until("error"))["error"]
        assert (error["code"], error["event_id"]) == ("voice_cloning_unsupported", "e2")
        # The session still works, with its voice unchanged.
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": "hi"}}))
        session = (await until("session.updated"))["session"]
        assert session["audio"]["output"]["voice"] == "alloy"
