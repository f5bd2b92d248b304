"""NeMo's offline engine with the real library: a tiny Parakeet-TDT-shaped model built from NeMo's own config classes
with random weights (tests/support/tiny_nemo.py, the `nemo_models` fixture in conftest.py), saved as `.nemo` and
loaded through the engine's normal local-path loader. Over HTTP (formats, timestamps, SSE, refusals, and the
streaming model's offline request), the hub-id refusal without downloads, cross-request batching of `transcribe`,
and the warm-up on load. The streaming engine is in test_nemo_streaming.py, realtime sessions on it in
test_nemo_realtime.py.

This proves the adapter (loading, decoding path, timestamps, HTTP shapes), not recognition quality: random weights
transcribe gibberish. Runs in `.venv-nemo` (`make test-nemo`); the main venv skips it with the reason below.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

pytest.importorskip(
    "nemo.collections.asr", reason="NeMo is not installed in this venv; `make test-nemo` runs these in .venv-nemo"
)

from api.settings import Settings  # noqa: E402
from engines.base import AudioBuffer, CancelToken, TranscriptionOptions  # noqa: E402
from engines.settings import NemoSettings  # noqa: E402
from tests.support.batch_gate import in_threads  # noqa: E402
from tests.support.nemo_drive import post_transcription, speech_clips  # noqa: E402
from tests.support.server import live_server  # noqa: E402
from tests.support.speech import encode, silence, speak  # noqa: E402
from voxloop.app import create_app  # noqa: E402

pytestmark = pytest.mark.extra_nemo


@pytest.fixture(scope="module")
def server(nemo_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(
        cache_dir=tmp_path_factory.mktemp("cache"),
        nemo={"device": "cpu", "models": {"parakeet-tiny": str(nemo_models["tdt"])},
              "streaming_models": {"nemotron-tiny": str(nemo_models["stream"])}},
    )
    with live_server(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def clip() -> bytes:
    return encode(np.concatenate([silence(0.2), speak("Hello world, this is a short test."), silence(0.2)]), "wav")


def test_models_are_listed(server: str) -> None:
    ids = {m["id"] for m in httpx.get(f"{server}/v1/models").json()["data"]}
    assert {"parakeet-tiny", "nemotron-tiny"} <= ids


def test_tdt_verbose_json_words_and_segments(server: str, clip: bytes) -> None:
    r = post_transcription(server, clip, model="parakeet-tiny", response_format="verbose_json",
                           **{"timestamp_granularities[]": ["word", "segment"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["task"] == "transcribe" and body["language"] == "english"
    assert 2.0 < body["duration"] < 4.0
    assert isinstance(body["text"], str) and body["text"], "random weights still emit tokens"
    assert body["segments"], body
    for seg in body["segments"]:
        assert 0 <= seg["start"] <= seg["end"] <= body["duration"] + 0.5
    assert body["words"] and all(0 <= w["start"] <= w["end"] for w in body["words"])


@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt"])
def test_tdt_other_formats(server: str, clip: bytes, fmt: str) -> None:
    r = post_transcription(server, clip, model="parakeet-tiny", response_format=fmt)
    assert r.status_code == 200, r.text
    if fmt == "json":
        assert set(r.json()) >= {"text", "usage"}
    elif fmt == "srt":
        assert "-->" in r.text


def test_tdt_streams_sse(server: str, clip: bytes) -> None:
    with httpx.stream("POST", f"{server}/v1/audio/transcriptions", files={"file": ("a.wav", clip)},
                      data={"model": "parakeet-tiny", "stream": "true"}, timeout=300) as r:
        assert r.status_code == 200
        events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]
    assert events[-1]["type"] == "transcript.text.done" and events[-1]["usage"]["type"] == "tokens"


def test_english_only_and_no_translation(server: str, clip: bytes) -> None:
    r = post_transcription(server, clip, model="parakeet-tiny", language="fr")
    assert r.status_code == 400 and r.json()["error"]["param"] == "language"
    r = httpx.post(f"{server}/v1/audio/translations", files={"file": ("a.wav", clip)},
                   data={"model": "parakeet-tiny"}, timeout=60)
    assert r.status_code == 400


def test_no_diarization(server: str, clip: bytes) -> None:
    r = post_transcription(server, clip, model="parakeet-tiny", response_format="diarized_json")
    assert r.status_code == 400 and r.json()["error"]["param"] == "response_format"


def test_streaming_model_over_http(server: str, clip: bytes) -> None:
    r = post_transcription(server, clip, model="nemotron-tiny", response_format="verbose_json")
    assert r.status_code == 200, r.text
    assert r.json()["text"] and len(r.json()["segments"]) == 1


def test_hub_id_without_downloads_is_refused() -> None:
    from engines.base import EngineUnavailableError
    from engines.nemo import NemoTranscriber

    with pytest.raises(EngineUnavailableError, match="downloads are off"):
        NemoTranscriber("nvidia/parakeet-tdt-0.6b-v2", NemoSettings(device="cpu"))


# --- cross-request batching (issue 19): concurrent requests share one `transcribe` call ---------------------------


class _GatedModel:
    """Wraps the loaded model's `transcribe` (an instance attribute shadowing the method): records each call's clip
    count, and holds the first call until `others` requests wait behind it, so the batch they form is known."""

    def __init__(self, engine, others: int, ready=None) -> None:
        self.engine, self.others = engine, others
        self.ready = ready or (lambda: engine.batcher.waiting >= others)
        self.calls: list[int] = []
        self.inner = engine._model.transcribe
        engine._model.transcribe = self

    def __call__(self, audio, **kwargs):
        import time

        self.calls.append(len(audio))
        if len(self.calls) == 1:
            deadline = time.monotonic() + 60
            while not self.ready() and time.monotonic() < deadline:
                time.sleep(0.01)
        return self.inner(audio, **kwargs)


def _words(engine, clip: AudioBuffer, cancel: CancelToken | None = None) -> tuple[str, list[tuple[str, float]]]:
    _, segments = engine.transcribe(clip, TranscriptionOptions(), cancel or CancelToken())
    segments = list(segments)
    return "".join(s.text for s in segments).strip(), [(w.word, w.start) for s in segments for w in s.words]


def test_concurrent_requests_share_one_batch_and_equal_sequential(nemo_models: dict[str, Path]) -> None:
    from engines.nemo import NemoTranscriber

    engine = NemoTranscriber(str(nemo_models["tdt"]), NemoSettings(device="cpu", batch_size=8, warmup=False))
    clips = speech_clips()
    sequential = [_words(engine, c) for c in clips]
    assert all(text for text, _ in sequential), "random weights still emit tokens"
    assert engine.batcher.batch_sizes == [1, 1, 1, 1]
    engine.batcher.batch_sizes.clear()

    gate = _GatedModel(engine, others=len(clips) - 1)
    first = in_threads([lambda c=c: _words(engine, c) for c in clips], first_running=lambda: bool(gate.calls))
    # The first request ran alone; the three that came while it ran shared the next call: 2 calls, not 4.
    assert gate.calls == [1, 3] and engine.batcher.batch_sizes == [1, 3]
    assert [t for t, _ in first] == [t for t, _ in sequential]
    for (_, words), (_, expected) in zip(first, sequential):
        assert [w for w, _ in words] == [w for w, _ in expected]
        assert [s for _, s in words] == pytest.approx([s for _, s in expected], abs=0.02)
    engine.close()


def test_cancelling_a_waiting_request_spares_the_batch(nemo_models: dict[str, Path]) -> None:
    from engines.base import CancelledByClient
    from engines.nemo import NemoTranscriber

    engine = NemoTranscriber(str(nemo_models["tdt"]), NemoSettings(device="cpu", batch_size=8, warmup=False))
    clips = speech_clips()
    expected = [_words(engine, c)[0] for c in clips]
    engine.batcher.batch_sizes.clear()
    token = CancelToken()
    # The first call is held until the cancelled request has left the queue and requests 1 and 3 still wait.
    gate = _GatedModel(engine, others=3, ready=lambda: token.cancelled and engine.batcher.waiting == 2)

    def canceller() -> object:
        import time

        while engine.batcher.waiting < 3:  # 1, 2 and 3 queued behind the first call
            time.sleep(0.01)
        token.cancel()
        return "cancelled"

    results = in_threads([
        lambda: _words(engine, clips[0]), lambda: _words(engine, clips[1]), lambda: _words(engine, clips[2], token),
        lambda: _words(engine, clips[3]), canceller,
    ], first_running=lambda: bool(gate.calls))
    assert isinstance(results[2], CancelledByClient)
    assert [results[i][0] for i in (0, 1, 3)] == [expected[i] for i in (0, 1, 3)]
    assert gate.calls == [1, 2] and engine.batcher.batch_sizes == [1, 2]  # the cancelled clip never ran
    engine.close()


def test_warm_up_on_load_runs_one_dummy_batch(nemo_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from nemo.collections.asr.models import EncDecRNNTBPEModel

    from engines.nemo import NemoTranscriber

    calls: list[int] = []
    original = EncDecRNNTBPEModel.transcribe

    def spy(self, audio, *args, **kwargs):
        calls.append(len(audio))
        return original(self, audio, *args, **kwargs)

    monkeypatch.setattr(EncDecRNNTBPEModel, "transcribe", spy)
    engine = NemoTranscriber(str(nemo_models["tdt"]), NemoSettings(device="cpu"))
    assert calls == [2] and engine.batcher.batch_sizes == []  # one dummy batch, not counted as a request
    cold = NemoTranscriber(str(nemo_models["tdt"]), NemoSettings(device="cpu", warmup=False))
    assert calls == [2]
    engine.close()
    cold.close()


def test_spec_runs_parallel_requests() -> None:
    from engines.nemo import nemo_specs
    from engines.settings import EngineSettings

    settings = EngineSettings(nemo={"models": {"p": "/m/p.nemo"}, "streaming_models": {"s": "/m/s.nemo"},
                                    "parallel_requests": 12})
    assert [spec.workers for spec in nemo_specs(settings)] == [12, 12]
