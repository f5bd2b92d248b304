"""The global concurrency limit: immediate 429 + Retry-After in the OpenAI shape, probes exempt, slots released."""

from __future__ import annotations

import asyncio
import time

from middleware.limits import ConcurrencyLimitMiddleware
from tests.support.asgi import Inner, Sent, assert_openai_error, http_scope, no_body


async def test_over_the_limit_gets_fast_429_and_slots_come_back() -> None:
    gate = asyncio.Event()
    inner, rejected = Inner(gate), []
    limit = ConcurrencyLimitMiddleware(inner, max_concurrent=2, retry_after=3, on_reject=rejected.append)
    held = [asyncio.create_task(limit(http_scope("/v1/audio/transcriptions"), no_body, Sent())) for _ in range(2)]
    while limit.in_flight < 2:
        await asyncio.sleep(0)  # poll the event loop until both requests are admitted

    refused, started = Sent(), time.perf_counter()
    await limit(http_scope("/v1/audio/transcriptions"), no_body, refused)
    assert time.perf_counter() - started < 0.05
    error = assert_openai_error(refused.json(), refused.status, 429)
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    assert refused.headers["retry-after"] == "3" and rejected == ["global_concurrency"]

    probe = Sent()
    await limit(http_scope("/health"), no_body, probe)  # not counted: an overloaded server still answers probes
    assert probe.status == 200

    gate.set()
    await asyncio.gather(*held)
    assert limit.in_flight == 0
    again = Sent()
    await limit(http_scope("/v1/models"), no_body, again)
    assert again.status == 200


async def test_slot_released_when_the_app_raises() -> None:
    async def boom(scope, receive, send) -> None:
        raise RuntimeError("engine crashed")

    limit = ConcurrencyLimitMiddleware(boom, max_concurrent=1, retry_after=1)
    for _ in range(3):
        try:
            await limit(http_scope(), no_body, Sent())
        except RuntimeError:
            pass
    assert limit.in_flight == 0


async def test_on_idle_fires_when_the_last_request_in_flight_ends() -> None:
    gate = asyncio.Event()
    idle: list[int] = []
    limit = ConcurrencyLimitMiddleware(Inner(gate), max_concurrent=4, retry_after=1, on_idle=lambda: idle.append(1))
    held = [asyncio.create_task(limit(http_scope("/v1/audio/speech"), no_body, Sent())) for _ in range(3)]
    while limit.in_flight < 3:
        await asyncio.sleep(0)
    await limit(http_scope("/health"), no_body, Sent())  # a probe is not a request in flight: no idle signal
    assert idle == []
    gate.set()
    await asyncio.gather(*held)
    assert idle == [1]  # once, when the third of three overlapping requests ended, not once per request
