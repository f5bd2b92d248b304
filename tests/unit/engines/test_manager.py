"""The model manager: lazy load, leases, TTL unloading with a fake clock, admission limits, iterate cancellation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from engines.base import CancelToken, EngineOverloadedError
from engines.manager import ModelManager
from engines.registry import EngineRegistry, EngineSpec


class CountingEngine:
    """A stand-in engine that records lifecycle calls (tests the manager, not a model)."""

    def __init__(self, log: list[str]):
        self.log = log
        log.append("load")

    def work(self, n: int) -> Iterator[int]:
        for i in range(n):
            self.log.append(f"item {i}")
            yield i

    def close(self) -> None:
        self.log.append("close")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _manager(log: list[str], **kw) -> tuple[ModelManager, EngineSpec]:
    spec = EngineSpec("m", "transcription", lambda: CountingEngine(log))
    return ModelManager(EngineRegistry([spec]), **kw), spec


async def test_lazy_load_once_and_state() -> None:
    log: list[str] = []
    manager, spec = _manager(log)
    assert manager.state("m") == "not_loaded" and log == []
    results = await asyncio.gather(*[_use(manager, spec) for _ in range(5)])
    assert results == [3] * 5 and log.count("load") == 1
    assert manager.state("m") == "loaded"


async def _use(manager: ModelManager, spec: EngineSpec) -> int:
    async with manager.lease(spec) as lease:
        return await lease.call(lambda: len(list(lease.engine.work(3))))


async def test_ttl_unloads_idle_models_only() -> None:
    log: list[str] = []
    clock = FakeClock()
    manager, spec = _manager(log, ttl_seconds=10, clock=clock)
    await _use(manager, spec)
    clock.now = 9
    assert await manager.reap_idle() == []
    async with manager.lease(spec):
        clock.now = 100
        assert await manager.reap_idle() == [], "a leased model must never be unloaded"
    clock.now = 109
    assert await manager.reap_idle() == []
    clock.now = 111
    assert await manager.reap_idle() == ["m"]
    assert log[-1] == "close" and manager.state("m") == "not_loaded"
    await _use(manager, spec)
    assert log.count("load") == 2


async def test_ttl_never_and_zero() -> None:
    log: list[str] = []
    clock = FakeClock()
    never, spec = _manager(log, ttl_seconds=-1, clock=clock)
    await _use(never, spec)
    clock.now = 1e9
    assert await never.reap_idle() == [] and never.state("m") == "loaded"
    log2: list[str] = []
    eager, spec2 = _manager(log2, ttl_seconds=0)
    await _use(eager, spec2)
    assert log2[-1] == "close" and eager.state("m") == "not_loaded"


async def test_unload_on_demand() -> None:
    log: list[str] = []
    manager, spec = _manager(log)
    assert await manager.unload("m") is False
    await _use(manager, spec)
    assert await manager.unload("m") is True and log[-1] == "close"


async def test_admission_limit_fails_fast() -> None:
    log: list[str] = []
    manager, spec = _manager(log, max_concurrent=2)
    gate = asyncio.Event()

    async def hold() -> None:
        async with manager.lease(spec):
            await gate.wait()

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    while manager.in_flight("m") < 2:
        await asyncio.sleep(0)
    started = time.perf_counter()
    with pytest.raises(EngineOverloadedError):
        async with manager.lease(spec):
            pass
    assert time.perf_counter() - started < 0.5, "overload must be answered at once, not queued"
    gate.set()
    await asyncio.gather(*holders)
    assert manager.in_flight("m") == 0
    await _use(manager, spec)


class SlowEngine:
    """Yields items slowly and records what it produced and when it stopped (tests the manager, not a model)."""

    def __init__(self) -> None:
        self.produced: list[int] = []
        self.finished = threading.Event()

    def items(self) -> Iterator[int]:
        try:
            for i in range(1000):
                self.produced.append(i)
                time.sleep(0.002)
                yield i
        finally:
            self.finished.set()

    def close(self) -> None:
        pass


async def test_iterate_stops_engine_when_consumer_leaves() -> None:
    engine = SlowEngine()
    produced, finished = engine.produced, engine.finished
    spec = EngineSpec("slow", "speech", lambda: engine)
    manager = ModelManager(EngineRegistry([spec]))
    async with manager.lease(spec) as lease:
        cancel = CancelToken()
        stream = lease.iterate(lease.engine.items, cancel, buffer=2)
        got = []
        async for item in stream:
            got.append(item)
            if len(got) == 5:
                break
        await stream.aclose()
    assert got == [0, 1, 2, 3, 4]
    assert finished.wait(2) and len(produced) < 20, "the engine kept working after the consumer left"


async def test_iterate_reraises_engine_errors() -> None:
    class Broken:
        def items(self) -> Iterator[int]:
            yield 1
            raise ValueError("boom")

        def close(self) -> None:
            pass

    spec = EngineSpec("broken", "speech", Broken)
    manager = ModelManager(EngineRegistry([spec]))
    async with manager.lease(spec) as lease:
        seen = []
        with pytest.raises(ValueError, match="boom"):
            async for item in lease.iterate(lease.engine.items, CancelToken()):
                seen.append(item)
    assert seen == [1]


async def test_failed_load_is_retried_and_reported() -> None:
    attempts = []

    def factory():
        attempts.append(1)
        raise RuntimeError("no weights")

    spec = EngineSpec("bad", "speech", factory)
    manager = ModelManager(EngineRegistry([spec]))
    for _ in range(2):
        with pytest.raises(RuntimeError):
            async with manager.lease(spec):
                pass
    assert len(attempts) == 2 and manager.state("bad") == "not_loaded" and manager.in_flight("bad") == 0


async def test_abandoned_iterator_is_stopped_before_the_lease_is_released() -> None:
    """A consumer that drops its iterator without closing it must not leave the engine working after release."""
    engine = SlowEngine()
    produced, finished = engine.produced, engine.finished
    spec = EngineSpec("slow2", "speech", lambda: engine)
    manager = ModelManager(EngineRegistry([spec]))
    async with manager.lease(spec) as lease:
        stream = lease.iterate(lease.engine.items, CancelToken(), buffer=2)
        await anext(stream)  # then abandon it, unclosed
    assert finished.is_set(), "the engine was still working when the lease was released"
    assert len(produced) < 50
    await stream.aclose()


def _work_until_cancelled(started: threading.Event, steps: list[int], cancel: CancelToken) -> str:
    """A stand-in for a long engine call that checks its token between steps (as the embedded LLM does per token)."""
    started.set()
    for step in range(2000):
        cancel.raise_if_cancelled()
        steps.append(step)
        time.sleep(0.005)
    return "finished"


async def test_call_cancellable_stops_the_engine_when_the_caller_is_cancelled() -> None:
    log: list[str] = []
    manager, spec = _manager(log)
    started, steps = threading.Event(), []

    async def request() -> str:
        async with manager.lease(spec) as lease:
            return await lease.call_cancellable(lambda cancel: _work_until_cancelled(started, steps, cancel))

    task = asyncio.create_task(request())
    while not started.is_set():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stopped_at = len(steps)
    assert stopped_at < 2000, "the engine worked on for a caller that was gone"
    await asyncio.sleep(0.05)
    assert len(steps) == stopped_at, "the cancellation returned before the engine had stopped"
    assert manager.in_flight("m") == 0
    # The engine's single thread is free again: the next call runs at once.
    async with manager.lease(spec) as lease:
        assert await asyncio.wait_for(lease.call_cancellable(lambda cancel: "next"), timeout=1) == "next"


async def test_call_cancellable_returns_and_raises_like_call() -> None:
    manager, spec = _manager([])
    async with manager.lease(spec) as lease:
        assert await lease.call_cancellable(lambda cancel: cancel.cancelled) is False
        with pytest.raises(ZeroDivisionError):
            await lease.call_cancellable(lambda cancel: 1 / 0)
