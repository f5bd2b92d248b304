"""Cross-request batching for faster-whisper: concurrent requests share one decoder batch.

faster-whisper's `BatchedInferencePipeline` already batches the VAD chunks of one file. Here each request runs that
pipeline on its own thread (decoding, VAD and features stay parallel), but `forward` — the model call — goes through
a `ForwardBatcher`: whichever thread finds the model idle becomes the leader, takes every compatible pending chunk
(same task, language and decoding options) from all waiting requests, runs them as one batch and hands each request
its own results. Nothing waits for a timer: a batch forms from whatever arrived while the previous one ran.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from faster_whisper import BatchedInferencePipeline

from engines.whisper_decode import decode_to_end


@dataclass
class _Job:
    key: str
    pipeline: "SharedBatchPipeline"
    features: np.ndarray
    tokenizer: Any
    metadata: list[dict[str, Any]]
    options: Any
    result: list[Any] | None = None
    error: BaseException | None = None
    done: bool = False


class ForwardBatcher:
    """Serialises model calls and merges compatible concurrent ones (leader/follower, no extra thread)."""

    def __init__(self, max_chunks: int):
        self.max_chunks = max_chunks
        self._cond = threading.Condition()
        self._pending: list[_Job] = []
        self._busy = False
        self.batches_run = 0
        self.largest_merge = 0

    def run(self, job: _Job) -> list[Any]:
        with self._cond:
            self._pending.append(job)
            while not job.done:
                if self._busy:
                    self._cond.wait()
                    continue
                batch = self._take_batch()
                self._busy = True
                self._cond.release()
                try:
                    self._execute(batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _take_batch(self) -> list[_Job]:
        first = self._pending[0]
        batch, chunks = [], 0
        for job in list(self._pending):
            if job.key != first.key or (batch and chunks + len(job.features) > self.max_chunks):
                continue
            batch.append(job)
            chunks += len(job.features)
            self._pending.remove(job)
        return batch

    def _execute(self, batch: list[_Job]) -> None:
        leader = batch[0]
        try:
            features = np.concatenate([j.features for j in batch]) if len(batch) > 1 else leader.features
            metadata = [m for j in batch for m in j.metadata]
            outputs = leader.pipeline.forward_now(features, leader.tokenizer, metadata, leader.options)
            start = 0
            for job in batch:
                job.result = outputs[start : start + len(job.features)]
                start += len(job.features)
        except BaseException as exc:  # every request in the batch learns of the failure
            for job in batch:
                job.error = exc
        finally:
            for job in batch:
                job.done = True
            self.batches_run += 1
            self.largest_merge = max(self.largest_merge, len(batch))


class SharedBatchPipeline(BatchedInferencePipeline):
    """A per-request pipeline whose model calls go through the shared `ForwardBatcher`."""

    def __init__(self, model: Any, batcher: ForwardBatcher, passes: int = 1, recover_tails: bool = False):
        super().__init__(model)
        self._batcher = batcher
        self._passes = passes  # decoder passes per chunk (engines/whisper_decode.py); 1 is faster-whisper's own
        self._recover_tails = recover_tails  # re-decode a chunk's unaligned tail after one pass (whisper_decode.py)

    def forward(self, features: np.ndarray, tokenizer: Any, chunks_metadata: list[dict[str, Any]], options: Any) -> list[Any]:
        key = f"{tokenizer.task}|{tokenizer.language_code}|{self._passes}|{self._recover_tails}|{options!r}"
        if options.word_timestamps:
            # Word alignment carries per-request state (last_speech_timestamp) across batches: never merge it.
            key += f"|{id(self)}"
        job = _Job(key, self, features, tokenizer, list(chunks_metadata), options)
        return self._batcher.run(job)

    def forward_now(self, features: np.ndarray, tokenizer: Any, chunks_metadata: list[dict[str, Any]], options: Any) -> list[Any]:
        return decode_to_end(self, features, tokenizer, chunks_metadata, options, self._passes,
                            recover_tails=self._recover_tails)
