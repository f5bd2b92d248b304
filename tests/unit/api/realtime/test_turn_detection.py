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


def _stop_ms(detector: TurnDetector, clip: np.ndarray) -> float:
    """Where the detector ended the turn, in ms after the clip's speech ends."""
    stops = [e for e in _feed(detector, clip) if e.kind == "speech_stopped"]
    assert len(stops) == 1, stops
    return stops[0].end * 1000 / RATE


def _clip(text: str, after: float = 3.0) -> np.ndarray:
    return soxr.resample(np.concatenate([silence(0.5), speak(text), silence(after)]), PIPER_RATE, RATE)


def test_semantic_vad_waits_longer_for_a_statement_and_longest_for_an_unfinished_sentence() -> None:
    clip = _clip("Are you done?")

    def stop(text: str | None) -> float:
        return _stop_ms(TurnDetector(SemanticVad(eagerness="high"), SileroVad(), 0, transcript=lambda _: text), clip)

    question, exclamation = stop("Are you done?"), stop("We won!")
    statement, unfinished, unknown = stop("I am done."), stop("I went to the"), stop(None)
    assert abs(exclamation - question) < 40  # both hand the turn over: 300 ms
    assert 800 <= statement - question <= 1000  # a statement may be a clause the speaker goes on from: 1.2 s
    assert unfinished - question >= 1600  # 300 ms vs the 2 s ceiling
    assert 700 <= unknown - question <= 1000  # no pass covered the pause yet: halfway (1150 ms)


def _trimmed(text: str) -> np.ndarray:
    """Piper's speech without its own leading and trailing silence (which varies from one synthesis to the next)."""
    samples = speak(text)
    onset, offset = speech_bounds_ms(samples)
    return samples[onset * PIPER_RATE // 1000 : offset * PIPER_RATE // 1000]


def test_semantic_vad_reads_only_a_pass_that_covered_the_pause() -> None:
    """A pass over the speech before a short pause ("I went home.") must not end the turn after the speech that
    followed it: only a pass covering the newest pause counts."""
    asked: list[int] = []

    def covered(speech_end: int) -> str | None:
        asked.append(speech_end)
        return "I went home." if speech_end == asked[0] else None  # only the first pause was transcribed

    speech = np.concatenate([_trimmed("I went home"), silence(0.15), _trimmed("and then I slept for a while.")])
    clip = soxr.resample(np.concatenate([silence(0.5), speech, silence(3.0)]), PIPER_RATE, RATE)
    stop = _stop_ms(TurnDetector(SemanticVad(eagerness="high"), SileroVad(), 0, transcript=covered), clip)
    assert len(set(asked)) > 1  # asked again for the newer speech end
    baseline = _stop_ms(TurnDetector(SemanticVad(eagerness="high"), SileroVad(), 0), clip)
    assert stop == baseline  # the newest pause had no covering pass: the unknown wait, not the 300 ms one


def test_server_vad_ends_finished_turns_early_only_when_opted_in() -> None:
    clip = _clip("What is the weather in Paris?")
    config = ServerVad(silence_duration_ms=900)

    def stop(eager_ms: int | None, text: str | None) -> float:
        return _stop_ms(TurnDetector(config, SileroVad(), 0, transcript=lambda _: text, eager_ms=eager_ms), clip)

    full = stop(None, "What is the weather in Paris?")
    assert stop(300, "What is the weather in Paris?") <= full - 500  # opted in, a finished question: 300 ms
    assert stop(300, "What is the weather in") == full  # unfinished: the session's full silence
    assert stop(300, "The weather in Paris is nice.") == full  # a statement may go on: the full silence
    assert stop(300, None) == full  # nothing covered the pause yet
    assert stop(1200, "What is the weather in Paris?") == full  # never later than silence_duration_ms


def test_what_reads_as_finished() -> None:
    from api.realtime.turn_detection import reads_finished

    finished = ["I am done.", "What is the weather in Paris?", "Who did you go with?", "Thanks!", "It was great.",
                "When I got home, I made dinner.", "I left. If it rains, call me.", "Can you help me?"]
    unfinished = ["I went to the store and", "I went to the store, and...", "Because", "I think that", "Well, um",
                  "I drove to the", "When I got home,", "We talked about", "It was really", "I went there and...",
                  "When I got home.", "It was fine. If it rains tomorrow.", "Let me think.", "Can you tell me?"]
    assert [t for t in finished if not reads_finished(t)] == []
    assert [t for t in unfinished if reads_finished(t)] == []


def test_which_finished_turns_hand_the_turn_over() -> None:
    from api.realtime.turn_detection import turn_end

    assert [turn_end(t) for t in ["Who did you go with?", "Thanks!", "He said \"stop!\"", "Can you help me?"]] == [
        "handover"] * 4
    assert [turn_end(t) for t in ["I am done.", "It was great.", "When I got home, I made dinner."]] == [
        "statement"] * 3
    assert [turn_end(t) for t in ["I went to the store and", "When I got home.", "Can you tell me?"]] == [
        "unfinished"] * 3
