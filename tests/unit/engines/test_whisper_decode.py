"""Chunks decoded to their ends: what Whisper leaves unfinished is decoded in the next pass, the last pass without
timestamps; silent remainders are dropped; one pass is faster-whisper's own. Scripted decoder, real segment splitter."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from faster_whisper import BatchedInferencePipeline, WhisperModel

import engines.whisper_decode as whisper_decode
from engines.whisper_decode import decode_to_end

TS = 1000  # the first timestamp token; one step is 0.02 s


def ts(seconds: float) -> int:
    return TS + round(seconds / 0.02)


class Tokenizer:
    timestamp_begin = TS
    eot = TS - 1

    def decode(self, tokens: list[int]) -> str:
        return " ".join(f"w{t}" for t in tokens if t < self.eot)


class Model:
    frames_per_second = 100
    time_precision = 0.02
    input_stride = 2
    _split_segments_by_timestamps = WhisperModel._split_segments_by_timestamps


@dataclass(frozen=True)
class Options:
    without_timestamps: bool = True
    word_timestamps: bool = False
    no_speech_threshold: float | None = 0.6
    log_prob_threshold: float | None = -1.0
    initial_prompt: str | None = None


@dataclass
class Pipeline:
    """Answers each decoder call from a script: one list of (tokens, no_speech_prob, avg_logprob) per call."""

    script: list[list[tuple[list[int], float, float]]]
    calls: list[dict] = field(default_factory=list)
    model: Model = field(default_factory=Model)
    last_speech_timestamp: float = 0.0

    def generate_segment_batched(self, windows, tokenizer, options, previous=None):
        self.calls.append(dict(windows=windows, timestamps=not options.without_timestamps, previous=previous))
        answers = self.script[len(self.calls) - 1]
        assert len(answers) == len(windows)
        return None, [dict(tokens=t, no_speech_prob=p, avg_logprob=lp) for t, p, lp in answers]


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch):
    """Remainders go through the pipeline's scripted decoder too, with the previous tokens recorded."""
    monkeypatch.setattr(
        whisper_decode,
        "_generate",
        lambda pipeline, windows, tokenizer, options, previous: pipeline.generate_segment_batched(
            windows, tokenizer, options, previous
        ),
    )


def _features(seconds: list[float]) -> np.ndarray:
    frames = np.zeros((len(seconds), 2, 3000), np.float32)
    for i, length in enumerate(seconds):
        frames[i, :, : int(length * 100)] = np.arange(int(length * 100))  # frame k holds k: windows can be checked
    return frames


def test_what_whisper_leaves_unfinished_is_decoded_in_later_passes(scripted) -> None:
    pipeline = Pipeline(
        [
            # pass 1, both chunks: the first stops at 8 s (closing timestamp pair), the second ends (single timestamp).
            [([ts(0), 5, 6, ts(8), ts(8)], 0.0, -0.2), ([ts(0), 7, ts(10)], 0.0, -0.2)],
            # pass 2, the first chunk from 8 s: it stops again, 4 s further on.
            [([ts(0), 8, ts(4), ts(4)], 0.0, -0.2)],
            # pass 3 (the last), from 12 s: no timestamps, so whatever it says is kept whole.
            [([9], 0.0, -0.2)],
        ]
    )
    metadata = [{"offset": 0.0, "duration": 20.0}, {"offset": 20.0, "duration": 10.0}]
    results = decode_to_end(pipeline, _features([20, 10]), Tokenizer(), metadata, Options(), passes=3)

    assert [[(s["text"], s["start"], s["end"]) for s in chunk] for chunk in results] == [
        [("w5 w6", 0.0, 8.0), ("w8", 8.0, 12.0), ("w9", 12.0, 20.0)],
        [("w7", 20.0, 30.0)],
    ]
    assert [c["timestamps"] for c in pipeline.calls] == [True, True, False]
    second = pipeline.calls[1]
    assert second["windows"][0, 0, 0] == 800 and second["windows"][0, 0, 1199] == 1999  # frames 8 s .. 20 s
    assert second["windows"][0, 0, 1200:].max() == 0  # then faster-whisper's padding
    assert second["previous"] == [[5, 6]]  # conditioned on the chunk's text so far
    assert pipeline.calls[2]["previous"] == [[5, 6, 8]]
    assert [s["seek"] for s in results[0]] == [0, 800, 1200]


def test_a_remainder_whisper_judges_silent_is_dropped_and_no_progress_falls_back(scripted) -> None:
    pipeline = Pipeline(
        [
            [([ts(0), 5, ts(6), ts(6)], 0.0, -0.2), ([ts(0), ts(0)], 0.0, -0.2)],
            # pass 2: the first chunk's remainder is silence by plain decoding's rule; the second made no progress
            # with timestamps, so it is decoded without them.
            [([6], 0.9, -1.5)],
            [([7], 0.1, -0.3)],
        ]
    )
    metadata = [{"offset": 0.0, "duration": 10.0}, {"offset": 10.0, "duration": 10.0}]
    results = decode_to_end(pipeline, _features([10, 10]), Tokenizer(), metadata, Options(), passes=3)

    assert [[s["text"] for s in chunk] for chunk in results] == [["w5"], ["w7"]]
    assert [c["timestamps"] for c in pipeline.calls] == [True, True, False]


def test_one_pass_is_faster_whispers_own(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setattr(BatchedInferencePipeline, "forward", lambda self, *args: seen.append(args) or [["same"]])
    pipeline, features, metadata, options = Pipeline([]), _features([5]), [{"offset": 0, "duration": 5}], Options()
    assert decode_to_end(pipeline, features, Tokenizer(), metadata, options, passes=1) == [["same"]]
    assert len(seen) == 1 and pipeline.calls == []
