"""WhisperX behind `Transcriber` (extra `voxloop[whisperx]`): batched Whisper, wav2vec2 word alignment, pyannote
speaker diarization.

One model id per configured Whisper checkpoint (a local CTranslate2 directory, or a hub id when downloads are
allowed). Aligners load lazily per language; the diarization pipeline loads on the first `diarized_json` request.
Speakers come back as A, B, ... in order of appearance (as OpenAI labels them), or as the caller's
`known_speaker_names[]` when a reference clip's voice matches.
(Named `whisperx_engine` so that it never shadows the `whisperx` package.)
"""

from __future__ import annotations

import logging
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engines.base import (
    AudioBuffer,
    CancelToken,
    EngineUnavailableError,
    Segment,
    TranscriberCapabilities,
    TranscriptionInfo,
    TranscriptionOptions,
    UnsupportedOptionError,
    Word,
)
from engines.footprint import whisperx_bytes
from engines.registry import EngineSpec
from engines.settings import EngineSettings, WhisperXSettings

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'voxloop[whisperx]'"
WHISPERX_RATE = 16_000
# Cosine similarity above which a diarized speaker is taken to be a known speaker's reference voice.
KNOWN_SPEAKER_THRESHOLD = 0.5


def import_whisperx(telemetry: bool = False) -> Any:
    try:
        import whisperx
    except ImportError as exc:
        raise EngineUnavailableError(f"WhisperX is not installed ({exc.name}): {INSTALL_HINT}") from exc
    try:
        from pyannote.audio.telemetry import set_telemetry_metrics
    except ImportError:  # pyannote.audio < 4 has no telemetry
        pass
    else:
        # pyannote.audio 4 sends usage metrics by default; a self-hosted server must not phone home unless asked.
        # Set before the VAD and diarization models load (their init is tracked too).
        set_telemetry_metrics(telemetry)
    return whisperx


def is_local(ref: str) -> bool:
    return ref.startswith((".", "/", "~")) or Path(ref).expanduser().is_dir()


def whisperx_capabilities(english_only: bool, diarization: bool) -> TranscriberCapabilities:
    return TranscriberCapabilities(
        languages=frozenset({"en"}) if english_only else None,
        translate=not english_only,
        word_timestamps=True,
        diarization=diarization,
    )


class WhisperXTranscriber:
    def __init__(self, ref: str, settings: WhisperXSettings, *, english_only: bool):
        self._whisperx = import_whisperx(settings.pyannote_telemetry)
        self._settings = settings
        self._english_only = english_only
        local = is_local(ref)
        if not local and not settings.allow_downloads:
            raise EngineUnavailableError(
                f"'{ref}' is a hub id and downloads are off: set VOXLOOP_WHISPERX__ALLOW_DOWNLOADS=true or give a "
                "local CTranslate2 directory."
            )
        try:
            self._model = self._whisperx.load_model(
                str(Path(ref).expanduser()) if local else ref,
                settings.device,
                compute_type=settings.compute_type,
                language="en" if english_only else None,
                vad_method=settings.vad_method,
                local_files_only=not settings.allow_downloads,
            )
        except Exception as exc:
            raise EngineUnavailableError(f"WhisperX model '{ref}' could not be loaded: {exc}") from exc
        self._aligners: dict[str, tuple[Any, Any]] = {}
        self._diarizer: Any = None
        self.capabilities = whisperx_capabilities(english_only, settings.diarization_model is not None)

    # --- the three stages -----------------------------------------------------------------------------------

    def transcribe(
        self, audio: AudioBuffer, options: TranscriptionOptions, cancel: CancelToken
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        if audio.sample_rate != WHISPERX_RATE:
            raise UnsupportedOptionError(f"WhisperX expects {WHISPERX_RATE} Hz audio, got {audio.sample_rate} Hz.")
        if options.diarize and not self.capabilities.diarization:
            raise UnsupportedOptionError("No diarization model is configured.", param="response_format")
        language = options.language or ("en" if self._english_only else None)
        result = self._model.transcribe(
            audio.samples, batch_size=self._settings.batch_size, language=language, task=options.task
        )
        language = result.get("language") or language or "en"
        segments = result["segments"]
        cancel.raise_if_cancelled()
        if (options.word_timestamps or options.diarize) and segments and options.task == "transcribe":
            segments = self._align(segments, audio.samples, language)
            cancel.raise_if_cancelled()
        if options.diarize and segments:
            segments = self._diarize(segments, audio.samples, options)
        converted = to_segments(segments, audio.offset)
        return TranscriptionInfo(language=language, duration=audio.duration), iter(converted)

    def _align(self, segments: list[dict], samples: np.ndarray, language: str) -> list[dict]:
        wx = self._whisperx
        if language not in self._aligners:
            name = self._settings.align_models.get(language)
            try:
                self._aligners[language] = wx.load_align_model(
                    language_code=language,
                    device=self._settings.device,
                    model_name=str(Path(name).expanduser()) if name and is_local(name) else name,
                    model_cache_only=not self._settings.allow_downloads,
                )
            except Exception as exc:
                # Without an aligner the transcript is still useful: segments keep Whisper's own times.
                logger.warning("no word aligner for '%s' (%s); segment times only", language, exc)
                self._aligners[language] = (None, None)
        model, metadata = self._aligners[language]
        if model is None:
            return segments
        aligned = wx.align(segments, model, metadata, samples, self._settings.device, return_char_alignments=False)
        return aligned["segments"]

    def _load_diarizer(self) -> Any:
        if self._diarizer is None:
            from whisperx.diarize import DiarizationPipeline

            token = self._settings.hf_token.get_secret_value() if self._settings.hf_token else None
            ref = self._settings.diarization_model
            try:
                self._diarizer = DiarizationPipeline(
                    model_name=str(Path(ref).expanduser()) if ref and is_local(ref) else ref,
                    token=token,
                    device=self._settings.device,
                )
            except Exception as exc:
                raise EngineUnavailableError(f"The diarization model '{ref}' could not be loaded: {exc}") from exc
        return self._diarizer

    def _diarize(self, segments: list[dict], samples: np.ndarray, options: TranscriptionOptions) -> list[dict]:
        diarizer = self._load_diarizer()
        turns, embeddings = diarizer(samples, return_embeddings=True)
        result = self._whisperx.assign_word_speakers(turns, {"segments": segments}, fill_nearest=True)
        names = known_speaker_names(diarizer, embeddings or {}, options.known_speakers)
        return relabel(split_by_speaker(result["segments"]), names)

    def close(self) -> None:
        self._aligners.clear()
        self._diarizer = None
        del self._model


# --- pure helpers (tested without the library) --------------------------------------------------------------


def known_speaker_names(
    diarizer: Any, embeddings: dict[str, Any], known: tuple[tuple[str, AudioBuffer], ...]
) -> dict[str, str]:
    """Diarized label -> known name, matching each reference clip's voice embedding to the nearest speaker.

    The reference is embedded by the same pipeline (one speaker forced), so both sides share one embedding space.
    Each name is used at most once, best match first.
    """
    if not known or not embeddings:
        return {}
    pairs = []
    for name, clip in known:
        _, ref = diarizer(clip.samples, num_speakers=1, return_embeddings=True)
        if not ref:
            continue
        ref_vec = np.asarray(next(iter(ref.values())), dtype=np.float64)
        for label, vec in embeddings.items():
            pairs.append((cosine(np.asarray(vec, dtype=np.float64), ref_vec), label, name))
    mapping: dict[str, str] = {}
    for score, label, name in sorted(pairs, key=lambda p: p[0], reverse=True):
        if score >= KNOWN_SPEAKER_THRESHOLD and label not in mapping and name not in mapping.values():
            mapping[label] = name
    return mapping


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denom if denom else 0.0


def split_by_speaker(segments: list[dict]) -> list[dict]:
    """Cut aligned segments where the word-level speaker changes: one output segment is one speaker turn."""
    out: list[dict] = []
    for seg in segments:
        words = [w for w in seg.get("words", ()) if "start" in w and "end" in w]
        if not words:
            out.append(seg)
            continue
        current: list[dict] = []
        speaker = None
        for w in words:
            who = w.get("speaker", speaker or seg.get("speaker"))
            if current and who != speaker:
                out.append(_turn(current, speaker))
                current = []
            current.append(w)
            speaker = who
        out.append(_turn(current, speaker))
    return out


def _turn(words: list[dict], speaker: str | None) -> dict:
    turn = {"start": words[0]["start"], "end": words[-1]["end"], "text": " ".join(w["word"] for w in words), "words": words}
    if speaker is not None:
        turn["speaker"] = speaker
    return turn


def relabel(segments: list[dict], known: dict[str, str]) -> list[dict]:
    """pyannote's SPEAKER_00.. -> known names, else A, B, ... in order of first appearance (OpenAI's labels)."""
    letters: dict[str, str] = {}
    for seg in segments:
        label = seg.get("speaker")
        if label is None:
            continue
        if label in known:
            seg["speaker"] = known[label]
            continue
        if label not in letters:
            n = len(letters)
            letters[label] = string.ascii_uppercase[n % 26] + (str(n // 26) if n >= 26 else "")
        seg["speaker"] = letters[label]
    return segments


def to_segments(segments: list[dict], offset: float) -> list[Segment]:
    out = []
    for i, seg in enumerate(segments):
        words = tuple(
            Word(w["word"], round(w["start"] + offset, 3), round(w["end"] + offset, 3), w.get("score"))
            for w in seg.get("words", ())
            if "start" in w and "end" in w
        )
        text = seg.get("text", "").strip()
        out.append(
            Segment(
                id=i,
                start=round(float(seg["start"]) + offset, 3),
                end=round(float(seg["end"]) + offset, 3),
                text=" " + text,
                avg_logprob=float(seg.get("avg_logprob", 0.0) or 0.0),
                words=words,
                speaker=seg.get("speaker"),
            )
        )
    return out


def whisperx_specs(settings: EngineSettings) -> list[EngineSpec]:
    """The WhisperX models configured in settings (none by default: WhisperX is an optional extra)."""
    xs = settings.whisperx
    specs = []
    for model_id, ref in xs.models.items():
        english_only = model_id.endswith(".en") or ref.rstrip("/").endswith(".en")
        local = is_local(ref)
        path = str(Path(ref).expanduser()) if local else ref
        specs.append(
            EngineSpec(
                model_id,
                "transcription",
                lambda path=path, english_only=english_only: WhisperXTranscriber(path, xs, english_only=english_only),
                owned_by="local" if local else "hub",
                description=f"WhisperX (batched Whisper + alignment{' + diarization' if xs.diarization_model else ''}) "
                f"from {ref}. Needs voxloop[whisperx].",
                capabilities=whisperx_capabilities(english_only, xs.diarization_model is not None),
                probe=(lambda path=path: None if Path(path).is_dir() else f"missing model directory {path}")
                if local
                else None,
                device=xs.device,
                memory_bytes=whisperx_bytes(f"{model_id} {ref}", xs.compute_type, xs.diarization_model is not None),
            )
        )
    return specs
