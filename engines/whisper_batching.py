"""Cross-request batching for faster-whisper: concurrent requests share one decoder batch.

faster-whisper's `BatchedInferencePipeline` already batches the VAD chunks of one file. Here each request runs that
pipeline on its own thread (decoding, VAD and features stay parallel), but `forward` — the model call — goes through
a `ForwardBatcher`, the generic cross-request `Batcher` (engines/batching.py) with one speech chunk per item:
compatible chunks (same task, language and decoding options) from all waiting requests run as one batch and each
request gets its own results. Nothing waits for a timer: a batch forms from whatever arrived while the previous ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from faster_whisper import BatchedInferencePipeline

from engines.base import CancelToken
from engines.batching import Batcher
from engines.whisper_decode import decode_to_end


@dataclass
class _Job:
    key: str
    pipeline: "SharedBatchPipeline"
    features: np.ndarray
    tokenizer: Any
    metadata: list[dict[str, Any]]
    options: Any
    cancel: CancelToken | None = None


class ForwardBatcher:
    """One request's `forward` as items (chunk features, chunk metadata) of a shared `Batcher`."""

    def __init__(self, max_chunks: int):
        self._batcher: Batcher[Any, Any] = Batcher(max_chunks)

    @property
    def max_chunks(self) -> int:
        return self._batcher.max_items

    @property
    def batches_run(self) -> int:
        return self._batcher.batches_run

    @property
    def largest_merge(self) -> int:
        return self._batcher.largest_merge

    def run(self, job: _Job) -> list[Any]:
        def call(items: Sequence[tuple[np.ndarray, dict[str, Any]]]) -> list[Any]:
            features = np.stack([f for f, _ in items]) if len(items) > 1 else items[0][0][None]
            return job.pipeline.forward_now(features, job.tokenizer, [m for _, m in items], job.options)

        items = list(zip(job.features, job.metadata))
        return self._batcher.run(items, call, key=job.key, cancel=job.cancel)


class SharedBatchPipeline(BatchedInferencePipeline):
    """A per-request pipeline whose model calls go through the shared `ForwardBatcher`."""

    def __init__(
        self, model: Any, batcher: ForwardBatcher, passes: int = 1, cancel: CancelToken | None = None,
        recover_tails: bool = False, tail_pad: float = 0.0,
    ):
        super().__init__(model)
        self._batcher = batcher
        self._cancel = cancel  # a request cancelled while it waits for the decoder leaves the queue
        self._passes = passes  # decoder passes per chunk (engines/whisper_decode.py); 1 is faster-whisper's own
        self._recover_tails = recover_tails  # re-decode a chunk's unaligned tail after one pass (whisper_decode.py)
        self._tail_pad = tail_pad  # the VAD's padding after a chunk's speech, which tail recovery discounts

    def forward(self, features: np.ndarray, tokenizer: Any, chunks_metadata: list[dict[str, Any]], options: Any) -> list[Any]:
        key = (f"{tokenizer.task}|{tokenizer.language_code}|{self._passes}|{self._recover_tails}|{self._tail_pad}|"
               f"{options!r}")
        if options.word_timestamps:
            # Word alignment carries per-request state (last_speech_timestamp) across batches: never merge it.
            key += f"|{id(self)}"
        job = _Job(key, self, features, tokenizer, list(chunks_metadata), options, self._cancel)
        return self._batcher.run(job)

    def forward_now(self, features: np.ndarray, tokenizer: Any, chunks_metadata: list[dict[str, Any]], options: Any) -> list[Any]:
        return decode_to_end(self, features, tokenizer, chunks_metadata, options, self._passes,
                            recover_tails=self._recover_tails, tail_pad=self._tail_pad)
