"""The generic cross-request batcher: concurrent calls merge into one model call, each caller gets its own results
(or its own error), keys and the size cap are respected, and a cancelled waiting caller leaves the queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import pytest

from engines.base import CancelledByClient, CancelToken
from engines.batching import Batcher


class SlowModel:
    """Doubles numbers, one call at a time; items equal to `poison` make the whole call fail (a bad input)."""

    def __init__(self, poison: int | None = None, delay: float = 0.1):
        self.calls: list[list[int]] = []
        self.poison = poison
        self.delay = delay
        self.running = threading.Event()

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.calls.append(list(items))
        self.running.set()
        time.sleep(self.delay)  # long enough for the other threads to queue up behind this call
        if self.poison is not None and self.poison in items:
            raise ValueError(f"bad input {self.poison}")
        return [2 * i for i in items]


def _concurrently(fns: list[Callable[[], object]], stagger: float = 0.005) -> list[object]:
    results: list[object] = [None] * len(fns)

    def go(i: int) -> None:
        try:
            results[i] = fns[i]()
        except BaseException as exc:  # collected for the assertions
            results[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
        time.sleep(stagger)
    for t in threads:
        t.join(10)
    return results


def test_concurrent_requests_share_calls_and_get_their_own_results() -> None:
    model, batcher = SlowModel(), Batcher(max_items=32)
    requests = [[10 * r + k for k in range(r + 1)] for r in range(6)]  # 1..6 items each
    results = _concurrently([lambda r=r: batcher.run(r, model) for r in requests])
    assert results == [[2 * i for i in r] for r in requests]
    # The first request ran alone (nobody waited yet); the five that arrived meanwhile shared the next call.
    assert len(model.calls) == 2, model.calls
    assert batcher.batch_sizes == [1, 20] and batcher.largest_merge == 5
    assert sorted(i for call in model.calls for i in call) == sorted(i for r in requests for i in r)


def test_alone_no_waiting_for_company() -> None:
    model, batcher = SlowModel(delay=0.0), Batcher(max_items=16)
    assert batcher.run([1, 2], model) == [2, 4]
    assert batcher.run([3], model) == [6]
    assert model.calls == [[1, 2], [3]]


def test_max_items_and_keys_are_respected() -> None:
    model, batcher = SlowModel(), Batcher(max_items=3)
    specs = [("en", [1]), ("en", [2, 3]), ("fr", [4]), ("en", [5]), ("en", [6, 7]), ("en", [8, 9, 10, 11])]
    results = _concurrently([lambda k=k, items=items: batcher.run(items, model, key=k) for k, items in specs])
    assert results == [[2 * i for i in items] for _, items in specs]
    assert max(batcher.batch_sizes[:-1]) <= 3 and 4 in batcher.batch_sizes  # an oversized request runs alone, whole
    for call in model.calls:
        assert (4 in call) == (call == [4]), model.calls  # `fr` never merges with `en`


def test_a_failing_input_fails_only_its_own_request() -> None:
    model, batcher = SlowModel(poison=13), Batcher(max_items=16)
    requests = [[1], [12, 13], [14], [15, 16]]
    results = _concurrently([lambda r=r: batcher.run(r, model) for r in requests])
    assert results[0] == [2] and results[2] == [28] and results[3] == [30, 32]
    assert isinstance(results[1], ValueError) and "13" in str(results[1])
    # The merged call failed, then each of its requests ran alone.
    assert [12, 13, 14, 15, 16] in model.calls and [14] in model.calls and [15, 16] in model.calls
    assert batcher.run([7], model) == [14]  # and the batcher is still usable


def test_a_lone_failure_is_raised_to_that_caller() -> None:
    batcher = Batcher(max_items=4)
    with pytest.raises(ValueError):
        batcher.run([13], SlowModel(poison=13, delay=0.0))


def test_wrong_result_count_is_an_error_not_a_misroute() -> None:
    batcher = Batcher(max_items=4)
    with pytest.raises(RuntimeError, match="2 results for 3 items"):
        batcher.run([1, 2, 3], lambda items: [0, 0])


def test_cancelling_a_waiting_request_removes_it_and_spares_the_others() -> None:
    model, batcher = SlowModel(delay=0.3), Batcher(max_items=16, cancel_poll=0.01)
    tokens = [CancelToken() for _ in range(4)]
    requests = [[1], [2], [3], [4]]

    def cancel_third() -> None:
        model.running.wait(5)
        time.sleep(0.1)  # requests 2-4 wait behind the first call now
        tokens[2].cancel()

    canceller = threading.Thread(target=cancel_third)
    canceller.start()
    results = _concurrently([lambda i=i: batcher.run(requests[i], model, cancel=tokens[i]) for i in range(4)])
    canceller.join()
    assert results[0] == [2] and results[1] == [4] and results[3] == [8]
    assert isinstance(results[2], CancelledByClient)
    assert all(3 not in call for call in model.calls), model.calls
    assert model.calls == [[1], [2, 4]]


def test_cancelling_a_request_in_a_running_batch_does_not_disturb_it() -> None:
    model, batcher = SlowModel(delay=0.2), Batcher(max_items=16, cancel_poll=0.01)
    token = CancelToken()

    def cancel_soon() -> None:
        model.running.wait(5)
        token.cancel()

    threading.Thread(target=cancel_soon).start()
    assert batcher.run([5], model, cancel=token) == [10]  # already running: its result still arrives


def test_empty_request() -> None:
    assert Batcher(max_items=2).run([], SlowModel()) == []
