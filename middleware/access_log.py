"""One access-log line per HTTP request or WebSocket: method, path, status, duration, request id.

Never headers, query strings or keys: the path is logged without its query, where `?api_key=` would be. The path
is ASGI's percent-decoded one, so its unprintable characters (a newline that would forge a log line, NUL) are
percent-encoded again.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("voxloop.access")


def printable_path(path: str) -> str:
    """`path` with every unprintable character percent-encoded, as a client would have sent it."""
    if path.isprintable():
        return path
    return "".join(c if c.isprintable() else quote(c, safe="") for c in path)


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope.get("method", "WS")
        status = 500 if scope["type"] == "http" else 0

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] in ("http.response.start", "websocket.http.response.start"):  # a refused handshake too
                status = message["status"]
            elif message["type"] == "websocket.accept":
                status = 101
            elif message["type"] == "websocket.close" and status == 0:
                status = 403  # closed before accept: the handshake was refused
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            duration_ms = (time.perf_counter() - started) * 1000
            request_id = scope.get("state", {}).get("request_id", "-")
            path = printable_path(scope["path"])
            logger.info(
                "%s %s %d %.1fms id=%s",
                method,
                path,
                status,
                duration_ms,
                request_id,
                extra={"method": method, "path": path, "status": status,
                       "duration_ms": round(duration_ms, 1), "request_id": request_id},
            )
