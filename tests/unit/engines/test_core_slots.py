"""CoreSlots: at most N phrases at once, first phrases first, oldest first, the lone phrase told so."""

from __future__ import annotations

import threading

import pytest

from engines.base import CancelledByClient, CancelToken
from engines.core_slots import CoreSlots


def _hold(slots: CoreSlots, first: bool, log: list, name: str, release: threading.Event, started: threading.Event):
    with slots.slot(first_phrase=first, cancel=CancelToken()) as alone:
        log.append((name, alone))
        started.set()
        release.wait(10)


def _wait_queued(slots: CoreSlots, count: int) -> None:
    for _ in range(500):
        if slots.busy() >= count:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"never {count} busy")


def test_a_lone_phrase_is_told_it_runs_alone_and_a_second_is_not() -> None:
    slots = CoreSlots(2)
    with slots.slot(first_phrase=True, cancel=CancelToken()) as first_alone:
        with slots.slot(first_phrase=False, cancel=CancelToken()) as second_alone:
            assert slots.busy() == 2
    assert first_alone is True
    assert second_alone is False
    assert slots.busy() == 0


def test_first_phrases_go_before_earlier_queued_later_phrases() -> None:
    slots, log, release = CoreSlots(1), [], threading.Event()
    holder_started = threading.Event()
    holder = threading.Thread(target=_hold, args=(slots, True, log, "holder", release, holder_started))
    holder.start()
    assert holder_started.wait(10)
    threads, go_on = [], threading.Event()
    go_on.set()  # the waiters log their turn and leave at once
    for name, first in (("later-1", False), ("later-2", False), ("first-1", True)):
        t = threading.Thread(target=_hold, args=(slots, first, log, name, go_on, threading.Event()))
        t.start()
        threads.append(t)
        _wait_queued(slots, len(threads) + 1)
    release.set()
    holder.join(10)
    for t in threads:
        t.join(10)
    assert [name for name, _ in log] == ["holder", "first-1", "later-1", "later-2"]
    assert log[0] == ("holder", True)
    assert log[-1] == ("later-2", True)  # the last one found nobody else running or waiting


def test_never_more_than_the_slots_run_at_once() -> None:
    slots, lock = CoreSlots(2), threading.Lock()
    running, peak = [0], [0]

    def phrase() -> None:
        with slots.slot(first_phrase=False, cancel=CancelToken()):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            threading.Event().wait(0.02)
            with lock:
                running[0] -= 1

    threads = [threading.Thread(target=phrase) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert peak[0] == 2


def test_a_cancelled_waiter_leaves_the_queue_and_others_go_on() -> None:
    slots, cancel = CoreSlots(1), CancelToken()
    outcome: list[str] = []

    def waiter() -> None:
        try:
            with slots.slot(first_phrase=True, cancel=cancel):
                outcome.append("ran")
        except CancelledByClient:
            outcome.append("cancelled")

    with slots.slot(first_phrase=False, cancel=CancelToken()):
        t = threading.Thread(target=waiter)
        t.start()
        _wait_queued(slots, 2)
        cancel.cancel()
        t.join(5)
    assert outcome == ["cancelled"]
    assert slots.busy() == 0
    with slots.slot(first_phrase=False, cancel=CancelToken()) as alone:
        assert alone


def test_zero_slots_is_refused() -> None:
    with pytest.raises(ValueError):
        CoreSlots(0)
