"""Kokoro-82M in PyTorch (hexgrad's `kokoro` package, extra `voxloop[kokoro]`) behind `Synthesizer`, with the real
voice packs: the GPU box's Kokoro, served as `kokoro-82m-torch` beside the embedded ONNX one (`kokoro-82m`).

Weights come from a local directory laid out like the hexgrad/Kokoro-82M hub repo, or that hub id (see
`engines/kokoro_torch_files.py`). Runs on cuda, mps or cpu.

G2P: espeak-ng through kokoro-onnx's tokenizer (the embedded engine's route, `espeakng-loader`), then `KModel`
then the model with the phoneme ids and the voice pack row for their length, as `KPipeline.infer` does. Not misaki:
its English G2P needs spaCy's `en_core_web_sm`, which it downloads at first use (from GitHub, so never offline),
and `KPipeline` builds it on construction. espeak phonemes are what Kokoro's own pipeline falls back to for unknown
English words and use for its espeak languages (es, fr, hi, it, pt-br); for English, misaki's are closer to what
the model was trained on, so some words sound different from hexgrad's demo.

Concurrent requests (and realtime sessions) share the model's calls through the cross-request `Batcher`
(engines/batching.py): every phrase waiting while a call runs goes into the next one, padded to the longest
(`engines/kokoro_batch.py` keeps each phrase's audio what it would be alone). Each phrase's source noise is seeded
from its phonemes, so a phrase sounds the same alone or in any batch (and the same phrase the same every time).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engines.base import (
    AudioChunk,
    CancelToken,
    EngineError,
    EngineUnavailableError,
    SynthesisOptions,
    SynthesizerCapabilities,
    Voice,
)
from engines.batching import Batcher
from engines.kokoro_batch import KokoroPhrase, forward_batch, token_ids
from engines.kokoro_graphs import AlbertGraphs
from engines.kokoro_torch_files import (
    HUB_REPO,
    cached_dir,
    is_local,
    kokoro_voice,
    listed_voices,
    missing_files,
    model_dir,
    voice_files,
    weights_file,
)
from engines.registry import EngineSpec
from engines.settings import EngineSettings, TTSSettings
from engines.speech_text import blend, split_phrases

logger = logging.getLogger(__name__)

MODEL_ID = "kokoro-82m-torch"
INSTALL_HINT = "pip install 'voxloop[kokoro]'"
KOKORO_RATE = 24_000
# A voice pack has one style row per phoneme count (510 rows), and ALBERT's 512 positions hold 510 phonemes plus
# the two pad tokens: longer phrases are cut into batches of at most this many phonemes.
MAX_PHONEMES = 510
# espeak-ng's names where Kokoro's voice language codes differ.
_ESPEAK_LANGUAGE = {"zh": "cmn", "fr": "fr-fr"}


def import_kokoro() -> tuple[Any, Any]:
    """torch and KModel, or an install hint. Imported lazily: kokoro pulls torch, transformers and spaCy."""
    try:
        import torch
        from kokoro import KModel
    except ImportError as exc:
        raise EngineUnavailableError(f"Kokoro (torch) is not installed ({exc.name}): {INSTALL_HINT}") from exc
    return torch, KModel


def pick_device(torch: Any, setting: str) -> str:
    """`auto`: cuda, then mps, then cpu. An explicit device that is not here fails now, not on the first request."""
    if setting == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise EngineUnavailableError(f"Kokoro device {setting} asked for, but torch sees no CUDA GPU")
    if setting == "mps" and not torch.backends.mps.is_available():
        raise EngineUnavailableError("Kokoro device mps asked for, but torch has no MPS backend here")
    return setting


class KokoroTorchSynthesizer:
    """One loaded `KModel` and its voice packs. Many workers: their phrases meet in `self.batcher`, which runs one
    padded batch at a time on the model (`self.batcher.batch_sizes` records them).

    Chunks by phrase like the ONNX engine, so the first audio comes after a few words.
    """

    def __init__(self, directory: Path, tts: TTSSettings):
        torch, KModel = import_kokoro()
        from kokoro_onnx.tokenizer import Tokenizer  # the embedded engine's espeak-ng G2P (a core dependency)

        self._torch = torch
        self.device = pick_device(torch, tts.kokoro_torch_device)
        if tts.kokoro_torch_cuda_graphs and not self.device.startswith("cuda"):
            raise EngineUnavailableError(
                f"kokoro_torch_cuda_graphs needs a CUDA device; the torch Kokoro's device is '{self.device}'"
            )
        missing = missing_files(directory)
        if missing:
            raise EngineUnavailableError(f"Kokoro directory {directory} lacks {', '.join(missing)}")
        try:
            config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
            # repo_id only names the model (it is not fetched): config and weights are given as files.
            model = KModel(repo_id=HUB_REPO, config=config, model=str(weights_file(directory)))
            self._model = model.to(self.device).eval()
            self._packs = {
                name: torch.load(path, map_location=self.device, weights_only=True)
                for name, path in voice_files(directory).items()
            }
        except Exception as exc:
            raise EngineUnavailableError(f"Kokoro could not be loaded from {directory}: {exc}") from exc
        self._tokenizer = Tokenizer(vocab=config["vocab"])
        self._vocab: dict[str, int] = config["vocab"]
        self._g2p_lock = threading.Lock()  # espeak-ng keeps global state: one phonemization at a time
        self.batcher: Batcher[KokoroPhrase, np.ndarray] = Batcher(tts.kokoro_torch_batch_size)
        self.albert = (AlbertGraphs(torch, self._model, tts.kokoro_torch_batch_size, graph=True)
                       if tts.kokoro_torch_cuda_graphs else None)
        self._first_words = tts.first_phrase_words
        self.capabilities = capabilities(tuple(kokoro_voice(name) for name in self._packs))
        self.sample_rate = KOKORO_RATE
        if tts.kokoro_torch_warmup and self._packs:
            self.warm_up()
        logger.info("Kokoro (torch) loaded from %s on %s with %d voices", directory, self.device, len(self._packs))

    def voices(self) -> list[Voice]:
        return list(self.capabilities.voices)

    def warm_up(self) -> None:
        """A dummy batch of two phrases of different lengths (so padding is exercised) with the first voice: the first
        request then finds the kernels loaded (on CUDA the first call after load is ~40x slower than the next). With
        `kokoro_torch_cuda_graphs`, every ALBERT bucket is captured first. Not counted in `batcher.batch_sizes`."""
        if self.albert is not None:
            try:
                self.albert.prepare()
            except Exception as exc:
                raise EngineUnavailableError(f"Kokoro's CUDA graphs could not be captured ({exc}): set "
                                             "kokoro_torch_cuda_graphs to false.") from exc
        pack = next(iter(self._packs.values()))
        phonemes = self.phonemes("Hello there.", "en-us") + self.phonemes("Hi.", "en-us")
        self._forward([self._phrase(p, pack, 1.0) for p in phonemes])

    def pack(self, voice: str) -> Any:
        """The voice pack tensor [510, 1, 256], blended when the id is `a:0.6+b:0.4`."""
        return blend(voice, self._packs, "Kokoro")

    def phonemes(self, text: str, language: str) -> list[str]:
        """espeak-ng phonemes of `text` in Kokoro's vocabulary, cut into batches the model can take."""
        from kokoro_onnx.chunker import split_phonemes

        lang = language.lower()
        with self._g2p_lock:
            phonemes = self._tokenizer.phonemize(text, _ESPEAK_LANGUAGE.get(lang, lang))
        return split_phonemes(" ".join(phonemes.split()), MAX_PHONEMES)

    def synthesize(self, text: str, options: SynthesisOptions, cancel: CancelToken) -> Iterator[AudioChunk]:
        pack = self.pack(options.voice)
        for phrase in split_phrases(text, self._first_words):
            cancel.raise_if_cancelled()
            items = [self._phrase(p, pack, options.speed) for p in self.phonemes(phrase.text, options.language)]
            if not items:  # only punctuation or symbols: nothing to say in this phrase
                continue
            # With whatever other requests' phrases wait: one padded call (a waiting request that is cancelled
            # leaves the queue; one already in a running call is not disturbed, nor are the others).
            parts = self.batcher.run(items, self._forward, cancel=cancel)
            parts.append(phrase.pause(KOKORO_RATE))
            yield AudioChunk(np.concatenate(parts), KOKORO_RATE, text=phrase.text)

    def _phrase(self, phonemes: str, pack: Any, speed: float) -> KokoroPhrase:
        """One model item: the ids, the pack's style row for the phoneme count, and a seed from the phonemes."""
        return KokoroPhrase(token_ids(self._vocab, phonemes), pack[len(phonemes) - 1], float(speed),
                            zlib.crc32(phonemes.encode("utf-8")))

    def _forward(self, phrases: list[KokoroPhrase]) -> list[np.ndarray]:
        """The batched call: every phrase's audio, in order."""
        try:
            return forward_batch(self._torch, self._model, phrases, self.albert)
        except Exception as exc:
            raise EngineError(f"Kokoro inference failed: {exc}") from exc

    def close(self) -> None:
        del self._model, self._packs
        if self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()


def capabilities(voices: tuple[Voice, ...]) -> SynthesizerCapabilities:
    return SynthesizerCapabilities(voices=voices, sample_rate=KOKORO_RATE, min_speed=0.5, max_speed=2.0, blending=True)


def _probe(ref: str, tts: TTSSettings, cache_dir: Path) -> Any:
    def probe() -> str | None:
        if importlib.util.find_spec("kokoro") is None:
            return f"Kokoro (torch) is not installed: {INSTALL_HINT}"
        directory = cached_dir(ref, cache_dir)
        if directory is None:
            if is_local(ref):
                return f"missing Kokoro directory {ref}"
            return None if tts.allow_downloads else f"hub id {ref} is not cached and downloads are off"
        missing = missing_files(directory)
        return f"missing in {directory}: {', '.join(missing)}" if missing else None

    return probe


def kokoro_torch_specs(settings: EngineSettings) -> list[EngineSpec]:
    """`kokoro-82m-torch` when `tts.kokoro_torch_model` is set (none by default: the torch Kokoro is an extra)."""
    tts = settings.tts
    ref = tts.kokoro_torch_model
    if ref is None:
        return []

    def factory() -> KokoroTorchSynthesizer:
        return KokoroTorchSynthesizer(model_dir(ref, allow_downloads=tts.allow_downloads, cache_dir=settings.cache_dir),
                                      tts)

    return [
        EngineSpec(
            MODEL_ID,
            "speech",
            factory,
            aliases=("kokoro-torch",),
            workers=tts.kokoro_torch_parallel_requests,  # concurrent requests share batches (engines/batching.py)
            owned_by="hexgrad (Kokoro-82M, Apache-2.0), " + ("local" if is_local(ref) else "hub"),
            description=f"Kokoro-82M in PyTorch from {ref}, real voice packs, espeak-ng G2P. Needs voxloop[kokoro].",
            capabilities=capabilities(listed_voices(ref, settings.cache_dir)),
            probe=_probe(ref, tts, settings.cache_dir),
        )
    ]
