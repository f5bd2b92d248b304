"""The model manager: lazy loading, leases, idle-TTL unloading, admission limits, and the one async boundary.

`lease(model_id)` is an async context manager: it admits the request (or raises `EngineOverloadedError`), loads
the model on first use under a per-model lock, counts the reference while the caller holds it, and stamps
`last_used` on release. A reaper task unloads models idle for longer than the TTL. With a memory budget, a load
first counts the model against its device's budget, unloading least-recently-used idle models on that device to
make room, or raises `InsufficientMemoryError` when models in use hold the memory (or the model exceeds the whole
budget). Engine calls run on the model's own thread pool through `call`, `call_cancellable` and `iterate`: nothing
else in the code base crosses from async to threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from engines.base import CancelledByClient, CancelToken, Engine, EngineOverloadedError, InsufficientMemoryError
from engines.placement import MemoryBudget, choose_evictions, memory_pool
from engines.registry import EngineRegistry, EngineSpec

logger = logging.getLogger(__name__)
T = TypeVar("T")
LoadState = Literal["not_loaded", "loading", "loaded"]
_DONE = object()


@dataclass
class _Slot:
    spec: EngineSpec
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    engine: Engine | None = None
    executor: ThreadPoolExecutor | None = None
    loading: bool = False
    refs: int = 0
    admitted: int = 0
    last_used: float = 0.0
    # Bytes counted against the device's budget: reserved before loading, the engine's measured figure once
    # loaded (else the estimate), released only when the unload has finished and the memory is really free.
    memory: int = 0
    # Set while an unload is closing the engine: the memory is not free until then.
    closing: asyncio.Event | None = None

    @property
    def pool(self) -> str:
        return memory_pool(self.spec.device)

    @property
    def idle(self) -> bool:
        """Loaded and nobody using or waiting for it: the only models eviction may touch."""
        return self.engine is not None and self.refs == 0 and self.admitted == 0 and not self.loading


@dataclass(frozen=True)
class Lease:
    """A loaded engine the caller may use until the lease is released."""

    engine: Any
    spec: EngineSpec
    executor: ThreadPoolExecutor
    # Engine work started by `iterate` and not yet finished: stopped before the lease is released, even when the
    # consumer abandoned its iterator without closing it (an async generator left to the garbage collector).
    _running: dict[int, tuple[CancelToken, asyncio.Future[None]]] = field(default_factory=dict)

    async def stop_running(self) -> None:
        for cancel, worker in list(self._running.values()):
            cancel.cancel()
            await asyncio.shield(worker)
        self._running.clear()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: fn(*args))

    async def call_cancellable(self, fn: Callable[[CancelToken], T]) -> T:
        """`fn(cancel)` on the engine's thread, like `call`, but stoppable: when the awaiting task is cancelled (its
        client went away), the token is set and the work waited for, which stops at its next check of the token,
        before the cancellation goes on. Without this the engine would keep working for nobody."""
        cancel = CancelToken()
        worker = asyncio.get_running_loop().run_in_executor(self.executor, lambda: fn(cancel))
        try:
            return await asyncio.shield(worker)
        except asyncio.CancelledError:
            cancel.cancel()
            await asyncio.wait([worker])
            if not worker.cancelled():
                worker.exception()  # retrieved: CancelledByClient, most likely, which nobody waits for any more
            raise

    async def iterate(self, make: Callable[[], Iterator[T]], cancel: CancelToken, buffer: int = 8) -> AsyncIterator[T]:
        """Drain an engine iterator on the engine's thread, yielding items here with backpressure.

        The iterator is created and fully consumed inside the worker thread. If the consumer stops early, the
        token is cancelled and the worker stops at the next item instead of finishing the work.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=buffer)

        def put(item: Any) -> None:
            future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
            while True:
                try:
                    future.result(timeout=0.1)
                    return
                except FutureTimeout:
                    if cancel.cancelled:
                        future.cancel()
                        raise CancelledByClient("consumer went away") from None

        def produce() -> None:
            try:
                for item in make():
                    cancel.raise_if_cancelled()
                    put(item)
                put(_DONE)
            except CancelledByClient:
                pass
            except BaseException as exc:  # handed to the consumer, which re-raises it in its own context
                if not cancel.cancelled:
                    put(exc)

        worker = loop.run_in_executor(self.executor, produce)
        self._running[id(worker)] = (cancel, worker)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.cancel()
            while not queue.empty():  # unblock a producer waiting on a full queue
                queue.get_nowait()
            await asyncio.shield(worker)
            self._running.pop(id(worker), None)


class ModelManager:
    def __init__(
        self,
        registry: EngineRegistry,
        *,
        ttl_seconds: int = -1,
        max_concurrent: int = 8,
        clock: Callable[[], float] = time.monotonic,
        on_event: Callable[[str, str, float, str], None] | None = None,
        budget: MemoryBudget | None = None,
    ):
        self.registry = registry
        # Optional observer (metrics), called as (kind, model_id, seconds, reason): ("load", id, seconds, ""),
        # ("unload", id, 0, reason) with reason idle/requested/shutdown/memory_budget, ("reject", id, 0, reason)
        # with reason model_concurrency/insufficient_memory.
        self._on_event = on_event or (lambda kind, model_id, seconds, reason: None)
        self.ttl_seconds = ttl_seconds
        self.max_concurrent = max_concurrent
        self.budget = budget or MemoryBudget()
        self._clock = clock
        self._slots: dict[str, _Slot] = {}
        # One per budgeted device: making room and reserving it is one step, so two loads never both count on
        # the same free bytes. The loads themselves run outside it, in parallel.
        self._pool_locks: dict[str, asyncio.Lock] = {}
        self._reaper: asyncio.Task[None] | None = None

    def _slot(self, spec: EngineSpec) -> _Slot:
        slot = self._slots.get(spec.model_id)
        if slot is None:
            slot = self._slots[spec.model_id] = _Slot(spec)
        return slot

    def state(self, model_id: str) -> LoadState:
        slot = self._slots.get(model_id)
        if slot is None:
            return "not_loaded"
        if slot.engine is not None:
            return "loaded"
        return "loading" if slot.loading else "not_loaded"

    def in_flight(self, model_id: str) -> int:
        slot = self._slots.get(model_id)
        return slot.admitted if slot else 0

    def memory(self, spec: EngineSpec) -> int:
        """Bytes the model takes on its device: what is counted while loaded, else what loading it would need."""
        slot = self._slots.get(spec.model_id)
        return slot.memory if slot is not None and slot.memory else self.budget.estimate(spec)

    @asynccontextmanager
    async def lease(self, spec: EngineSpec) -> AsyncIterator[Lease]:
        slot = self._slot(spec)
        if slot.admitted >= self.max_concurrent:
            self._on_event("reject", spec.model_id, 0.0, "model_concurrency")
            raise EngineOverloadedError(
                f"The model '{spec.model_id}' is busy with {slot.admitted} requests; retry shortly."
            )
        slot.admitted += 1
        try:
            await self._ensure_loaded(slot)
            assert slot.engine is not None and slot.executor is not None
            slot.refs += 1
            lease = Lease(slot.engine, spec, slot.executor)
            try:
                yield lease
            finally:
                await lease.stop_running()
                slot.refs -= 1
                slot.last_used = self._clock()
                if self.ttl_seconds == 0 and slot.refs == 0:
                    await self._unload(slot, "idle")
        finally:
            slot.admitted -= 1

    async def load(self, spec: EngineSpec) -> None:
        await self._ensure_loaded(self._slot(spec))

    async def _ensure_loaded(self, slot: _Slot) -> None:
        if slot.engine is not None:
            return
        async with slot.lock:
            if slot.engine is not None:
                return
            slot.loading = True
            try:
                await self._reserve(slot)
                executor = ThreadPoolExecutor(max_workers=slot.spec.workers, thread_name_prefix=slot.spec.model_id)
                started = time.perf_counter()
                try:
                    engine = await asyncio.get_running_loop().run_in_executor(executor, slot.spec.factory)
                except BaseException:
                    executor.shutdown(wait=False)
                    slot.memory = 0
                    raise
            finally:
                slot.loading = False
            self._settle_memory(slot, engine)
            slot.engine, slot.executor = engine, executor
            slot.last_used = self._clock()
            logger.info("loaded %s in %.2fs", slot.spec.model_id, time.perf_counter() - started)
            self._on_event("load", slot.spec.model_id, time.perf_counter() - started, "")

    async def _reserve(self, slot: _Slot) -> None:
        """Count the model against its device's budget, first unloading least-recently-used idle models on that
        device until it fits. Nothing is unloaded when even that would not be enough."""
        spec, pool = slot.spec, slot.pool
        needed, limit = self.budget.estimate(spec), self.budget.limit(pool)
        if limit is None or needed <= 0:
            slot.memory = max(needed, 0)
            return
        if needed > limit:
            self._on_event("reject", spec.model_id, 0.0, "insufficient_memory")
            raise InsufficientMemoryError(
                f"The model '{spec.model_id}' needs about {_gib(needed)} on {pool}, more than the whole budget of "
                f"{_gib(limit)}: it can never load there. Raise the budget, serve it on another device, or correct "
                "its estimate (VOXLOOP_MODELS__MEMORY_ESTIMATES).",
                retryable=False,
            )
        async with self._pool_locks.setdefault(pool, asyncio.Lock()):
            while True:
                residents = [s for s in self._slots.values() if s is not slot and s.pool == pool and s.memory > 0]
                closing = next((s.closing for s in residents if s.closing is not None), None)
                if closing is not None:  # an unload (TTL, DELETE) is freeing memory: count it as free once it is
                    await closing.wait()
                    continue
                used = sum(s.memory for s in residents)
                plan = choose_evictions(needed, used, limit, [s for s in residents if s.idle])
                if plan is None:
                    self._on_event("reject", spec.model_id, 0.0, "insufficient_memory")
                    busy = ", ".join(sorted(s.spec.model_id for s in residents if not s.idle))
                    raise InsufficientMemoryError(
                        f"The model '{spec.model_id}' needs about {_gib(needed)} on {pool}, and models in use "
                        f"({busy}) hold {_gib(used)} of its {_gib(limit)} budget. Retry when they finish.",
                        retryable=True,
                    )
                if not plan:
                    slot.memory = needed
                    return
                # One at a time, then plan again: a victim may have been leased while the previous one closed.
                logger.info("unloading idle %s to make room for %s on %s", plan[0].spec.model_id, spec.model_id, pool)
                await self._unload(plan[0], "memory_budget")

    def _settle_memory(self, slot: _Slot, engine: Engine) -> None:
        """Replace the reserved estimate with what the engine measured, when it can tell."""
        report = getattr(engine, "memory_bytes", None)
        try:
            measured = report() if callable(report) else None
        except Exception:
            logger.warning("%s could not report its memory; keeping the estimate", slot.spec.model_id, exc_info=True)
            measured = None
        if not measured or measured <= 0:
            return
        limit = self.budget.limit(slot.pool)
        if limit is not None and measured > slot.memory:
            logger.warning("%s took %s on %s, more than its estimate of %s", slot.spec.model_id, _gib(measured),
                           slot.pool, _gib(slot.memory))
        slot.memory = int(measured)

    async def unload(self, model_id: str) -> bool:
        """Unload now if idle. Returns False when the model was not loaded."""
        slot = self._slots.get(model_id)
        if slot is None or slot.engine is None:
            return False
        await self._unload(slot, "requested")
        return True

    async def _unload(self, slot: _Slot, reason: str) -> bool:
        # The lock is held until the engine has closed, so a lease arriving meanwhile loads a fresh copy only once
        # the old one's memory is free (two copies at once is what the budget is there to prevent).
        async with slot.lock:
            engine, executor = slot.engine, slot.executor
            if engine is None or executor is None or slot.refs > 0:
                return False
            slot.engine = slot.executor = None
            slot.closing = closing = asyncio.Event()
            try:
                await asyncio.get_running_loop().run_in_executor(executor, engine.close)
            finally:
                executor.shutdown(wait=False)
                slot.memory, slot.closing = 0, None
                closing.set()
        logger.info("unloaded %s (%s)", slot.spec.model_id, reason)
        self._on_event("unload", slot.spec.model_id, 0.0, reason)
        return True

    async def reap_idle(self) -> list[str]:
        """Unload every model idle for longer than the TTL. Returns the ids unloaded."""
        if self.ttl_seconds < 0:
            return []
        now = self._clock()
        idle = [
            s
            for s in self._slots.values()
            if s.engine is not None and s.refs == 0 and now - s.last_used >= self.ttl_seconds
        ]
        for slot in idle:
            await self._unload(slot, "idle")
        return [s.spec.model_id for s in idle]

    async def _reap_forever(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                await self.reap_idle()
            except Exception:
                logger.exception("idle model reaper failed")

    def start(self) -> None:
        if self.ttl_seconds > 0 and self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_forever(min(self.ttl_seconds / 2, 30.0)))

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for slot in list(self._slots.values()):
            await self._unload(slot, "shutdown")


def _gib(n: int) -> str:
    """Sizes in messages: GiB for model-sized figures, MiB or bytes for small ones."""
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GiB"
    return f"{n / 1024**2:.0f} MiB" if n >= 1024**2 else f"{n} bytes"
