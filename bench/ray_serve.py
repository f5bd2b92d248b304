"""The Ray Serve path's overhead per request, beside in-process `voxloop serve`, in the same run; and what one
voice turn costs each engine, for the README's sizing note.

Both servers hold the same models (Whisper tiny.en, Piper joe, the embedded SmolLM2): in-process is `voxloop serve`
in a subprocess; the Ray path is a local one-node Ray with voxloop's Serve app (voxloop/ray.py), one replica per
engine. Both are up at once and requests alternate between them, one at a time, so the figures are latency, not
queueing:
- speech first byte: time to the first audio byte of a streamed pcm answer (one sentence);
- speech whole: the same request to its last byte (what a phrase of a spoken reply costs the TTS replica);
- transcription: whole request time for a 3 s clip (what one user turn costs the ASR replica);
- chat: a 24-token completion of the embedded LLM (what a short reply costs the LLM replica).
overhead = Ray - in-process, at p50 and at p95, and the median of the paired differences. On a shared 2-core
machine the replicas and the servers share the cores: `uptime`'s load average is printed beside the numbers.

    python bench/ray_serve.py [--n 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import ROOT, p95, summary, uptime, voxloop_server  # noqa: E402
from tests.support.server import free_port  # noqa: E402
from tests.support.speech import encode, speak  # noqa: E402

SENTENCE = "The quick brown fox jumps over the lazy dog."


QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def speech(url: str, http: httpx.Client | None = None, text: str = SENTENCE) -> tuple[float, float]:
    """(first byte, last byte) of a streamed pcm answer."""
    return speech_request(url, http, text)[:2]


def speech_request(url: str, http: httpx.Client | None = None, text: str = SENTENCE) -> tuple[float, float, float]:
    """(first byte, last byte, audio seconds) of a streamed pcm answer (24 kHz s16le)."""
    body = {"model": "piper-joe", "voice": "alloy", "input": text, "response_format": "pcm"}
    started = time.perf_counter()
    with (http or httpx).stream("POST", f"{url}/v1/audio/speech", json=body, timeout=120) as r:
        r.raise_for_status()
        first, size = None, 0
        for piece in r.iter_bytes():
            if piece and first is None:
                first = time.perf_counter() - started
            size += len(piece)
    assert first is not None, "no audio"
    return first, time.perf_counter() - started, size / 2 / 24_000


def transcription(url: str, wav: bytes, http: httpx.Client | None = None) -> float:
    started = time.perf_counter()
    r = (http or httpx).post(f"{url}/v1/audio/transcriptions", files={"file": ("a.wav", wav, "audio/wav")},
                             data={"model": "whisper-1"}, timeout=120)
    r.raise_for_status()
    return time.perf_counter() - started


def chat(url: str) -> float:
    started = time.perf_counter()
    r = httpx.post(f"{url}/v1/chat/completions", timeout=60, json={
        "model": "smollm2-135m-instruct", "messages": QUESTION, "max_tokens": 24, "temperature": 0})
    r.raise_for_status()
    return time.perf_counter() - started


KEYS = ("speech_first_byte", "speech_whole", "transcription", "chat")


def one_round(url: str, wav: bytes) -> dict[str, float]:
    first, whole = speech(url)
    return {"speech_first_byte": first, "speech_whole": whole, "transcription": transcription(url, wav),
            "chat": chat(url)}


def measure(urls: dict[str, str], n: int, wav: bytes) -> dict[str, dict[str, list[float]]]:
    """Requests alternate between the servers, so a burst of load elsewhere hits both alike."""
    for url in urls.values():
        for _ in range(3):  # warm both paths (first loads, first handle calls)
            one_round(url, wav)
    out: dict[str, dict[str, list[float]]] = {name: {k: [] for k in KEYS} for name in urls}
    for _ in range(n):
        for name, url in urls.items():
            for key, seconds in one_round(url, wav).items():
                out[name][key].append(seconds)
    return out


@contextmanager
def local_ray(num_cpus: int = 4) -> Iterator[str]:
    """A one-node Ray started here with Serve's HTTP proxy on a free loopback port: its base URL."""
    import ray
    from ray import serve

    ray.init(num_cpus=num_cpus, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}}, include_dashboard=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def deploy(cache_dir: str, models: list[str], options: dict | None = None) -> None:
    """voxloop's Serve app (voxloop/ray.py) with `models` as engine deployments (`options`: by model id), run
    (or re-run with other options) on the Ray this process joined; returns once every replica is up."""
    from ray import serve

    from api.settings import Settings
    from voxloop.ray import APP_NAME, build_app

    serve.run(build_app(Settings(cache_dir=cache_dir), models=models, options=options), name=APP_NAME,
              route_prefix="/")


@contextmanager
def ray_server(cache_dir: str) -> Iterator[str]:
    with local_ray() as url:
        deploy(cache_dir, ["whisper-tiny.en", "piper-joe", "smollm2-135m-instruct"])
        yield url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    wav = encode(speak("The weather was calm this morning, and the boats were out at sea."))
    print(f"before: {uptime()}")
    with tempfile.TemporaryDirectory() as cache:
        with voxloop_server({"VOXLOOP_CACHE_DIR": cache, "VOXLOOP_WARMUP": "[]"}) as url, ray_server(cache) as ray_url:
            results = measure({"in-process": url, "ray": ray_url}, args.n, wav)
    local, remote = results["in-process"], results["ray"]
    for key in KEYS:
        over50 = (statistics.median(remote[key]) - statistics.median(local[key])) * 1000
        over95 = (p95(remote[key]) - p95(local[key])) * 1000
        paired = statistics.median(r - l for r, l in zip(remote[key], local[key], strict=True)) * 1000
        print(f"{key:18s} in-process {summary(local[key])} | ray {summary(remote[key])} | "
              f"overhead p50 {over50:+.1f} ms, p95 {over95:+.1f} ms, paired median {paired:+.1f} ms")
    print(f"after: {uptime()}")


if __name__ == "__main__":
    main()
