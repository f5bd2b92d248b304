"""`EngineReplica`: one Ray Serve replica holding one engine (a transcriber, a synthesizer, an emotion recognizer or
the embedded LLM).

The replica builds its engine itself from a picklable builder (voxloop/ray.py passes one that rebuilds the model's
spec from settings), so weights load on the replica's node, never on the driver. Its methods mirror the engine
Protocols; streaming ones are generators, so a handle called with `stream=True` gets speech chunks, transcription
segments/updates and chat tokens as they come, not whole results. Values cross as the engines' own frozen
dataclasses (pickled by Ray).

The engine runs on the replica's own threads (`workers`, as many as in-process gives the model), never on the event
loop Serve runs the replica's methods on: Serve runs a plain `def` method there, one call at a time, so a replica
would serve one request at a time whatever its `max_ongoing_requests`, and cross-request batching (Whisper's) would
never see two requests. Each streaming call is one engine iteration on one thread, its items handed to the loop as
they come (one hop per item).

A cancel token cannot cross processes: when the caller drops the stream, Ray cancels the generator; the replica
cancels the engine's token and the engine stops at its next chunk boundary (its iterator is closed).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from typing import Any, TypeVar

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

T = TypeVar("T")
_END = object()
_AUDIO_POLL_SECONDS = 0.1  # how often an engine thread waiting for live audio looks whether its call was dropped


class EngineReplica:
    """The deployment class (voxloop/ray.py wraps it with `serve.deployment`, one deployment per model id)."""

    def __init__(self, build: Callable[[], Engine], model_id: str, workers: int = 1):
        self.model_id = model_id
        self._engine: Any = build()
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=model_id)

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def _stream(self, items: Callable[[CancelToken], Iterator[T]]) -> AsyncIterator[T]:
        """`items(cancel)` iterated on one engine thread; each item is yielded here as soon as it is made."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = CancelToken()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone (the replica is shutting down): nobody is listening
                cancel.cancel()

        def produce() -> None:
            try:
                iterator = items(cancel)
                try:
                    for item in iterator:
                        put(item)
                        if cancel.cancelled:
                            break
                finally:
                    close = getattr(iterator, "close", None)
                    if close is not None:
                        close()
            except BaseException as exc:  # the engine's error, re-raised to the caller
                put(_Failed(exc))
            else:
                put(_END)

        loop.run_in_executor(self._pool, produce)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.error
                yield item
        finally:
            cancel.cancel()  # the caller left (or Ray cancelled the call): the engine stops at its next chunk

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

    async def transcribe(self, audio: AudioBuffer, options: TranscriptionOptions
                         ) -> AsyncIterator[TranscriptionInfo | Segment]:
        """The info first, then each segment as the engine yields it."""

        def items(cancel: CancelToken) -> Iterator[TranscriptionInfo | Segment]:
            info, segments = self._engine.transcribe(audio, options, cancel)
            yield info
            try:
                yield from segments
            finally:
                close = getattr(segments, "close", None)
                if close is not None:
                    close()

        async with aclosing(self._stream(items)) as stream:
            async for item in stream:
                yield item

    async def stream_transcribe(self, audio: Any, options: TranscriptionOptions) -> AsyncIterator[StreamingUpdate]:
        """A streaming transcriber's updates while live audio comes: `audio` is a `ray.util.queue.Queue` the caller
        fills with `AudioBuffer`s as it gets them, then None (engines/ray/proxy.py). The engine's thread takes them
        from the queue as the engine asks for them."""

        def chunks(cancel: CancelToken) -> Iterator[AudioBuffer]:
            from ray.util.queue import Empty

            while True:
                try:
                    chunk = audio.get(timeout=_AUDIO_POLL_SECONDS)
                except Empty:
                    if cancel.cancelled:
                        return
                    continue
                if chunk is None:
                    return
                yield chunk

        updates = self._stream(lambda cancel: self._engine.stream_transcribe(chunks(cancel), options, cancel))
        async with aclosing(updates) as stream:
            async for update in stream:
                yield update

    # --- speech -------------------------------------------------------------------------------------------

    def voices(self) -> list[Voice]:
        return list(self._engine.voices())

    async def synthesize(self, text: str, options: SynthesisOptions) -> AsyncIterator[AudioChunk]:
        async with aclosing(self._stream(lambda cancel: self._engine.synthesize(text, options, cancel))) as stream:
            async for chunk in stream:
                yield chunk

    # --- chat (the embedded LLM) ---------------------------------------------------------------------------

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call(lambda: self._engine.complete(body, CancelToken()))

    async def stream_chat(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """`chat.completion.chunk` dicts, one per token as llama.cpp makes them (a cancelled call stops the model
        at its next token: its iterator is closed)."""
        async with aclosing(self._stream(lambda cancel: self._engine.stream(body, cancel))) as stream:
            async for chunk in stream:
                yield chunk

    # --- emotion ------------------------------------------------------------------------------------------

    async def recognize(self, audio: AudioBuffer, options: EmotionOptions) -> EmotionScores:
        return await self._call(lambda: self._engine.recognize(audio, options, CancelToken()))

    def __del__(self) -> None:
        pool = self.__dict__.get("_pool")
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        engine = self.__dict__.get("_engine")
        if engine is not None:
            engine.close()


class _Failed:
    """An engine error on its way from the engine thread to the caller."""

    def __init__(self, error: BaseException):
        self.error = error
