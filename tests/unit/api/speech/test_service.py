"""The speech service with a fake synthesizer: planning (voices, speed split, tags) and cancellation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from api.http.errors import InvalidRequestError
from api.settings import Settings
from api.speech.protocol import SpeechRequest
from api.speech.service import SpeechService, openai_aliases
from engines.base import AudioChunk, CancelToken, SynthesisOptions, SynthesizerCapabilities, Voice
from engines.manager import ModelManager
from engines.registry import EngineRegistry, EngineSpec

CAPS = SynthesizerCapabilities(
    voices=(Voice("deep", "Deep", "en-US", "male"), Voice("bright", "Bright", "en-US", "female")),
    sample_rate=16_000, min_speed=0.5, max_speed=2.0, tags=frozenset({"laugh"}),
)


class SlowSynth:
    capabilities = CAPS
    sample_rate = 16_000

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.chunks_made = 0

    def voices(self) -> list[Voice]:
        return list(CAPS.voices)

    def synthesize(self, text: str, options: SynthesisOptions, cancel: CancelToken) -> Iterator[AudioChunk]:
        for _ in range(50):
            if cancel.cancelled:
                self.cancelled.set()
                return
            self.chunks_made += 1
            time.sleep(0.02)
            yield AudioChunk(np.full(1600, 0.1, np.float32), 16_000, text)

    def close(self) -> None:
        return None


@pytest.fixture
def service() -> tuple[SpeechService, SlowSynth, ModelManager]:
    engine = SlowSynth()
    registry = EngineRegistry([EngineSpec("fake-tts", "speech", lambda: engine, capabilities=CAPS)])
    registry.alias("speech", "tts-1", "fake-tts")
    settings = Settings()
    manager = ModelManager(registry)
    return SpeechService(registry, manager, settings), engine, manager


def request(**kw) -> SpeechRequest:
    return SpeechRequest.model_validate({"model": "tts-1", "input": "Hello there.", "voice": "alloy", **kw})


def test_openai_voices_map_by_gender(service) -> None:
    svc, _, _ = service
    assert svc.plan(request(voice="onyx")).voice == "deep"
    assert svc.plan(request(voice="nova")).voice == "bright"
    assert svc.plan(request(voice="deep")).voice == "deep"


@pytest.mark.parametrize(("speed", "engine_speed", "tempo"), [(1.0, 1.0, 1.0), (0.25, 0.5, 0.5), (4.0, 2.0, 2.0)])
def test_speed_beyond_the_engine_is_left_to_tempo(service, speed: float, engine_speed: float, tempo: float) -> None:
    plan = service[0].plan(request(speed=speed))
    assert (plan.engine_speed, plan.tempo) == (engine_speed, tempo)


def test_supported_tags_stay_and_others_become_pauses(service) -> None:
    plan = service[0].plan(request(input="Ha [laugh] well [sigh] ok."))
    assert plan.parts == ("Ha [laugh] well", 0.4, "ok.")
    assert plan.tags["rendered"] == ["laugh"] and plan.tags["mapped"] == ["sigh"]


def test_custom_voice_ids_do_not_exist(service) -> None:
    with pytest.raises(InvalidRequestError) as err:
        service[0].plan(request(voice={"id": "voice_1"}))
    assert err.value.code == "voice_not_found"


async def test_closing_the_stream_stops_the_engine_before_the_lease_ends(service) -> None:
    svc, engine, manager = service
    stream = svc.stream(svc.plan(request(response_format="pcm")))
    assert await anext(stream)
    await stream.aclose()
    assert engine.cancelled.is_set()  # stopped, and awaited, before aclose returned
    assert manager.in_flight("fake-tts") == 0
    assert engine.chunks_made < 50


def test_pieces_without_words_are_not_sent_to_the_engine(service) -> None:
    plan = service[0].plan(request(input="Yes [sigh] . [cough] !"))
    assert plan.parts == ("Yes", 0.4, 0.3)


REMOTE_CAPS = SynthesizerCapabilities(
    voices=(Voice("anna", "Anna", "en-gb", "female", tags=frozenset({"laugh", "sigh"}), openai_aliases=("nova",)),),
    sample_rate=24_000, min_speed=0.25, max_speed=4.0, tags=frozenset({"laugh", "sigh"}), checks_voices=True,
)


@pytest.fixture
def remote_service() -> SpeechService:
    registry = EngineRegistry([EngineSpec("far-tts", "speech", SlowSynth, capabilities=REMOTE_CAPS)])
    return SpeechService(registry, ModelManager(registry), Settings())


@pytest.mark.parametrize("voice", ["alloy", "anna", "not-listed-here"])
def test_a_remote_gets_voices_as_given_for_it_to_judge(remote_service: SpeechService, voice: str) -> None:
    plan = remote_service.plan(request(model="far-tts", voice=voice))
    assert plan.voice == voice


def test_a_remote_keeps_the_tags_it_declares_and_the_whole_speed_range(remote_service: SpeechService) -> None:
    plan = remote_service.plan(request(model="far-tts", voice="anna", input="Ha [laugh] well [sigh] ok.", speed=4.0))
    assert plan.parts == ("Ha [laugh] well [sigh] ok.",)
    assert (plan.engine_speed, plan.tempo) == (4.0, 1.0)


def test_a_remotes_own_openai_mapping_is_listed(remote_service: SpeechService) -> None:
    assert openai_aliases(REMOTE_CAPS.voices[0], REMOTE_CAPS) == ["nova"]
