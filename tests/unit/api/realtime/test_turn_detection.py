"""Turn detection on Silero VAD, fed offline (no socket, no pacing): boundaries and OpenAI's ms semantics."""

from __future__ import annotations

import numpy as np
import soxr

from api.realtime.input_buffer import RATE
from api.realtime.session_config import SemanticVad, ServerVad
from api.realtime.turn_detection import TurnDetector
from engines.silero_vad import SileroVad
from tests.support.realtime import speech_bounds_ms
from tests.support.speech import PIPER_RATE, silence, speak

SENTENCE = "Turn detection should find where this sentence starts and where it ends."


def _feed(detector: TurnDetector, samples: np.ndarray, chunk: int = 1600) -> list:
    out = []
    for offset in range(0, len(samples), chunk):
        out += detector.feed(samples[offset : offset + chunk])
    return out


def test_server_vad_boundaries_include_padding_and_silence() -> None:
    speech = speak(SENTENCE)
    onset, offset = speech_bounds_ms(speech)
    clip = soxr.resample(np.concatenate([silence(1.0), speech, silence(1.0)]), PIPER_RATE, RATE)
    config = ServerVad(prefix_padding_ms=200, silence_duration_ms=600)
    events = _feed(TurnDetector(config, SileroVad(), 0), clip)
    assert [e.kind for e in events] == ["speech_started", "speech_stopped"]
    start_ms, end_ms = events[0].start * 1000 // RATE, events[1].end * 1000 // RATE
    assert abs(start_ms - (1000 + onset - 200)) <= 150
    assert abs(end_ms - (1000 + offset + 600)) <= 150


def test_idle_timeout_on_silence() -> None:
    detector = TurnDetector(ServerVad(idle_timeout_ms=5000), SileroVad(), 0)
    events = _feed(detector, np.zeros(RATE * 11, np.float32))
    assert [e.kind for e in events] == ["timeout", "timeout"]
    assert abs((events[0].end - events[0].start) - 5 * RATE) <= 512


def test_semantic_vad_waits_longer_for_an_unfinished_sentence() -> None:
    finished = TurnDetector(SemanticVad(eagerness="high"), SileroVad(), 0, transcript=lambda: "I am done.")
    unfinished = TurnDetector(SemanticVad(eagerness="high"), SileroVad(), 0, transcript=lambda: "I went to the")
    clip = soxr.resample(np.concatenate([silence(0.5), speak("I am done."), silence(3.0)]), PIPER_RATE, RATE)
    stop_finished = [e for e in _feed(finished, clip) if e.kind == "speech_stopped"][0]
    stop_unfinished = [e for e in _feed(unfinished, clip) if e.kind == "speech_stopped"][0]
    assert stop_unfinished.end - stop_finished.end >= RATE  # 300 ms vs the 2 s ceiling
