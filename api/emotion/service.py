"""The emotion use case: decode, find speech (Silero VAD), transcribe when the engine reads words, recognize.

Two entry points share one pipeline: `recognize_file` for POST /v1/emotion, and `recognize(audio, transcript)` for
in-process callers such as the realtime loop on each committed user turn (no HTTP hop; pass the turn's transcript
when known and no transcription runs). No FastAPI here.
"""

from __future__ import annotations

import asyncio
import functools
import io
from dataclasses import dataclass
from typing import BinaryIO

from api.http.errors import InvalidRequestError, ModelNotFoundError
from api.settings import Settings
from api.transcription.service import TranscriptionService
from engines.audio import WHISPER_RATE, decode_audio, refuse_declared_overlong, resample, wav_bytes
from engines.base import (
    AudioBuffer,
    CancelToken,
    EmotionCapabilities,
    EmotionOptions,
    EmotionScores,
    EmotionSegment,
    Segment,
    TranscriptionOptions,
)
from engines.circumplex import no_speech
from engines.manager import Lease, ModelManager
from engines.registry import EngineRegistry, EngineSpec, UnknownModel

RATE = WHISPER_RATE  # Silero VAD, Whisper and emotion2vec+ all take 16 kHz
SPEECH_PAD_MS = 200


@dataclass(frozen=True)
class EmotionResult:
    model: str
    duration: float
    emotion: EmotionScores
    segments: tuple[EmotionSegment, ...] = ()
    transcript: str | None = None
    transcription_model: str | None = None


@dataclass(frozen=True)
class _Words:
    """Transcribed pieces (words when timed, else segments) with absolute times, to split text among segments."""

    pieces: tuple[tuple[float, float, str], ...]

    def between(self, start: float, end: float) -> str:
        return "".join(t for s, e, t in self.pieces if start <= (s + e) / 2 < end).strip()


class EmotionService:
    def __init__(
        self, registry: EngineRegistry, manager: ModelManager, transcription: TranscriptionService, settings: Settings
    ):
        self._registry = registry
        self._manager = manager
        self._transcription = transcription
        self._settings = settings

    def resolve(self, model: str | None = None) -> EngineSpec:
        try:
            return self._registry.resolve(model or self._settings.emotion.default_model, "emotion")
        except UnknownModel as exc:
            raise ModelNotFoundError(str(exc), param="model") from exc

    async def recognize_file(self, spec: EngineSpec, file: BinaryIO, *, segments: bool = False) -> EmotionResult:
        """Decode an uploaded file (on the engine's thread) and recognize it."""
        await asyncio.to_thread(refuse_declared_overlong, file, self._settings.max_emotion_seconds)
        async with self._manager.lease(spec) as lease:
            decode = functools.partial(decode_audio, rate=RATE, max_seconds=self._settings.max_emotion_seconds)
            audio = await lease.call(decode, file)
            return await self._run(lease, audio, None, segments)

    async def recognize(
        self,
        audio: AudioBuffer,
        transcript: str | None = None,
        *,
        model: str | None = None,
        segments: bool = False,
    ) -> EmotionResult:
        """In-process recognition of a buffer (e.g. one committed realtime turn), any sample rate.

        With `transcript` given, engines that read words use it and no transcription runs.
        """
        spec = self.resolve(model)
        async with self._manager.lease(spec) as lease:
            if audio.sample_rate != RATE:
                samples = await lease.call(resample, audio.samples, audio.sample_rate, RATE)
                audio = AudioBuffer(samples, RATE)
            return await self._run(lease, audio, transcript, segments)

    async def _run(self, lease: Lease, audio: AudioBuffer, transcript: str | None, segments: bool) -> EmotionResult:
        spec = lease.spec
        duration = round(audio.duration, 3)
        spans = await lease.call(self._speech_spans, audio)
        if not spans:
            return EmotionResult(spec.model_id, duration, no_speech(), transcript=transcript)
        caps: EmotionCapabilities = spec.capabilities or EmotionCapabilities()
        words: _Words | None = None
        transcription_model = None
        if caps.uses_transcript and transcript is None:
            transcription_model, transcript, words = await self._transcribe(lease, audio, timed=segments)
        cancel = CancelToken()

        def work() -> tuple[EmotionScores, tuple[EmotionSegment, ...]]:
            engine = lease.engine
            utterance = engine.recognize(audio, EmotionOptions(transcript=transcript), cancel)
            if not segments:
                return utterance, ()
            out = []
            for start, end in spans:
                cancel.raise_if_cancelled()
                t0, t1 = start / RATE, end / RATE
                text = words.between(t0, t1) if words is not None else None
                piece = AudioBuffer(audio.samples[start:end], RATE, offset=t0)
                emotion = engine.recognize(piece, EmotionOptions(transcript=text), cancel)
                out.append(EmotionSegment(round(t0, 3), round(t1, 3), emotion, text))
            return utterance, tuple(out)

        utterance, parts = await lease.call(work)
        return EmotionResult(spec.model_id, duration, utterance, parts, transcript, transcription_model)

    def _speech_spans(self, audio: AudioBuffer) -> list[tuple[int, int]]:
        """Speech segments as sample ranges, by the Silero VAD model faster-whisper ships (ONNX, CPU)."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        es = self._settings.emotion
        options = VadOptions(
            threshold=es.vad_threshold,
            min_speech_duration_ms=es.min_speech_ms,
            min_silence_duration_ms=es.min_silence_ms,
            speech_pad_ms=SPEECH_PAD_MS,
        )
        stamps = get_speech_timestamps(audio.samples, options, sampling_rate=RATE)
        return [(int(s["start"]), int(s["end"])) for s in stamps]

    async def _transcribe(self, lease: Lease, audio: AudioBuffer, *, timed: bool) -> tuple[str, str, _Words]:
        """Words for the lexicon, by the configured transcriber through `TranscriptionService` (in-process).

        The service takes a file, so the 16 kHz buffer goes in as an in-memory 16-bit WAV (decoded without resampling).
        """
        service = self._transcription
        spec = service.resolve(self._settings.emotion.transcription_model, "transcribe")
        wav = await lease.call(wav_bytes, audio)
        options = TranscriptionOptions(word_timestamps=timed)
        pieces: list[tuple[float, float, str]] = []
        texts: list[str] = []
        async for event in service.transcribe(spec, options, io.BytesIO(wav)):
            if isinstance(event, Segment):
                texts.append(event.text)
                if event.words:
                    pieces.extend((w.start, w.end, w.word) for w in event.words)
                else:
                    pieces.append((event.start, event.end, event.text))
        return spec.model_id, "".join(texts).strip(), _Words(tuple(pieces))

    def validate_granularity(self, response_format: str, granularity: str | None) -> bool:
        """Whether per-segment results are wanted; `segment` with plain json is a 400 (json has no segments)."""
        if granularity == "segment" and response_format != "verbose_json":
            raise InvalidRequestError(
                "granularity 'segment' needs response_format 'verbose_json' (json has no segments).",
                param="granularity",
            )
        return response_format == "verbose_json" and granularity != "utterance"

