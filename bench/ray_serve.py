"""The Ray Serve path's overhead per request, beside in-process `voxloop serve`, in the same run.

Both servers hold the same models (Whisper tiny.en, Piper joe): in-process is `voxloop serve` in a subprocess;
the Ray path is a local one-node Ray (both up at once, requests alternating) with voxloop's Serve app (voxloop/ray.py), one replica per engine. Requests
go one at a time so the figures are latency, not queueing:
- speech first byte: time to the first audio byte of a streamed pcm answer (one sentence);
- transcription: whole request time for a 3 s clip.
overhead = Ray p50 - in-process p50. On a shared 2-core machine the replicas and the servers share the cores: the
load average is printed beside the numbers.

    python bench/ray_serve.py [--n 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import summary, voxloop_server  # noqa: E402
from tests.support.server import free_port  # noqa: E402
from tests.support.speech import encode, speak  # noqa: E402

SENTENCE = "The quick brown fox jumps over the lazy dog."


def speech_first_byte(url: str) -> float:
    body = {"model": "piper-joe", "voice": "alloy", "input": SENTENCE, "response_format": "pcm"}
    started = time.perf_counter()
    with httpx.stream("POST", f"{url}/v1/audio/speech", json=body, timeout=60) as r:
        r.raise_for_status()
        first = None
        for piece in r.iter_bytes():
            if piece and first is None:
                first = time.perf_counter() - started
    assert first is not None, "no audio"
    return first


def transcription(url: str, wav: bytes) -> float:
    started = time.perf_counter()
    r = httpx.post(f"{url}/v1/audio/transcriptions", files={"file": ("a.wav", wav, "audio/wav")},
                   data={"model": "whisper-1"}, timeout=60)
    r.raise_for_status()
    return time.perf_counter() - started


def measure(urls: dict[str, str], n: int, wav: bytes) -> dict[str, dict[str, list[float]]]:
    """Requests alternate between the servers, so a burst of load elsewhere hits both alike."""
    for url in urls.values():
        for _ in range(3):  # warm both paths (first loads, first handle calls)
            speech_first_byte(url)
            transcription(url, wav)
    out = {name: {"speech_first_byte": [], "transcription": []} for name in urls}
    for _ in range(n):
        for name, url in urls.items():
            out[name]["speech_first_byte"].append(speech_first_byte(url))
            out[name]["transcription"].append(transcription(url, wav))
    return out


@contextmanager
def ray_server(cache_dir: str) -> Iterator[str]:
    import ray
    from ray import serve

    from api.settings import Settings
    from voxloop.ray import APP_NAME, build_app

    root = str(Path(__file__).resolve().parent.parent)
    ray.init(num_cpus=4, runtime_env={"env_vars": {"PYTHONPATH": root}}, include_dashboard=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(build_app(Settings(cache_dir=cache_dir), models=["whisper-tiny.en", "piper-joe"]),
                  name=APP_NAME, route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    wav = encode(speak("The weather was calm this morning, and the boats were out at sea."))
    print(f"load before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as cache:
        with voxloop_server({"VOXLOOP_CACHE_DIR": cache, "VOXLOOP_WARMUP": "[]"}) as url, ray_server(cache) as ray_url:
            results = measure({"in-process": url, "ray": ray_url}, args.n, wav)
    local, remote = results["in-process"], results["ray"]
    for key in local:
        overhead_ms = (statistics.median(remote[key]) - statistics.median(local[key])) * 1000
        print(f"{key:18s} in-process {summary(local[key])} | ray {summary(remote[key])} | "
              f"overhead p50 {overhead_ms:+.1f} ms")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
