"""The prosody + lexicon baseline moves the right way on controlled inputs spoken by the Piper test voice.

Each test changes one thing (loudness, rate, pitch, words) of the same sentence, or all of them at once, and checks
the direction of the change, not exact values: the baseline is a calibrated heuristic, not a trained model.
"""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from engines.base import AudioBuffer, CancelToken, EmotionOptions
from engines.prosody_baseline import ProsodyLexiconRecognizer, count_syllables, measure
from tests.support.speech import PIPER_RATE, silence, speak

pytestmark = pytest.mark.models

ANGRY = "I am furious! This is outrageous and I hate it!"
SAD = "I feel so sad and lonely. Everything is hopeless."
NEUTRAL = "The meeting is on Tuesday at three in the afternoon."
HAPPY = "What a wonderful day, I love it and I am so happy."


@pytest.fixture(scope="module")
def engine() -> ProsodyLexiconRecognizer:
    return ProsodyLexiconRecognizer()


def buf(samples: np.ndarray) -> AudioBuffer:
    return AudioBuffer(soxr.resample(np.clip(samples, -1, 1), PIPER_RATE, 16_000).astype(np.float32), 16_000)


def pitch_shifted(samples: np.ndarray, factor: float) -> np.ndarray:
    """Same words, same timing, pitch times `factor` (Praat's PSOLA "Change gender", formants kept)."""
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(samples.astype(np.float64), sampling_frequency=PIPER_RATE)
    median = call(sound.to_pitch(), "Get quantile", 0, 0, 0.5, "Hertz")
    shifted = call(sound, "Change gender", 75, 600, 1.0, median * factor, 1.0, 1.0)
    return shifted.values[0].astype(np.float32)


def run(engine: ProsodyLexiconRecognizer, samples: np.ndarray, transcript: str | None):
    return engine.recognize(buf(samples), EmotionOptions(transcript=transcript), CancelToken())


def test_louder_speech_is_more_aroused(engine) -> None:
    x = speak(NEUTRAL)
    quiet, loud = run(engine, x * 0.2, NEUTRAL), run(engine, x * 2.0, NEUTRAL)
    assert dict(loud.features)["loudness_db"] - dict(quiet.features)["loudness_db"] == pytest.approx(20, abs=1.5)
    assert loud.arousal > quiet.arousal + 0.3


def test_faster_speech_is_more_aroused(engine) -> None:
    slow, fast = run(engine, speak(NEUTRAL, 1.5), NEUTRAL), run(engine, speak(NEUTRAL, 0.7), NEUTRAL)
    assert dict(fast.features)["syllables_per_second"] > 1.5 * dict(slow.features)["syllables_per_second"]
    assert fast.arousal > slow.arousal + 0.2


def test_higher_pitch_is_more_aroused(engine) -> None:
    x = speak(NEUTRAL)
    low, high = run(engine, x, NEUTRAL), run(engine, pitch_shifted(x, 1.6), NEUTRAL)
    ratio = dict(high.features)["pitch_hz"] / dict(low.features)["pitch_hz"]
    assert ratio == pytest.approx(1.6, rel=0.15)  # Praat's tracker follows the shift
    assert high.arousal > low.arousal + 0.1


def test_valence_comes_from_the_words(engine) -> None:
    x = speak(NEUTRAL)  # identical audio, different transcripts: only valence may move
    happy, angry, none = run(engine, x, HAPPY), run(engine, x, ANGRY), run(engine, x, None)
    assert happy.valence > 0.5 and angry.valence < -0.5 and none.valence == 0.0
    # The acoustic measurements do not depend on the words (only the rate's syllable count does).
    for key in ("loudness_db", "pitch_hz", "pitch_spread_st"):
        assert dict(happy.features)[key] == dict(angry.features)[key]
    assert dict(none.features)["valence_from_transcript"] == 0.0


def test_angry_delivery_reads_angry_and_sad_delivery_reads_sad(engine) -> None:
    # Loud, fast and high (resampled: played back 25% faster and higher) vs slow and quiet.
    angry_audio = soxr.resample(speak(ANGRY, 0.8) * 2.0, PIPER_RATE, int(PIPER_RATE / 1.25))
    angry = run(engine, angry_audio, ANGRY)
    sad = run(engine, speak(SAD, 1.4) * 0.25, SAD)
    assert angry.arousal > 0.4 > -0.2 > sad.arousal
    assert angry.valence < -0.5 and sad.valence < -0.5
    assert angry.label == "angry" and sad.label == "sad"
    for result in (angry, sad):
        assert set(result.score_map) == {"angry", "disgusted", "fearful", "happy", "neutral", "other", "sad",
                                         "surprised", "unknown"}
        assert sum(result.score_map.values()) == pytest.approx(1.0, abs=1e-4)


def test_neutral_delivery_of_neutral_words_is_near_the_centre(engine) -> None:
    result = run(engine, speak(NEUTRAL), NEUTRAL)
    assert abs(result.valence) < 0.2 and abs(result.arousal) < 0.5
    assert result.label == "neutral"


def test_rate_without_a_transcript_comes_from_loudness_peaks(engine) -> None:
    slow = measure(buf(speak(NEUTRAL, 1.5)), None)
    fast = measure(buf(speak(NEUTRAL, 0.7)), None)
    assert slow and fast and not slow.rate_from_transcript
    assert fast.syllables_per_second > slow.syllables_per_second
    assert 1.5 < slow.syllables_per_second < 8.0  # peaks undercount connected speech; the transcript is better


def test_silence_and_noise_floor_are_no_speech(engine) -> None:
    for samples in (silence(2.0), np.random.default_rng(0).normal(0, 1e-4, PIPER_RATE).astype(np.float32)):
        result = run(engine, samples, None)
        assert result.speech is False and result.label == "unknown" and result.score_map["unknown"] == 1.0


def test_syllable_counter() -> None:
    assert count_syllables("The meeting is on Tuesday") == 7
    assert count_syllables("hope table") == 3
    assert count_syllables("") == 0
