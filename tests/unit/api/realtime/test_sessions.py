"""The session cap and the shutdown drain, without sockets: admission, refusals, release, and drain order."""

from __future__ import annotations

import asyncio
import json

from api.realtime.sessions import GOING_AWAY, TRY_AGAIN_LATER, RealtimeSessions
from tests.support.realtime import GA_EVENTS


class FakeSession:
    def __init__(self, sessions: RealtimeSessions):
        self.sessions = sessions
        self.deadlines: list[float] = []

    async def shut_down(self, deadline: float) -> None:
        self.deadlines.append(deadline)
        await asyncio.sleep(0)
        self.sessions.release(self)  # as the router does once the session's run() returns


def test_cap_refuses_with_rate_limit_error_and_1013() -> None:
    counts, rejects, releases = [], [], []
    sessions = RealtimeSessions(2, retry_after=3, on_count=counts.append, on_reject=rejects.append,
                                on_release=lambda: releases.append(1))
    assert sessions.admit() is None and sessions.admit() is None
    refusal = sessions.admit()
    assert refusal is not None and refusal.close_code == TRY_AGAIN_LATER
    event = json.loads(refusal.event_text())
    GA_EVENTS.validate_python(event)
    assert event["error"]["type"] == "rate_limit_error" and event["error"]["code"] == "session_limit_reached"
    assert "retry in 3 s" in event["error"]["message"]
    assert rejects == ["realtime_sessions"] and counts == [1, 2]
    sessions.release(None)  # a connection that never got as far as a session
    assert sessions.count == 1 and counts[-1] == 1 and releases == [1]
    assert sessions.admit() is None


async def test_drain_shuts_every_session_down_and_refuses_new_ones() -> None:
    rejects: list[str] = []
    sessions = RealtimeSessions(4, retry_after=1, on_reject=rejects.append)
    live = []
    for _ in range(3):
        assert sessions.admit() is None
        live.append(FakeSession(sessions))
        sessions.track(live[-1])
    before = asyncio.get_running_loop().time()
    await sessions.drain(30)
    assert sessions.count == 0
    assert all(len(s.deadlines) == 1 and s.deadlines[0] >= before + 30 for s in live)
    refusal = sessions.admit()
    assert refusal is not None and refusal.close_code == GOING_AWAY
    assert json.loads(refusal.event_text())["error"]["code"] == "server_shutting_down"
    assert rejects == ["realtime_shutting_down"]


async def test_drain_gives_up_at_the_grace_when_a_session_hangs() -> None:
    sessions = RealtimeSessions(1, retry_after=1)
    assert sessions.admit() is None

    class Hung:
        async def shut_down(self, deadline: float) -> None:
            await asyncio.Event().wait()  # a client that never reads: its queue never drains

    sessions.track(Hung())
    await sessions.drain(0.05)  # returns; uvicorn's own shutdown then cuts the connection
    assert sessions.count == 1
