"""Eager turn ends over a real socket with the official SDK and real engines (Silero VAD, Whisper tiny.en).

A turn whose transcript (the pass over all its speech, run 200 ms into the pause) reads as a finished sentence
ends after a short silence; one that stops on "and", "because" or a comma waits, so a speaker who pauses mid-sentence
is not cut off. `semantic_vad` always works this way; `server_vad` only when the server opts in
(`VOXLOOP_REALTIME__SERVER_VAD_EAGER_MS`), and then never later than its `silence_duration_ms`. Positions are audio
time (the VAD's `audio_end_ms`), so the bounds hold on a loaded machine as long as a pass ends within the long wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import openai
import pytest

from tests.support.realtime import Events, speech_bounds_ms, stream_audio, to_pcm16_24k
from tests.support.speech import pcm16_wav, silence, speak

pytestmark = pytest.mark.models

LEAD = 0.3  # silence before the speech, in s


@pytest.fixture
def client(server_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server_url}/v1", api_key="sk-local", max_retries=0)


@pytest.fixture
def realtime(app, sdk: openai.OpenAI) -> Iterator[Any]:
    """The server's realtime settings; each test leaves the eager opt-in as it found it. Whisper is loaded first: a
    pass that includes the model's load outlasts the pause, and the turn would wait as if nothing were transcribed."""
    sdk.audio.transcriptions.create(model="whisper-1", file=("hi.wav", pcm16_wav(to_pcm16_24k(speak("Hello.")))))
    settings = app.state.services.settings.realtime
    before = settings.server_vad_eager_ms
    yield settings
    settings.server_vad_eager_ms = before


async def _turns(client: openai.AsyncOpenAI, turn_detection: dict[str, Any], speech: np.ndarray,
                 after: float) -> tuple[list[dict[str, Any]], list[str]]:
    """Speak `speech` then `after` s of silence at a microphone's pace: the speech_stopped events and transcripts."""
    async with client.realtime.connect(model="voxloop") as conn:
        events = Events(conn)
        await events.until("session.created")
        await conn.session.update(session={"type": "realtime", "audio": {"input": {
            "transcription": {"model": "whisper-1"}, "turn_detection": {**turn_detection, "create_response": False}}}})
        await events.until("session.updated")
        await stream_audio(conn, to_pcm16_24k(np.concatenate([silence(LEAD), speech, silence(after)])))
        while True:  # what the turn detector made of it, once the server has nothing more to say
            try:
                await events.next(timeout=2.0)
            except TimeoutError:
                break
        stops = events.of("input_audio_buffer.speech_stopped")
        done = "conversation.item.input_audio_transcription.completed"
        while len(events.of(done)) < len(stops):
            await events.until(done, timeout=60)
        return stops, [e["transcript"] for e in events.of(done)]


def _end_ms(speech: np.ndarray) -> float:
    return LEAD * 1000 + speech_bounds_ms(speech)[1]


async def test_server_vad_ends_a_finished_question_early_only_when_opted_in(
    client: openai.AsyncOpenAI, realtime: Any
) -> None:
    question = speak("What is the weather in Paris?")
    # A long silence_duration_ms: the eager end only needs the pass over the question back within it (seconds on a
    # loaded 2-core machine).
    vad = {"type": "server_vad", "silence_duration_ms": 4000}
    realtime.server_vad_eager_ms = None
    stops, _ = await _turns(client, vad, question, 5.0)
    assert len(stops) == 1 and stops[0]["audio_end_ms"] - _end_ms(question) >= 3800  # OpenAI's behaviour
    realtime.server_vad_eager_ms = 300
    stops, transcripts = await _turns(client, vad, question, 5.0)
    assert len(stops) == 1 and stops[0]["audio_end_ms"] - _end_ms(question) <= 3000, stops
    assert "paris" in transcripts[0].lower()


@pytest.mark.parametrize("vad", [
    {"type": "semantic_vad", "eagerness": "high"},
    {"type": "server_vad", "silence_duration_ms": 1500},  # with the eager opt-in at 300 ms
], ids=["semantic_vad-high", "server_vad-eager"])
async def test_a_speaker_pausing_mid_sentence_is_not_cut_off(
    client: openai.AsyncOpenAI, realtime: Any, vad: dict[str, Any]
) -> None:
    realtime.server_vad_eager_ms = 300
    speech = np.concatenate([speak("I need to finish this report because"), silence(0.9),
                             speak("the meeting is tomorrow.")])
    stops, transcripts = await _turns(client, vad, speech, 3.0)
    assert len(stops) == 1, (stops, transcripts)  # one turn, not two
    heard = transcripts[0].lower()
    assert "report" in heard and "meeting" in heard, heard
