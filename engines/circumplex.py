"""Russell's circumplex model of affect: the bridge between emotion labels and (valence, arousal).

Every emotion engine answers in both forms. A label engine (emotion2vec+) gets valence/arousal as the
probability-weighted mean of its labels' positions; a dimensional engine (the prosody + lexicon baseline) gets label
scores from how close its (valence, arousal) point lies to each label's position.

The positions are approximate readings of Russell (1980, "A circumplex model of affect", fig. 2) and of the
valence/arousal norms commonly used for the basic emotions; `disgusted` is not on Russell's circle and sits where
most dimensional studies put it (negative, moderately aroused). `other` and `unknown` have no place on the circle:
they sit at the origin for the mean, and get no share from a dimensional estimate.
"""

from __future__ import annotations

import math

from engines.base import EMOTION_LABELS, EmotionScores

# (valence, arousal) per label. Anger and fear are close on the circle; anger is placed more negative and fear more
# aroused, the order most rating studies report, so a dimensional engine can tell them apart only roughly.
POSITIONS: dict[str, tuple[float, float]] = {
    "angry": (-0.65, 0.70),
    "disgusted": (-0.70, 0.30),
    "fearful": (-0.35, 0.85),
    "happy": (0.80, 0.40),
    "neutral": (0.00, 0.00),
    "sad": (-0.70, -0.50),
    "surprised": (0.30, 0.85),
}
# Softness of the distance -> probability mapping: a squared distance of this much costs a factor of e.
TEMPERATURE = 0.08


def clamp(value: float, low: float = -1.0, high: float = 1.0) -> float:
    return max(low, min(high, value))


def scores_from_va(valence: float, arousal: float) -> dict[str, float]:
    """A distribution over all nine labels from a circumplex point (softmax of negative squared distance)."""
    logits = {
        label: -((valence - v) ** 2 + (arousal - a) ** 2) / TEMPERATURE for label, (v, a) in POSITIONS.items()
    }
    top = max(logits.values())
    weights = {label: math.exp(x - top) for label, x in logits.items()}
    total = sum(weights.values())
    return {label: weights.get(label, 0.0) / total for label in EMOTION_LABELS}


def va_from_scores(scores: dict[str, float]) -> tuple[float, float]:
    """The probability-weighted mean position of a label distribution (labels off the circle count as origin)."""
    total = sum(scores.values()) or 1.0
    valence = sum(p * POSITIONS.get(label, (0.0, 0.0))[0] for label, p in scores.items()) / total
    arousal = sum(p * POSITIONS.get(label, (0.0, 0.0))[1] for label, p in scores.items()) / total
    return clamp(valence), clamp(arousal)


def normalised(scores: dict[str, float]) -> dict[str, float]:
    """Scores over exactly `EMOTION_LABELS`, non-negative and summing to 1 (uniform if all are zero)."""
    clean = {label: max(0.0, float(scores.get(label, 0.0))) for label in EMOTION_LABELS}
    total = sum(clean.values())
    if total <= 0:
        return {label: 1.0 / len(EMOTION_LABELS) for label in EMOTION_LABELS}
    return {label: p / total for label, p in clean.items()}


def make_scores(
    scores: dict[str, float],
    valence: float,
    arousal: float,
    features: dict[str, float] | None = None,
) -> EmotionScores:
    """Package a distribution as `EmotionScores`, rounded for the wire, with the argmax as the label."""
    dist = normalised(scores)
    label = max(dist, key=lambda k: dist[k])
    return EmotionScores(
        label=label,
        scores=tuple((k, round(p, 6)) for k, p in dist.items()),
        valence=round(clamp(valence), 4),
        arousal=round(clamp(arousal), 4),
        features=tuple((k, round(float(v), 4)) for k, v in (features or {}).items()),
    )


def no_speech(features: dict[str, float] | None = None) -> EmotionScores:
    """What every engine answers for silence: `unknown`, centre of the circle, and the no-speech flag."""
    return EmotionScores(
        label="unknown",
        scores=tuple((k, 1.0 if k == "unknown" else 0.0) for k in EMOTION_LABELS),
        valence=0.0,
        arousal=0.0,
        speech=False,
        features=tuple((k, round(float(v), 4)) for k, v in (features or {}).items()),
    )
