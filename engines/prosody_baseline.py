"""`voxloop-prosody-lexicon`: the embedded, honest emotion baseline (no trained emotion model is involved).

No speech-emotion weights ship on PyPI, so the offline default measures what the literature agrees moves with
emotional arousal, and reads valence from the words:

- arousal, from the audio: loudness of the active frames (dBFS), median pitch and pitch spread (YIN, in
  `engines/pitch_yin.py`), and speaking rate (syllables per second of active speech: counted in the transcript when
  there is one, else from loudness peaks, de Jong & Wempe style);
- valence, from the transcript: VADER's compound sentiment score (`vaderSentiment`, MIT, English lexicon and rules);
- labels, from the (valence, arousal) point by the circumplex model (`engines/circumplex.py`).

What it cannot do: it knows nothing of a speaker's normal voice (a naturally loud, high or fast speaker reads as
aroused), the recording level shifts loudness, anger vs fear vs disgust differ only by where the lexicon puts
valence, and without words (no transcript, non-English speech) valence is 0. It is a signal, not a classifier.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from engines.base import (
    AudioBuffer,
    CancelToken,
    EmotionCapabilities,
    EmotionOptions,
    EmotionScores,
    EngineUnavailableError,
)
from engines.circumplex import clamp, make_scores, no_speech, scores_from_va
from engines.footprint import PROSODY_BASELINE_BYTES
from engines.pitch_yin import yin
from engines.registry import EngineSpec

MODEL_ID = "voxloop-prosody-lexicon"

FRAME_SECONDS = 0.025
HOP_SECONDS = 0.010
SILENCE_FLOOR_DB = -55.0  # frames quieter than this are never speech (digital silence, hiss)
DYNAMIC_RANGE_DB = 35.0  # frames this far below the loud end of the clip are pauses
MIN_SPEECH_SECONDS = 0.2
PITCH_FLOOR_HZ = 75.0
PITCH_CEILING_HZ = 500.0
PEAK_PROMINENCE_DB = 2.0

# Where arousal is 0: typical conversational speech. Loudness near the -23 dBFS broadcast speech target; pitch at
# 160 Hz, the geometric mean of typical adult male (~120 Hz) and female (~210 Hz) voices; ~4.5 syllables/s.
REFERENCE_LOUDNESS_DB = -23.0
REFERENCE_PITCH_HZ = 160.0
REFERENCE_PITCH_SPREAD_ST = 2.5
REFERENCE_RATE = 4.5
# (reference, scale, weight) per feature: z = (x - reference) / scale; arousal = tanh(sum of weight * z).
LOUDNESS_SCALE_DB, LOUDNESS_WEIGHT = 8.0, 0.35
PITCH_SCALE_ST, PITCH_WEIGHT = 6.0, 0.25
SPREAD_SCALE_ST, SPREAD_WEIGHT = 1.5, 0.10
RATE_SCALE, RATE_WEIGHT = 1.5, 0.30

_VOWEL_GROUPS = re.compile(r"[aeiouy]+")
_WORDS = re.compile(r"[a-z']+")


@dataclass(frozen=True)
class ProsodyFeatures:
    loudness_db: float
    speech_seconds: float
    pitch_hz: float | None
    pitch_spread_st: float | None
    syllables_per_second: float
    rate_from_transcript: bool

    def as_dict(self) -> dict[str, float]:
        out = {
            "loudness_db": self.loudness_db,
            "speech_seconds": self.speech_seconds,
            "syllables_per_second": self.syllables_per_second,
            "rate_from_transcript": float(self.rate_from_transcript),
        }
        if self.pitch_hz is not None:
            out["pitch_hz"] = self.pitch_hz
        if self.pitch_spread_st is not None:
            out["pitch_spread_st"] = self.pitch_spread_st
        return out


def frame_levels_db(samples: np.ndarray, rate: int) -> np.ndarray:
    """RMS level of 25 ms frames every 10 ms, in dBFS, from a running sum of squares (O(n), no frame copies)."""
    frame, hop = int(FRAME_SECONDS * rate), int(HOP_SECONDS * rate)
    x = samples.astype(np.float64)
    if len(x) < frame:
        x = np.pad(x, (0, frame - len(x)))
    squares = np.concatenate(([0.0], np.cumsum(x * x)))
    starts = np.arange(0, len(x) - frame + 1, hop)
    power = (squares[starts + frame] - squares[starts]) / frame
    return 10.0 * np.log10(np.maximum(power, 1e-12))


def active_mask(levels_db: np.ndarray) -> np.ndarray:
    if not len(levels_db):
        return np.zeros(0, bool)
    threshold = max(SILENCE_FLOOR_DB, float(np.percentile(levels_db, 95)) - DYNAMIC_RANGE_DB)
    return levels_db > threshold


def count_syllables(text: str) -> int:
    """English syllables by vowel groups (a silent final 'e' does not count); at least one per word."""
    total = 0
    for word in _WORDS.findall(text.lower()):
        groups = len(_VOWEL_GROUPS.findall(word))
        if word.endswith("e") and not word.endswith(("le", "ee")) and groups > 1:
            groups -= 1
        total += max(1, groups)
    return total


def count_nuclei(levels_db: np.ndarray, speech: np.ndarray) -> int:
    """Syllable nuclei as loudness peaks in voiced speech (after de Jong & Wempe 2009): two peaks count as two
    syllables only when the contour dips at least PEAK_PROMINENCE_DB below both between them; else the higher stays.
    """
    smooth = np.convolve(levels_db, np.ones(3) / 3, mode="same")
    kept: list[int] = []
    for i in range(1, len(smooth) - 1):
        if not (speech[i] and smooth[i] >= smooth[i - 1] and smooth[i] > smooth[i + 1]):
            continue
        if not kept:
            kept.append(i)
            continue
        j = kept[-1]
        if min(smooth[i], smooth[j]) - smooth[j : i + 1].min() >= PEAK_PROMINENCE_DB:
            kept.append(i)
        elif smooth[i] > smooth[j]:
            kept[-1] = i
    return len(kept)


def measure(audio: AudioBuffer, transcript: str | None) -> ProsodyFeatures | None:
    """The baseline's acoustic features, or None when there is too little active signal to call it speech."""
    levels = frame_levels_db(audio.samples, audio.sample_rate)
    active = active_mask(levels)
    speech_seconds = float(active.sum()) * HOP_SECONDS
    if speech_seconds < MIN_SPEECH_SECONDS:
        return None
    loudness = 10.0 * math.log10(float(np.mean(10.0 ** (levels[active] / 10.0))))

    f0 = yin(audio.samples, audio.sample_rate, fmin=PITCH_FLOOR_HZ, fmax=PITCH_CEILING_HZ, hop_seconds=HOP_SECONDS)
    f0 = np.pad(f0, (0, max(0, len(active) - len(f0))))[: len(active)]
    # Only frames the loudness mask calls speech: YIN can lock onto periodic hum in pauses.
    voiced_speech = active & (f0 > 0)
    voiced = f0[voiced_speech]
    pitch = spread = None
    if len(voiced) >= 5:
        pitch = float(np.median(voiced))
        # Robust spread (IQR / 1.349, in semitones): octave errors of the tracker do not inflate it.
        low, high = np.percentile(12.0 * np.log2(voiced / pitch), [25, 75])
        spread = float((high - low) / 1.349)

    syllables = count_syllables(transcript) if transcript else 0
    from_text = syllables > 0
    if not from_text:
        syllables = count_nuclei(levels, voiced_speech)
    return ProsodyFeatures(
        loudness_db=loudness,
        speech_seconds=speech_seconds,
        pitch_hz=pitch,
        pitch_spread_st=spread,
        syllables_per_second=syllables / speech_seconds,
        rate_from_transcript=from_text,
    )


def arousal_from(features: ProsodyFeatures) -> float:
    def z(value: float, reference: float, scale: float) -> float:
        return clamp((value - reference) / scale, -3.0, 3.0)

    total = LOUDNESS_WEIGHT * z(features.loudness_db, REFERENCE_LOUDNESS_DB, LOUDNESS_SCALE_DB)
    total += RATE_WEIGHT * z(features.syllables_per_second, REFERENCE_RATE, RATE_SCALE)
    if features.pitch_hz is not None:
        semitones = 12.0 * math.log2(features.pitch_hz / REFERENCE_PITCH_HZ)
        total += PITCH_WEIGHT * z(semitones, 0.0, PITCH_SCALE_ST)
    if features.pitch_spread_st is not None:
        total += SPREAD_WEIGHT * z(features.pitch_spread_st, REFERENCE_PITCH_SPREAD_ST, SPREAD_SCALE_ST)
    return math.tanh(total)


class ProsodyLexiconRecognizer:
    """The baseline behind `EmotionRecognizer`. Holds only the VADER analyser (its lexicon is read once)."""

    capabilities = EmotionCapabilities(uses_transcript=True)

    def __init__(self) -> None:
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError as exc:
            raise EngineUnavailableError(
                f"The prosody baseline needs vaderSentiment ({exc.name} is missing): pip install vaderSentiment"
            ) from exc
        self._sentiment = SentimentIntensityAnalyzer()

    def valence(self, transcript: str | None) -> float | None:
        if not transcript or not _WORDS.search(transcript.lower()):
            return None
        return float(self._sentiment.polarity_scores(transcript)["compound"])

    def recognize(self, audio: AudioBuffer, options: EmotionOptions, cancel: CancelToken) -> EmotionScores:
        cancel.raise_if_cancelled()
        features = measure(audio, options.transcript)
        if features is None:
            return no_speech()
        arousal = arousal_from(features)
        valence = self.valence(options.transcript)
        extra = features.as_dict()
        extra["valence_from_transcript"] = float(valence is not None)
        valence = valence or 0.0
        return make_scores(scores_from_va(valence, arousal), valence, arousal, extra)

    def close(self) -> None:
        del self._sentiment


def _probe() -> str | None:
    import importlib.util

    return None if importlib.util.find_spec("vaderSentiment") else "missing package: vaderSentiment"


def baseline_spec() -> EngineSpec:
    return EngineSpec(
        MODEL_ID,
        "emotion",
        ProsodyLexiconRecognizer,
        aliases=("prosody-lexicon",),
        owned_by="voxloop",
        description="Baseline, not a trained emotion model: arousal from loudness, pitch (YIN) and speaking rate; "
        "valence from the VADER sentiment lexicon on the Whisper transcript (English); labels by the circumplex model.",
        capabilities=ProsodyLexiconRecognizer.capabilities,
        probe=_probe,
        memory_bytes=PROSODY_BASELINE_BYTES,
    )
