"""Kokoro in PyTorch (hexgrad's `kokoro`, extra `voxloop[kokoro]`) end to end on a small random-weight model.

The model is built here from kokoro's own `KModel` and Kokoro-82M's config keys (tests/support/tiny_kokoro.py),
saved like the hub repo, and served as `kokoro-82m-torch` from that directory through the same loader real weights
take. Random weights speak noise: what is tested is the adapter (loading, voice packs, blending, phrase chunking,
G2P, cancellation), the HTTP shapes and formats, and that nothing is downloaded. Not tested: real weights, GPU/MPS.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from api.settings import Settings
from engines.base import CancelledByClient, CancelToken, SynthesisOptions
from engines.settings import TTSSettings
from engines.speech_text import split_phrases
from tests.e2e.test_speech import to_audio
from tests.support.batch_gate import gate, until
from tests.support.offline import network_calls  # noqa: F401 (a fixture)
from tests.support.server import live_server
from tests.support.tiny_kokoro import FRAME_SAMPLES, MAX_DUR
from voxloop.app import create_app

pytestmark = [
    pytest.mark.models,
    pytest.mark.extra_kokoro,
    pytest.mark.skipif(
        importlib.util.find_spec("kokoro") is None or importlib.util.find_spec("torch") is None,
        reason="SKIPPED LOUDLY: kokoro (torch) is not installed (`make install` installs it into .venv; by hand: "
        "see the Makefile's KOKORO_PKGS), so the kokoro-82m-torch adapter is NOT tested in this run.",
    ),
]

MODEL = "kokoro-82m-torch"
RATE = 24_000
TWO_PHRASES = "Hello there, this is a test. It has two sentences."


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, network_calls) -> Path:
    from tests.support.tiny_kokoro import build

    return build(tmp_path_factory.mktemp("kokoro_tiny"))


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[str]:
    settings = Settings(cache_dir=tmp_path_factory.mktemp("cache"),
                        tts=TTSSettings(kokoro_torch_model=str(model_dir), kokoro_torch_device="cpu"))
    with live_server(create_app(settings)) as base:
        yield base


def _speech(url: str, **body) -> httpx.Response:
    body = {"model": MODEL, "voice": "af_test", "input": TWO_PHRASES, **body}
    return httpx.post(f"{url}/v1/audio/speech", json=body, timeout=300)


def _length_bounds(text: str) -> tuple[int, int]:
    """The fewest and most 24 kHz samples the model can give `text`: each token (the phonemes plus two pads per
    phrase) lasts 1 to MAX_DUR frames, and the pauses between phrases are added as silence."""
    from kokoro_onnx.tokenizer import Tokenizer

    tokenizer = Tokenizer()
    phrases = split_phrases(text)
    tokens = sum(len(" ".join(tokenizer.phonemize(p.text, "en-us").split())) + 2 for p in phrases)
    pauses = sum(int(p.pause_after * RATE) for p in phrases)
    return tokens * FRAME_SAMPLES + pauses, tokens * MAX_DUR * FRAME_SAMPLES + pauses


def test_listed_in_models_and_voices(url: str) -> None:
    models = {m["id"]: m for m in httpx.get(f"{url}/v1/models").json()["data"]}
    assert MODEL in models and "kokoro-82m" in models  # the embedded ONNX Kokoro stays registered beside it
    assert "Apache-2.0" in models[MODEL]["owned_by"]
    voices = httpx.get(f"{url}/v1/audio/voices", params={"model": MODEL}).json()["data"]
    assert {v["id"]: (v["language"], v["gender"]) for v in voices} == {
        "af_test": ("en-US", "female"), "bm_test": ("en-GB", "male")}
    assert {v["model"] for v in voices} == {MODEL}


def test_wav_has_the_model_rate_and_a_length_the_durations_allow(url: str, network_calls: list) -> None:
    r = _speech(url, response_format="wav")
    assert r.status_code == 200, r.text
    assert r.headers["x-voxloop-engine"] == MODEL and r.headers["x-voxloop-voice"] == "af_test"
    with wave.open(io.BytesIO(r.content)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        frames = len(w.readframes(RATE * 3600)) // 2  # a streamed WAV's header gives no length: count the data
    low, high = _length_bounds(TWO_PHRASES)
    assert low <= frames <= high, (low, frames, high)
    assert network_calls == [], f"Kokoro reached the network: {network_calls}"


@pytest.mark.parametrize("fmt", ["mp3", "opus", "flac", "pcm"])
def test_other_formats_decode(url: str, fmt: str) -> None:
    r = _speech(url, response_format=fmt)
    assert r.status_code == 200, r.text
    low, high = _length_bounds(TWO_PHRASES)
    seconds = len(to_audio(r.content, fmt)) / 16_000
    assert low / RATE - 0.1 <= seconds <= high / RATE + 0.1  # codecs pad a few ms


def test_sse_streams_one_delta_per_phrase(url: str) -> None:
    body = {"model": MODEL, "voice": "bm_test", "input": TWO_PHRASES, "response_format": "pcm", "stream_format": "sse"}
    with httpx.stream("POST", f"{url}/v1/audio/speech", json=body, timeout=300) as r:
        assert r.status_code == 200
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert events[-1]["type"] == "speech.audio.done"
    assert len(deltas) >= len(split_phrases(TWO_PHRASES)) >= 2, [len(e["audio"]) for e in deltas]
    samples = len(b"".join(base64.b64decode(e["audio"]) for e in deltas)) // 2
    low, high = _length_bounds(TWO_PHRASES)
    assert low <= samples <= high


def test_blend_and_openai_voice_names(url: str) -> None:
    r = _speech(url, voice="af_test:0.7+bm_test:0.3", response_format="wav")
    assert r.status_code == 200, r.text
    r = _speech(url, voice="alloy", response_format="wav")  # an OpenAI name maps onto a pack of the same gender
    assert r.status_code == 200 and r.headers["x-voxloop-voice"] == "af_test"


def test_unknown_voice_is_a_400(url: str) -> None:
    r = _speech(url, voice="zz_nobody")
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "voice"
    r = _speech(url, voice="af_test+zz_nobody")
    assert r.status_code == 400 and r.json()["error"]["param"] == "voice"


def test_engine_chunks_by_phrase_and_stops_when_cancelled(model_dir: Path) -> None:
    from engines.kokoro_torch import KokoroTorchSynthesizer

    engine = KokoroTorchSynthesizer(model_dir, TTSSettings(kokoro_torch_device="cpu"))
    try:
        assert engine.device == "cpu" and engine.capabilities.blending
        options = SynthesisOptions(voice="af_test")
        chunks = list(engine.synthesize(TWO_PHRASES, options, CancelToken()))
        assert [c.text for c in chunks] == [p.text for p in split_phrases(TWO_PHRASES)]
        assert all(c.sample_rate == RATE and c.samples.dtype.name == "float32" and c.samples.ndim == 1 for c in chunks)
        cancel = CancelToken()
        stream = engine.synthesize(TWO_PHRASES, options, cancel)
        next(stream)
        cancel.cancel()
        with pytest.raises(CancelledByClient):
            next(stream)
    finally:
        engine.close()


def test_warm_up_on_load_runs_one_padded_dummy_batch(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engines.kokoro_torch as kt

    calls: list[list[int]] = []
    forward = kt.forward_batch

    def spy(torch, model, phrases, albert=None):
        calls.append([len(p.input_ids) for p in phrases])
        return forward(torch, model, phrases, albert)

    monkeypatch.setattr(kt, "forward_batch", spy)
    engine = kt.KokoroTorchSynthesizer(model_dir, TTSSettings(kokoro_torch_device="cpu"))
    assert len(calls) == 1 and len(calls[0]) == 2 and calls[0][0] != calls[0][1]  # two lengths: padding exercised
    assert engine.batcher.batch_sizes == []  # the warm-up is not a request
    engine.close()
    cold = kt.KokoroTorchSynthesizer(model_dir, TTSSettings(kokoro_torch_device="cpu", kokoro_torch_warmup=False))
    assert len(calls) == 1
    cold.close()


# --- cross-request batching (engines/kokoro_batch.py on the Batcher) -------------------------------------------------

# Four requests with different voices, speeds and phrase lengths; each is two phrases (split_phrases' first chunk is
# its first few words).
REQUESTS = [
    ("Good morning to you all. We start now.", "af_test", 1.0),
    ("Hi there. The quick brown fox jumps over the dog.", "bm_test", 1.25),
    ("One more thing, please. Thanks.", "af_test:0.5+bm_test:0.5", 0.8),
    ("Wait for it. Here it comes at last.", "bm_test", 1.0),
]


@pytest.fixture(scope="module")
def engine(model_dir: Path):
    from engines.kokoro_torch import KokoroTorchSynthesizer

    engine = KokoroTorchSynthesizer(model_dir, TTSSettings(kokoro_torch_device="cpu", kokoro_torch_warmup=False))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def sequential(engine) -> list[list[np.ndarray]]:
    """Each request alone, one after another: every model call holds one request's phrase."""
    out = []
    for text, voice, speed in REQUESTS:
        engine.batcher.batch_sizes.clear()
        chunks = engine.synthesize(text, SynthesisOptions(voice=voice, speed=speed), CancelToken())
        out.append([c.samples for c in chunks])
        assert engine.batcher.batch_sizes == [1] * len(out[-1])
    return out


def test_one_phrase_alone_is_what_kokoros_own_forward_gives_under_its_seed(engine) -> None:
    """The batched pass re-implements KModel's forward with masks: with one phrase it must be the library's."""
    import torch

    from engines.kokoro_batch import forward_batch

    phonemes = engine.phonemes("The quick brown fox.", "en-us")[0]
    phrase = engine._phrase(phonemes, engine.pack("bm_test"), 1.1)
    torch.manual_seed(phrase.seed)
    with torch.inference_mode():
        own, _ = engine._model.forward_with_tokens(torch.LongTensor([list(phrase.input_ids)]), phrase.style, 1.1)
    (ours,) = forward_batch(torch, engine._model, [phrase])
    assert ours.shape == own.reshape(-1).shape and float(np.abs(own.numpy()).max()) > 0.1
    np.testing.assert_allclose(ours, own.numpy().reshape(-1), atol=1e-4, rtol=1e-4)


def test_albert_in_fixed_shape_buckets_gives_the_batch_shapes_audio(engine) -> None:
    """`kokoro_torch_cuda_graphs`' path (engines/kokoro_graphs.py), run eagerly here: ALBERT in a bucket of rows and
    tokens (padded past the batch, masked) gives each phrase the audio of the batch-shaped pass, also when the
    bucket's buffers hold a wider earlier batch."""
    import torch

    from engines.kokoro_batch import forward_batch
    from engines.kokoro_graphs import AlbertGraphs

    texts = [("The quick brown fox.", "af_test", 1.0), ("Hi.", "bm_test", 1.2), ("Good morning to you.", "af_test", 0.9)]
    phrases = [engine._phrase(engine.phonemes(text, "en-us")[0], engine.pack(voice), speed)
               for text, voice, speed in texts]
    widths = [len(p.input_ids) for p in phrases]
    assert max(widths) <= 32 and len(set(widths)) == 3, widths
    albert = AlbertGraphs(torch, engine._model, 4, graph=False)
    calls: list[tuple[int, ...]] = []
    hook = engine._model.bert.register_forward_hook(lambda module, args, out: calls.append(tuple(args[0].shape)))
    try:
        for batch in (phrases, phrases[::-1][:2], [phrases[1]]):  # the second reuses the first's dirty 4-row bucket
            plain = forward_batch(torch, engine._model, batch)
            bucketed = forward_batch(torch, engine._model, batch, albert)
            for a, b in zip(bucketed, plain):
                assert a.shape == b.shape and float(np.abs(b).max()) > 0.1
                np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-3)
    finally:
        hook.remove()
    # The features themselves, on each phrase's real tokens: the bucket's equal the library's call at the batch shape,
    # also for a narrower batch after a wider one in the same bucket.
    for batch in (phrases, [phrases[1]] * 3):
        lengths = [len(p.input_ids) for p in batch]
        ids = torch.zeros(3, max(lengths), dtype=torch.long)
        for i, p in enumerate(batch):
            ids[i, : len(p.input_ids)] = torch.tensor(p.input_ids)
        real = torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]
        with torch.inference_mode():
            ours = albert.run(ids, real)
            library = engine._model.bert_encoder(engine._model.bert(ids, attention_mask=real.int()))
        assert float(library.abs().max()) > 0.1
        for i, n in enumerate(lengths):
            torch.testing.assert_close(ours[i, :n], library[i, :n], atol=1e-5, rtol=1e-4)
    width = max(widths)
    # ALBERT ran at each batch's own width, then in its bucket: 3 phrases in 4 rows, 2 in 2, 1 in 1, 32 tokens.
    assert calls[:6] == [(3, width), (4, 32), (2, max(widths[::-1][:2])), (2, 32), (1, widths[1]), (1, 32)], calls
    assert sorted(albert.buckets) == [(1, 32), (2, 32), (4, 32)]
    assert AlbertGraphs(torch, engine._model, 16, graph=False).prepare() == 5 * 16  # rows 1-16, 32-512 tokens


def test_kokoro_cuda_graphs_without_cuda_are_refused_at_load(model_dir: Path) -> None:
    from engines.base import EngineUnavailableError
    from engines.kokoro_torch import KokoroTorchSynthesizer

    with pytest.raises(EngineUnavailableError, match="kokoro_torch_cuda_graphs needs a CUDA device"):
        KokoroTorchSynthesizer(model_dir, TTSSettings(kokoro_torch_device="cpu", kokoro_torch_cuda_graphs=True))


def _run(engine, i: int, cancel: CancelToken, out: dict) -> None:
    text, voice, speed = REQUESTS[i]
    chunks = []
    try:
        for chunk in engine.synthesize(text, SynthesisOptions(voice=voice, speed=speed), cancel):
            chunks.append(chunk.samples)
    except CancelledByClient:
        chunks.append("cancelled")
    out[i] = chunks


def _same(got: list, want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-3)


def test_concurrent_requests_share_calls_and_each_gets_its_own_audio(engine, sequential) -> None:
    """Request 0 leads; the other three queue behind its first call and go in together, padded to the longest."""
    out: dict[int, list] = {}
    first = threading.Event()
    calls = gate(engine, "_forward",
                 {1: lambda: (first.set(), until(lambda: engine.batcher.waiting == 3, "three queued"))})
    engine.batcher.batch_sizes.clear()
    try:
        lead = threading.Thread(target=_run, args=(engine, 0, CancelToken(), out))
        lead.start()
        assert first.wait(60)
        others = [threading.Thread(target=_run, args=(engine, i, CancelToken(), out)) for i in (1, 2, 3)]
        for t in others:
            t.start()
        for t in [lead, *others]:
            t.join(300)
    finally:
        del engine._forward
    # Their first phrases went in together (request 0's second phrase may have caught that call too).
    assert engine.batcher.batch_sizes[0] == 1 and engine.batcher.batch_sizes[1] >= 3, engine.batcher.batch_sizes
    assert sum(engine.batcher.batch_sizes) == sum(len(s) for s in sequential) == sum(calls)
    assert len(engine.batcher.batch_sizes) < sum(len(s) for s in sequential)
    for i in range(len(REQUESTS)):
        _same(out[i], sequential[i])


def test_cancelling_one_request_leaves_the_others_of_its_batch_whole(engine, sequential) -> None:
    """Request 2 is cancelled while it waits (it leaves the queue); request 1 while its phrase is in a running call
    with request 3's (that call completes; request 1 stops at its next phrase). Requests 0 and 3 are untouched."""
    out: dict[int, list] = {}
    cancels = [CancelToken() for _ in REQUESTS]
    first = threading.Event()

    def call_one() -> None:
        first.set()
        until(lambda: engine.batcher.waiting == 3, "three queued")
        cancels[2].cancel()
        until(lambda: engine.batcher.waiting == 2, "the cancelled request to leave the queue")

    calls = gate(engine, "_forward", {1: call_one, 2: cancels[1].cancel})
    engine.batcher.batch_sizes.clear()
    try:
        lead = threading.Thread(target=_run, args=(engine, 0, cancels[0], out))
        lead.start()
        assert first.wait(60)
        others = [threading.Thread(target=_run, args=(engine, i, cancels[i], out)) for i in (1, 2, 3)]
        for t in others:
            t.start()
        for t in [lead, *others]:
            t.join(300)
    finally:
        del engine._forward
    assert calls[0] == 1 and calls[1] >= 2 and calls == engine.batcher.batch_sizes, calls
    assert out[2] == ["cancelled"]  # never reached the model
    assert len(out[1]) == 2 and out[1][1] == "cancelled"  # its phrase in the cancelled-into call came back whole
    _same(out[1][:1], sequential[1][:1])
    _same(out[0], sequential[0])
    _same(out[3], sequential[3])
