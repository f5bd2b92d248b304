"""The cross-request batcher: compatible concurrent calls merge, results go back to the right caller, errors too."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from engines.whisper_batching import ForwardBatcher, _Job


class RecordingPipeline:
    """Stands in for the faster-whisper pipeline: echoes each chunk's offset so routing can be checked."""

    def __init__(self, calls: list[int], fail: bool = False):
        self.calls = calls
        self.fail = fail

    def forward_now(self, features, tokenizer, metadata, options):
        self.calls.append(len(features))
        time.sleep(0.05)  # long enough for the other threads to queue up behind the first call
        if self.fail:
            raise RuntimeError("decoder failed")
        return [[{"offset": m["offset"]}] for m in metadata]


def _job(key: str, pipeline, offsets: list[float]) -> _Job:
    features = np.zeros((len(offsets), 2, 2), np.float32)
    return _Job(key, pipeline, features, SimpleNamespace(), [{"offset": o} for o in offsets], SimpleNamespace())


def _run_all(batcher: ForwardBatcher, jobs: list[_Job]) -> list[object]:
    results: list[object] = [None] * len(jobs)

    def go(i: int) -> None:
        try:
            results[i] = batcher.run(jobs[i])
        except Exception as exc:  # collected for the assertions
            results[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
        time.sleep(0.005)
    for t in threads:
        t.join(5)
    return results


def test_concurrent_compatible_calls_merge_and_route_back() -> None:
    calls: list[int] = []
    batcher = ForwardBatcher(max_chunks=32)
    pipe = RecordingPipeline(calls)
    jobs = [_job("en", pipe, [i * 100 + k for k in range(3)]) for i in range(4)]
    results = _run_all(batcher, jobs)
    for i, result in enumerate(results):
        assert [r[0]["offset"] for r in result] == [i * 100 + k for k in range(3)]
    assert sum(calls) == 12 and len(calls) < 4 and batcher.largest_merge >= 2


def test_incompatible_keys_and_chunk_cap_are_respected() -> None:
    calls: list[int] = []
    batcher = ForwardBatcher(max_chunks=4)
    pipe = RecordingPipeline(calls)
    jobs = [_job("en", pipe, [1, 2, 3]), _job("fr", pipe, [4]), _job("en", pipe, [5, 6, 7]), _job("en", pipe, [8])]
    results = _run_all(batcher, jobs)
    assert [[r[0]["offset"] for r in res] for res in results] == [[1, 2, 3], [4], [5, 6, 7], [8]]
    assert max(calls) <= 4


def test_failure_reaches_every_request_in_the_batch_and_batcher_recovers() -> None:
    calls: list[int] = []
    batcher = ForwardBatcher(max_chunks=32)
    bad = RecordingPipeline(calls, fail=True)
    results = _run_all(batcher, [_job("en", bad, [1]), _job("en", bad, [2])])
    assert all(isinstance(r, RuntimeError) for r in results)
    good = RecordingPipeline(calls)
    assert batcher.run(_job("en", good, [3]))[0][0]["offset"] == 3


@pytest.mark.models
def test_real_engine_concurrent_equals_sequential() -> None:
    from engines.audio import resample
    from engines.base import AudioBuffer, CancelToken, TranscriptionOptions
    from engines.settings import WhisperSettings
    from engines.whisper import FasterWhisperTranscriber, tiny_en_dir
    from tests.support.speech import PIPER_RATE, speak

    engine = FasterWhisperTranscriber(str(tiny_en_dir()), WhisperSettings(), english_only=True, local_files_only=True)
    texts = ["The weather is lovely today.", "Please close the door behind you.", "Numbers like seven and nine."]
    buffers = [AudioBuffer(resample(speak(t), PIPER_RATE, 16000), 16000) for t in texts]

    def transcribe(buffer: AudioBuffer) -> str:
        _, segments = engine.transcribe(buffer, TranscriptionOptions(), CancelToken())
        return "".join(s.text for s in segments).strip()

    sequential = [transcribe(b) for b in buffers]
    concurrent: list[str] = [""] * 3
    threads = [threading.Thread(target=lambda i=i: concurrent.__setitem__(i, transcribe(buffers[i]))) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert concurrent == sequential
    engine.close()


@pytest.mark.models
def test_tail_recovery_does_not_decode_the_vads_padding_after_the_last_word() -> None:
    """A realtime turn: a question, then the silence that ended it. The tail after the last aligned word is the VAD's
    padding (plus the alignment's early word end); decoding it made Whisper repeat or invent a sentence ("What is the
    weather in Paris? Yes, yes, yes.") in 38 of 40 placements before the padding was discounted."""
    from engines.audio import resample
    from engines.base import AudioBuffer, CancelToken, TranscriptionOptions
    from engines.settings import WhisperSettings
    from engines.whisper import FasterWhisperTranscriber, tiny_en_dir
    from tests.support.speech import PIPER_RATE, speak

    engine = FasterWhisperTranscriber(str(tiny_en_dir()), WhisperSettings(), english_only=True, local_files_only=True)
    assert WhisperSettings().recover_tails
    question = resample(speak("What is the weather in Paris?"), PIPER_RATE, 16000)
    rng = np.random.default_rng(0)
    heard = []
    for _ in range(8):
        before, after = rng.integers(0, 4800), rng.integers(4000, 16000)  # up to 0.3 s before, 0.25-1 s after
        samples = np.concatenate([np.zeros(before, np.float32), question, np.zeros(after, np.float32)])
        options = TranscriptionOptions(vad_min_silence_ms=300)  # as realtime turns are transcribed
        _, segments = engine.transcribe(AudioBuffer(samples, 16000), options, CancelToken())
        heard.append("".join(s.text for s in segments).strip())
    engine.close()
    assert all(text.lower().rstrip("?.!") == "what is the weather in paris" for text in heard), heard
