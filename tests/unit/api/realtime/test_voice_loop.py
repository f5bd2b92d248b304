"""The voice loop with the service fakes (tests/support/fakes.py): a committed turn is transcribed and heard,
its reply is prompted and voiced with the emotion, one response at a time, cancellation, a late emotion."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from api.realtime.events import RealtimeProtocolError
from api.realtime.voice_loop import VoiceLoop
from api.settings import RealtimeSettings
from tests.support.fakes import (
    FakeChat,
    FakeEmotion,
    FakeSession,
    FakeSpeech,
    FakeTranscription,
    fake_realtime_services,
)

RATE = 16_000


def _turn(session: FakeSession, loop: VoiceLoop, item_id: str, *, transcribing: bool = False) -> None:
    """What the session does when a user turn is committed."""
    session.conversation.add_user_audio(item_id, with_transcript=transcribing)
    loop.turn_committed(item_id, np.zeros(RATE, np.float32), RATE, transcribing=transcribing)


async def test_a_turn_is_transcribed_heard_and_answered_in_its_emotion() -> None:
    transcription, chat, speech = FakeTranscription(default="what color is the sky"), FakeChat("Blue."), FakeSpeech()
    services = fake_realtime_services(transcription=transcription, chat=chat, speech=speech,
                                      emotion=FakeEmotion("happy"))
    session = FakeSession()
    async with asyncio.TaskGroup() as session.task_group:
        loop = VoiceLoop(services, session, extension_events=True)  # type: ignore[arg-type]
        _turn(session, loop, "item_1")
        task = await loop.create(None, None)
        await task
    assert transcription.calls == [RATE]  # the loop transcribed the turn itself (no input transcription asked)
    heard = session.of("voxloop.input_audio_emotion")[0]
    assert (heard["item_id"], heard["label"], heard["model"]) == ("item_1", "happy", "fake-emotion")
    messages = chat.bodies[0]["messages"]
    assert {"role": "user", "content": "what color is the sky"} in messages
    assert any(m["role"] == "system" and "sounds clearly happy" in (m["content"] or "") for m in messages)
    assert speech.requests[0].emotion == "happy" and speech.spoken == ["Blue."]
    done = session.of("response.done")[0]["response"]
    assert done["status"] == "completed"
    assert done["metadata"]["voxloop_emotion_state"] == "ready"
    stages = dict(stage.split("=") for stage in done["metadata"]["voxloop_timings_ms"].split())
    assert {"transcript", "emotion", "llm_first_token", "first_audio"} <= stages.keys()
    assert loop.active is None and session.responses_ended == 1


async def test_the_reply_waits_for_the_sessions_transcript() -> None:
    chat = FakeChat("Sure.")
    services = fake_realtime_services(chat=chat, emotion=FakeEmotion("neutral"))
    session = FakeSession()
    async with asyncio.TaskGroup() as session.task_group:
        loop = VoiceLoop(services, session, extension_events=False)  # type: ignore[arg-type]
        _turn(session, loop, "item_2", transcribing=True)
        task = await loop.create(None, None)
        await asyncio.sleep(0.05)
        assert not chat.bodies  # no LLM call before the transcript
        session.conversation.set_transcript("item_2", "book a table")
        loop.transcript_ready("item_2", "book a table")
        await task
    assert {"role": "user", "content": "book a table"} in chat.bodies[0]["messages"]
    assert not session.of("voxloop.input_audio_emotion")  # extension events off
    assert not any(m["role"] == "system" and "sounds" in (m["content"] or "") for m in chat.bodies[0]["messages"])


async def test_one_response_at_a_time_cancel_and_shutdown_refusal() -> None:
    gate = asyncio.Event()
    services = fake_realtime_services(chat=FakeChat("Held back.", gate=gate))
    session = FakeSession()
    async with asyncio.TaskGroup() as session.task_group:
        loop = VoiceLoop(services, session, extension_events=False)  # type: ignore[arg-type]
        await loop.create(None, None)
        await session.until("response.created")
        with pytest.raises(RealtimeProtocolError) as busy:
            await loop.create(None, "evt_2")
        assert (busy.value.code, busy.value.event_id) == ("conversation_already_has_active_response", "evt_2")
        assert await loop.cancel("client_cancelled")
        assert session.responses_ended == 1
        assert not await loop.cancel("client_cancelled")  # nothing runs any more
        session.closing = True
        with pytest.raises(RealtimeProtocolError) as closing:
            await loop.create(None, None)
        assert closing.value.code == "server_shutting_down" and closing.value.type == "server_error"
    done = session.of("response.done")
    assert len(done) == 1 and done[0]["response"]["status_details"] == {"type": "cancelled",
                                                                        "reason": "client_cancelled"}


async def test_a_late_emotion_is_sent_but_not_waited_for() -> None:
    settings = RealtimeSettings(emotion_wait_seconds=0.05)
    speech = FakeSpeech()
    services = fake_realtime_services(speech=speech, emotion=FakeEmotion("sad", delay=0.5), settings=settings)
    session = FakeSession()
    async with asyncio.TaskGroup() as session.task_group:
        loop = VoiceLoop(services, session, extension_events=True)  # type: ignore[arg-type]
        _turn(session, loop, "item_3")
        await (await loop.create(None, None))
        assert session.of("response.done")[0]["response"]["metadata"]["voxloop_emotion_state"] == "late"
        assert speech.requests[0].emotion is None  # voiced without the emotion
        assert (await session.until("voxloop.input_audio_emotion", timeout=2))["label"] == "sad"


async def test_response_overrides_are_checked() -> None:
    session = FakeSession()
    async with asyncio.TaskGroup() as session.task_group:
        loop = VoiceLoop(fake_realtime_services(), session, extension_events=False)  # type: ignore[arg-type]
        with pytest.raises(RealtimeProtocolError) as bad:
            await loop.create({"conversation": "elsewhere"}, "evt_3")
    assert (bad.value.param, bad.value.event_id) == ("response.conversation", "evt_3")


async def test_a_reply_waiting_for_its_transcript_is_dropped_unseen_and_the_next_one_starts() -> None:
    """Barge-in before the reply speaks: the user talks again while the reply still waits for the turn's transcript.
    `cancel` finds no responder; `drop_pending` ends the waiting reply with nothing on the wire, and the next turn's
    reply is not refused as a second response."""
    chat = FakeChat("Sure.")
    services = fake_realtime_services(chat=chat, emotion=FakeEmotion("neutral"))
    session = FakeSession()
    async with asyncio.TaskGroup() as session.task_group:
        loop = VoiceLoop(services, session, extension_events=False)  # type: ignore[arg-type]
        _turn(session, loop, "item_3", transcribing=True)
        await loop.create(None, None)
        await asyncio.sleep(0.05)
        assert loop.responding and loop.active is None  # waiting for the transcript
        assert not await loop.cancel("turn_detected")
        assert await loop.drop_pending()
        assert not loop.responding and session.responses_ended == 1
        assert not await loop.drop_pending()  # nothing waits any more
        _turn(session, loop, "item_4", transcribing=True)
        task = await loop.create(None, None)
        session.conversation.set_transcript("item_4", "book a table")
        loop.transcript_ready("item_4", "book a table")
        await task
    assert len(session.of("response.created")) == 1  # only the second reply
    assert session.of("response.done")[0]["response"]["status"] == "completed"
    assert len(chat.bodies) == 1 and {"role": "user", "content": "book a table"} in chat.bodies[0]["messages"]


async def test_a_reply_dropped_before_it_first_ran_still_ends_once() -> None:
    """The next turn starts in the same append that committed the last one: the reply's task is dropped before it
    ever ran, and the session still hears that it ended (once), so its state machine leaves `responding`."""
    services = fake_realtime_services(chat=FakeChat("Sure."), emotion=FakeEmotion("neutral"))
    session = FakeSession()
    async with asyncio.TaskGroup() as session.task_group:
        loop = VoiceLoop(services, session, extension_events=False)  # type: ignore[arg-type]
        _turn(session, loop, "item_5", transcribing=True)
        await loop.create(None, None)
        assert await loop.drop_pending()  # no await in between: the task never ran
        assert session.responses_ended == 1 and not loop.responding
    assert session.responses_ended == 1 and not session.of("response.created")
