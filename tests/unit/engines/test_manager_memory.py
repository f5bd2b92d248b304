"""The model manager's memory budget: LRU eviction of idle models, busy models kept, refusals, and no budget.

Stand-in engines log their loads and closes (the `CountingEngine` of the manager tests) and declare small
footprints in bytes, so the budget arithmetic is exact; the clock is fake, so "least recently used" is explicit.
"""

from __future__ import annotations

import asyncio

import pytest

from engines.base import InsufficientMemoryError
from engines.manager import ModelManager
from engines.placement import MemoryBudget
from engines.registry import EngineRegistry, EngineSpec
from tests.unit.engines.test_manager import CountingEngine, FakeClock


class MeasuringEngine(CountingEngine):
    """Reports what it "really" took after loading, as torch engines on CUDA do."""

    def memory_bytes(self) -> int:
        return 250


def _spec(model_id: str, log: list[str], memory: int, device: str = "cuda") -> EngineSpec:
    return EngineSpec(model_id, "transcription", lambda: CountingEngine(log), device=device, memory_bytes=memory)


def _manager(specs: list[EngineSpec], clock: FakeClock, **budget: int | None) -> ModelManager:
    return ModelManager(EngineRegistry(specs), clock=clock, budget=MemoryBudget(**budget))


async def _use(manager: ModelManager, spec: EngineSpec, clock: FakeClock, at: float) -> None:
    clock.now = at
    async with manager.lease(spec):
        pass


async def test_least_recently_used_idle_models_are_evicted_first() -> None:
    log: list[str] = []
    clock = FakeClock()
    a, b, c, d = (_spec(name, log, 400) for name in "abcd")
    manager = _manager([a, b, c, d], clock, gpu=1000)
    await _use(manager, a, clock, at=1)
    await _use(manager, b, clock, at=2)
    await _use(manager, a, clock, at=3)  # a is now more recent than b
    await _use(manager, c, clock, at=4)
    assert [manager.state(m) for m in "abc"] == ["loaded", "not_loaded", "loaded"], "b was least recently used"
    await _use(manager, d, clock, at=5)
    assert [manager.state(m) for m in "abcd"] == ["not_loaded", "not_loaded", "loaded", "loaded"]
    assert log == ["load", "load", "close", "load", "close", "load"], "each eviction closes before the load"


async def test_evicts_only_as_many_as_needed() -> None:
    log: list[str] = []
    clock = FakeClock()
    small = [_spec(f"s{i}", log, 200) for i in range(4)]
    big = _spec("big", log, 500)
    manager = _manager([*small, big], clock, gpu=1000)
    for i, spec in enumerate(small):
        await _use(manager, spec, clock, at=i)
    await _use(manager, big, clock, at=10)  # 800 used + 500 needed: two of the four 200s must go, the oldest
    assert [manager.state(s.model_id) for s in small] == ["not_loaded", "not_loaded", "loaded", "loaded"]
    assert manager.memory(big) == 500


async def test_busy_model_is_never_evicted_and_the_request_is_refused() -> None:
    log: list[str] = []
    clock = FakeClock()
    busy, idle, new = _spec("busy", log, 500), _spec("idle", log, 300), _spec("new", log, 600)
    manager = _manager([busy, idle, new], clock, gpu=1000)
    await _use(manager, idle, clock, at=5)
    clock.now = 1
    async with manager.lease(busy):  # the least recently used by time, but in use
        with pytest.raises(InsufficientMemoryError) as refused:
            async with manager.lease(new):
                raise AssertionError("loaded although the memory is held by a model in use")
        assert refused.value.retryable
        assert "busy" in str(refused.value) and "'new'" in str(refused.value)
        assert manager.state("busy") == "loaded"
        assert manager.state("idle") == "loaded", "nothing is evicted when evicting cannot make room"
        assert manager.state("new") == "not_loaded" and manager.in_flight("new") == 0
    await _use(manager, new, clock, at=10)  # once released, the busy one is idle and goes (oldest first)
    assert [manager.state(m) for m in ("busy", "idle", "new")] == ["not_loaded", "loaded", "loaded"]


async def test_model_larger_than_the_budget_fails_fast_without_evicting() -> None:
    log: list[str] = []
    clock = FakeClock()
    small, huge = _spec("small", log, 100), _spec("huge", log, 5000)
    manager = _manager([small, huge], clock, gpu=1000)
    await _use(manager, small, clock, at=1)
    with pytest.raises(InsufficientMemoryError) as refused:
        await manager.load(huge)
    assert not refused.value.retryable
    assert "more than the whole budget" in str(refused.value) and "'huge'" in str(refused.value)
    assert manager.state("small") == "loaded" and log == ["load"], "nothing evicted, nothing loaded"


async def test_budgets_are_per_device() -> None:
    log: list[str] = []
    clock = FakeClock()
    gpu0, gpu1 = _spec("gpu0", log, 800, "cuda"), _spec("gpu1", log, 800, "cuda:1")
    cpu, remote = _spec("cpu", log, 10**12, "cpu"), _spec("remote", log, 10**12, "remote")
    manager = _manager([gpu0, gpu1, cpu, remote], clock, gpu=1000)
    for at, spec in enumerate((gpu0, gpu1, cpu, remote)):
        await _use(manager, spec, clock, at=at)
    assert all(manager.state(m) == "loaded" for m in ("gpu0", "gpu1", "cpu", "remote")), "one model per GPU fits"
    cpu_budgeted = _manager([_spec("c1", log, 600, "cpu"), _spec("c2", log, 600, "cpu")], clock, cpu=1000)
    await _use(cpu_budgeted, cpu_budgeted.registry.resolve("c1"), clock, at=1)
    await _use(cpu_budgeted, cpu_budgeted.registry.resolve("c2"), clock, at=2)
    assert (cpu_budgeted.state("c1"), cpu_budgeted.state("c2")) == ("not_loaded", "loaded")


async def test_no_budget_keeps_every_model_loaded() -> None:
    log: list[str] = []
    clock = FakeClock()
    specs = [_spec(f"m{i}", log, 10**12) for i in range(3)]
    manager = ModelManager(EngineRegistry(specs), clock=clock)  # the old behaviour: no budget at all
    for i, spec in enumerate(specs):
        await _use(manager, spec, clock, at=i)
    assert all(manager.state(s.model_id) == "loaded" for s in specs) and "close" not in log


async def test_measured_memory_replaces_the_estimate_and_overrides_apply() -> None:
    clock = FakeClock()
    log: list[str] = []
    measured = EngineSpec("measured", "transcription", lambda: MeasuringEngine(log), device="cuda", memory_bytes=900)
    other = _spec("other", log, 700)
    manager = ModelManager(EngineRegistry([measured, other]), clock=clock, budget=MemoryBudget(gpu=1000))
    assert manager.memory(measured) == 900
    await _use(manager, measured, clock, at=1)
    assert manager.memory(measured) == 250
    await _use(manager, other, clock, at=2)  # 250 + 700 fits: measured fits where the estimate would not
    assert manager.state("measured") == "loaded" and manager.state("other") == "loaded"
    overridden = ModelManager(EngineRegistry([other]), budget=MemoryBudget(gpu=1000, estimates={"other": 2000}))
    assert overridden.memory(other) == 2000
    with pytest.raises(InsufficientMemoryError):
        await overridden.load(other)


async def test_evictions_and_refusals_are_reported_with_reasons() -> None:
    events: list[tuple[str, str, str]] = []
    clock = FakeClock()
    log: list[str] = []
    a, b, huge = _spec("a", log, 600), _spec("b", log, 600), _spec("huge", log, 2000)
    manager = ModelManager(EngineRegistry([a, b, huge]), clock=clock, budget=MemoryBudget(gpu=1000),
                           on_event=lambda kind, model, seconds, reason: events.append((kind, model, reason)))
    await _use(manager, a, clock, at=1)
    await _use(manager, b, clock, at=2)
    with pytest.raises(InsufficientMemoryError):
        await manager.load(huge)
    await manager.unload("b")
    assert events == [("load", "a", ""), ("unload", "a", "memory_budget"), ("load", "b", ""),
                      ("reject", "huge", "insufficient_memory"), ("unload", "b", "requested")]


async def test_an_unload_in_progress_is_waited_for_not_refused() -> None:
    """Memory being freed by the TTL reaper (or DELETE) counts once it is free, instead of a 503 meanwhile."""
    log: list[str] = []
    clock = FakeClock()
    closing = asyncio.Event()
    release = asyncio.Event()

    class SlowClose(CountingEngine):
        def close(self) -> None:
            closing.set()
            asyncio.run_coroutine_threadsafe(release.wait(), loop).result()
            super().close()

    loop = asyncio.get_running_loop()
    old = EngineSpec("old", "transcription", lambda: SlowClose(log), device="cuda", memory_bytes=800)
    new = _spec("new", log, 800)
    manager = ModelManager(EngineRegistry([old, new]), clock=clock, budget=MemoryBudget(gpu=1000))
    await manager.load(old)
    unloading = asyncio.create_task(manager.unload("old"))
    await closing.wait()
    loading = asyncio.create_task(manager.load(new))
    while manager.state("new") != "loading" and not loading.done():  # done early: it was refused
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(unloading, loading)
    assert manager.state("new") == "loaded" and log == ["load", "close", "load"]
