"""Stop work whose client has gone: a non-streaming request raced against its connection closing.

A streaming response notices a disconnect when a write fails, and cancels its body iterator (which stops the
engine). A non-streaming one writes only at the end, so without this an abandoned request keeps its engine busy
for nobody, and the requests queued behind it wait [vLLM `entrypoints/utils.py: with_cancellation`].
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from starlette.requests import Request

T = TypeVar("T")
# nginx's status for a request whose client closed the connection before the answer; only the access log sees it.
CLIENT_CLOSED_REQUEST = 499


async def _disconnected(request: Request) -> None:
    """Return when the client has closed the connection. The body must have been read already."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Coroutine[Any, Any, T]) -> tuple[bool, T | None]:
    """(True, `work`'s result), or (False, None) when the client disconnected first.

    On a disconnect `work` is cancelled and waited for (engines stop at their next cancel check), so when this
    returns nothing is left running for the request.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
        await asyncio.wait({task, watcher})
    if task.cancelled():
        return False, None
    return True, task.result()
