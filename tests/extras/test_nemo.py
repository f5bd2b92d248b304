"""NeMo engines with the real library: tiny Parakeet-TDT-shaped and cache-aware streaming models built from NeMo's
own config classes with random weights, saved as `.nemo`, and loaded through the engine's normal local-path loader.

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
from tests.support.realtime import Events, stream_audio, to_pcm16_24k  # noqa: E402
from tests.support.server import live_server  # noqa: E402
from tests.support.speech import PIPER_RATE, encode, silence, speak  # noqa: E402
from voxloop.app import create_app  # noqa: E402

pytestmark = pytest.mark.extra_nemo

SENTENCES = [
    "hello world this is a short test",
    "the quick brown fox jumps over the lazy dog",
    "please send the report before friday",
    "speech recognition on a tiny model",
    "numbers one two three four five",
]
DURATIONS = [0, 1, 2, 3, 4]


def _tokenizer(tmp: Path) -> Path:
    from nemo.collections.common.tokenizers.sentencepiece_tokenizer import create_spt_model

    text = tmp / "text.txt"
    text.write_text("\n".join(SENTENCES * 4) + "\n")
    out = tmp / "tok"
    create_spt_model(str(text), vocab_size=48, sample_size=-1, do_lower_case=True, tokenizer_type="bpe", output_dir=str(out))
    return out


def _config(tok_dir: Path, *, streaming: bool) -> dict:
    """Parakeet TDT v2's layout shrunk to 2 layers of width 32; `streaming` makes it cache-aware like Nemotron."""
    encoder = {
        "_target_": "nemo.collections.asr.modules.ConformerEncoder",
        "feat_in": 80, "feat_out": -1, "n_layers": 2, "d_model": 32,
        "subsampling": "dw_striding", "subsampling_factor": 8, "subsampling_conv_channels": 16,
        "ff_expansion_factor": 2, "self_attention_model": "rel_pos", "n_heads": 2,
        "conv_kernel_size": 9, "dropout": 0.0, "dropout_pre_encoder": 0.0, "dropout_emb": 0.0, "dropout_att": 0.0,
    }
    if streaming:  # FastConformer cache-aware streaming: causal convolutions, chunked limited attention
        encoder.update({
            "att_context_size": [16, 1], "att_context_style": "chunked_limited", "conv_context_size": "causal",
            "causal_downsampling": True, "conv_norm_type": "layer_norm",
        })
    return {
        "sample_rate": 16000,
        "validation_ds": {"manifest_filepath": None, "sample_rate": 16000, "batch_size": 1, "shuffle": False,
                          "use_start_end_token": False},
        "model_defaults": {"enc_hidden": 32, "pred_hidden": 32, "joint_hidden": 32, "tdt_durations": DURATIONS,
                           "num_tdt_durations": 5},
        "tokenizer": {"dir": str(tok_dir), "type": "bpe"},
        "preprocessor": {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "sample_rate": 16000, "normalize": "NA" if streaming else "per_feature", "window_size": 0.025,
            "window_stride": 0.01, "window": "hann", "features": 80, "n_fft": 512, "frame_splicing": 1,
            "dither": 0.0, "pad_to": 0 if streaming else 16,
        },
        "encoder": encoder,
        "decoder": {"_target_": "nemo.collections.asr.modules.RNNTDecoder", "normalization_mode": None,
                    "random_state_sampling": False, "blank_as_pad": True,
                    "prednet": {"pred_hidden": 32, "pred_rnn_layers": 1, "t_max": None, "dropout": 0.0}},
        "joint": {"_target_": "nemo.collections.asr.modules.RNNTJoint", "log_softmax": None, "preserve_memory": False,
                  "fuse_loss_wer": True, "fused_batch_size": 4, "num_extra_outputs": 5,
                  "jointnet": {"joint_hidden": 32, "activation": "relu", "dropout": 0.0}},
        "decoding": {"strategy": "greedy_batch", "model_type": "tdt", "durations": DURATIONS,
                     "greedy": {"max_symbols": 10}},
        "loss": {"loss_name": "tdt", "tdt_kwargs": {"durations": DURATIONS, "sigma": 0.02, "omega": 0.1,
                                                    "fastemit_lambda": 0.0, "clamp": -1.0}},
    }


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import torch
    from nemo.collections.asr.models import EncDecRNNTBPEModel
    from omegaconf import OmegaConf

    torch.manual_seed(0)
    tmp = tmp_path_factory.mktemp("nemo")
    tok = _tokenizer(tmp)
    paths = {}
    for name, streaming in (("tdt", False), ("stream", True)):
        model = EncDecRNNTBPEModel(cfg=OmegaConf.create(_config(tok, streaming=streaming)))
        paths[name] = tmp / f"tiny_{name}.nemo"
        model.save_to(str(paths[name]))
    return paths


@pytest.fixture(scope="module")
def server(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(
        cache_dir=tmp_path_factory.mktemp("cache"),
        nemo={"device": "cpu", "models": {"parakeet-tiny": str(models["tdt"])},
              "streaming_models": {"nemotron-tiny": str(models["stream"])}},
    )
    with live_server(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def clip() -> bytes:
    return encode(np.concatenate([silence(0.2), speak("Hello world, this is a short test."), silence(0.2)]), "wav")


def _post(server: str, clip: bytes, **data: str | list[str]) -> httpx.Response:
    return httpx.post(f"{server}/v1/audio/transcriptions", files={"file": ("a.wav", clip)}, data=data, timeout=300)


def test_models_are_listed(server: str) -> None:
    ids = {m["id"] for m in httpx.get(f"{server}/v1/models").json()["data"]}
    assert {"parakeet-tiny", "nemotron-tiny"} <= ids


def test_tdt_verbose_json_words_and_segments(server: str, clip: bytes) -> None:
    r = _post(server, clip, model="parakeet-tiny", response_format="verbose_json",
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
    r = _post(server, clip, model="parakeet-tiny", response_format=fmt)
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
    r = _post(server, clip, model="parakeet-tiny", language="fr")
    assert r.status_code == 400 and r.json()["error"]["param"] == "language"
    r = httpx.post(f"{server}/v1/audio/translations", files={"file": ("a.wav", clip)},
                   data={"model": "parakeet-tiny"}, timeout=60)
    assert r.status_code == 400


def test_no_diarization(server: str, clip: bytes) -> None:
    r = _post(server, clip, model="parakeet-tiny", response_format="diarized_json")
    assert r.status_code == 400 and r.json()["error"]["param"] == "response_format"


def test_streaming_model_over_http(server: str, clip: bytes) -> None:
    r = _post(server, clip, model="nemotron-tiny", response_format="verbose_json")
    assert r.status_code == 200, r.text
    assert r.json()["text"] and len(r.json()["segments"]) == 1


def _speech_16k() -> np.ndarray:
    import soxr

    return soxr.resample(np.concatenate([speak("Hello world, this is a short test."), silence(0.3)]), PIPER_RATE, 16000)


def test_stream_transcribe_is_incremental_and_chunking_invariant(models: dict[str, Path]) -> None:
    """The engine's live streaming method: updates arrive while audio is fed, and the result does not
    depend on how the audio was cut (features and encoder caches are carried across chunks exactly)."""
    from engines.base import StreamingTranscriber
    from engines.nemo_streaming import NemoStreamingTranscriber

    engine = NemoStreamingTranscriber(str(models["stream"]), NemoSettings(device="cpu"))
    assert isinstance(engine, StreamingTranscriber) and engine.capabilities.streaming
    samples = _speech_16k()
    results = {}
    for size in (1600, 7777, len(samples)):
        chunks = [AudioBuffer(samples[i : i + size], 16000) for i in range(0, len(samples), size)]
        fed = []

        def feed(chunks=chunks, fed=fed) -> Iterator[AudioBuffer]:
            for c in chunks:
                fed.append(c)
                yield c

        updates = []
        for update in engine.stream_transcribe(feed(), TranscriptionOptions(), CancelToken()):
            updates.append((len(fed), update))
        assert updates[-1][1].final and all(not u.final for _, u in updates[:-1])
        assert "".join(u.delta for _, u in updates).strip() == updates[-1][1].text
        if size == 1600:  # small chunks: text is produced before the input ends
            assert any(n < len(chunks) for n, _ in updates)
        results[size] = updates[-1][1].text
    assert results[1600] == results[7777] == results[len(samples)], results
    assert results[1600]
    assert results[1600] == _reference_stream(engine._model, samples), "differs from NeMo's own streaming loop"
    engine.close()


def _reference_stream(model, samples: np.ndarray) -> str:
    """NeMo's reference cache-aware loop (as in its speech_to_text_cache_aware_streaming_infer example) over the
    whole file at once: features computed offline, then chunked by CacheAwareStreamingAudioBuffer."""
    from tests.support.nemo_lockstep import lockstep

    return lockstep(model, [samples])[0]


def _with_pickled_numpy(src: Path, dst: Path) -> Path:
    """`src` rewritten with a NumPy scalar in its state dict's metadata (where a training run can leave one): the
    weights file then holds a pickled global that torch's `weights_only` loader (the default since torch 2.6,
    which NeMo 3.0 uses) refuses. The weights themselves are unchanged."""
    import tarfile

    import torch

    unpacked = dst.parent / (dst.name + ".d")
    with tarfile.open(src) as tar:
        names = tar.getnames()
        tar.extractall(unpacked, filter="data")
    weights = next(n for n in names if n.endswith("model_weights.ckpt"))
    state = torch.load(unpacked / weights, weights_only=True)
    state._metadata[""]["saved_with_lr"] = np.float64(1e-3)
    torch.save(state, unpacked / weights)
    with tarfile.open(dst, "w") as tar:
        for name in names:
            if (unpacked / name).is_file():
                tar.add(unpacked / name, arcname=name)
    return dst


def test_streaming_nemo_with_pickled_objects_restores_on_torch_2_6_and_later(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """torch >= 2.6 loads `model_weights.ckpt` with `weights_only=True`; a cache-aware `.nemo` whose pickle holds
    more than tensors failed to restore through `ASRModel.restore_from` (seen on torch 2.11). The engine's loader
    retries with the full unpickler and serves the same model."""
    import pickle

    from nemo.collections.asr.models import ASRModel

    from engines.nemo_streaming import NemoStreamingTranscriber

    path = _with_pickled_numpy(models["stream"], tmp_path / "pickled.nemo")
    with pytest.raises(pickle.UnpicklingError, match="weights_only"):  # the failure, reproduced with NeMo itself
        ASRModel.restore_from(str(path), map_location="cpu")
    engine = NemoStreamingTranscriber(str(path), NemoSettings(device="cpu", warmup=False))
    reference = NemoStreamingTranscriber(str(models["stream"]), NemoSettings(device="cpu", warmup=False))
    try:
        ours, theirs = engine._model.state_dict(), reference._model.state_dict()
        assert ours.keys() == theirs.keys() and all(torch_equal(ours[k], theirs[k]) for k in ours)
        samples = _speech_16k()
        assert _reference_stream(engine._model, samples) == _reference_stream(reference._model, samples)
    finally:
        engine.close()
        reference.close()


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


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


def _clips() -> list[AudioBuffer]:
    import soxr

    texts = ["Hello world.", "The quick brown fox jumps over the lazy dog.", "Please send the report.",
             "Numbers one two three four five, and six."]
    return [AudioBuffer(soxr.resample(speak(t), PIPER_RATE, 16000).astype(np.float32), 16000) for t in texts]


def _words(engine, clip: AudioBuffer, cancel: CancelToken | None = None) -> tuple[str, list[tuple[str, float]]]:
    _, segments = engine.transcribe(clip, TranscriptionOptions(), cancel or CancelToken())
    segments = list(segments)
    return "".join(s.text for s in segments).strip(), [(w.word, w.start) for s in segments for w in s.words]


def _in_threads(fns, first_running=None) -> list:
    """Run each fn on its own thread; with `first_running`, the others start once it says the first one runs."""
    import threading
    import time

    results: list = [None] * len(fns)

    def go(i: int) -> None:
        try:
            results[i] = fns[i]()
        except BaseException as exc:  # collected for the assertions
            results[i] = exc

    threads = []
    for i in range(len(fns)):
        threads.append(threading.Thread(target=go, args=(i,)))
        threads[-1].start()
        while i == 0 and first_running is not None and not first_running():
            time.sleep(0.01)
    for t in threads:
        t.join(120)
    return results


def test_concurrent_requests_share_one_batch_and_equal_sequential(models: dict[str, Path]) -> None:
    from engines.nemo import NemoTranscriber

    engine = NemoTranscriber(str(models["tdt"]), NemoSettings(device="cpu", batch_size=8, warmup=False))
    clips = _clips()
    sequential = [_words(engine, c) for c in clips]
    assert all(text for text, _ in sequential), "random weights still emit tokens"
    assert engine.batcher.batch_sizes == [1, 1, 1, 1]
    engine.batcher.batch_sizes.clear()

    gate = _GatedModel(engine, others=len(clips) - 1)
    first = _in_threads([lambda c=c: _words(engine, c) for c in clips], first_running=lambda: bool(gate.calls))
    # The first request ran alone; the three that came while it ran shared the next call: 2 calls, not 4.
    assert gate.calls == [1, 3] and engine.batcher.batch_sizes == [1, 3]
    assert [t for t, _ in first] == [t for t, _ in sequential]
    for (_, words), (_, expected) in zip(first, sequential):
        assert [w for w, _ in words] == [w for w, _ in expected]
        assert [s for _, s in words] == pytest.approx([s for _, s in expected], abs=0.02)
    engine.close()


def test_cancelling_a_waiting_request_spares_the_batch(models: dict[str, Path]) -> None:
    from engines.base import CancelledByClient
    from engines.nemo import NemoTranscriber

    engine = NemoTranscriber(str(models["tdt"]), NemoSettings(device="cpu", batch_size=8, warmup=False))
    clips = _clips()
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

    results = _in_threads([
        lambda: _words(engine, clips[0]), lambda: _words(engine, clips[1]), lambda: _words(engine, clips[2], token),
        lambda: _words(engine, clips[3]), canceller,
    ], first_running=lambda: bool(gate.calls))
    assert isinstance(results[2], CancelledByClient)
    assert [results[i][0] for i in (0, 1, 3)] == [expected[i] for i in (0, 1, 3)]
    assert gate.calls == [1, 2] and engine.batcher.batch_sizes == [1, 2]  # the cancelled clip never ran
    engine.close()


def test_warm_up_on_load_runs_one_dummy_batch(models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from nemo.collections.asr.models import EncDecRNNTBPEModel

    from engines.nemo import NemoTranscriber

    calls: list[int] = []
    original = EncDecRNNTBPEModel.transcribe

    def spy(self, audio, *args, **kwargs):
        calls.append(len(audio))
        return original(self, audio, *args, **kwargs)

    monkeypatch.setattr(EncDecRNNTBPEModel, "transcribe", spy)
    engine = NemoTranscriber(str(models["tdt"]), NemoSettings(device="cpu"))
    assert calls == [2] and engine.batcher.batch_sizes == []  # one dummy batch, not counted as a request
    cold = NemoTranscriber(str(models["tdt"]), NemoSettings(device="cpu", warmup=False))
    assert calls == [2]
    engine.close()
    cold.close()


def test_spec_runs_parallel_requests() -> None:
    from engines.nemo import nemo_specs
    from engines.settings import EngineSettings

    settings = EngineSettings(nemo={"models": {"p": "/m/p.nemo"}, "streaming_models": {"s": "/m/s.nemo"},
                                    "parallel_requests": 12})
    assert [spec.workers for spec in nemo_specs(settings)] == [12, 12]


# --- the streaming model: concurrent streams share batched encoder steps -------------------------------------------


def _stream_engine(models: dict[str, Path], **settings):
    from engines.nemo_streaming import NemoStreamingTranscriber

    return NemoStreamingTranscriber(str(models["stream"]), NemoSettings(device="cpu", batch_size=8, **settings))


def _drive(engine, clips: list[np.ndarray], lag: int) -> tuple[list[list[str]], list, int]:
    """Streams over `clips` (all audio in, input ended), stream i starting `lag * i` rounds after the first. Each
    round runs every ready stream's next step, rows of equal key in one batched call. Returns each stream's text
    after each of its steps, its final caches, and how many calls merged streams at different points (different
    attention-cache fill)."""
    import torch

    sessions = [engine._session() for _ in clips]
    for session, clip in zip(sessions, clips):
        session.add_audio(clip, final=True)
    texts: list[list[str]] = [[] for _ in clips]
    done = [False] * len(clips)
    mixed, rounds = 0, 0
    while not all(done):
        ready = []
        for i, session in enumerate(sessions):
            if not done[i] and rounds >= lag * i:
                step = session.next_step(final=True)
                if step is None:
                    done[i] = True
                else:
                    ready.append((i, step))
        groups: dict = {}
        for i, step in ready:
            groups.setdefault(step.key, []).append((i, step))
        for group in groups.values():
            results = engine._run_steps([step for _, step in group])
            if len({int(step.length.item()) for _, step in group}) > 1:
                mixed += 1
            for (i, _), result in zip(group, results):
                texts[i].append(sessions[i].advance(result))
        rounds += 1
    caches = [torch.cat([s.cache_channel.flatten(), s.cache_time.flatten()]) for s in sessions]
    return texts, caches, mixed


def test_streams_at_different_points_batch_to_their_solo_results(models: dict[str, Path]) -> None:
    """Rows of one batched stream step may be at different points of their streams (first chunk excepted: its
    shape differs): each row keeps its own cache fill and hypothesis, and gives what it gives alone, step by step."""
    import torch

    engine = _stream_engine(models, warmup=False)
    clips = [c.samples for c in _clips()[1:]]
    alone = [_drive(engine, [clip], lag=0) for clip in clips]
    texts, caches, mixed = _drive(engine, clips, lag=2)
    assert mixed > 0, "no call merged streams at different points"
    assert texts == [t[0][0] for t in alone]
    assert any(steps[-1] for steps in texts), "random weights still emit tokens"
    for together, (_, solo, _) in zip(caches, alone):
        torch.testing.assert_close(together, solo[0], atol=1e-4, rtol=1e-4)
    engine.close()


def _stream(engine, clip: np.ndarray, cancel: CancelToken | None = None, piece: int = 1600) -> str:
    chunks = (AudioBuffer(clip[i : i + piece], 16000) for i in range(0, len(clip), piece))
    *_, last = engine.stream_transcribe(chunks, TranscriptionOptions(), cancel or CancelToken())
    return last.text


def test_concurrent_streams_share_steps_and_equal_sequential(models: dict[str, Path]) -> None:
    """Three live streams at once (the realtime sessions' case): the steps that wait while one runs are merged into
    the next call, and each stream's transcript is the one it gets alone."""
    from tests.support.batch_gate import gate, until

    engine = _stream_engine(models, warmup=False)
    clips = [c.samples for c in _clips()[1:]]
    sequential = [_stream(engine, clip) for clip in clips]
    engine.batcher.batch_sizes.clear()
    # The first step is held until the other two streams' first steps wait: they form the second call together.
    calls = gate(engine, "_run_steps", {1: lambda: until(lambda: engine.batcher.waiting >= 2, "two waiting streams")})
    results = _in_threads([lambda c=c: _stream(engine, c) for c in clips], first_running=lambda: bool(calls))
    del engine._run_steps
    assert results == sequential
    assert calls[:2] == [1, 2] and max(engine.batcher.batch_sizes) >= 2
    engine.close()


def test_cancelling_a_waiting_stream_spares_the_others(models: dict[str, Path]) -> None:
    from engines.base import CancelledByClient
    from tests.support.batch_gate import gate, until

    engine = _stream_engine(models, warmup=False)
    clips = [c.samples for c in _clips()[1:]]
    expected = [_stream(engine, clip) for clip in clips]
    token = CancelToken()

    def cancel_once_queued() -> None:  # call 1 runs stream 0; streams 1 and 2 wait; stream 2 leaves the queue
        until(lambda: engine.batcher.waiting >= 2, "two waiting streams")
        token.cancel()
        until(lambda: engine.batcher.waiting == 1, "the cancelled stream to leave")

    calls = gate(engine, "_run_steps", {1: cancel_once_queued})
    results = _in_threads([lambda: _stream(engine, clips[0]), lambda: _stream(engine, clips[1]),
                           lambda: _stream(engine, clips[2], token)], first_running=lambda: bool(calls))
    del engine._run_steps
    assert isinstance(results[2], CancelledByClient)
    assert results[:2] == expected[:2]
    engine.close()


def test_streaming_warm_up_steps_two_streams_uncounted(
    models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nemo.collections.asr.models import EncDecRNNTBPEModel

    rows: list[int] = []
    original = EncDecRNNTBPEModel.conformer_stream_step

    def spy(self, *args, **kwargs):
        rows.append(int(kwargs["processed_signal"].shape[0]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(EncDecRNNTBPEModel, "conformer_stream_step", spy)
    engine = _stream_engine(models)
    assert rows and max(rows) == 2 and engine.batcher.batch_sizes == []  # batched dummy steps, not counted
    count = len(rows)
    cold = _stream_engine(models, warmup=False)
    assert len(rows) == count
    engine.close()
    cold.close()


# --- realtime sessions on the streaming model: one live stream per turn --------------------------------------------


def test_turn_transcriber_streams_the_turn_and_covers_a_pause(models: dict[str, Path], tmp_path: Path) -> None:
    """The realtime turn transcriber on a streaming model, driven as a session drives it (audio appended in 100 ms
    pieces, a pause, the commit): deltas while audio comes, the pause covered before the commit, and `.completed`
    is the model's own stream over the same audio, with no second pass."""
    import asyncio

    from api.realtime.session_config import TranscriptionConfig
    from api.realtime.stream_transcriber import StreamTurnTranscriber
    from api.realtime.transcriber import resolve_transcription
    from voxloop.app import build_services

    settings = Settings(cache_dir=tmp_path, nemo={"device": "cpu", "streaming_models": {"nemotron-tiny": str(
        models["stream"])}})
    services = build_services(settings)
    samples = _speech_16k().astype(np.float32)  # the sentence, then 0.3 s of silence
    origin = 5 * 16000  # the turn starts 5 s into the session: pause keys are positions on the session's timeline
    speech_end = origin + len(samples) - 4800
    expected = _stream(_stream_engine(models, warmup=False), samples)

    async def drive() -> tuple[list, int, str, list, object]:
        services.manager.start()
        spec, options = resolve_transcription(services.transcription, TranscriptionConfig(model="nemotron-tiny"))
        events, finished = [], []

        async def emit(event) -> None:
            events.append(event)

        turn = StreamTurnTranscriber(services.transcription, spec, options, "item_1", emit, partial_interval=1.0,
                                     finished=lambda item, text: finished.append(text), start=origin)
        task = asyncio.create_task(turn.run())
        for end in range(1600, len(samples) + 1600, 1600):
            end = min(end, len(samples))
            paused = speech_end if origin + end >= speech_end + 3200 else None
            turn.update(end, lambda since, end=end, paused=paused: (samples[since:end].copy(), paused),
                        speculate=paused is not None)
            await asyncio.sleep(0.05)
        covered = await asyncio.wait_for(turn.covering(speech_end), 30)  # before the commit: from the stream
        before = len(events)
        turn.finish(samples.copy(), speech_end)
        await asyncio.wait_for(task, 60)
        engine = services.manager._slots["nemotron-tiny"].engine
        await services.manager.close()
        return events, before, covered, finished, engine

    events, before, covered, finished, engine = asyncio.run(drive())
    kinds = [type(e).__name__ for e in events]
    assert kinds[-1] == "TranscriptionCompleted" and set(kinds[:-1]) == {"TranscriptionDelta"}, kinds
    completed = events[-1].transcript
    assert completed == expected and completed, "differs from the engine's own stream over the same audio"
    assert "".join(e.delta for e in events[:-1]) == completed and finished == [completed]
    assert before >= 1, "no delta while the audio came"
    assert covered == completed  # nothing was said after the pause: the speculative text is the final one
    assert sum(engine.batcher.batch_sizes) > 0


async def _turn_over_socket(url: str, clip: np.ndarray) -> Events:
    """One spoken turn in an openai-SDK realtime session whose input transcription is the streaming model."""
    import openai

    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-local", max_retries=0)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        events = Events(conn)
        await events.until("session.created")
        await conn.session.update(session={"type": "realtime", "audio": {"input": {
            "transcription": {"model": "nemotron-tiny"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500, "create_response": False},
        }}})
        await events.until("session.updated")
        await stream_audio(conn, to_pcm16_24k(clip), realtime=True)
        await events.until("conversation.item.input_audio_transcription.completed", timeout=120)
    return events


def _assert_live_turn(events: Events) -> None:
    """Deltas while the user spoke (before `speech_stopped`) that add up to `.completed`."""
    stopped = events.of("input_audio_buffer.speech_stopped")
    completed = events.of("conversation.item.input_audio_transcription.completed")
    assert len(stopped) == 1 and len(completed) == 1 and completed[0]["transcript"]
    deltas = events.of("conversation.item.input_audio_transcription.delta")
    assert "".join(d["delta"] for d in deltas) == completed[0]["transcript"]
    assert events.seen.index(deltas[0]) < events.seen.index(stopped[0]), "no delta while the user spoke"


def _turn_clip() -> np.ndarray:
    return np.concatenate([silence(0.3), speak("Hello world, this is a short test."), silence(1.2)])


def test_realtime_session_on_the_streaming_model(models: dict[str, Path], tmp_path: Path) -> None:
    """Over the socket with the openai SDK: a session whose transcription model is the streaming one gets deltas
    before `speech_stopped`, deltas that add up to `.completed`, and its turn decoded by stream steps (the offline
    `transcribe` is never called)."""
    import asyncio

    app = create_app(Settings(cache_dir=tmp_path, nemo={"device": "cpu", "streaming_models": {
        "nemotron-tiny": str(models["stream"])}}))
    clip = _turn_clip()
    with live_server(app) as url:
        # Load the model with one HTTP request, then make its offline path fail loudly.
        assert _post(url, encode(clip, "wav"), model="nemotron-tiny").status_code == 200
        engine = app.state.services.manager._slots["nemotron-tiny"].engine
        offline: list[int] = []
        engine.transcribe = lambda *a, **k: offline.append(1) or (_ for _ in ()).throw(AssertionError("offline"))
        steps_before = len(engine.batcher.batch_sizes)
        events = asyncio.run(_turn_over_socket(url, clip))
    _assert_live_turn(events)
    assert offline == [] and len(engine.batcher.batch_sizes) > steps_before


def test_realtime_session_streams_live_through_ray_serve(models: dict[str, Path], tmp_path: Path) -> None:
    """voxloop on Ray Serve with the streaming model in its own deployment: the turn's audio reaches the replica
    while the user speaks (a Ray queue beside the handle call), so deltas still come before `speech_stopped`."""
    import asyncio

    ray = pytest.importorskip("ray", reason="Ray Serve is not installed in this venv")
    from ray import serve

    from tests.support.server import free_port
    from voxloop.ray import APP_NAME, DeploymentOptions, build_app

    settings = Settings(cache_dir=tmp_path, nemo={"device": "cpu", "streaming_models": {
        "nemotron-tiny": str(models["stream"])}})
    ray.init(num_cpus=3, include_dashboard=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}})
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(settings, models=["nemotron-tiny"],
                            options={"nemotron-tiny": DeploymentOptions(num_cpus=1)}), name=APP_NAME, route_prefix="/")
        events = asyncio.run(_turn_over_socket(f"http://127.0.0.1:{port}", _turn_clip()))
    finally:
        serve.shutdown()
        ray.shutdown()
    _assert_live_turn(events)
