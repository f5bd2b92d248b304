"""Warm start: load and run once, in the background at startup, what the voice loop uses first.

Models load on first use, so without this the first spoken turn after `voxloop serve` waited for Silero, Whisper,
the LLM, both duet voices and the emotion model to load and compile their kernels (9.4 s end of speech to first
audio, against 1.0-2.6 s for the next turns). Each role here runs one tiny real request through its service, so
the engine is loaded and its first-call costs are paid. `/ready` answers 503 until every listed role is warm.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import numpy as np

from api.settings import WarmRole
from api.speech.protocol import SpeechRequest
from engines.base import AudioBuffer, CancelToken, TranscriptionOptions

if TYPE_CHECKING:
    from api.deps import Services

logger = logging.getLogger(__name__)

_RATE = 16_000


def _murmur(seconds: float = 1.0) -> np.ndarray:
    """Quiet noise: real input for every model, and nothing any of them will make words of."""
    return (np.random.default_rng(0).standard_normal(int(seconds * _RATE)) * 0.003).astype(np.float32)


class WarmUp:
    """The warm-up of one app: which roles are still cold, which failed, and the task doing it."""

    def __init__(self, services: Services, roles: list[WarmRole]):
        self._services = services
        self.pending: list[WarmRole] = list(dict.fromkeys(roles))
        self.failed: dict[str, str] = {}
        self.seconds: dict[str, float] = {}

    @property
    def done(self) -> bool:
        return not self.pending

    async def run(self) -> None:
        steps: dict[WarmRole, Callable[[], Awaitable[None]]] = {
            "vad": self._vad, "transcription": self._transcription, "chat": self._chat, "speech": self._speech,
            "emotion": self._emotion,
        }
        for role in list(self.pending):
            started = time.monotonic()
            try:
                await steps[role]()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a model that cannot load: /ready says so; requests will get a clear 503
                logger.warning("warm-up of %s failed: %s", role, exc)
                self.failed[role] = str(exc) or type(exc).__name__
            self.seconds[role] = round(time.monotonic() - started, 2)
            self.pending.remove(role)
        logger.info("warm: %s", ", ".join(f"{role} {s:.1f}s" for role, s in self.seconds.items()))

    async def _vad(self) -> None:
        pool = self._services.vad_pool
        vad = await asyncio.to_thread(pool.acquire)
        try:
            await asyncio.to_thread(vad.probability, _murmur(0.032))
        finally:
            pool.release(vad)

    async def _transcription(self) -> None:
        services = self._services
        spec = services.registry.resolve(services.settings.whisper.default_model, "transcription")
        async with services.manager.lease(spec) as lease:

            def work() -> None:
                _info, segments = lease.engine.transcribe(AudioBuffer(_murmur(), _RATE), TranscriptionOptions(),
                                                          CancelToken())
                list(segments)

            await lease.call(work)

    async def _chat(self) -> None:
        chat = self._services.chat
        if chat.upstream is not None:
            return  # a proxied LLM is the upstream's to warm
        await chat.complete({"model": chat.default_model(), "messages": [{"role": "user", "content": "Hi"}],
                             "max_tokens": 1})

    async def _speech(self) -> None:
        speech, tts = self._services.speech, self._services.settings.tts
        for model in dict.fromkeys((tts.fast_model, tts.expressive_model)):
            plan = speech.plan(SpeechRequest(model=model, input="Hello there.", voice="alloy", response_format="pcm"))
            async for _ in speech.stream(plan):
                pass

    async def _emotion(self) -> None:
        await self._services.emotion.recognize(AudioBuffer(_murmur(), _RATE), transcript="hello")
