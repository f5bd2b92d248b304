"""MallocTrimmer: a burst of requests costs one trim, and an interval of 0 turns trimming off."""

from __future__ import annotations

import asyncio

from api.native_memory import MallocTrimmer


async def test_a_burst_of_requests_is_one_trim_and_zero_interval_is_off() -> None:
    on, off = MallocTrimmer(min_interval=10.0), MallocTrimmer(min_interval=0.0)
    for _ in range(5):
        on.request()
        off.request()
    for _ in range(200):  # the first trim is due at once (none ran before); it runs in a thread
        if on.trims:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # room for a second trim, were the burst not merged
    await on.close()
    await off.close()
    assert on.trims == 1  # glibc here: the trim ran, once for the whole burst
    assert off.trims == 0
