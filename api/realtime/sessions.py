"""The live realtime sessions of one app: the cap on how many may be open, and closing them on server shutdown.

Over the cap, or once shutdown has begun, a connection is accepted and then refused in-band: one `error` event and
a close code, rather than an HTTP 429 on the handshake. That is what OpenAI's realtime clients are built for:
openai-python's reconnecting connection treats 1013 (try again later) and 1001 (going away) as recoverable, retries
with backoff, and does not reset its retry budget on an `error` event ("a successful upgrade can still be followed
by an admission error"); a refused handshake instead surfaces as a bare `websockets.InvalidStatus`, and browsers
never see a handshake's status or body at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from api.realtime.events import RealtimeProtocolError
from api.realtime.server_events import error_event

logger = logging.getLogger(__name__)

TRY_AGAIN_LATER = 1013  # RFC 6455 close code: the server is overloaded, retry later
GOING_AWAY = 1001  # RFC 6455 close code: the server is going down (clients treat it as "reconnect")
CLOSE_MARGIN_S = 1.0  # of the shutdown grace, kept for the last events and the close handshake
SHUTTING_DOWN_CODE = "server_shutting_down"


class Closable(Protocol):
    async def shut_down(self, deadline: float) -> None: ...


@dataclass(frozen=True)
class Refusal:
    """Why a connection gets no session: the `error` event to send, then the close code and reason."""

    error: RealtimeProtocolError
    close_code: int
    reason: str

    def event_text(self) -> str:
        return json.dumps(error_event(self.error).wire())


def shutting_down_error() -> RealtimeProtocolError:
    return RealtimeProtocolError("The server is shutting down; reconnect to start a new session.",
                                 code=SHUTTING_DOWN_CODE, type_="server_error")


class RealtimeSessions:
    def __init__(self, max_sessions: int, *, retry_after: int, on_count: Callable[[int], None] | None = None,
                 on_reject: Callable[[str], None] | None = None, on_release: Callable[[], None] | None = None):
        self.max_sessions = max_sessions
        self.retry_after = retry_after
        self._on_count, self._on_reject, self._on_release = on_count, on_reject, on_release
        self._admitted = 0
        self._live: set[Closable] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.draining = False

    @property
    def count(self) -> int:
        return self._admitted

    def admit(self) -> Refusal | None:
        """Take a slot (synchronously, so concurrent handshakes cannot overshoot the cap), or say why not."""
        if self.draining:
            self._reject("realtime_shutting_down")
            return Refusal(shutting_down_error(), GOING_AWAY, "server shutting down")
        if self._admitted >= self.max_sessions:
            self._reject("realtime_sessions")
            error = RealtimeProtocolError(
                f"The server already has the maximum of {self.max_sessions} realtime sessions open; retry in "
                f"{self.retry_after} s.", code="session_limit_reached", type_="rate_limit_error",
            )
            return Refusal(error, TRY_AGAIN_LATER, "session limit reached")
        self._admitted += 1
        self._idle.clear()
        self._changed()
        return None

    def track(self, session: Closable) -> None:
        """The admitted connection's session, so shutdown can reach it."""
        self._live.add(session)

    def release(self, session: Closable | None) -> None:
        """The admitted connection is over (whether or not its session ever ran)."""
        if session is not None:
            self._live.discard(session)
        self._admitted -= 1
        if self._admitted == 0:
            self._idle.set()
        self._changed()
        if self._on_release is not None:
            self._on_release()

    async def drain(self, grace: float) -> None:
        """Refuse new sessions; let each open one finish its response, say why and close, all within `grace` s."""
        self.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        sessions = list(self._live)
        if sessions:
            logger.info("closing %d realtime session(s) for shutdown", len(sessions))
        # Bounded one by one: a client that never reads keeps its session's queue full, and must not hold the rest.
        results = await asyncio.gather(*(asyncio.wait_for(s.shut_down(deadline), max(0.0, deadline - loop.time()))
                                         for s in sessions), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, TimeoutError):
                logger.warning("realtime session shutdown failed: %r", result)
        try:
            await asyncio.wait_for(self._idle.wait(), max(0.0, deadline - loop.time()))
        except TimeoutError:  # a client that does not read: uvicorn's own shutdown cuts it off
            logger.warning("%d realtime session(s) still open after the shutdown grace", self._admitted)

    def _reject(self, reason: str) -> None:
        if self._on_reject is not None:
            self._on_reject(reason)

    def _changed(self) -> None:
        if self._on_count is not None:
            self._on_count(self._admitted)

