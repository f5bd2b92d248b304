"""`EngineReplica` (the Ray deployment class) with the real Piper engine, driven as Serve drives it (its methods
awaited on an event loop), without Ray: the cluster itself is tests/e2e/test_ray_serve.py.

Serve runs a plain `def` replica method on the loop that runs every method, one call at a time; the replica's
methods are coroutines and async generators whose engine work runs on the replica's own threads.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from pathlib import Path

import pytest

from api.settings import Settings
from engines.base import SynthesisOptions
from engines.ray.replica import EngineReplica
from voxloop.ray import build_engine

pytestmark = pytest.mark.models

STORY = " ".join(["The knight rode north along the river until the light was gone."] * 10)


def test_engine_methods_never_run_on_the_loop() -> None:
    for name in ("transcribe", "stream_transcribe", "synthesize", "stream_chat"):
        assert inspect.isasyncgenfunction(getattr(EngineReplica, name)), name
    for name in ("complete", "recognize"):
        assert inspect.iscoroutinefunction(getattr(EngineReplica, name)), name


async def test_speech_streams_from_an_engine_thread_and_a_dropped_stream_stops_the_engine(tmp_path: Path) -> None:
    replica = EngineReplica(lambda: build_engine(Settings(cache_dir=tmp_path), "piper-joe"), "piper-joe", workers=2)
    engine = replica._engine
    synthesize = engine.synthesize
    seen: list[tuple[str, object]] = []  # (thread, cancel token) of each engine call
    made: list[int] = []
    ended = threading.Event()

    def recorded(text, options, cancel):
        seen.append((threading.current_thread().name, cancel))
        try:
            for n, chunk in enumerate(synthesize(text, options, cancel), 1):
                made.append(n)
                yield chunk
        finally:
            ended.set()

    engine.synthesize = recorded
    options = SynthesisOptions(voice=engine.voices()[0].id)
    loop_thread = threading.current_thread().name

    whole = [chunk async for chunk in replica.synthesize("Hello there. How are you?", options)]
    assert sum(c.duration for c in whole) > 1.0 and len(whole) >= 2
    assert seen[0][0] != loop_thread and seen[0][0].startswith("piper-joe")

    made.clear()
    ended.clear()
    story = replica.synthesize(STORY, options)
    first = await anext(story)
    assert first.duration > 0.1
    await story.aclose()  # the caller left after one chunk
    cancel = seen[-1][1]
    assert cancel.cancelled
    assert await asyncio.to_thread(ended.wait, 60)  # the engine thread stopped at its next chunk...
    assert len(made) < 10, made  # ...far short of the ten sentences
