"""RemoteEmotionRecognizer without a network: what it posts and how an /v1/emotion answer maps to EmotionScores."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from engines.base import EMOTION_LABELS, AudioBuffer, CancelToken, EmotionOptions, UpstreamFailedError
from engines.remote.emotion import RemoteEmotionRecognizer
from engines.settings import RemoteEndpoint

ENDPOINT = RemoteEndpoint(base_url="http://up/v1", model="emotion2vec_plus_large")
AUDIO = AudioBuffer(np.zeros(1600, np.float32), 16000)
ANSWER = {
    "label": "angry", "scores": {"angry": 0.7, "neutral": 0.3}, "valence": -0.6, "arousal": 0.5,
    "model": "emotion2vec_plus_large", "duration": 0.1, "no_speech": False, "features": {"pitch_hz": 180.0},
}


def recognize(answer: dict) -> tuple[object, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answer)

    engine = RemoteEmotionRecognizer(ENDPOINT, transport=httpx.MockTransport(handler))
    return engine.recognize(AUDIO, EmotionOptions(), CancelToken()), seen


def test_maps_the_answer_onto_the_nine_labels() -> None:
    scores, seen = recognize(ANSWER)
    assert scores.label == "angry" and scores.speech is True
    assert [name for name, _ in scores.scores] == list(EMOTION_LABELS)
    assert scores.score_map["angry"] == 0.7 and scores.score_map["sad"] == 0.0
    assert (scores.valence, scores.arousal, scores.features) == (-0.6, 0.5, (("pitch_hz", 180.0),))
    assert seen[0].url.path == "/v1/emotion"
    body = seen[0].content
    assert b'name="model"\r\n\r\nemotion2vec_plus_large' in body and b'granularity"\r\n\r\nutterance' in body
    assert b"RIFF" in body


def test_no_speech_upstream_is_no_speech_here() -> None:
    scores, _ = recognize(ANSWER | {"label": "unknown", "no_speech": True})
    assert scores.speech is False and scores.label == "unknown"


@pytest.mark.parametrize("broken", [{"label": "bored", "scores": {"bored": 1.0}, "valence": 0, "arousal": 0}, {}])
def test_an_answer_outside_the_schema_is_an_upstream_failure(broken: dict) -> None:
    with pytest.raises(UpstreamFailedError):
        recognize(broken)
