"""Remote emotion: another voxloop's `/v1/emotion` behind the `EmotionRecognizer` protocol.

The service here still finds the speech (Silero VAD) and cuts segments; each buffer it asks about goes up as a
16-bit WAV and the upstream judges it as one utterance. Labels are emotion2vec+'s nine on both sides, so an
answer maps straight onto `EmotionScores`; the upstream transcribes for itself when its model reads words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engines.audio import wav_bytes
from engines.base import (
    EMOTION_LABELS,
    AudioBuffer,
    CancelToken,
    EmotionCapabilities,
    EmotionOptions,
    EmotionScores,
    UpstreamFailedError,
)
from engines.remote.client import RemoteClient
from engines.settings import RemoteEndpoint

if TYPE_CHECKING:
    import httpx


class RemoteEmotionRecognizer:
    """`EmotionRecognizer` that posts the audio to `<base_url>/emotion`."""

    # The upstream transcribes itself when it needs words: no transcription runs here for it.
    capabilities = EmotionCapabilities()

    def __init__(self, endpoint: RemoteEndpoint, *, transport: httpx.BaseTransport | None = None):
        self._http = RemoteClient(endpoint, transport=transport)
        self._endpoint = endpoint

    def recognize(self, audio: AudioBuffer, options: EmotionOptions, cancel: CancelToken) -> EmotionScores:
        cancel.raise_if_cancelled()
        form = {"model": self._endpoint.model, "response_format": "verbose_json", "granularity": "utterance"}
        files = {"file": ("audio.wav", wav_bytes(audio), "audio/wav")}
        body = self._http.json(self._http.request("POST", "/emotion", data=form, files=files))
        return scores_from(body, self._endpoint.base_url)

    def close(self) -> None:
        self._http.close()


def scores_from(body: Any, base_url: str) -> EmotionScores:
    """An `/v1/emotion` answer as `EmotionScores`; labels outside the nine are an upstream failure, not a guess."""
    try:
        scores = {str(k): float(v) for k, v in body["scores"].items()}
        label = str(body["label"])
        unknown = ({label} | set(scores)) - set(EMOTION_LABELS)
        if unknown:
            raise ValueError(f"labels {sorted(unknown)} are not emotion2vec+'s")
        return EmotionScores(
            label=label,
            scores=tuple((name, scores.get(name, 0.0)) for name in EMOTION_LABELS),
            valence=float(body["valence"]),
            arousal=float(body["arousal"]),
            speech=not body.get("no_speech", False),
            features=tuple((str(k), float(v)) for k, v in (body.get("features") or {}).items()),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise UpstreamFailedError(f"The remote engine at {base_url} answered no emotion result: {exc}") from exc
