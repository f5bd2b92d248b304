"""Holding an engine's batched call so concurrent requests can be queued behind it (the cross-request batching tests)."""

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
