"""Racing a non-streaming request against its client: the work is cancelled and awaited when the client leaves."""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from api.http.disconnect import unless_disconnected
from tests.support.asgi import http_scope


def _request(gone: asyncio.Event) -> Request:
    async def receive():
        await gone.wait()
        return {"type": "http.disconnect"}

    return Request(http_scope("/v1/chat/completions"), receive)


async def test_result_when_the_client_stays() -> None:
    async def work() -> str:
        await asyncio.sleep(0.01)
        return "done"

    assert await unless_disconnected(_request(asyncio.Event()), work()) == (True, "done")


async def test_work_cancelled_and_awaited_when_the_client_leaves() -> None:
    gone, events = asyncio.Event(), []

    async def work() -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(0.01)  # cleanup that must finish before the race returns (the engine stopping)
            events.append("cleaned up")
            raise
        return "never"

    race = asyncio.create_task(unless_disconnected(_request(gone), work()))
    await asyncio.sleep(0.01)
    gone.set()
    assert await asyncio.wait_for(race, timeout=5) == (False, None)
    assert events == ["cleaned up"]


async def test_errors_of_the_work_propagate() -> None:
    async def work() -> str:
        raise ValueError("engine failed")

    try:
        await unless_disconnected(_request(asyncio.Event()), work())
    except ValueError as exc:
        assert str(exc) == "engine failed"
    else:
        raise AssertionError("the error was swallowed")
