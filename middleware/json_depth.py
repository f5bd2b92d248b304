"""JSON nesting limit: a body nested deeper than `MAX_JSON_DEPTH` is a 400 before anything parses it.

Python's `json` module recurses once per level, so `[[[[…]]]]` 100,000 deep raises RecursionError, a 500, in
whichever route parses it. Here every request body that is not a form is scanned once, in linear time (strings
removed by one regex, brackets counted by a cumulative sum), as it arrives; the error is raised from `receive`,
like the body size limit's, so the app's handler renders it in the OpenAI shape.
"""

from __future__ import annotations

import re

import numpy as np
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.errors import InvalidRequestError

# Deeper than any OpenAI request needs (OpenAI allows 10 levels of nesting in tool schemas), far below
# the interpreter's recursion limit.
MAX_JSON_DEPTH = 64
# Form bodies are parsed by python-multipart, never by `json`: they are not scanned (an audio upload may hold
# any bytes). Form fields that hold JSON are parsed with their own guard.
_FORM_TYPES = (b"multipart/form-data", b"application/x-www-form-urlencoded")
# A complete JSON string, escapes included (the unrolled form: linear, no backtracking).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Scanned in blocks, so a 25 MB body of brackets costs a few MB of counters, not 100.
_BLOCK = 1 << 20


def json_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in `data` (brackets inside strings do not count).

    Not a validator: for broken JSON the number is only an estimate, which is all the limit needs (a broken body
    is refused either way).
    """
    codes = np.frombuffer(_STRING.sub(b"", data), dtype=np.uint8)
    deepest = depth = 0
    for start in range(0, codes.size, _BLOCK):
        block = codes[start : start + _BLOCK]
        steps = ((block == ord("[")) | (block == ord("{"))).astype(np.int8)
        steps -= ((block == ord("]")) | (block == ord("}"))).astype(np.int8)
        levels = np.cumsum(steps, dtype=np.int64) + depth
        deepest, depth = max(deepest, int(levels.max())), int(levels[-1])
    return deepest


def too_deep(limit: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"The request body is JSON nested more than {limit} levels deep.", code="json_too_deep"
    )


class JsonDepthLimitMiddleware:
    """Refuse request bodies nested deeper than `max_depth`, checked when the last part of the body arrives.

    The parts are kept (the same bytes objects the app keeps, no copy) only until the body is complete. Sits inside
    the body size limit, so what it keeps is bounded by that limit.
    """

    def __init__(self, app: ASGIApp, max_depth: int = MAX_JSON_DEPTH):
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = dict(scope.get("headers") or []).get(b"content-type", b"").lower()
        if scope["type"] != "http" or content_type.startswith(_FORM_TYPES):
            await self.app(scope, receive, send)
            return
        parts: list[bytes] = []

        async def checking_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body = b"".join(parts)
                    parts.clear()
                    if json_depth(body) > self.max_depth:
                        raise too_deep(self.max_depth)  # rendered by the app's ApiError handler
            return message

        await self.app(scope, checking_receive, send)
