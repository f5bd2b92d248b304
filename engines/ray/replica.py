"""`EngineReplica`: one Ray Serve replica holding one engine (a transcriber, a synthesizer, an emotion recognizer or
the embedded LLM).

The replica builds its engine itself from a picklable builder (voxloop/ray.py passes one that rebuilds the model's
spec from settings), so weights load on the replica's node, never on the driver. Its methods mirror the engine
Protocols; streaming ones are generators, so a handle called with `stream=True` gets speech chunks, transcription
segments/updates and chat tokens as they come, not whole results. Values cross as the engines' own frozen
dataclasses (pickled by Ray).

A cancel token cannot cross processes: when the caller drops the stream, Ray cancels the generator and the engine
stops at its next chunk boundary (the generator is closed, which closes the engine's iterator).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

from engines.base import (
    AudioBuffer,
    AudioChunk,
    CancelToken,
    EmotionOptions,
    EmotionScores,
    Engine,
    Segment,
    StreamingUpdate,
    SynthesisOptions,
    TranscriptionInfo,
    TranscriptionOptions,
    Voice,
)


class EngineReplica:
    """The deployment class (voxloop/ray.py wraps it with `serve.deployment`, one deployment per model id)."""

    def __init__(self, build: Callable[[], Engine], model_id: str):
        self.model_id = model_id
        self._engine: Any = build()

    # --- introspection ------------------------------------------------------------------------------------

    def capabilities(self) -> Any:
        return self._engine.capabilities

    def whoami(self) -> dict[str, str]:
        """Which replica and node answered (tests assert the spread; bench and logs use it)."""
        import ray
        from ray import serve

        context = serve.get_replica_context()
        return {
            "model": self.model_id,
            "replica": context.replica_id.unique_id,
            "node": ray.get_runtime_context().get_node_id(),
            "host": socket.gethostname(),
            "pid": str(os.getpid()),
        }

    # --- transcription ------------------------------------------------------------------------------------

    def transcribe(self, audio: AudioBuffer, options: TranscriptionOptions) -> Iterator[TranscriptionInfo | Segment]:
        """The info first, then each segment as the engine yields it."""
        info, segments = self._engine.transcribe(audio, options, CancelToken())
        yield info
        try:
            yield from segments
        finally:
            close = getattr(segments, "close", None)
            if close is not None:
                close()

    def stream_transcribe(self, chunks: list[AudioBuffer], options: TranscriptionOptions) -> Iterator[StreamingUpdate]:
        """A streaming transcriber's updates for audio already gathered (the proxy sends what it has)."""
        yield from self._engine.stream_transcribe(iter(chunks), options, CancelToken())

    # --- speech -------------------------------------------------------------------------------------------

    def voices(self) -> list[Voice]:
        return list(self._engine.voices())

    def synthesize(self, text: str, options: SynthesisOptions) -> Iterator[AudioChunk]:
        chunks = self._engine.synthesize(text, options, CancelToken())
        try:
            yield from chunks
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    # --- chat (the embedded LLM) ---------------------------------------------------------------------------

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._engine.complete(body, CancelToken())

    def stream_chat(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """`chat.completion.chunk` dicts, one per token as llama.cpp makes them."""
        chunks = self._engine.stream(body, CancelToken())
        try:
            yield from chunks
        finally:
            chunks.close()  # a cancelled call stops the model at its next token

    # --- emotion ------------------------------------------------------------------------------------------

    def recognize(self, audio: AudioBuffer, options: EmotionOptions) -> EmotionScores:
        return self._engine.recognize(audio, options, CancelToken())

    def __del__(self) -> None:
        engine = self.__dict__.get("_engine")
        if engine is not None:
            engine.close()
