"""Cross-request batching: concurrent calls into one model share its batched call.

Each request runs on its own thread (the manager's workers) and hands its items to a `Batcher`. Whichever thread
finds the model idle becomes the leader: it takes every compatible waiting item (same key, up to `max_items` in
all), runs them as one call to the model, gives each item its own result and wakes the others. There is no timer:
a batch forms from whatever arrived while the previous one ran, so a lone request never waits for company.

- Per item: each request gets its own result or its own error. When a merged call fails, each of its requests is
  run again on its own, so one bad input fails only its request (a call of one request fails only that request).
- Cancellation: a request whose `CancelToken` is set while it waits is taken out of the queue and raises
  `CancelledByClient`; requests already in a running batch are not disturbed.
- Keys: only items with equal keys merge (e.g. the same task, language and decoding options).
- `batch_sizes` records the items of every call run (for tests and benchmarks).

Used by faster-whisper's decoder (`engines/whisper_batching.py`), NeMo transcription (`engines/nemo.py`), emotion2vec+
(`engines/emotion2vec.py`, padded batches in `engines/emotion2vec_batch.py`) and the torch
Kokoro's phrases (`engines/kokoro_torch.py`, padded batches in `engines/kokoro_batch.py`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from engines.base import CancelledByClient, CancelToken

T = TypeVar("T")  # what one request hands in (a list of its items)
R = TypeVar("R")  # what one item gives back

# The model call: every request's items of one batch, in order, and their results in the same order.
BatchCall = Callable[[Sequence[Any]], Sequence[Any]]


@dataclass(eq=False)
class _Request:
    key: Hashable
    items: list[Any]
    call: BatchCall
    cancel: CancelToken | None
    result: list[Any] | None = None
    error: BaseException | None = None
    done: bool = False
    taken: bool = False  # in a running batch: cancelling no longer removes it
    extra: dict[str, Any] = field(default_factory=dict)


class Batcher(Generic[T, R]):
    """Serialises calls into one model and merges compatible concurrent ones (leader/follower, no extra thread).

    `max_items`: the most items one call takes; a request larger than that runs alone, whole.
    `cancel_poll`: how often (seconds) a waiting request looks at its cancel token.
    """

    def __init__(self, max_items: int, *, cancel_poll: float = 0.05):
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.max_items = max_items
        self._cancel_poll = cancel_poll
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._busy = False
        self.batches_run = 0
        self.largest_merge = 0  # most requests merged into one call
        self.batch_sizes: list[int] = []  # items per call, in the order the calls ran

    @property
    def waiting(self) -> int:
        """Requests queued for the next call (not counting the one running)."""
        with self._cond:
            return len(self._pending)

    def run(
        self, items: Sequence[Any], call: BatchCall, *, key: Hashable = None, cancel: CancelToken | None = None
    ) -> list[Any]:
        """Run `items` through `call`, merged with whatever compatible requests wait; returns their results."""
        request = _Request(key, list(items), call, cancel)
        if not request.items:
            return []
        with self._cond:
            self._pending.append(request)
            while not request.done:
                if self._busy:
                    self._cond.wait(self._cancel_poll if cancel is not None else None)
                    if not request.taken and cancel is not None and cancel.cancelled:
                        self._pending.remove(request)
                        self._cond.notify_all()
                        raise CancelledByClient("the request was cancelled while waiting for the model")
                    continue
                if not request.taken and cancel is not None and cancel.cancelled:
                    self._pending.remove(request)
                    self._cond.notify_all()
                    raise CancelledByClient("the request was cancelled while waiting for the model")
                batch = self._take_batch()
                self._busy = True
                self._cond.release()
                try:
                    self._execute(batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _take_batch(self) -> list[_Request]:
        """The oldest waiting request and every later one with its key, while the items fit."""
        first = self._pending[0]
        batch, count = [], 0
        for request in list(self._pending):
            if request.key != first.key or (batch and count + len(request.items) > self.max_items):
                continue
            batch.append(request)
            count += len(request.items)
            request.taken = True
            self._pending.remove(request)
        return batch

    def _execute(self, batch: list[_Request]) -> None:
        try:
            try:
                self._call(batch)
            except BaseException as exc:
                if len(batch) == 1 or not isinstance(exc, Exception):
                    for request in batch:
                        request.error = exc
                else:  # find whose input failed: each request again on its own
                    for request in batch:
                        try:
                            self._call([request])
                        except Exception as own:
                            request.error = own
        finally:
            for request in batch:
                request.done = True
            self.batches_run += 1
            self.largest_merge = max(self.largest_merge, len(batch))

    def _call(self, batch: list[_Request]) -> None:
        items = [item for request in batch for item in request.items]
        self.batch_sizes.append(len(items))
        results = list(batch[0].call(items))
        if len(results) != len(items):
            raise RuntimeError(f"the batched call gave {len(results)} results for {len(items)} items")
        start = 0
        for request in batch:
            request.result = results[start : start + len(request.items)]
            start += len(request.items)
