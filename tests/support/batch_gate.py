"""Holding an engine's batched call so concurrent requests can be queued behind it, and starting those requests on
threads (the cross-request batching tests)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def gate(engine: Any, method: str, hooks: dict[int, Callable[[], object]]) -> list[int]:
    """Wrap `engine.<method>` (its batched call): before call N runs, `hooks[N]()` (it may wait for requests to
    queue). Returns the items per call, in order. Undo with `del engine.<method>`."""
    calls: list[int] = []
    forward = getattr(engine, method)

    def gated(items):
        calls.append(len(items))
        if len(calls) in hooks:
            hooks[len(calls)]()
        return forward(items)

    setattr(engine, method, gated)
    return calls


def until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def in_threads(fns, first_running=None) -> list:
    """Run each fn on its own thread; with `first_running`, the others start once it says the first one runs."""
    import threading

    results: list = [None] * len(fns)

    def go(i: int) -> None:
        try:
            results[i] = fns[i]()
        except BaseException as exc:  # collected for the assertions
            results[i] = exc

    threads = []
    for i in range(len(fns)):
        threads.append(threading.Thread(target=go, args=(i,)))
        threads[-1].start()
        while i == 0 and first_running is not None and not first_running():
            time.sleep(0.01)
    for t in threads:
        t.join(120)
    return results
