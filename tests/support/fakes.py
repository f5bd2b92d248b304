"""Test doubles for the unit tests of the services, in one place.

Each stands in for something a unit test cannot run (a model, another server) and is named for what it fakes.
The services under test are the real ones, with the real registry and model manager around the fake engine.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engines.base import (
    AudioBuffer,
    CancelToken,
    Segment,
    TranscriberCapabilities,
    TranscriptionInfo,
    TranscriptionOptions,
)

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
