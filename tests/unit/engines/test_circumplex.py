"""The circumplex bridge between labels and (valence, arousal)."""

from __future__ import annotations

import pytest

from engines.base import EMOTION_LABELS
from engines.circumplex import POSITIONS, make_scores, no_speech, normalised, scores_from_va, va_from_scores
from engines.emotion2vec import english_label, scores_from_result


@pytest.mark.parametrize("label", sorted(POSITIONS))
def test_each_label_wins_at_its_own_position(label: str) -> None:
    scores = scores_from_va(*POSITIONS[label])
    assert set(scores) == set(EMOTION_LABELS)
    assert sum(scores.values()) == pytest.approx(1.0)
    assert max(scores, key=scores.__getitem__) == label


def test_quadrants_map_to_the_expected_labels() -> None:
    def top(v: float, a: float) -> str:
        s = scores_from_va(v, a)
        return max(s, key=s.__getitem__)

    assert top(-0.9, 0.9) == "angry"
    assert top(-0.8, -0.7) == "sad"
    assert top(0.9, 0.3) == "happy"
    assert top(0.05, -0.05) == "neutral"


def test_va_from_scores_is_the_weighted_mean_and_clamped() -> None:
    assert va_from_scores({"angry": 1.0}) == POSITIONS["angry"]
    v, a = va_from_scores({"happy": 0.5, "sad": 0.5})
    assert v == pytest.approx((0.8 - 0.7) / 2) and a == pytest.approx((0.4 - 0.5) / 2)
    assert va_from_scores({"unknown": 1.0, "other": 1.0}) == (0.0, 0.0)


def test_make_scores_normalises_and_picks_the_argmax() -> None:
    e = make_scores({"sad": 3.0, "happy": 1.0}, valence=-2.0, arousal=0.3, features={"x": 1.23456})
    assert e.label == "sad" and e.speech
    assert sum(e.score_map.values()) == pytest.approx(1.0) and e.score_map["sad"] == pytest.approx(0.75)
    assert e.valence == -1.0  # clamped into [-1, 1]
    assert dict(e.features) == {"x": 1.2346}
    assert normalised({}) == {k: pytest.approx(1 / 9) for k in EMOTION_LABELS}


def test_no_speech_is_unknown_centred_and_flagged() -> None:
    e = no_speech()
    assert (e.label, e.valence, e.arousal, e.speech) == ("unknown", 0.0, 0.0, False)
    assert e.score_map["unknown"] == 1.0 and sum(e.score_map.values()) == 1.0


def test_emotion2vec_tokens_map_to_english_labels() -> None:
    tokens = ["生气/angry", "厌恶/disgusted", "恐惧/fearful", "开心/happy", "中立/neutral", "其他/other", "难过/sad",
              "吃惊/surprised", "<unk>"]
    assert [english_label(t) for t in tokens] == list(EMOTION_LABELS)
    assert english_label("惊讶/astonished") == "other"
    scores = scores_from_result({"labels": tokens, "scores": [0.1, 0, 0, 0.5, 0.2, 0, 0, 0, 0.2]})
    assert scores["happy"] == pytest.approx(0.5) and scores["unknown"] == pytest.approx(0.2)
    assert sum(scores.values()) == pytest.approx(1.0)
