"""The transcription use case: pick the model, check it can do what was asked, decode, transcribe, stream.

No FastAPI here: the router hands over the parsed request and the uploaded file, and gets back an async stream
of `TranscriptionInfo` (first) and `Segment`s (renumbered across decode windows), ending with a `TranscriptEnd`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import BinaryIO, Literal

from api.http.errors import InvalidRequestError, ModelNotFoundError
from api.settings import Settings
from api.transcription.protocol import ServerVadChunking, TranscriptionRequest, TranslationRequest
from engines.audio import WHISPER_RATE, decode_audio, iter_audio_windows, refuse_declared_overlong
from engines.base import (
    AudioBuffer,
    CancelToken,
    EngineError,
    Segment,
    StreamingUpdate,
    TranscriberCapabilities,
    TranscriptionInfo,
    TranscriptionOptions,
)
from engines.languages import WHISPER_LANGUAGES
from engines.manager import ModelManager
from engines.registry import EngineRegistry, EngineSpec, UnknownModel

Task = Literal["transcribe", "translate"]
# The transcription model names OpenAI clients send (openai-python's `AudioModel` and the realtime
# `AudioTranscription.model`), on HTTP and in realtime sessions alike: all mean this server's default Whisper
# (its translation model for translations).
OPENAI_ASR_ALIASES = (
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-4o-transcribe-diarize",
    "gpt-transcribe",
    "gpt-live-transcribe",
    "gpt-realtime-whisper",
)


@dataclass(frozen=True)
class TranscriptEnd:
    duration: float


TranscriptionEvent = TranscriptionInfo | Segment | TranscriptEnd


class TranscriptionService:
    def __init__(self, registry: EngineRegistry, manager: ModelManager, settings: Settings):
        self._registry = registry
        self._manager = manager
        self._settings = settings

    def resolve(self, model: str, task: Task) -> EngineSpec:
        if task == "translate" and model in OPENAI_ASR_ALIASES:
            model = self._settings.whisper.translation_model
        elif model in OPENAI_ASR_ALIASES:
            model = self._settings.whisper.default_model
        try:
            return self._registry.resolve(model, "transcription")
        except UnknownModel as exc:
            raise ModelNotFoundError(str(exc), param="model") from exc

    @staticmethod
    def check_language(spec: EngineSpec, language: str | None) -> None:
        """A 400 (`param="language"`) unless `language` is ISO-639-1 and the model transcribes it."""
        caps: TranscriberCapabilities | None = spec.capabilities
        if language is not None and language not in WHISPER_LANGUAGES:
            raise InvalidRequestError(f"'{language}' is not a supported ISO-639-1 language code.", param="language")
        if language and caps is not None and caps.languages is not None and language not in caps.languages:
            raise InvalidRequestError(
                f"The model '{spec.model_id}' only transcribes {', '.join(sorted(caps.languages))}; "
                f"use a multilingual model (e.g. whisper-base) for '{language}'.",
                param="language",
            )

    def options(self, request: TranscriptionRequest | TranslationRequest, spec: EngineSpec, task: Task) -> TranscriptionOptions:
        caps: TranscriberCapabilities = spec.capabilities
        language = getattr(request, "language", None)
        self.check_language(spec, language)
        if task == "translate" and not caps.translate:
            raise InvalidRequestError(f"The model '{spec.model_id}' cannot translate.", param="model")
        granularities = set(getattr(request, "timestamp_granularities", ()))
        chunking = getattr(request, "chunking_strategy", None)
        vad = chunking if isinstance(chunking, ServerVadChunking) else ServerVadChunking(type="server_vad")
        diarize, known_speakers = self._diarization(request, spec)
        return TranscriptionOptions(
            diarize=diarize,
            known_speakers=known_speakers,
            task=task,
            language=language,
            prompt=request.prompt,
            temperature=request.temperature,
            word_timestamps="word" in granularities and request.response_format == "verbose_json",
            vad_threshold=vad.threshold,
            # faster-whisper's defaults (160 ms to split, 300 ms of padding) unless the client chose its own.
            vad_min_silence_ms=vad.silence_duration_ms if isinstance(chunking, ServerVadChunking) else 160,
            vad_speech_pad_ms=vad.prefix_padding_ms,
        )

    def _diarization(
        self, request: TranscriptionRequest | TranslationRequest, spec: EngineSpec
    ) -> tuple[bool, tuple[tuple[str, AudioBuffer], ...]]:
        """`response_format=diarized_json` and `known_speaker_*`: only for models that declare diarization."""
        diarize = getattr(request, "response_format", None) == "diarized_json"
        names: list[str] = getattr(request, "known_speaker_names", [])
        refs: list[str] = getattr(request, "known_speaker_references", [])
        if (diarize or names or refs) and not spec.capabilities.diarization:
            param = "response_format" if diarize else "known_speaker_names"
            raise InvalidRequestError(
                f"The model '{spec.model_id}' does not diarize; diarized_json and known speakers need a diarizing "
                "engine (WhisperX with a diarization model, or a remote one).",
                param=param,
            )
        if len(names) != len(refs):
            raise InvalidRequestError(
                "known_speaker_names[] and known_speaker_references[] must have the same length.",
                param="known_speaker_references",
            )
        if (names or refs) and not diarize:
            raise InvalidRequestError("Known speakers need response_format 'diarized_json'.", param="response_format")
        return diarize, tuple((name, _reference_clip(ref)) for name, ref in zip(names, refs))

    def in_flight(self, spec: EngineSpec) -> int:
        """Calls running or queued on the model now (live realtime passes run only on an idle model)."""
        return self._manager.in_flight(spec.model_id)

    async def transcribe_text(self, spec: EngineSpec, audio: AudioBuffer, options: TranscriptionOptions) -> str:
        """The text of decoded audio (a realtime turn), in-process; segments are materialised on the engine's thread."""
        cancel = CancelToken()
        async with self._manager.lease(spec) as lease:

            def work() -> str:
                _info, segments = lease.engine.transcribe(audio, options, cancel)
                return "".join(segment.text for segment in segments)

            try:
                return (await lease.call(work)).strip()
            finally:
                cancel.cancel()  # if we were cancelled mid-call, the thread stops at the next segment

    async def stream_text(
        self, spec: EngineSpec, chunks: Callable[[CancelToken], Iterable[AudioBuffer]], options: TranscriptionOptions
    ) -> AsyncIterator[StreamingUpdate]:
        """A streaming model's updates while live audio is decoded, in-process. `chunks(cancel)` is read on the
        engine's thread and must stop waiting for audio once `cancel` is set.

        The model lease is held until the input ends and the last update is out; closing early cancels the work."""
        cancel = CancelToken()
        async with self._manager.lease(spec) as lease:

            def work() -> Iterator[StreamingUpdate]:
                return lease.engine.stream_transcribe(chunks(cancel), options, cancel)

            async with aclosing(lease.iterate(work, cancel)) as updates:
                async for update in updates:
                    yield update

    async def transcribe(
        self, spec: EngineSpec, options: TranscriptionOptions, file: BinaryIO
    ) -> AsyncIterator[TranscriptionEvent]:
        """Yield the info first (after the first window decodes), then segments, then the end marker.

        The model lease is held until the stream is exhausted or closed; closing it early cancels the work.
        """
        settings = self._settings
        await asyncio.to_thread(refuse_declared_overlong, file, settings.max_audio_seconds)
        async with self._manager.lease(spec) as lease:

            def work() -> Iterator[TranscriptionEvent]:
                windows = iter_audio_windows(
                    file,
                    rate=WHISPER_RATE,
                    window_seconds=settings.decode_window_seconds,
                    max_seconds=settings.max_audio_seconds,
                )
                next_id, duration, first = 0, 0.0, True
                language = options.language
                for window in windows:
                    # Later windows keep the language of the first: one file, one language.
                    window_options = options if language is None else _with_language(options, language)
                    info, segments = lease.engine.transcribe(window, window_options, cancel)
                    if first:
                        language, first = info.language, False
                        yield info
                    for segment in segments:
                        yield _renumbered(segment, next_id)
                        next_id += 1
                    duration = window.offset + window.duration
                yield TranscriptEnd(duration=round(duration, 3))

            cancel = CancelToken()
            async with aclosing(lease.iterate(work, cancel)) as events:
                async for event in events:
                    yield event


def _with_language(options: TranscriptionOptions, language: str) -> TranscriptionOptions:
    return replace(options, language=language)


def _renumbered(segment: Segment, new_id: int) -> Segment:
    return segment if segment.id == new_id else replace(segment, id=new_id)


def _reference_clip(ref: str) -> AudioBuffer:
    """A known speaker's reference: a `data:audio/...;base64,` URL of a short clip, decoded to 16 kHz mono."""
    header, _, payload = ref.partition(",")
    if not (header.startswith("data:") and header.endswith(";base64") and payload):
        raise InvalidRequestError(
            "known_speaker_references[] must be data URLs (data:audio/wav;base64,...).", param="known_speaker_references"
        )
    try:
        return decode_audio(io.BytesIO(base64.b64decode(payload, validate=True)), max_seconds=30)
    except (binascii.Error, EngineError) as exc:
        raise InvalidRequestError(
            f"A known speaker reference is not decodable audio: {exc}", param="known_speaker_references"
        ) from exc
