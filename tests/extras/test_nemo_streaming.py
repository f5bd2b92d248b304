"""NeMo's cache-aware streaming engine with the real library, on a tiny random-weight model made cache-aware like
Nemotron streaming (tests/support/tiny_nemo.py, the `nemo_models` fixture in conftest.py): `stream_transcribe`
incremental and chunking-invariant and equal to NeMo's own streaming loop, a `.nemo` whose pickle holds more than
tensors restored on torch >= 2.6, and concurrent streams sharing batched encoder steps (rows at different points,
cancellation, warm-up). Realtime sessions on this model are in test_nemo_realtime.py; its offline HTTP request is in
test_nemo.py.

Random weights transcribe gibberish: this proves the streaming path, not recognition quality. Runs in `.venv-nemo`
(`make test-nemo`); the main venv skips it with the reason below.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "nemo.collections.asr", reason="NeMo is not installed in this venv; `make test-nemo` runs these in .venv-nemo"
)

from engines.base import AudioBuffer, CancelToken, TranscriptionOptions  # noqa: E402
from engines.settings import NemoSettings  # noqa: E402
from tests.support.batch_gate import in_threads  # noqa: E402
from tests.support.nemo_drive import speech_16k, speech_clips, stream_engine, stream_text  # noqa: E402

pytestmark = pytest.mark.extra_nemo


def test_stream_transcribe_is_incremental_and_chunking_invariant(nemo_models: dict[str, Path]) -> None:
    """The engine's live streaming method: updates arrive while audio is fed, and the result does not
    depend on how the audio was cut (features and encoder caches are carried across chunks exactly)."""
    from engines.base import StreamingTranscriber
    from engines.nemo_streaming import NemoStreamingTranscriber

    engine = NemoStreamingTranscriber(str(nemo_models["stream"]), NemoSettings(device="cpu"))
    assert isinstance(engine, StreamingTranscriber) and engine.capabilities.streaming
    samples = speech_16k()
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
    nemo_models: dict[str, Path], tmp_path: Path
) -> None:
    """torch >= 2.6 loads `model_weights.ckpt` with `weights_only=True`; a cache-aware `.nemo` whose pickle holds
    more than tensors failed to restore through `ASRModel.restore_from` (seen on torch 2.11). The engine's loader
    retries with the full unpickler and serves the same model."""
    import pickle

    from nemo.collections.asr.models import ASRModel

    from engines.nemo_streaming import NemoStreamingTranscriber

    path = _with_pickled_numpy(nemo_models["stream"], tmp_path / "pickled.nemo")
    with pytest.raises(pickle.UnpicklingError, match="weights_only"):  # the failure, reproduced with NeMo itself
        ASRModel.restore_from(str(path), map_location="cpu")
    engine = NemoStreamingTranscriber(str(path), NemoSettings(device="cpu", warmup=False))
    reference = NemoStreamingTranscriber(str(nemo_models["stream"]), NemoSettings(device="cpu", warmup=False))
    try:
        ours, theirs = engine._model.state_dict(), reference._model.state_dict()
        assert ours.keys() == theirs.keys() and all(torch_equal(ours[k], theirs[k]) for k in ours)
        samples = speech_16k()
        assert _reference_stream(engine._model, samples) == _reference_stream(reference._model, samples)
    finally:
        engine.close()
        reference.close()


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


# --- the streaming model: concurrent streams share batched encoder steps -------------------------------------------


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


def test_streams_at_different_points_batch_to_their_solo_results(nemo_models: dict[str, Path]) -> None:
    """Rows of one batched stream step may be at different points of their streams (first chunk excepted: its
    shape differs): each row keeps its own cache fill and hypothesis, and gives what it gives alone, step by step."""
    import torch

    engine = stream_engine(nemo_models, warmup=False)
    clips = [c.samples for c in speech_clips()[1:]]
    alone = [_drive(engine, [clip], lag=0) for clip in clips]
    texts, caches, mixed = _drive(engine, clips, lag=2)
    assert mixed > 0, "no call merged streams at different points"
    assert texts == [t[0][0] for t in alone]
    assert any(steps[-1] for steps in texts), "random weights still emit tokens"
    for together, (_, solo, _) in zip(caches, alone):
        torch.testing.assert_close(together, solo[0], atol=1e-4, rtol=1e-4)
    engine.close()


def test_concurrent_streams_share_steps_and_equal_sequential(nemo_models: dict[str, Path]) -> None:
    """Three live streams at once (the realtime sessions' case): the steps that wait while one runs are merged into
    the next call, and each stream's transcript is the one it gets alone."""
    from tests.support.batch_gate import gate, until

    engine = stream_engine(nemo_models, warmup=False)
    clips = [c.samples for c in speech_clips()[1:]]
    sequential = [stream_text(engine, clip) for clip in clips]
    engine.batcher.batch_sizes.clear()
    # The first step is held until the other two streams' first steps wait: they form the second call together.
    calls = gate(engine, "_run_steps", {1: lambda: until(lambda: engine.batcher.waiting >= 2, "two waiting streams")})
    results = in_threads([lambda c=c: stream_text(engine, c) for c in clips], first_running=lambda: bool(calls))
    del engine._run_steps
    assert results == sequential
    assert calls[:2] == [1, 2] and max(engine.batcher.batch_sizes) >= 2
    engine.close()


def test_cancelling_a_waiting_stream_spares_the_others(nemo_models: dict[str, Path]) -> None:
    from engines.base import CancelledByClient
    from tests.support.batch_gate import gate, until

    engine = stream_engine(nemo_models, warmup=False)
    clips = [c.samples for c in speech_clips()[1:]]
    expected = [stream_text(engine, clip) for clip in clips]
    token = CancelToken()

    def cancel_once_queued() -> None:  # call 1 runs stream 0; streams 1 and 2 wait; stream 2 leaves the queue
        until(lambda: engine.batcher.waiting >= 2, "two waiting streams")
        token.cancel()
        until(lambda: engine.batcher.waiting == 1, "the cancelled stream to leave")

    calls = gate(engine, "_run_steps", {1: cancel_once_queued})
    results = in_threads([lambda: stream_text(engine, clips[0]), lambda: stream_text(engine, clips[1]),
                          lambda: stream_text(engine, clips[2], token)], first_running=lambda: bool(calls))
    del engine._run_steps
    assert isinstance(results[2], CancelledByClient)
    assert results[:2] == expected[:2]
    engine.close()


def test_streaming_warm_up_steps_two_streams_uncounted(
    nemo_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nemo.collections.asr.models import EncDecRNNTBPEModel

    rows: list[int] = []
    original = EncDecRNNTBPEModel.conformer_stream_step

    def spy(self, *args, **kwargs):
        rows.append(int(kwargs["processed_signal"].shape[0]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(EncDecRNNTBPEModel, "conformer_stream_step", spy)
    engine = stream_engine(nemo_models)
    assert rows and max(rows) == 2 and engine.batcher.batch_sizes == []  # batched dummy steps, not counted
    count = len(rows)
    cold = stream_engine(nemo_models, warmup=False)
    assert len(rows) == count
    engine.close()
    cold.close()
