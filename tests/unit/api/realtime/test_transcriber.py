"""Append-only live deltas: local agreement while speaking, the remainder at the end, never a retraction."""

from __future__ import annotations

from typing import Any

import numpy as np

from api.realtime.transcriber import TurnTranscriber
from engines.base import TranscriptionOptions
from tests.support.fakes import FakeTranscription


async def _run(partials: list[str], final: str) -> list[dict[str, Any]]:
    fake = FakeTranscription([final])  # partials are fed below; only the final pass calls the engine
    emitted: list[dict[str, Any]] = []

    async def emit(event: Any) -> None:
        emitted.append(event.wire())

    turn = TurnTranscriber(fake, None, TranscriptionOptions(), "item_1", emit, partial_interval=0.0)
    for text in partials:  # drive the partial logic directly, as the live loop would
        turn.hypothesis = text
        await turn._partial(text)
    await turn._complete(np.zeros(16000, np.float32))
    return emitted


def _deltas(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] for e in events if e["type"].endswith(".delta"))


async def test_agreed_words_stream_and_concatenate_to_the_final() -> None:
    events = await _run(["The quick", "The quick brown fo", "The quick brown fox jumps"],
                        "The quick brown fox jumps over the dog.")
    deltas = [e["delta"] for e in events if e["type"].endswith(".delta")]
    assert deltas[:2] == ["The quick", " brown"] and len(deltas) == 3
    completed = events[-1]
    assert completed["type"].endswith(".completed") and completed["transcript"] == _deltas(events)
    assert completed["transcript"] == "The quick brown fox jumps over the dog."
    assert all(e["content_index"] == 0 for e in events)


async def test_divergence_is_never_retracted() -> None:
    events = await _run(["Hello word again", "Hello word again and"], "Hello world again and more.")
    completed = events[-1]
    assert completed["transcript"] == _deltas(events)
    assert completed["transcript"].startswith("Hello word again")  # what was sent stays sent


async def test_engine_failure_is_a_failed_event() -> None:
    from engines.base import EngineOverloadedError

    failing = FakeTranscription(error=EngineOverloadedError("busy"))
    emitted: list[dict[str, Any]] = []

    async def emit(event: Any) -> None:
        emitted.append(event.wire())

    await TurnTranscriber(failing, None, TranscriptionOptions(), "item_2", emit, partial_interval=0.5)._complete(
        np.zeros(100, np.float32))
    assert emitted[0]["type"] == "conversation.item.input_audio_transcription.failed"
    assert emitted[0]["error"]["message"] == "busy"
