"""GPU engines through voxloop's engine classes, against the library's own batched call, on random-weight models built
from the libraries' own configs (no download).

    .venv-nemo/bin/python bench/gpu.py nemo --device cpu --size tiny      # the CPU smoke (seconds)
    .venv-nemo/bin/python bench/gpu.py nemo-stream --device cpu --size tiny --seconds 10
    python bench/gpu.py nemo --device cuda --size full                   # Parakeet-TDT-0.6B-v2 shape on a GPU
    .venv/bin/python bench/gpu.py kokoro --device cpu --size tiny
    .venv/bin/python bench/gpu.py emotion2vec --device cpu --size tiny --seconds 3
    python bench/gpu.py kokoro --device cuda --size full                 # Kokoro-82M v1.0 shape

Each engine family runs in the venv holding its extra (their pins conflict). Prints one JSON line per measurement
and writes them to --out after each step, so a timeout keeps what was measured.

- nemo: `NemoTranscriber` (cross-request batching, engines/batching.py) on a checkpoint from tests/support/tiny_nemo.py
  (`full`: Parakeet-TDT-0.6B-v2's layout; `tiny`: 2x32) at 1/4/16 (and --concurrency) concurrent requests of
  --seconds clips: RTFx (audio seconds per wall second) and p50 latency; then the library's own best,
  `model.transcribe(all clips, batch_size=N)`, on the same clips. Random weights decode a fixed amount of gibberish,
  so both sides do the same work.
- nemo-stream: `NemoStreamingTranscriber` (`nemo`'s layout made cache-aware like Nemotron streaming) at 1/4/16 concurrent
  live streams of --seconds each, fed 100 ms at a time as fast as the engine takes them, their encoder steps batched
  across streams: RTFx, p50 stream latency, steps run, mean and largest batch; then as many live streams fed at
  real-time pace (how long each 100 ms piece takes to go through, p50/p95); then NeMo's own streaming loop with
  all N streams in lockstep (`CacheAwareStreamingAudioBuffer` + one `conformer_stream_step` of N rows per chunk),
  the library's best for streams that all start together.
- kokoro: `KokoroTorchSynthesizer`: load, first call (warm-up), time to first audio for 3 words and 2 sentences, RTF,
  throughput (audio-s/s) and p50 latency at 1/4/16 concurrent requests, their phrases batched across requests
  (engines/kokoro_batch.py; model calls and the largest batch recorded); then the library's own way, `KModel`'s
  forward one phrase at a time, for the same phrases (kokoro has no batched call of its own). `--cuda-graphs`
  repeats the engine's measurements with PL-BERT in captured fixed-shape buckets (engines/kokoro_graphs.py).
- emotion2vec: `Emotion2vecRecognizer` at 1/4/16 concurrent requests of --seconds clips (at most 30 s, the engine's
  chunk), batched across requests (engines/emotion2vec_batch.py): RTFx, p50 latency, model calls, largest batch;
  then FunASR's own `generate` over the same clips (its inference runs them one at a time). `full` is data2vec 2.0
  base's audio layout (768 wide, 8 blocks, 4 prenet blocks, 512-channel feature extractor), run in .venv.
- chatterbox: `ChatterboxSynthesizer` (Turbo) on a checkpoint from tests/support/tiny_chatterbox.py (`full`: T3 is
  Turbo's real GPT-2 medium, 24x1024; `tiny`: 2x32; S3Gen is always the real one). Load with warm-up, first audio of
  a 40-token phrase (T3 then S3Gen), then T3 speech tokens/s at 1/4/16 concurrent requests, their phrases decoded
  together (engines/chatterbox_batch.py; model calls and the largest batch recorded), against the same phrases one
  by one through the engine, and the library's own `T3.inference_turbo` (what its `generate` runs) one at a time.
  Random weights never stop: every phrase decodes --tokens + 1 tokens. `--t3-step dynamic static cuda_graph` runs
  the engine's ways once per T3 decode step (engines/chatterbox_static.py: the library's growing KV cache, a static
  one, the static step as a CUDA graph), each with its bucket preparation time and first audio.

    .venv-chatterbox/bin/python bench/gpu.py chatterbox --device cpu --size tiny --concurrency 1 4 --tokens 100
    python bench/gpu.py chatterbox --device cuda --size full --concurrency 1 4 16 --t3-step dynamic cuda_graph
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from tests.support.tiny_nemo import SENTENCES  # noqa: E402  (also Chatterbox's phrases)


class Recorder:
    def __init__(self, out: Path | None):
        self.out, self.rows = out, []

    def add(self, **row: Any) -> None:
        self.rows.append(row)
        print(json.dumps(row), flush=True)
        if self.out is not None:
            self.out.write_text("".join(json.dumps(r) + "\n" for r in self.rows))


def gpu_memory(torch: Any, device: str) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.startswith("cuda") else None


def sync(torch: Any, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def concurrent(fn: Callable[[int], Any], n: int) -> tuple[float, list[float]]:
    """Run fn(0..n-1) on n threads at once: (wall seconds, each call's latency)."""
    latencies = [0.0] * n

    def go(i: int) -> None:
        started = time.perf_counter()
        fn(i)
        latencies[i] = time.perf_counter() - started

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies


# --- NeMo ----------------------------------------------------------------------------------------------------------


def nemo_checkpoint(size: str, streaming: bool) -> tuple[Path, int]:
    """A random-weight `.nemo` of Parakeet TDT 0.6B v2's layout (`full`: FastConformer 24x1024, 8x dw_striding, TDT
    joint 640; `tiny`: 2x32), made cache-aware like Nemotron streaming when `streaming` (tests/support/tiny_nemo.py):
    path, params."""
    from tests.support import tiny_nemo

    return tiny_nemo.checkpoint(Path(tempfile.mkdtemp(prefix="bench-gpu-nemo-")), size, streaming=streaming)


def bench_nemo(args: argparse.Namespace, rec: Recorder) -> None:
    import torch

    from engines.base import AudioBuffer, CancelToken, TranscriptionOptions
    from engines.nemo import NemoTranscriber
    from engines.settings import NemoSettings

    path, params = nemo_checkpoint(args.size, streaming=False)
    started = time.perf_counter()
    max_n = max(args.concurrency)
    engine = NemoTranscriber(str(path), NemoSettings(device=args.device, batch_size=max_n, parallel_requests=max_n))
    sync(torch, args.device)
    rec.add(engine="nemo", size=args.size, device=args.device, params=params, load_and_warmup_s=round(
        time.perf_counter() - started, 2), gpu_gib=gpu_memory(torch, args.device))

    rng = np.random.default_rng(0)
    clips = [(rng.standard_normal(int(16000 * args.seconds)) * 0.1).astype(np.float32) for _ in range(max_n)]
    options, cancel = TranscriptionOptions(), CancelToken()

    def one(i: int) -> None:
        _, segments = engine.transcribe(AudioBuffer(clips[i], 16000), options, cancel)
        list(segments)

    for n in args.concurrency:
        engine.batcher.batch_sizes.clear()
        walls, lat = [], []
        for _ in range(args.rounds):
            wall, latencies = concurrent(one, n)
            walls.append(wall)
            lat += latencies
        audio = n * args.seconds * args.rounds
        rec.add(engine="nemo", via="engine", concurrent=n, clip_s=args.seconds, rtfx=round(audio / sum(walls), 1),
                p50_latency_s=round(statistics.median(lat), 3), model_calls=len(engine.batcher.batch_sizes),
                largest_batch=max(engine.batcher.batch_sizes), gpu_gib=gpu_memory(torch, args.device))
    for n in args.concurrency:
        started = time.perf_counter()
        for _ in range(args.rounds):
            engine._decode(clips[:n])
        sync(torch, args.device)
        wall = time.perf_counter() - started
        rec.add(engine="nemo", via="library transcribe(batch_size=N)", concurrent=n, clip_s=args.seconds,
                rtfx=round(n * args.seconds * args.rounds / wall, 1), gpu_gib=gpu_memory(torch, args.device))
    engine.close()


def bench_nemo_stream(args: argparse.Namespace, rec: Recorder) -> None:
    import torch

    from engines.base import AudioBuffer, CancelToken, TranscriptionOptions
    from engines.nemo_streaming import NemoStreamingTranscriber
    from engines.settings import NemoSettings
    from tests.support.nemo_lockstep import lockstep

    path, params = nemo_checkpoint(args.size, streaming=True)
    started = time.perf_counter()
    max_n = max(args.concurrency)
    engine = NemoStreamingTranscriber(str(path), NemoSettings(device=args.device, batch_size=max_n,
                                                              parallel_requests=max_n))
    sync(torch, args.device)
    rec.add(engine="nemo-stream", size=args.size, device=args.device, params=params, load_and_warmup_s=round(
        time.perf_counter() - started, 2), gpu_gib=gpu_memory(torch, args.device))
    rng = np.random.default_rng(0)
    clips = [(rng.standard_normal(int(16000 * args.seconds)) * 0.1).astype(np.float32) for _ in range(max_n)]
    options, cancel, piece = TranscriptionOptions(), CancelToken(), 1600  # 100 ms of audio per message

    def one(i: int) -> None:
        chunks = (AudioBuffer(clips[i][j : j + piece], 16000) for j in range(0, len(clips[i]), piece))
        for _ in engine.stream_transcribe(chunks, options, cancel):
            pass

    for n in args.concurrency:
        engine.batcher.batch_sizes.clear()
        walls, lat = [], []
        for _ in range(args.rounds):
            wall, latencies = concurrent(one, n)
            walls.append(wall)
            lat += latencies
        sizes = engine.batcher.batch_sizes
        rec.add(engine="nemo-stream", via="engine", concurrent=n, clip_s=args.seconds,
                rtfx=round(n * args.seconds * args.rounds / sum(walls), 1),
                p50_latency_s=round(statistics.median(lat), 3), steps=len(sizes), largest_batch=max(sizes),
                mean_batch=round(statistics.mean(sizes), 2), gpu_gib=gpu_memory(torch, args.device))
    # Live sessions: every stream fed at real-time pace; the lag is how long a piece takes from its arrival until
    # the engine asks for the next one (its steps run and its updates are out): under 100 ms keeps up.
    lags: list[float] = []

    def paced(i: int) -> None:
        def pieces() -> Iterator[AudioBuffer]:
            started = time.perf_counter()
            for k, j in enumerate(range(0, len(clips[i]), piece)):
                time.sleep(max(0.0, started + k * piece / 16000 - time.perf_counter()))
                handed = time.perf_counter()
                yield AudioBuffer(clips[i][j : j + piece], 16000)
                lags.append(time.perf_counter() - handed)

        for _ in engine.stream_transcribe(pieces(), options, cancel):
            pass

    n = max(args.concurrency)
    engine.batcher.batch_sizes.clear()
    concurrent(paced, n)
    sizes = engine.batcher.batch_sizes
    rec.add(engine="nemo-stream", via="engine, real-time paced", concurrent=n, clip_s=args.seconds,
            piece_lag_p50_ms=round(statistics.median(lags) * 1000, 1),
            piece_lag_p95_ms=round(statistics.quantiles(lags, n=20)[-1] * 1000, 1),
            kept_real_time=statistics.quantiles(lags, n=20)[-1] < piece / 16000, steps=len(sizes),
            mean_batch=round(statistics.mean(sizes), 2), gpu_gib=gpu_memory(torch, args.device))
    model = engine._model

    for n in args.concurrency:
        # On a worker thread, as the engine's requests run (on CPU, torch on a fresh thread ran 2-3x slower than
        # on the main thread here: comparing the two would mostly measure that).
        wall = sum(concurrent(lambda _, n=n: lockstep(model, clips[:n]), 1)[0] for _ in range(args.rounds))
        sync(torch, args.device)
        rec.add(engine="nemo-stream", via="library lockstep conformer_stream_step(batch=N)", concurrent=n,
                clip_s=args.seconds, rtfx=round(n * args.seconds * args.rounds / wall, 1),
                gpu_gib=gpu_memory(torch, args.device))
    engine.close()


# --- Kokoro (torch) ------------------------------------------------------------------------------------------------


def kokoro_full_config() -> dict:
    """Kokoro-82M v1.0's config.json (hexgrad/Kokoro-82M), with kokoro-onnx's copy of its phoneme vocabulary."""
    from kokoro_onnx.config import DEFAULT_VOCAB

    return {
        "vocab": DEFAULT_VOCAB, "n_token": 178, "hidden_dim": 512, "style_dim": 128, "n_layer": 3, "max_dur": 50,
        "dropout": 0.2, "text_encoder_kernel_size": 5, "n_mels": 80,
        "plbert": {"hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 2048,
                   "max_position_embeddings": 512, "num_hidden_layers": 12, "dropout": 0.1},
        "istftnet": {"upsample_kernel_sizes": [20, 12], "upsample_rates": [10, 6], "gen_istft_hop_size": 5,
                     "gen_istft_n_fft": 20, "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
                     "resblock_kernel_sizes": [3, 7, 11], "upsample_initial_channel": 512},
    }


def bench_kokoro(args: argparse.Namespace, rec: Recorder) -> None:
    import torch

    from engines.base import CancelToken, SynthesisOptions
    from engines.kokoro_graphs import AlbertGraphs
    from engines.kokoro_torch import KokoroTorchSynthesizer
    from engines.settings import TTSSettings
    from engines.speech_text import split_phrases
    from tests.support import tiny_kokoro

    directory = Path(tempfile.mkdtemp(prefix="bench-gpu-kokoro-"))
    if args.size == "full":
        original = tiny_kokoro.config
        tiny_kokoro.config = kokoro_full_config  # the same builder, the real sizes
        try:
            tiny_kokoro.build(directory)
        finally:
            tiny_kokoro.config = original
    else:
        tiny_kokoro.build(directory)
    started = time.perf_counter()
    engine = KokoroTorchSynthesizer(directory, TTSSettings(kokoro_torch_device=args.device, kokoro_torch_warmup=False))
    sync(torch, args.device)
    load = time.perf_counter() - started
    options, cancel = SynthesisOptions(voice=tiny_kokoro.VOICES[0]), CancelToken()
    started = time.perf_counter()
    engine.warm_up()
    sync(torch, args.device)
    rec.add(engine="kokoro", size=args.size, device=args.device, load_s=round(load, 2),
            first_call_s=round(time.perf_counter() - started, 3), gpu_gib=gpu_memory(torch, args.device))
    text = "The quick brown fox jumps over the lazy dog. Then it runs far away."
    # --cuda-graphs: the same measurements again with ALBERT in captured buckets (engines/kokoro_graphs.py; on a CPU
    # the buckets run eagerly), all prepared first as the engine's warm-up does.
    for graphs in [False, True] if args.cuda_graphs else [False]:
        if graphs:
            started = time.perf_counter()
            engine.albert = AlbertGraphs(torch, engine._model, max(args.concurrency),
                                         graph=args.device.startswith("cuda"))
            buckets = engine.albert.prepare()
            sync(torch, args.device)
            rec.add(engine="kokoro", albert="cuda graphs" if engine.albert.graph else "buckets, eager",
                    buckets=buckets, prepare_s=round(time.perf_counter() - started, 2),
                    gpu_gib=gpu_memory(torch, args.device))
        mode = {"albert": "cuda graphs" if graphs and engine.albert.graph else "buckets, eager"} if graphs else {}
        for label, phrase in (("3 words", "Hello there friend."),
                              ("2 sentences", "Hello there, this is a test. It has two sentences.")):
            started = time.perf_counter()
            stream = engine.synthesize(phrase, options, cancel)
            first = next(stream)
            ttfa = time.perf_counter() - started
            total = first.duration + sum(c.duration for c in stream)
            wall = time.perf_counter() - started
            rec.add(engine="kokoro", text=label, **mode, first_audio_s=round(ttfa, 3),
                    rtf=round(wall / max(total, 1e-9), 3))
        for n in args.concurrency:
            audio = [0.0] * n
            engine.batcher.batch_sizes.clear()

            def one(i: int, audio: list[float] = audio) -> None:  # as the manager runs it: n workers, batched
                audio[i] = sum(c.duration for c in engine.synthesize(text, options, cancel))

            wall, latencies = concurrent(one, n)
            sizes = engine.batcher.batch_sizes
            rec.add(engine="kokoro", via="engine (batched across requests)", **mode, concurrent=n,
                    audio_s_per_s=round(sum(audio) / wall, 1), p50_latency_s=round(statistics.median(latencies), 3),
                    model_calls=len(sizes), largest_batch=max(sizes), gpu_gib=gpu_memory(torch, args.device))
    engine.albert = None
    # The library's way (what the engine did before batching): KModel's forward, one phrase at a time.
    phonemes = [p for phrase in split_phrases(text, engine._first_words) for p in engine.phonemes(phrase.text, "en-us")]
    pack = engine.pack(options.voice)
    for n in args.concurrency:
        started, samples = time.perf_counter(), 0
        with torch.inference_mode():
            for _ in range(n):
                for p in phonemes:
                    samples += engine._model(p, pack[len(p) - 1], 1.0).numel()
        sync(torch, args.device)
        rec.add(engine="kokoro", via="library KModel.forward, one phrase at a time", concurrent=n,
                audio_s_per_s=round(samples / 24_000 / (time.perf_counter() - started), 1))
    engine.close()


# --- emotion2vec+ ----------------------------------------------------------------------------------------------------


def bench_emotion2vec(args: argparse.Namespace, rec: Recorder) -> None:
    """`Emotion2vecRecognizer` at 1/4/16 concurrent requests of --seconds clips (batched across requests), then
    FunASR's own `generate` over the same clips (its inference loops over them one at a time)."""
    import torch

    from engines.base import AudioBuffer, CancelToken, EmotionOptions
    from engines.emotion2vec import Emotion2vecRecognizer
    from tests.support import tiny_emotion2vec

    directory = Path(tempfile.mkdtemp(prefix="bench-gpu-emotion2vec-"))
    if args.size == "full":  # data2vec 2.0 base's audio layout (emotion2vec+ base): 768 wide, 8 blocks + 4 prenet
        original = tiny_emotion2vec.model_conf

        def full() -> dict:
            conf = original()
            conf.update({"embed_dim": 768, "depth": 8, "num_heads": 12})
            conf["modalities"]["audio"].update({
                "prenet_depth": 4, "model_depth": 8, "num_alibi_heads": 12, "conv_pos_width": 95,
                "conv_pos_groups": 16, "conv_pos_depth": 5,
                "feature_encoder_spec": "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] + [(512,2,2)]"})
            return conf

        tiny_emotion2vec.model_conf = full
        try:
            tiny_emotion2vec.build(directory)
        finally:
            tiny_emotion2vec.model_conf = original
    else:
        tiny_emotion2vec.build(directory)
    max_n = max(args.concurrency)
    started = time.perf_counter()
    engine = Emotion2vecRecognizer(str(directory), device=args.device, hub="hf", local=True, allow_downloads=False,
                                   batch_size=max_n)
    sync(torch, args.device)
    rec.add(engine="emotion2vec", size=args.size, device=args.device, load_s=round(time.perf_counter() - started, 2),
            gpu_gib=gpu_memory(torch, args.device))
    rng = np.random.default_rng(0)
    seconds = min(args.seconds, 30.0)
    clips = [(rng.standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32) for _ in range(max_n)]
    engine.recognize(AudioBuffer(clips[0], 16000), EmotionOptions(), CancelToken())  # warm
    for n in args.concurrency:
        engine.batcher.batch_sizes.clear()
        walls, lat = [], []
        for _ in range(args.rounds):
            wall, latencies = concurrent(
                lambda i: engine.recognize(AudioBuffer(clips[i], 16000), EmotionOptions(), CancelToken()), n)
            walls.append(wall)
            lat += latencies
        sizes = engine.batcher.batch_sizes
        rec.add(engine="emotion2vec", via="engine (batched across requests)", concurrent=n, clip_s=seconds,
                rtfx=round(n * seconds * args.rounds / sum(walls), 1), p50_latency_s=round(statistics.median(lat), 3),
                model_calls=len(sizes), largest_batch=max(sizes), gpu_gib=gpu_memory(torch, args.device))
    for n in args.concurrency:
        started = time.perf_counter()
        for _ in range(args.rounds):
            engine._model.generate(clips[:n], fs=16000, granularity="utterance", extract_embedding=False,
                                   disable_pbar=True, batch_size=n)
        sync(torch, args.device)
        rec.add(engine="emotion2vec", via="FunASR generate(all clips)", concurrent=n, clip_s=seconds,
                rtfx=round(n * seconds * args.rounds / (time.perf_counter() - started), 1))
    engine.close()


def _threads_tokens(fn: Callable[[int], int], n: int) -> int:
    """fn(0..n-1) on n threads at once; the tokens they return, summed."""
    counts = [0] * n

    def go(i: int) -> None:
        counts[i] = fn(i)

    concurrent(go, n)
    return sum(counts)


# --- Chatterbox-Turbo ------------------------------------------------------------------------------------------------


def bench_chatterbox(args: argparse.Namespace, rec: Recorder) -> None:
    import torch

    from engines.base import CancelToken
    from engines.chatterbox import ChatterboxSynthesizer
    from engines.chatterbox_batch import prompt_width
    from engines.chatterbox_static import StaticT3Pool
    from engines.settings import ChatterboxSettings
    from tests.support import tiny_chatterbox

    os.environ.setdefault("TQDM_DISABLE", "1")  # the library's decoding loop draws a progress bar
    directory = Path(tempfile.mkdtemp(prefix="bench-gpu-chatterbox-")) / "turbo"
    directory.mkdir()
    max_n = max(args.concurrency)
    with tiny_chatterbox.t3_config(None if args.size == "full" else tiny_chatterbox.tiny_t3()):
        tiny_chatterbox.build(directory)
        started = time.perf_counter()
        engine = ChatterboxSynthesizer(str(directory), "turbo", ChatterboxSettings(
            device=args.device, max_speech_tokens=args.tokens, batch_size=max_n, parallel_requests=max_n))
    sync(torch, args.device)
    t3, voice, cancel = engine._model.t3, engine._builtin, CancelToken()
    load = time.perf_counter() - started
    rec.add(engine="chatterbox", size=args.size, device=args.device, t3_params=sum(p.numel() for p in t3.parameters()),
            load_and_warmup_s=round(load, 2), gpu_gib=gpu_memory(torch, args.device))
    # T3's decode step per --t3-step (engines/chatterbox_static.py): the engine's pool swapped in, every rows bucket
    # prepared (and for cuda_graph captured) at the phrase limit first, as the engine's warm-up does.
    pools: dict[str, Any] = {"dynamic": None}
    width = prompt_width(torch, t3, engine._phrase_request(SENTENCES[1], voice, cancel))
    for step in args.t3_step:
        if step != "dynamic":
            started = time.perf_counter()
            pools[step] = StaticT3Pool(torch, t3, max_n, graph=step == "cuda_graph")
            buckets = pools[step].prepare(width + args.tokens + 1)
            sync(torch, args.device)
            rec.add(engine="chatterbox", t3_step=step, buckets=buckets,
                    prepare_s=round(time.perf_counter() - started, 2), gpu_gib=gpu_memory(torch, args.device))

    def using(step: str, fn: Callable[[], Any]) -> Any:
        engine._static = pools[step]
        try:
            return fn()
        finally:
            engine._static = None

    first: dict[str, float] = {}

    def first_audio(_: int) -> None:
        for _ in range(2):  # the second is the one to read
            started = time.perf_counter()
            (tokens,) = engine.batcher.run([engine._phrase_request("Hello there.", voice, cancel, max_tokens=39)],
                                           engine._decode)
            sync(torch, args.device)
            first["t3_s"] = time.perf_counter() - started
            first["audio_s"] = len(engine._vocode(tokens, voice)) / engine.sample_rate
            sync(torch, args.device)
            first["first_audio_s"] = time.perf_counter() - started

    for step in args.t3_step:
        using(step, lambda: concurrent(first_audio, 1))
        rec.add(engine="chatterbox", text="40 speech tokens", t3_step=step, **{k: round(v, 3) for k, v in first.items()})
    phrases = [SENTENCES[i % len(SENTENCES)] for i in range(max_n)]
    # Per concurrency level, the ways back to back, --rounds times each, each round timed on its own: the best
    # and the median round (load drifts on a shared machine). The sequential ways run on one worker thread, as the
    # manager runs a request (on the CPU smoke run, the main thread after building the checkpoint was measured up to
    # 10x slower than a worker thread).
    for n in args.concurrency:
        requests = [engine._phrase_request(phrases[i], voice, cancel) for i in range(n)]
        ways: dict[str, Callable[[], int]] = {}
        for step in args.t3_step:
            # as the model manager runs it: n workers, their phrases decoded together
            ways[f"engine, T3 batched across requests, t3_step={step}"] = lambda n=n, step=step: using(
                step, lambda: _threads_tokens(lambda i: engine.speech_tokens(phrases[i], voice, cancel).shape[1], n))
            ways[f"engine, one phrase at a time, t3_step={step}"] = lambda n=n, step=step: using(
                step, lambda: _threads_tokens(
                    lambda _: sum(engine.speech_tokens(phrases[i], voice, cancel).shape[1] for i in range(n)), 1))
        # what the library's generate runs for T3 (capped like the engine's)
        ways["library T3.inference_turbo, one at a time"] = lambda requests=requests: _threads_tokens(
            lambda _: sum(t3.inference_turbo(voice.t3, r.text_tokens).shape[1] for r in requests), 1)
        rates: dict[str, list[float]] = {way: [] for way in ways}
        sizes: dict[str, list[int]] = {way: [] for way in ways}
        for _ in range(args.rounds):
            for way, run in ways.items():
                engine.batcher.batch_sizes.clear()
                started = time.perf_counter()
                tokens = run()
                sync(torch, args.device)
                rates[way].append(tokens / (time.perf_counter() - started))
                sizes[way] += engine.batcher.batch_sizes
        for way, values in rates.items():
            calls = {"model_calls": len(sizes[way]), "largest_batch": max(sizes[way])} if sizes[way] else {}
            rec.add(engine="chatterbox", via=way, concurrent=n, rounds=args.rounds, **calls,
                    t3_tokens_per_s_best=round(max(values), 1),
                    t3_tokens_per_s_median=round(statistics.median(values), 1), gpu_gib=gpu_memory(torch, args.device))
    engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("engine", choices=["nemo", "nemo-stream", "kokoro", "emotion2vec", "chatterbox"])
    parser.add_argument("--device", default="cuda", help="cuda (the GPU box) or cpu (the smoke run)")
    parser.add_argument("--size", choices=["tiny", "full"], default="full")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=30.0, help="NeMo, emotion2vec: length of each clip")
    parser.add_argument("--rounds", type=int, default=2,
                        help="NeMo, emotion2vec, Chatterbox: repetitions per concurrency level")
    parser.add_argument("--tokens", type=int, default=200, help="Chatterbox: speech tokens per phrase (its cap)")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="Kokoro: measure again with ALBERT in CUDA-graph buckets (on a CPU: the buckets, eager)")
    parser.add_argument("--t3-step", nargs="+", default=["dynamic"], choices=["dynamic", "static", "cuda_graph"],
                        help="Chatterbox: T3's decode steps to compare in the same run (cuda_graph: CUDA only)")
    parser.add_argument("--out", type=Path, help="also write the JSON lines here after each step")
    args = parser.parse_args()
    rec = Recorder(args.out)
    {"nemo": bench_nemo, "nemo-stream": bench_nemo_stream, "kokoro": bench_kokoro, "emotion2vec": bench_emotion2vec,
     "chatterbox": bench_chatterbox}[args.engine](args, rec)


if __name__ == "__main__":
    main()
