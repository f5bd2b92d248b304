"""Remote engines: a model served by another OpenAI-compatible server, used through the same Protocol.

The extras' pins conflict (whisperx wants torch 2.8, NeMo and Chatterbox others), so no one environment holds every
engine. A front voxloop therefore reaches the others over HTTP: another voxloop started with just one extra, or any
peer server with `/v1/audio/transcriptions`. The upstream answers `verbose_json` (or `diarized_json`), which is
mapped back to `Segment`s here, so the API above cannot tell a remote engine from a local one.
"""

from __future__ import annotations

import base64
import io
import logging
import time
import wave
from collections.abc import Iterator
from typing import Any

import numpy as np

from api.languages import WHISPER_LANGUAGES
from api.settings import RemoteEndpoint, Settings
from engines.base import (
    AudioBuffer,
    CancelToken,
    EngineError,
    EngineOverloadedError,
    EngineUnavailableError,
    Segment,
    TranscriberCapabilities,
    TranscriptionInfo,
    TranscriptionOptions,
    UnsupportedOptionError,
    Word,
)
from engines.registry import EngineSpec

logger = logging.getLogger(__name__)

_CODE_BY_NAME = {name.lower(): code for code, name in WHISPER_LANGUAGES.items()}
_RETRY_BACKOFF_SECONDS = 0.5
_PROBE_TIMEOUT_SECONDS = 3.0


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """16-bit PCM WAV: lossless at speech rates and decodable by every OpenAI-compatible server."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buf.getvalue()


def wav_data_url(audio: AudioBuffer) -> str:
    return "data:audio/wav;base64," + base64.b64encode(wav_bytes(audio.samples, audio.sample_rate)).decode("ascii")


def remote_capabilities(endpoint: RemoteEndpoint) -> TranscriberCapabilities:
    return TranscriberCapabilities(
        languages=frozenset(endpoint.languages) if endpoint.languages else None,
        translate=endpoint.translate,
        word_timestamps=True,
        diarization=endpoint.diarization,
    )


class RemoteTranscriber:
    """`Transcriber` that posts the audio to `<base_url>/audio/transcriptions` (or `/translations`)."""

    def __init__(self, endpoint: RemoteEndpoint):
        import httpx

        headers = {"Authorization": f"Bearer {endpoint.api_key.get_secret_value()}"} if endpoint.api_key else {}
        self._client = httpx.Client(
            base_url=endpoint.base_url.rstrip("/"),
            timeout=httpx.Timeout(endpoint.timeout_seconds, connect=endpoint.connect_timeout_seconds),
            headers=headers,
        )
        self._endpoint = endpoint
        self.capabilities = remote_capabilities(endpoint)

    def transcribe(
        self, audio: AudioBuffer, options: TranscriptionOptions, cancel: CancelToken
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        cancel.raise_if_cancelled()
        body = self._post(audio, options)
        language = _language_code(body.get("language")) or options.language or "en"
        segments = _segments(body, audio.offset)
        return TranscriptionInfo(language=language, duration=audio.duration), iter(segments)

    def _form(self, options: TranscriptionOptions) -> list[tuple[str, str]]:
        fields: list[tuple[str, str]] = [("model", self._endpoint.model), ("temperature", str(options.temperature))]
        if options.prompt:
            fields.append(("prompt", options.prompt))
        if options.task == "translate":
            return fields + [("response_format", "verbose_json")]
        if options.language:
            fields.append(("language", options.language))
        if options.diarize:
            fields.append(("response_format", "diarized_json"))
            for name, clip in options.known_speakers:
                fields += [("known_speaker_names[]", name), ("known_speaker_references[]", wav_data_url(clip))]
            return fields
        fields += [("response_format", "verbose_json"), ("timestamp_granularities[]", "segment")]
        if options.word_timestamps:
            fields.append(("timestamp_granularities[]", "word"))
        return fields

    def _post(self, audio: AudioBuffer, options: TranscriptionOptions) -> dict[str, Any]:
        import httpx

        path = "/audio/translations" if options.task == "translate" else "/audio/transcriptions"
        files = {"file": ("audio.wav", wav_bytes(audio.samples, audio.sample_rate), "audio/wav")}
        data: dict[str, list[str]] = {}
        for key, value in self._form(options):  # httpx repeats a field given a list (for the `name[]` arrays)
            data.setdefault(key, []).append(value)
        for attempt in range(self._endpoint.retries + 1):
            try:
                response = self._client.post(path, data=data, files=files)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Only failures to connect are retried: the request never reached the upstream, so a retry cannot
                # run the (expensive, non-idempotent for billing) transcription twice.
                if attempt == self._endpoint.retries:
                    raise EngineUnavailableError(
                        f"The remote engine at {self._endpoint.base_url} is unreachable: {exc}"
                    ) from exc
                logger.warning("remote engine %s: connect failed (%s), retrying", self._endpoint.base_url, exc)
                time.sleep(_RETRY_BACKOFF_SECONDS * (attempt + 1))
            except httpx.TimeoutException as exc:
                raise EngineError(f"The remote engine at {self._endpoint.base_url} timed out: {exc}") from exc
            except httpx.HTTPError as exc:
                raise EngineError(f"The remote engine at {self._endpoint.base_url} failed: {exc}") from exc
        _raise_for_status(response, self._endpoint.base_url)
        try:
            return response.json()
        except ValueError as exc:
            raise EngineError(f"The remote engine at {self._endpoint.base_url} answered non-JSON.") from exc

    def close(self) -> None:
        self._client.close()


def _raise_for_status(response: Any, base_url: str) -> None:
    if response.status_code < 400:
        return
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    message = f"Remote engine at {base_url}: {error.get('message') or response.text[:200]}"
    if response.status_code == 400:
        raise UnsupportedOptionError(message, param=error.get("param"))
    if response.status_code == 429:
        raise EngineOverloadedError(message)
    if response.status_code in (401, 403, 404, 502, 503):
        raise EngineUnavailableError(message)
    raise EngineError(message)


def _language_code(value: str | None) -> str | None:
    if not value:
        return None
    value = value.lower()
    return value if value in WHISPER_LANGUAGES else _CODE_BY_NAME.get(value)


def _segments(body: dict[str, Any], offset: float) -> list[Segment]:
    """verbose_json / diarized_json segments as `Segment`s; top-level words go to the segment that holds them."""
    words = [
        Word(w["word"], round(w["start"] + offset, 3), round(w["end"] + offset, 3)) for w in body.get("words") or ()
    ]
    raw = body.get("segments")
    if raw is None:  # json-only upstream: one segment spanning the audio
        raw = [{"id": 0, "start": 0.0, "end": body.get("duration", 0.0), "text": body.get("text", "")}]
    segments = []
    for i, s in enumerate(raw):
        start, end = round(s["start"] + offset, 3), round(s["end"] + offset, 3)
        last = i == len(raw) - 1
        own = tuple(w for w in words if start <= (w.start + w.end) / 2 < end or (last and (w.start + w.end) / 2 >= end))
        text = s.get("text", "")
        segments.append(
            Segment(
                id=i,  # upstream ids may be strings (diarized_json: "seg_0"); the service renumbers anyway
                seek=int(s.get("seek", 0)),
                start=start,
                end=end,
                # Segments are concatenated as-is; keep Whisper's leading space so words do not run together.
                text=text if text.startswith(" ") or i == 0 else " " + text,
                tokens=tuple(s.get("tokens") or ()),
                temperature=s.get("temperature", 0.0),
                avg_logprob=s.get("avg_logprob", 0.0),
                compression_ratio=s.get("compression_ratio", 0.0),
                no_speech_prob=s.get("no_speech_prob", 0.0),
                words=own,
                speaker=s.get("speaker"),
            )
        )
    return segments


def probe_endpoint(endpoint: RemoteEndpoint) -> str | None:
    """Health for /ready: the upstream answers GET /models and lists the model. None when fine."""
    import httpx

    url = endpoint.base_url.rstrip("/") + "/models"
    headers = {"Authorization": f"Bearer {endpoint.api_key.get_secret_value()}"} if endpoint.api_key else {}
    try:
        response = httpx.get(url, headers=headers, timeout=min(_PROBE_TIMEOUT_SECONDS, endpoint.timeout_seconds))
    except httpx.HTTPError as exc:
        return f"remote engine unreachable at {endpoint.base_url}: {exc.__class__.__name__}"
    if response.status_code != 200:
        return f"remote engine at {endpoint.base_url} answered {response.status_code} to GET /models"
    try:
        ids = {m.get("id") for m in response.json().get("data", [])}
    except (ValueError, AttributeError):
        return f"remote engine at {endpoint.base_url} answered GET /models with no model list"
    return None if endpoint.model in ids else f"remote engine at {endpoint.base_url} does not serve '{endpoint.model}'"


def remote_transcription_specs(settings: Settings) -> list[EngineSpec]:
    specs = []
    for model_id, endpoint in settings.remote.transcription.items():
        specs.append(
            EngineSpec(
                model_id,
                "transcription",
                lambda endpoint=endpoint: RemoteTranscriber(endpoint),
                owned_by="remote",
                description=f"Remote: '{endpoint.model}' at {endpoint.base_url}.",
                capabilities=remote_capabilities(endpoint),
                probe=lambda endpoint=endpoint: probe_endpoint(endpoint),
                # The upstream does the work; let as many requests through as the admission limit allows.
                workers=max(1, settings.max_concurrent_per_model),
                # Its memory is the other server's to budget.
                device="remote",
            )
        )
    return specs
