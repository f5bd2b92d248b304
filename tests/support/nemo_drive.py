"""What the NeMo extras tests (tests/extras/test_nemo*.py) share: the speech clips they feed, the HTTP transcription
request, and the streaming engine on the tiny cache-aware model driven the way a live stream drives it."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np

from engines.base import AudioBuffer, CancelToken, TranscriptionOptions
from engines.settings import NemoSettings
from tests.support.speech import PIPER_RATE, silence, speak


def post_transcription(server: str, clip: bytes, **data: str | list[str]) -> httpx.Response:
    return httpx.post(f"{server}/v1/audio/transcriptions", files={"file": ("a.wav", clip)}, data=data, timeout=300)


def speech_16k() -> np.ndarray:
    import soxr

    return soxr.resample(np.concatenate([speak("Hello world, this is a short test."), silence(0.3)]), PIPER_RATE, 16000)


def speech_clips() -> list[AudioBuffer]:
    import soxr

    texts = ["Hello world.", "The quick brown fox jumps over the lazy dog.", "Please send the report.",
             "Numbers one two three four five, and six."]
    return [AudioBuffer(soxr.resample(speak(t), PIPER_RATE, 16000).astype(np.float32), 16000) for t in texts]


def stream_engine(models: dict[str, Path], **settings):
    from engines.nemo_streaming import NemoStreamingTranscriber

    return NemoStreamingTranscriber(str(models["stream"]), NemoSettings(device="cpu", batch_size=8, **settings))


def stream_text(engine, clip: np.ndarray, cancel: CancelToken | None = None, piece: int = 1600) -> str:
    chunks = (AudioBuffer(clip[i : i + piece], 16000) for i in range(0, len(clip), piece))
    *_, last = engine.stream_transcribe(chunks, TranscriptionOptions(), cancel or CancelToken())
    return last.text
