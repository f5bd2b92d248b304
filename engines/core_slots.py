"""Sharing a few CPU cores between concurrent synthesis requests, one phrase at a time.

A CPU model such as Kokoro is compute-bound: four requests running at once on two cores are slower in total than
two at a time (threads fight over caches), and the requests that started last wait longest for their first
sound. So each phrase asks for a slot; at most `slots` phrases run at once, first phrases go before later ones
(time to first audio is what a listener notices), and within a class the oldest waiter goes first. A phrase that
finds nobody else running or waiting is told it runs alone, so it may use every core.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from engines.base import CancelToken

_CANCEL_POLL_SECONDS = 0.05


class CoreSlots:
    def __init__(self, slots: int):
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.slots = slots
        self._condition = threading.Condition()
        self._running = 0
        self._waiting: list[tuple[int, int]] = []  # heap of (priority, ticket): 0 = a first phrase
        self._tickets = itertools.count()

    @contextmanager
    def slot(self, *, first_phrase: bool, cancel: CancelToken) -> Iterator[bool]:
        """Hold a slot for one phrase; yields True when the phrase runs alone (nothing else running or queued).

        Waiting stops when `cancel` is set (a client gone while queued) by raising `CancelledByClient`.
        """
        ticket = (0 if first_phrase else 1, next(self._tickets))
        with self._condition:
            heapq.heappush(self._waiting, ticket)
            try:
                while self._running >= self.slots or self._waiting[0] != ticket:
                    cancel.raise_if_cancelled()
                    self._condition.wait(_CANCEL_POLL_SECONDS)
            except BaseException:
                self._waiting.remove(ticket)
                heapq.heapify(self._waiting)
                self._condition.notify_all()
                raise
            heapq.heappop(self._waiting)
            self._running += 1
            alone = self._running == 1 and not self._waiting
            self._condition.notify_all()  # the next in line may also fit
        try:
            yield alone
        finally:
            with self._condition:
                self._running -= 1
                self._condition.notify_all()

    def busy(self) -> int:
        """Phrases running or waiting now."""
        with self._condition:
            return self._running + len(self._waiting)
