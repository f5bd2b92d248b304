"""emotion2vec+ (seed, base, large) through FunASR, behind `EmotionRecognizer`. Optional extra: `voxloop[funasr]`.

A model is a local checkpoint directory (`config.yaml`, `model.pt`, `tokens.txt`, as released) or a hub id
(Hugging Face `emotion2vec/emotion2vec_plus_*`, ModelScope `iic/emotion2vec_plus_*`). Hub ids download only when
settings allow it; otherwise loading fails with a 503 that says how to serve the model offline. FunASR is imported
when a model loads, never at registration, so the server runs without the extra.

Concurrent requests share the model's calls through the cross-request `Batcher` (engines/batching.py): clips that
arrive while a call runs go into the next one, padded to the longest (`engines/emotion2vec_batch.py` keeps each
clip's scores what they are alone; FunASR's own `generate` runs its inputs one at a time).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import numpy as np

from engines.base import (
    EMOTION_LABELS,
    AudioBuffer,
    CancelToken,
    EmotionCapabilities,
    EmotionOptions,
    EmotionScores,
    EngineError,
    EngineUnavailableError,
)
from engines.batching import Batcher
from engines.circumplex import make_scores, normalised, va_from_scores
from engines.emotion2vec_batch import classify_batch
from engines.footprint import CudaAllocation, emotion2vec_bytes
from engines.registry import EngineSpec
from engines.settings import EmotionSettings, EngineSettings

logger = logging.getLogger(__name__)

SIZES = ("seed", "base", "large")
HUB_IDS = {"hf": "emotion2vec/emotion2vec_plus_{size}", "ms": "iic/emotion2vec_plus_{size}"}
INSTALL_HINT = "emotion2vec+ needs FunASR and torch: pip install 'voxloop[funasr]'"
RATE = 16_000
# The conv front end (kernel 10, stride 5, then six stride-2 layers) needs a few hundred ms to produce a frame.
MIN_SAMPLES = RATE // 2
# Self-attention cost grows with the square of the length: longer input is judged in chunks of at most this many
# seconds and the chunks' scores averaged, weighted by length (emotion2vec+ was trained on utterance-length clips).
MAX_CHUNK_SECONDS = 30


def english_label(token: str) -> str:
    """`生气/angry` -> `angry`; `<unk>` -> `unknown`; anything else unknown to the label set -> `other`."""
    if token.strip() == "<unk>":
        return "unknown"
    name = token.split("/")[-1].strip().lower()
    return name if name in EMOTION_LABELS else "other"


def scores_from_result(result: dict[str, Any]) -> dict[str, float]:
    """FunASR's `{"labels": [...], "scores": [...]}` as English label -> probability over the nine labels."""
    out: dict[str, float] = dict.fromkeys(EMOTION_LABELS, 0.0)
    for token, score in zip(result.get("labels", ()), result.get("scores", ()), strict=False):
        out[english_label(str(token))] += float(score)
    return normalised(out)


class Emotion2vecRecognizer:
    """One loaded emotion2vec+ model (utterance-level classification; the service cuts segments)."""

    capabilities = EmotionCapabilities(uses_transcript=False)

    def __init__(self, model_ref: str, *, device: str, hub: str, local: bool, allow_downloads: bool,
                 batch_size: int = 16):
        if not local and not allow_downloads:
            raise EngineUnavailableError(
                f"emotion2vec+ '{model_ref}' is a hub id and downloads are off. Put the checkpoint in a directory "
                "and set VOXLOOP_EMOTION__EMOTION2VEC='{\"<id>\": \"/path\"}', or set "
                "VOXLOOP_EMOTION__ALLOW_DOWNLOADS=true."
            )
        try:
            from funasr import AutoModel
        except ImportError as exc:
            raise EngineUnavailableError(f"{INSTALL_HINT} ({exc.name} is missing).") from exc
        try:
            # disable_update: otherwise FunASR asks PyPI for its latest version on every load. FunASR calls
            # logging.basicConfig(level=log_level); passing the root's current level keeps that from changing it.
            root_level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
            with CudaAllocation(device) as allocated:
                self._model = AutoModel(
                    model=model_ref,
                    hub=hub,
                    device=device,
                    disable_update=True,
                    disable_pbar=True,
                    log_level=root_level,
                )
        except Exception as exc:
            raise EngineUnavailableError(f"emotion2vec+ '{model_ref}' could not be loaded: {exc}") from exc
        self._memory = allocated.bytes
        import torch

        self._torch = torch
        tokenizer = self._model.kwargs.get("tokenizer")
        self._labels = list(tokenizer.token_list) if tokenizer is not None else []
        self._device = self._model.kwargs.get("device", device)
        self.batcher: Batcher[np.ndarray, dict[str, Any]] = Batcher(batch_size)

    def memory_bytes(self) -> int | None:
        return self._memory

    def recognize(self, audio: AudioBuffer, options: EmotionOptions, cancel: CancelToken) -> EmotionScores:
        cancel.raise_if_cancelled()
        samples = audio.samples.astype(np.float32, copy=False)
        if audio.sample_rate != RATE:
            import soxr

            samples = soxr.resample(samples, audio.sample_rate, RATE).astype(np.float32)
        step = MAX_CHUNK_SECONDS * RATE
        chunks = []
        for start in range(0, max(len(samples), 1), step):
            chunk = samples[start : start + step]
            if start and len(chunk) < MIN_SAMPLES:
                break  # a sliver at the end adds nothing but noise
            chunks.append(chunk)
        padded = [np.pad(c, (0, MIN_SAMPLES - len(c))) if len(c) < MIN_SAMPLES else c for c in chunks]
        # With whatever other requests' clips wait: one padded call.
        results = self.batcher.run(padded, self._classify_batch, cancel=cancel)
        total: dict[str, float] = dict.fromkeys(EMOTION_LABELS, 0.0)
        for chunk, result in zip(chunks, results, strict=True):
            for label, p in scores_from_result(result).items():
                total[label] += p * max(len(chunk), 1)
        scores = normalised(total)
        valence, arousal = va_from_scores(scores)
        return make_scores(scores, valence, arousal)

    def _classify_batch(self, clips: list[np.ndarray]) -> list[dict[str, Any]]:
        """The batched call: FunASR's result (`labels`, `scores`) per clip, in order."""
        try:
            return classify_batch(self._torch, self._model.model, self._labels, clips, self._device)
        except Exception as exc:
            raise EngineError(f"emotion2vec+ inference failed: {exc}") from exc

    def close(self) -> None:
        del self._model


def _is_local(ref: str) -> bool:
    return ref.startswith((".", "/", "~")) or Path(ref).expanduser().is_dir()


def _probe(ref: str, local: bool, settings: EmotionSettings):
    def probe() -> str | None:
        if importlib.util.find_spec("funasr") is None:
            return INSTALL_HINT
        if local:
            path = Path(ref).expanduser()
            missing = [n for n in ("config.yaml", "model.pt") if not (path / n).exists()]
            return f"missing {', '.join(missing)} in {path}" if missing else None
        return None if settings.allow_downloads else f"hub id {ref} and downloads are off"

    return probe


def emotion2vec_specs(settings: EngineSettings) -> list[EngineSpec]:
    """emotion2vec_plus_{seed,base,large} (hub ids unless mapped to a directory) plus any extra ids in settings."""
    es = settings.emotion
    refs = {f"emotion2vec_plus_{size}": HUB_IDS[es.hub].format(size=size) for size in SIZES}
    refs.update(es.emotion2vec)
    specs = []
    for model_id, ref in refs.items():
        local = _is_local(ref)
        path = str(Path(ref).expanduser()) if local else ref
        size = next((s for s in SIZES if model_id == f"emotion2vec_plus_{s}"), None)
        aliases = tuple(h.format(size=size) for h in HUB_IDS.values()) if size else ()
        specs.append(
            EngineSpec(
                model_id,
                "emotion",
                lambda path=path, local=local: Emotion2vecRecognizer(
                    path, device=es.device, hub=es.hub, local=local, allow_downloads=es.allow_downloads,
                    batch_size=es.emotion2vec_batch_size,
                ),
                workers=es.emotion2vec_parallel_requests,  # concurrent requests share batches (engines/batching.py)
                aliases=aliases,
                owned_by="emotion2vec (weights), FunASR",
                description=f"emotion2vec+ speech emotion recognition (9 labels) from "
                f"{'local path' if local else 'hub id'} {ref}. Needs the `funasr` extra.",
                capabilities=Emotion2vecRecognizer.capabilities,
                probe=_probe(path, local, es),
                device=es.device,
                memory_bytes=emotion2vec_bytes(f"{model_id} {ref}"),
            )
        )
    return specs
