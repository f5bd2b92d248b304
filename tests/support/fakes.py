"""Test doubles shared by the unit tests, in one place (so each stand-in is written once).

Each stands in for something a unit test cannot run (a model, another server, a service a realtime session is
typed with), is named for what it fakes, records what it was asked and answers from a script. Real engines are
used by the e2e tests; these keep unit tests fast and deterministic.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

from engines.base import (
    AudioBuffer,
    CancelToken,
    Segment,
    TranscriberCapabilities,
    TranscriptionInfo,
    TranscriptionOptions,
)

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
        self.speculations: list[str] = []  # hit / miss / none per reply
        self.dropped: list[str] = []  # why a speculation was dropped

    def observe_realtime_stage(self, stage: str, seconds: float) -> None:
        self.stages[stage] = seconds

    def observe_speculation(self, outcome: str) -> None:
        self.speculations.append(outcome)

    def speculation_dropped(self, reason: str) -> None:
        self.dropped.append(reason)


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

# --- transcription and chat services ------------------------------------------------------------------------


class ScriptedTranscriber:
    """Fakes a speech recogniser (a `Transcriber`): it "hears" a script of (start, end, text) in absolute seconds,
    returning for each window the lines that start inside it (numbered from 0 per call, as engines do), and the
    language it was told, else `detected`. Remembers every call's window and options."""

    def __init__(self, script: list[tuple[float, float, str]], capabilities: TranscriberCapabilities,
                 detected: str = "en"):
        self.script = script
        self.capabilities = capabilities
        self.detected = detected
        self.calls: list[tuple[AudioBuffer, TranscriptionOptions]] = []

    def transcribe(
        self, audio: AudioBuffer, options: TranscriptionOptions, cancel: CancelToken
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        self.calls.append((audio, options))
        end = audio.offset + audio.duration
        heard = [(s, e, t) for s, e, t in self.script if audio.offset <= s < end]
        segments = (Segment(id=i, start=s, end=e, text=t) for i, (s, e, t) in enumerate(heard))
        return TranscriptionInfo(options.language or self.detected, audio.duration), segments

    def close(self) -> None:
        return None


class ScriptedChatEngine:
    """Fakes the embedded LLM (llama.cpp): answers every request with `reply`, streamed word by word as
    chat-completion chunks. Remembers the bodies it got."""

    def __init__(self, reply: str = "Hello there."):
        self.reply = reply
        self.bodies: list[dict[str, Any]] = []

    def complete(self, body: dict[str, Any], cancel: CancelToken | None = None) -> dict[str, Any]:
        self.bodies.append(body)
        return {"id": "chatcmpl-fake", "object": "chat.completion", "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": self.reply},
                             "finish_reason": "stop"}]}

    def stream(self, body: dict[str, Any], cancel: CancelToken) -> Iterator[dict[str, Any]]:
        self.bodies.append(body)
        for i, word in enumerate(self.reply.split(" ")):
            yield chat_chunk(word if i == 0 else " " + word)
        yield chat_chunk(None, finish_reason="stop")

    def close(self) -> None:
        return None


def chat_chunk(content: str | None, finish_reason: str | None = None) -> dict[str, Any]:
    delta = {"content": content} if content is not None else {}
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}


@dataclass
class UpstreamAnswer:
    """One scripted answer of `ScriptedUpstream`: a status, a content type and the raw body."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> UpstreamAnswer:
        return cls(status, json.dumps(payload).encode())

    @classmethod
    def sse(cls, *events: dict[str, Any] | str) -> UpstreamAnswer:
        lines = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
        return cls(200, ": a comment\n\n".join(lines).encode(), "text/event-stream")


@dataclass
class ScriptedUpstream:
    """Fakes an OpenAI-compatible LLM server (vLLM) on a loopback port: `answers[path]` is what it says to any
    request on that path (404 otherwise); `requests` holds (path, JSON body, headers) of each request it got."""

    answers: dict[str, UpstreamAnswer] = field(default_factory=dict)
    requests: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)


@contextmanager
def scripted_upstream(upstream: ScriptedUpstream) -> Iterator[str]:
    """Serve `upstream` over HTTP; yields its base URL ending in /v1."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.removeprefix("/v1")
            upstream.requests.append((path, json.loads(raw) if raw else None, dict(self.headers)))
            answer = upstream.answers.get(path, UpstreamAnswer.json({"error": {"message": "no route"}}, 404))
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)