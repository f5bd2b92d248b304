"""Test doubles for the services, shared by the unit tests (one place, so each stand-in is written once).

Each fake replaces a service class the code under test is typed with (duck-typed: only what the code calls),
records what it was asked, and answers from a script. Real engines are used by the e2e tests; these keep unit
tests fast and deterministic.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

# ===== realtime: the services a realtime session uses (api/realtime/services.py) ================================


class FakeTranscription:
    """`TranscriptionService` for realtime turns: `transcribe_text` answers from `texts` (then `default`)."""

    def __init__(self, texts: Iterable[str] = (), *, default: str = "", error: Exception | None = None):
        self.texts = list(texts)
        self.default = default
        self.error = error
        self.calls: list[int] = []  # samples per call
        self.busy = 0

    def resolve(self, model: str, task: str) -> Any:
        return SimpleNamespace(model_id="fake-asr", capabilities=None)

    @staticmethod
    def check_language(spec: Any, language: str | None) -> None:
        pass

    def in_flight(self, spec: Any) -> int:
        return self.busy

    async def transcribe_text(self, spec: Any, audio: Any, options: Any) -> str:
        self.calls.append(len(audio.samples))
        if self.error is not None:
            raise self.error
        return self.texts.pop(0) if self.texts else self.default


@dataclass
class FakePlan:
    """What `SpeechService.plan` returns: the text to speak, and which engine/voice (for the response metadata)."""

    text: str
    voice: str
    spec: Any = field(default_factory=lambda: SimpleNamespace(model_id="fake-tts"))
    route: Any = None


class FakeSpeech:
    """`SpeechService`: every phrase becomes `bytes_per_char` bytes of silent pcm16 per character, in one chunk."""

    def __init__(self, *, bytes_per_char: int = 4, tags: frozenset[str] = frozenset()):
        self.bytes_per_char = bytes_per_char
        self.tags = tags
        self.spoken: list[str] = []
        self.requests: list[Any] = []

    def plan(self, request: Any) -> FakePlan:
        self.requests.append(request)
        return FakePlan(request.input, str(request.voice))

    async def stream(self, plan: FakePlan) -> AsyncIterator[bytes]:
        self.spoken.append(plan.text)
        yield b"\0" * (len(plan.text) * self.bytes_per_char)

    def expressive_tags(self) -> frozenset[str]:
        return self.tags

    def check_custom_voice(self, voice: Any, model: str) -> None:
        pass


class FakeChat:
    """`ChatService`: streams `reply` as chat-completion chunks of a few characters, then `tool_calls`: each one
    chat-completion `tool_calls` delta (with its own `index`), in order."""

    def __init__(self, reply: str = "Hello there. How are you?", *, chunk: int = 5,
                 tool_calls: list[dict[str, Any]] | None = None, finish_reason: str = "stop",
                 gate: asyncio.Event | None = None):
        self.reply = reply
        self.chunk = chunk
        self.tool_calls = tool_calls or []
        self.finish_reason = finish_reason
        self.gate = gate  # when set, the stream waits for it before the first token (to test cancellation)
        self.bodies: list[dict[str, Any]] = []

    def default_model(self) -> str:
        return "fake-llm"

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        self.bodies.append(body)
        if self.gate is not None:
            await self.gate.wait()
        for start in range(0, len(self.reply), self.chunk):
            yield {"choices": [{"index": 0, "delta": {"content": self.reply[start : start + self.chunk]}}]}
        for call in self.tool_calls:
            yield {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}
        yield {"choices": [{"index": 0, "delta": {}, "finish_reason": self.finish_reason}]}
        yield {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": len(self.reply.split())}}


class FakeEmotion:
    """`EmotionService`: one scripted label for every turn (None: recognition fails)."""

    def __init__(self, label: str | None = "happy", *, uses_transcript: bool = False, delay: float = 0.0):
        self.label = label
        self.uses_transcript = uses_transcript
        self.delay = delay  # seconds before the answer (a late emotion)
        self.transcripts: list[str | None] = []

    def resolve(self, model: str | None) -> Any:
        return SimpleNamespace(model_id="fake-emotion",
                               capabilities=SimpleNamespace(uses_transcript=self.uses_transcript))

    async def recognize(self, audio: Any, transcript: str | None) -> Any:
        from engines.base import EmotionScores

        self.transcripts.append(transcript)
        await asyncio.sleep(self.delay)
        if self.label is None:
            raise RuntimeError("no emotion")
        scores = EmotionScores(label=self.label, scores=((self.label, 0.9), ("neutral", 0.1)), valence=0.5,
                               arousal=0.5, speech=True)
        return SimpleNamespace(emotion=scores, model="fake-emotion")


class FakeMetrics:
    def __init__(self) -> None:
        self.stages: dict[str, float] = {}

    def observe_realtime_stage(self, stage: str, seconds: float) -> None:
        self.stages[stage] = seconds


def fake_realtime_services(*, transcription: FakeTranscription | None = None, speech: FakeSpeech | None = None,
                           chat: FakeChat | None = None, emotion: FakeEmotion | None = None,
                           settings: Any = None, vad_pool: Any = None) -> Any:
    """A `RealtimeServices` made of the fakes above (real `RealtimeSettings` unless given)."""
    from api.realtime.services import RealtimeServices
    from api.settings import RealtimeSettings

    return RealtimeServices(settings=settings or RealtimeSettings(), transcription=transcription or FakeTranscription(),
                            speech=speech or FakeSpeech(), chat=chat or FakeChat(), emotion=emotion or FakeEmotion(),
                            metrics=FakeMetrics(), vad_pool=vad_pool)  # type: ignore[arg-type]


class FakeSession:
    """What `VoiceLoop` uses of its `RealtimeSession`: config, conversation, emit, task group, closing, and
    `response_ended` (counted).

    `emit` keeps each server event as the dict that would go on the wire; run the loop inside
    `async with asyncio.TaskGroup() as session.task_group:`.
    """

    def __init__(self, config: Any = None) -> None:
        from api.realtime.conversation import Conversation
        from api.realtime.session_config import SessionConfig

        self.config = config or SessionConfig()
        self.conversation = Conversation()
        self.events: list[dict[str, Any]] = []
        self.closing = False
        self.responses_ended = 0
        self.task_group: asyncio.TaskGroup | None = None
        self._seen = asyncio.Event()

    async def emit(self, event: Any) -> None:
        self.events.append(event.wire())
        self._seen.set()

    async def until(self, type_: str, timeout: float = 5.0) -> dict[str, Any]:
        """The first emitted event of this type, waiting for it if need be."""
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if event["type"] == type_:
                        return event
                self._seen.clear()
                await self._seen.wait()

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type_]

    def response_ended(self) -> None:
        self.responses_ended += 1


# ===== end of realtime fakes =====================================================================================
