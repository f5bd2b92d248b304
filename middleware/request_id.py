"""Give every HTTP request and WebSocket an id (the client's `X-Request-ID` when sent) and echo it in the response.

The id is also set in a context variable for the duration of the request, so any log line written while serving
it (engines, services, errors) carries it without passing it around.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
# A ContextVar is per-task state (each request runs in its own task), not shared mutable state.
_REQUEST_ID: ContextVar[str | None] = ContextVar("voxloop_request_id", default=None)


def current_request_id() -> str | None:
    return _REQUEST_ID.get()


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(HEADER, b"").decode("latin-1")
        # Printable ASCII only: the id is echoed in a header and written to logs.
        given = "".join(c for c in given[:128] if 32 < ord(c) < 127)
        request_id = given or f"req_{uuid.uuid4().hex}"
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (HEADER, request_id.encode("latin-1"))]
            await send(message)

        token = _REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _REQUEST_ID.reset(token)
