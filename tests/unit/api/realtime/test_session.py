"""The session state machine without a socket: events in through `receive`, events out through `send`.

A fake transcriber stands in for Whisper (scripted text, counted calls), so turn ordering, the speculative final
and cleanup are checked fast and deterministically; Silero VAD is real.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from api.realtime.session import RealtimeSession
from api.realtime.state import State, Trigger
from api.settings import Settings
from engines.base import Segment, TranscriberCapabilities, TranscriptionInfo
from engines.registry import EngineSpec
from tests.support.realtime import BETA_EVENTS, GA_EVENTS, to_pcm16_24k
from tests.support.speech import silence, speak
from voxloop.app import build_services


class FakeAsr:
    capabilities = TranscriberCapabilities(languages=None, translate=False, word_timestamps=False)

    def __init__(self) -> None:
        self.calls = 0

    def transcribe(self, audio: Any, options: Any, cancel: Any) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        self.calls += 1
        words = ["one", "two", "three", "four", "five", "six", "seven", "eight"][: max(1, int(audio.duration))]
        return TranscriptionInfo("en", audio.duration), iter([Segment(0, 0.0, audio.duration, " " + " ".join(words))])

    def close(self) -> None:
        pass


class Harness:
    def __init__(self, services: Any, **kw: Any):
        self.inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def send(text: str) -> None:
            event = json.loads(text)
            try:
                (BETA_EVENTS if self.session.beta else GA_EVENTS).validate_python(event)
            except ValidationError as exc:  # surfaced by `until`, instead of a silent send failure
                event = {"type": "invalid event", "error": str(exc)}
            await self.outbox.put(event)

        self.session = RealtimeSession(services.realtime, self.inbox.get, send, **kw)
        self.task = asyncio.create_task(self.session.run())

    def send(self, **event: Any) -> None:
        self.inbox.put_nowait(json.dumps(event))

    async def until(self, type_: str) -> dict[str, Any]:
        while (event := await asyncio.wait_for(self.outbox.get(), 10))["type"] != type_:
            assert event["type"] != "invalid event", event["error"]
        return event

    async def close(self) -> None:
        self.inbox.put_nowait(None)
        await asyncio.wait_for(self.task, 10)


@pytest.fixture
def fake() -> FakeAsr:
    return FakeAsr()


@pytest.fixture
def services(fake: FakeAsr, tmp_path: Any) -> Any:
    settings = Settings(cache_dir=tmp_path, whisper={"default_model": "fake-asr"})
    services = build_services(settings)
    services.registry.add(EngineSpec("fake-asr", "transcription", lambda: fake, capabilities=FakeAsr.capabilities))
    return services


async def test_vad_turn_with_speculative_final(services: Any, fake: FakeAsr) -> None:
    h = Harness(services, model="gpt-realtime")
    assert (await h.until("session.created"))["session"]["type"] == "realtime"
    h.send(type="session.update", session={"type": "realtime", "audio": {"input": {
        "transcription": {"model": "whisper-1"}, "turn_detection": {"type": "server_vad", "create_response": False}}}})
    await h.until("session.updated")
    pcm = to_pcm16_24k(np.concatenate([silence(0.5), speak("Testing the session state machine today."), silence(1)]))
    for offset in range(0, len(pcm), 4800):
        h.send(type="input_audio_buffer.append", audio=base64.b64encode(pcm[offset : offset + 4800]).decode())
    started = await h.until("input_audio_buffer.speech_started")
    stopped = await h.until("input_audio_buffer.speech_stopped")
    committed = await h.until("input_audio_buffer.committed")
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    completed = await h.until("conversation.item.input_audio_transcription.completed")
    assert completed["transcript"].startswith("one two")
    assert h.session.state is State.COMMITTED  # no automatic reply: the turn waits for response.create
    await h.close()
    assert h.session.state is State.CLOSING
    assert services.manager.in_flight("fake-asr") == 0


async def test_commit_clear_and_errors_keep_the_session(services: Any, fake: FakeAsr) -> None:
    h = Harness(services, model="gpt-realtime")
    await h.until("session.created")
    h.send(type="input_audio_buffer.commit", event_id="c1")
    assert (await h.until("error"))["error"]["event_id"] == "c1"
    h.send(type="session.update", session={"type": "realtime", "audio": {"input": {
        "transcription": {"model": "whisper-1"}, "turn_detection": None}}})
    await h.until("session.updated")
    pcm = to_pcm16_24k(speak("Two seconds of speech or so."))
    h.send(type="input_audio_buffer.append", audio=base64.b64encode(pcm).decode())
    h.send(type="input_audio_buffer.clear")
    await h.until("input_audio_buffer.cleared")
    h.send(type="input_audio_buffer.append", audio=base64.b64encode(pcm).decode())
    h.send(type="input_audio_buffer.commit")
    committed = await h.until("input_audio_buffer.committed")
    completed = await h.until("conversation.item.input_audio_transcription.completed")
    assert completed["item_id"] == committed["item_id"] and fake.calls == 1
    await h.close()


async def test_beta_header_and_transcription_session_update(services: Any) -> None:
    h = Harness(services, transcription_intent=True)
    created = await h.until("session.created")
    assert created["session"]["type"] == "transcription"
    h.send(type="transcription_session.update", session={"input_audio_transcription": {"model": "whisper-1"}})
    updated = await h.until("transcription_session.updated")
    assert updated["session"]["input_audio_transcription"]["model"] == "whisper-1"
    assert h.session.beta
    await h.close()


async def test_shut_down_sends_error_then_ends_with_1001_and_returns_the_vad(services: Any) -> None:
    h = Harness(services, model="gpt-realtime")
    await h.until("conversation.created")
    h.send(type="session.update", session={"type": "realtime", "audio": {"input": {
        "turn_detection": {"type": "server_vad"}}}})
    await h.until("session.updated")
    idle_before = services.vad_pool.idle
    await h.session.shut_down(asyncio.get_running_loop().time() + 5)
    error = await h.until("error")
    assert error["error"]["code"] == "server_shutting_down" and error["error"]["type"] == "server_error"
    await asyncio.wait_for(h.task, 10)  # run() returns without the client closing
    assert h.session.close_code == 1001 and h.session.state is State.CLOSING
    assert h.outbox.empty()  # nothing after the error event
    assert services.vad_pool.idle == idle_before + 1
    h.send(type="response.create")  # too late: the session is gone, nothing is read any more


@pytest.mark.parametrize(
    ("triggers", "event", "code"),
    [
        ([Trigger.RESPONSE_STARTED], {"type": "response.create"}, "conversation_already_has_active_response"),
        ([Trigger.CLOSE], {"type": "response.create"}, "server_shutting_down"),
        ([], {"type": "response.cancel"}, "response_cancel_not_active"),
        ([Trigger.SPEECH_STARTED], {"type": "response.cancel"}, "response_cancel_not_active"),
        ([Trigger.TURN_COMMITTED], {"type": "response.cancel"}, "response_cancel_not_active"),
        ([Trigger.RESPONSE_STARTED], {"type": "output_audio_buffer.clear"}, "invalid_value"),
    ],
)
async def test_events_the_state_refuses_get_an_error_and_the_session_goes_on(
    services: Any, triggers: list[Trigger], event: dict[str, Any], code: str
) -> None:
    h = Harness(services, model="gpt-realtime")
    await h.until("conversation.created")
    for trigger in triggers:  # put the session in the state under test
        h.session.machine.fire(trigger)
    state = h.session.state
    h.send(event_id="evt_7", **event)
    error = (await h.until("error"))["error"]
    assert (error["code"], error["event_id"]) == (code, "evt_7")
    assert h.session.state is state  # refused: nothing changed
    h.send(type="conversation.item.create", item={"type": "message", "role": "user",
                                                   "content": [{"type": "input_text", "text": "still here?"}]})
    added = await h.until("conversation.item.added")
    assert added["item"]["content"][0]["text"] == "still here?"
    await h.close()
