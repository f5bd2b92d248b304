"""voxloop's YIN against exact tones and against Praat's pitch tracker on real (Piper) speech."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from engines.pitch_yin import yin
from tests.support.speech import PIPER_RATE, speak

RATE = 16_000


@pytest.mark.parametrize("f0", [80.0, 123.4, 210.0, 440.0])
def test_harmonic_tones_are_tracked_exactly(f0: float) -> None:
    t = np.arange(RATE) / RATE
    x = sum(a * np.sin(2 * np.pi * k * f0 * t + k) for k, a in ((1, 1.0), (2, 0.6), (3, 0.3)))
    track = yin(x, RATE)
    assert (track > 0).mean() > 0.95
    assert np.median(track[track > 0]) == pytest.approx(f0, rel=0.005)


def test_noise_and_silence_are_unvoiced() -> None:
    noise = np.random.default_rng(0).normal(0, 0.1, RATE)
    assert (yin(noise, RATE) > 0).mean() < 0.1
    assert (yin(np.zeros(RATE), RATE) > 0).sum() == 0


@pytest.mark.models
@pytest.mark.parametrize("shift", [1.0, 1.5])
def test_speech_agrees_with_praat(shift: float) -> None:
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(speak("The meeting is on Tuesday at three in the afternoon.").astype(np.float64),
                              sampling_frequency=PIPER_RATE)
    if shift != 1.0:  # PSOLA pitch shift, timing and formants kept
        median = call(sound.to_pitch(), "Get quantile", 0, 0, 0.5, "Hertz")
        sound = call(sound, "Change gender", 75, 600, 1.0, median * shift, 1.0, 1.0)
    x = soxr.resample(sound.values[0], PIPER_RATE, RATE)
    praat = sound.to_pitch_ac(time_step=0.01, pitch_floor=75, pitch_ceiling=500).selected_array["frequency"]
    ours = yin(x, RATE)
    assert np.median(ours[ours > 0]) == pytest.approx(np.median(praat[praat > 0]), rel=0.06)
    assert (ours > 0).sum() > 0.6 * (praat > 0).sum()
