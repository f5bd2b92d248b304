"""NVIDIA NeMo ASR behind `Transcriber` (extra `voxloop[nemo]`): Parakeet TDT 0.6B v2 and its relatives.

Parakeet TDT v2 is English-only, writes punctuation and capitals itself, and gives word and segment timestamps
from the TDT decoder (`timestamps=True`). Concurrent requests share the model's batched `transcribe` through the
cross-request `Batcher` (engines/batching.py): whoever arrives while a call runs joins the next one. Models load from a local `.nemo` file (the usual way on an offline GPU
box) or, when downloads are allowed, from a hub id through NeMo's own `from_pretrained`.

The cache-aware streaming models (Nemotron streaming ASR) are served by `engines/nemo_streaming.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from engines.base import (
    AudioBuffer,
    CancelToken,
    Segment,
    TranscriberCapabilities,
    TranscriptionInfo,
    TranscriptionOptions,
    UnsupportedOptionError,
    Word,
)
from engines.batching import Batcher
from engines.footprint import CudaAllocation, nemo_bytes
from engines.nemo_models import (
    NEMO_CAPABILITIES,
    STREAMING_CAPABILITIES,
    hypothesis_text,
    import_nemo,
    is_local,
    load_nemo_model,
    nemo_capabilities,
    probe_nemo_file,
)
from engines.nemo_streaming import NemoStreamingTranscriber
from engines.registry import EngineSpec
from engines.settings import EngineSettings, NemoSettings

logger = logging.getLogger(__name__)


class NemoTranscriber:
    """One loaded NeMo ASR model (Parakeet TDT, or any NeMo model whose `transcribe` gives timestamps).

    Each request is one utterance; concurrent requests are decoded together in one `transcribe` call of up to
    `batch_size` utterances (`self.batcher.batch_sizes` records them)."""

    def __init__(self, ref: str, settings: NemoSettings, capabilities: TranscriberCapabilities = NEMO_CAPABILITIES):
        self._torch, _ = import_nemo()
        with CudaAllocation(settings.device) as allocated:
            self._model = load_nemo_model(ref, settings)
        self._memory = allocated.bytes
        self._rate = int(self._model.cfg.get("sample_rate", 16000))
        self.capabilities = capabilities
        self.batcher: Batcher[np.ndarray, Any] = Batcher(settings.batch_size)
        if settings.warmup:
            self.warm_up()

    def memory_bytes(self) -> int | None:
        return self._memory

    def warm_up(self) -> None:
        """One dummy batch (two clips of different lengths, so padding is exercised) straight through the model:
        the first request then finds the kernels loaded and tuned. Not counted in `batcher.batch_sizes`."""
        rng = np.random.default_rng(0)
        clips = [(rng.standard_normal(int(self._rate * s)) * 0.01).astype(np.float32) for s in (1.0, 0.5)]
        self._decode(clips)

    def _decode(self, clips: Sequence[np.ndarray]) -> list[Any]:
        """The library's batched call: one hypothesis per clip, in order."""
        with self._torch.inference_mode():
            hyps = self._model.transcribe(list(clips), batch_size=len(clips), timestamps=True, verbose=False)
        # RNNT models return a list of Hypothesis (older NeMo: a tuple (best, all)).
        if isinstance(hyps, tuple):
            hyps = hyps[0]
        return list(hyps)

    def transcribe(
        self, audio: AudioBuffer, options: TranscriptionOptions, cancel: CancelToken
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        if options.task == "translate":
            raise UnsupportedOptionError("NeMo ASR models do not translate.", param="model")
        cancel.raise_if_cancelled()
        if audio.sample_rate != self._rate:
            raise UnsupportedOptionError(f"NeMo model expects {self._rate} Hz audio, got {audio.sample_rate} Hz.")
        # The whole window is decoded at once: Parakeet's full attention takes up to ~24 min on a GPU, and the
        # service cuts longer audio into windows (decode_window_seconds) before it gets here.
        samples = np.asarray(audio.samples, dtype=np.float32)
        (hyp,) = self.batcher.run([samples], self._decode, cancel=cancel)
        language = options.language or "en"
        segments = to_segments(hyp, audio.offset)
        return TranscriptionInfo(language=language, duration=audio.duration), iter(segments)

    def close(self) -> None:
        del self._model


def to_segments(hyp: Any, offset: float) -> list[Segment]:
    """NeMo's timestamp dict (`segment` and `word` entries, in seconds) as `Segment`s with their `Word`s.

    Without segment timestamps (a model or decoder that gives none) the whole text is one segment.
    """
    stamps = getattr(hyp, "timestamp", None) or {}
    words = [
        Word(w.get("word", ""), round(float(w["start"]) + offset, 3), round(float(w["end"]) + offset, 3))
        for w in stamps.get("word", ())
        if "start" in w and "end" in w
    ]
    raw = [s for s in stamps.get("segment", ()) if "start" in s and "end" in s]
    if not raw:
        text = hypothesis_text(hyp).strip()
        if not text:
            return []
        start = words[0].start if words else offset
        end = words[-1].end if words else offset
        raw = [{"segment": text, "start": start - offset, "end": end - offset}]
    segments = []
    for i, s in enumerate(raw):
        start, end = round(float(s["start"]) + offset, 3), round(float(s["end"]) + offset, 3)
        last = i == len(raw) - 1
        own = tuple(w for w in words if start <= w.start < end or (last and w.start >= end) or (i == 0 and w.start < start))
        text = str(s.get("segment", "")).strip()
        # A leading space like Whisper's, so segments concatenate into readable text.
        segments.append(Segment(id=i, start=start, end=end, text=" " + text, words=tuple(own)))
    return segments


def nemo_specs(settings: EngineSettings) -> list[EngineSpec]:
    """The NeMo models configured in settings (none by default: NeMo is an optional extra)."""
    ns = settings.nemo
    specs = []
    for model_id, ref in ns.models.items():
        caps = nemo_capabilities(model_id)
        specs.append(
            EngineSpec(
                model_id,
                "transcription",
                lambda ref=ref, caps=caps: NemoTranscriber(ref, ns, caps),
                workers=ns.parallel_requests,  # concurrent requests share batches (engines/batching.py)
                owned_by="nvidia (weights), local" if is_local(ref) else "nvidia (hub)",
                description=f"NeMo ASR from {ref} (Parakeet TDT: CC-BY-4.0 weights). Needs voxloop[nemo].",
                capabilities=caps,
                probe=probe_nemo_file(ref),
                device=ns.device,
                memory_bytes=nemo_bytes(f"{model_id} {ref}"),
            )
        )
    for model_id, ref in ns.streaming_models.items():
        specs.append(
            EngineSpec(
                model_id,
                "transcription",
                lambda ref=ref: NemoStreamingTranscriber(ref, ns),
                workers=ns.parallel_requests,  # concurrent streams share batched encoder steps
                owned_by="nvidia (weights), local" if is_local(ref) else "nvidia (hub)",
                description=f"NeMo cache-aware streaming ASR (Nemotron) from {ref}. Needs voxloop[nemo].",
                capabilities=STREAMING_CAPABILITIES,
                probe=probe_nemo_file(ref),
                device=ns.device,
                memory_bytes=nemo_bytes(f"{model_id} {ref}"),
            )
        )
    return specs
