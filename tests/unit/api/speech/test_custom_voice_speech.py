"""Speech with a custom voice: what reaches a cloning engine, and the 400s for engines that cannot clone.

The cloning engine here is a stand-in that "clones" by playing back the reference it was handed: if the bytes that
come out are the stored sample, the engine got the right voice. The custom-voice store is the real one.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from api.custom_voices.service import CustomVoiceService
from api.custom_voices.store import STORE_RATE, StoredRecord
from api.http.errors import InvalidRequestError
from api.settings import Settings
from api.speech.duet import duet_spec
from api.speech.protocol import CustomVoice, SpeechRequest
from api.speech.service import SpeechService
from engines.audio import decode_audio
from engines.base import AudioBuffer, AudioChunk, CancelToken, SynthesisOptions, SynthesizerCapabilities, Voice
from engines.manager import ModelManager
from engines.registry import EngineRegistry, EngineSpec

PLAIN = SynthesizerCapabilities(voices=(Voice("plain", "Plain", "en-us"),), sample_rate=24_000)
CLONING = SynthesizerCapabilities(
    voices=(Voice("default", "Default", "en-us"),), sample_rate=24_000, min_speed=1.0, max_speed=1.0, cloning=True,
    expressive_controls=True,
)


class EchoCloner:
    """Speaks by playing back its reference recording; remembers the options it was called with."""

    capabilities = CLONING

    def __init__(self) -> None:
        self.calls: list[SynthesisOptions] = []

    def voices(self) -> list[Voice]:
        return list(CLONING.voices)

    def synthesize(self, text: str, options: SynthesisOptions, cancel: CancelToken) -> Iterator[AudioChunk]:
        self.calls.append(options)
        assert options.reference is not None
        yield AudioChunk(decode_audio(str(options.reference.path), rate=24_000).samples, 24_000, text)

    def close(self) -> None:
        return None


class Plain:
    capabilities = PLAIN

    def voices(self) -> list[Voice]:
        return list(PLAIN.voices)

    def synthesize(self, text: str, options: SynthesisOptions, cancel: CancelToken) -> Iterator[AudioChunk]:
        yield AudioChunk(np.zeros(2400, np.float32), 24_000, text)

    def close(self) -> None:
        return None


def voiced(seconds: float, rate: int = 24_000) -> AudioBuffer:
    """A loud, varying tone: audible throughout, like speech for the store's checks."""
    t = np.arange(int(seconds * rate)) / rate
    return AudioBuffer((0.3 * np.sin(2 * np.pi * (180 + 40 * np.sin(3 * t)) * t)).astype(np.float32), rate)


@pytest.fixture
def world(tmp_path: Path) -> tuple[SpeechService, EchoCloner, StoredRecord, CustomVoiceService]:
    cloner = EchoCloner()
    registry = EngineRegistry([
        EngineSpec("plain-tts", "speech", Plain, capabilities=PLAIN),
        EngineSpec("clone-tts", "speech", lambda: cloner, capabilities=CLONING),
        duet_spec("plain-tts", "clone-tts"),
    ])
    settings = Settings(cache_dir=tmp_path, tts={"fast_model": "plain-tts", "expressive_model": "clone-tts"})
    voices = CustomVoiceService(settings, registry)
    consent = voices.consents.create({"name": "Ann", "language": "en"}, voiced(3))
    record = voices.voices.create({"name": "Ann", "consent": consent.id}, voiced(8))
    return SpeechService(registry, ModelManager(registry), settings, voices), cloner, record, voices


def request(**kw) -> SpeechRequest:
    return SpeechRequest.model_validate({"model": "clone-tts", "input": "Hello there.", "voice": "alloy", **kw})


async def speak_pcm(service: SpeechService, req: SpeechRequest) -> np.ndarray:
    data = b"".join([chunk async for chunk in service.stream(service.plan(req))])
    return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0


async def test_the_cloning_engine_gets_the_stored_sample(world) -> None:
    service, cloner, record, _ = world
    out = await speak_pcm(service, request(voice={"id": record.id}, response_format="pcm"))
    stored = decode_audio(str(record.audio_path), rate=STORE_RATE).samples
    assert cloner.calls[0].reference is not None and cloner.calls[0].reference.path == record.audio_path
    assert cloner.calls[0].voice == record.id
    assert len(out) == len(stored) and np.max(np.abs(out - stored)) < 1e-3


def test_the_router_sends_a_custom_voice_to_the_role_that_clones(world) -> None:
    service, _, record, _ = world
    plan = service.plan(request(model="voxloop-duet", voice={"id": record.id}))  # plain text: would be "fast"
    assert plan.spec.model_id == "clone-tts" and plan.voice == record.id
    assert plan.route is not None and plan.route.role == "expressive" and "custom voice" in plan.route.reason


def test_a_model_that_cannot_clone_says_which_can(world) -> None:
    service, _, record, _ = world
    with pytest.raises(InvalidRequestError) as err:
        service.plan(request(model="plain-tts", voice={"id": record.id}))
    assert (err.value.param, err.value.code) == ("voice", "voice_cloning_unsupported")
    assert "'plain-tts' cannot clone" in err.value.message and "clone-tts" in err.value.message


def test_unknown_ids_are_400_before_the_model_matters(world) -> None:
    service, _, _, _ = world
    for model in ("plain-tts", "clone-tts", "voxloop-duet"):
        with pytest.raises(InvalidRequestError) as err:
            service.plan(request(model=model, voice={"id": "voice_" + "0" * 24}))
        assert err.value.code == "voice_not_found"
    with pytest.raises(InvalidRequestError):
        service.check_custom_voice(CustomVoice(id="voice_x"), "voxloop-duet")


def test_check_custom_voice_follows_the_router(world) -> None:
    service, _, record, _ = world
    service.check_custom_voice(CustomVoice(id=record.id), "voxloop-duet")  # the expressive role clones
    with pytest.raises(InvalidRequestError) as err:
        service.check_custom_voice(CustomVoice(id=record.id), "plain-tts")
    assert err.value.code == "voice_cloning_unsupported"


def test_emotion_and_controls_reach_the_options(world) -> None:
    service, _, record, _ = world
    plan = service.plan(request(voice={"id": record.id}, instructions="Say it cheerfully!", exaggeration=0.9))
    assert (plan.emotion, plan.exaggeration, plan.cfg_weight) == ("happy", 0.9, None)
    with pytest.raises(InvalidRequestError) as err:
        service.plan(request(model="plain-tts", voice="plain", cfg_weight=0.2))
    assert (err.value.param, err.value.code) == ("cfg_weight", "unsupported_value")
    assert "clone-tts" in err.value.message


def test_consent_withdrawal_removes_the_voice(world) -> None:
    service, _, record, voices = world
    voices.delete_consent(record.meta["consent"])
    with pytest.raises(InvalidRequestError) as err:
        service.plan(request(voice={"id": record.id}))
    assert err.value.code == "voice_not_found"


def test_samples_are_checked_by_the_real_decoder(world) -> None:
    _, _, record, voices = world
    consent = record.meta["consent"]
    wav = io.BytesIO()

    with wave.open(wav, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16_000)
        w.writeframes((voiced(8, 16_000).samples * 32767).astype("<i2").tobytes())
    made = voices.create_voice("From wav", consent, wav.getvalue())
    stored = decode_audio(str(made.audio_path), rate=STORE_RATE)
    assert stored.sample_rate == 24_000 and abs(stored.duration - 8.0) < 0.01
    with pytest.raises(InvalidRequestError) as err:
        voices.create_voice("Junk", consent, b"RIFF....WAVEjunk")
    assert err.value.code == "invalid_audio" and err.value.param == "audio_sample"
