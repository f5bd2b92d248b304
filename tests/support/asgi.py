"""Drive a pure ASGI app by hand: a stand-in inner app and a recorder of what the middleware sends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import Message, Receive, Scope, Send


def http_scope(path: str = "/v1/models", headers: dict[str, str] | None = None, query: str = "") -> Scope:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return {"type": "http", "method": "GET", "path": path, "headers": raw, "query_string": query.encode(), "state": {}}


def ws_scope(
    path: str = "/v1/realtime", headers: dict[str, str] | None = None, query: str = "", *, denial: bool = False
) -> Scope:
    """A WebSocket handshake's scope; `denial` advertises the WebSocket Denial Response extension (as uvicorn does)."""
    scope = {**http_scope(path, headers, query), "type": "websocket"}
    if denial:
        scope["extensions"] = {"websocket.http.response": {}}
    return scope


class Inner:
    """An inner app that answers 200 (API paths after waiting on the gate, if any) and counts the calls it got."""

    def __init__(self, gate: asyncio.Event | None = None):
        self.calls = 0
        self.entered = asyncio.Event()
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        self.entered.set()
        if self.gate is not None and scope["path"].startswith("/v1/"):
            await self.gate.wait()
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})


_STARTS = ("http.response.start", "websocket.http.response.start")
_BODIES = ("http.response.body", "websocket.http.response.body")


class Sent:
    """Collects the messages an ASGI app sends (an HTTP response, or the HTTP answer to a refused handshake)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return next(m["status"] for m in self.messages if m["type"] in _STARTS)

    @property
    def headers(self) -> dict[str, str]:
        start = next(m for m in self.messages if m["type"] in _STARTS)
        return {k.decode(): v.decode() for k, v in start["headers"]}

    def json(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.messages if m["type"] in _BODIES))


async def no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def assert_openai_error(body: Any, status_code: int, expected_status: int) -> dict[str, Any]:
    assert status_code == expected_status, body
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["message"]
    return body["error"]
