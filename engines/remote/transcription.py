"""Remote transcription: a model served by another OpenAI-compatible server, used through `Transcriber`.

The upstream (another voxloop started with just one extra, or any peer server with `/v1/audio/transcriptions`)
answers `verbose_json` (or `diarized_json`), which is mapped back to `Segment`s here, so the API above cannot tell
a remote engine from a local one.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from engines.audio import wav_bytes
from engines.base import (
    AudioBuffer,
    CancelToken,
    Segment,
    TranscriberCapabilities,
    TranscriptionInfo,
    TranscriptionOptions,
    Word,
)
from engines.languages import WHISPER_LANGUAGES
from engines.remote.client import RemoteClient
from engines.settings import RemoteTranscriptionEndpoint

if TYPE_CHECKING:
    import httpx

_CODE_BY_NAME = {name.lower(): code for code, name in WHISPER_LANGUAGES.items()}


def wav_data_url(audio: AudioBuffer) -> str:
    return "data:audio/wav;base64," + base64.b64encode(wav_bytes(audio)).decode("ascii")


def remote_capabilities(endpoint: RemoteTranscriptionEndpoint) -> TranscriberCapabilities:
    return TranscriberCapabilities(
        languages=frozenset(endpoint.languages) if endpoint.languages else None,
        translate=endpoint.translate,
        word_timestamps=True,
        diarization=endpoint.diarization,
    )


class RemoteTranscriber:
    """`Transcriber` that posts the audio to `<base_url>/audio/transcriptions` (or `/translations`)."""

    def __init__(self, endpoint: RemoteTranscriptionEndpoint, *, transport: httpx.BaseTransport | None = None):
        self._http = RemoteClient(endpoint, transport=transport)
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
        path = "/audio/translations" if options.task == "translate" else "/audio/transcriptions"
        files = {"file": ("audio.wav", wav_bytes(audio), "audio/wav")}
        data: dict[str, list[str]] = {}
        for key, value in self._form(options):  # httpx repeats a field given a list (for the `name[]` arrays)
            data.setdefault(key, []).append(value)
        return self._http.json(self._http.request("POST", path, data=data, files=files))

    def close(self) -> None:
        self._http.close()


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

