"""The VAD pool hands instances on between streams, reset, and keeps at most `max_idle`."""

from __future__ import annotations

import numpy as np

from engines.silero_vad import SileroVad, SileroVadPool
from tests.support.speech import speak


def test_reuse_is_reset_and_bounded() -> None:
    built: list[SileroVad] = []

    def factory() -> SileroVad:
        built.append(SileroVad())
        return built[-1]

    pool = SileroVadPool(max_idle=1, factory=factory)
    first, second = pool.acquire(), pool.acquire()
    assert len(built) == 2
    window = speak("Hello there, this is speech.")[: first.window * 20]
    reference = SileroVad()
    fresh = [reference.probability(w) for w in np.split(window, 20)]
    for w in np.split(window, 20):
        first.probability(w)  # leave recurrent state behind
    pool.release(first)
    pool.release(second)
    assert pool.idle == 1  # the second one is dropped, not kept
    again = pool.acquire()
    assert again is first and len(built) == 2
    assert [again.probability(w) for w in np.split(window, 20)] == fresh  # no state carried over
