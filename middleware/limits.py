"""Request body size limit: 413 in the OpenAI shape, from Content-Length up front or counted while streaming."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.errors import ApiError, PayloadTooLargeError, RateLimitError


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"The request body is larger than the limit of {limit / 1_048_576:.1f} MB.", param="file")


_DRAIN_FACTOR = 4


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, on_reject: Callable[[str], None] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            # Most clients read the answer only after sending the whole body: discard a bounded amount of it so
            # they see the 413 instead of a reset connection.
            if int(declared) <= _DRAIN_FACTOR * self.max_bytes:
                await _drain(receive)
            if self.on_reject is not None:
                self.on_reject("body_too_large")
            error = _too_large(self.max_bytes)
            body = json.dumps(error.body()).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": error.status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if self.on_reject is not None:
                        self.on_reject("body_too_large")
                    raise _too_large(self.max_bytes)  # rendered by the app's ApiError handler
            return message

        await self.app(scope, counting_receive, send)


class ConcurrencyLimitMiddleware:
    """Global cap on API requests in flight: beyond it, answer 429 + Retry-After at once instead of queueing.

    The per-model cap in the model manager protects one engine; this one protects the process (memory for bodies,
    decode threads, the event loop) when many models are busy at once. Probes and /metrics are not counted, so an
    overloaded server still reports its health. `on_idle` is called each time the last request in flight ends (the
    app gives freed native memory back to the OS then, see api/native_memory.py).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_concurrent: int,
        retry_after: int,
        on_reject: Callable[[str], None] | None = None,
        prefix: str = "/v1/",
        on_idle: Callable[[], None] | None = None,
    ):
        self.app = app
        self.max_concurrent = max_concurrent
        self.retry_after = retry_after
        self.on_reject = on_reject
        self.on_idle = on_idle
        self.prefix = prefix
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_concurrent:
            if self.on_reject is not None:
                self.on_reject("global_concurrency")
            error = RateLimitError(
                f"The server is busy with {self.in_flight} requests; retry shortly.", retry_after=self.retry_after
            )
            await send_error(send, error)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0 and self.on_idle is not None:
                self.on_idle()


async def send_error(send: Send, error: ApiError) -> None:
    """Answer an ASGI HTTP request with an ApiError in the OpenAI envelope, from middleware outside the app."""
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
